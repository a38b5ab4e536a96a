// errors.ts: what a sandboxed module's caller gets when a call does not return a value.
import { SbxError } from '@sbx/client';
import type { Result, Violation } from '@sbx/executor';
import type { RemoteErrorInfo } from './wire.js';

export type ModuleErrorCode =
  | 'THROWN' // the function threw (or rejected): remoteName, message, remoteStack are the child's
  | 'NO_SUCH_FUNCTION' // the module exports no function of that name
  | 'IMPORT_FAILED' // the module could not be imported in the forkserver
  | 'TIMEOUT' // the call ran past timeoutMs: the child was killed
  | 'VIOLATION' // the child did something its policy forbids: it was killed (`violation` says what)
  | 'CRASHED' // the child died of a signal (a segfault in a native addon, an abort): `signal`
  | 'OOM' // the child ran out of memory (V8's heap limit, or a native allocation that aborted)
  | 'EXITED' // the child exited (process.exit in the module) before it answered
  | 'BAD_ARGUMENT' // an argument msgpack cannot carry
  | 'BAD_RESULT' // the result is not a value msgpack can carry
  | 'PROTOCOL' // the child answered something that is not a reply
  | 'FORK_FAILED' // no child could be forked (the forkserver refused or did not answer)
  | 'FORKSERVER_DIED' // the module's forkserver died (killed, crashed): `result` is its Result; the next call starts a new one
  | 'CLOSED'; // the module (or the session) was closed

/** A call that did not return a value. The sandboxed module itself stays usable. */
export class ModuleError extends SbxError {
  declare readonly code: ModuleErrorCode;
  /** The function that was called. */
  readonly fn?: string;
  /** THROWN: the name of the error the child threw ("TypeError", "YAMLException"...). */
  readonly remoteName?: string;
  /** THROWN: its `code` property, when it was a string. */
  readonly remoteCode?: string;
  /** THROWN: the child's stack trace (paths as the child saw them). */
  readonly remoteStack?: string;
  /** VIOLATION: the syscall that was refused. */
  readonly violation?: Violation;
  /** CRASHED, OOM: the signal the child died of. */
  readonly signal?: string | number;
  /** The child's sandbox Result, when it ended with the call (FORKSERVER_DIED: the forkserver's). */
  readonly result?: Result;
  /** The end of what the child wrote to stderr (at most 4 KiB), when it ended with the call. */
  readonly stderr?: string;

  constructor(
    code: ModuleErrorCode,
    message: string,
    fields: {
      fn?: string;
      remote?: RemoteErrorInfo;
      violation?: Violation;
      signal?: string | number;
      result?: Result;
      stderr?: string;
      cause?: unknown;
    } = {},
  ) {
    super(code, message, fields.cause === undefined ? undefined : { cause: fields.cause });
    if (fields.fn !== undefined) this.fn = fields.fn;
    if (fields.remote) {
      this.remoteName = fields.remote.name;
      if (fields.remote.code !== undefined) this.remoteCode = fields.remote.code;
      if (fields.remote.stack !== undefined) {
        this.remoteStack = fields.remote.stack;
        this.stack = `${this.stack}\n    --- in the sandboxed child ---\n${fields.remote.stack}`;
      }
    }
    if (fields.violation) this.violation = fields.violation;
    if (fields.signal !== undefined) this.signal = fields.signal;
    if (fields.result) this.result = fields.result;
    if (fields.stderr) this.stderr = fields.stderr;
  }
}

/** The error for a child that ended before it answered, from its Result and stderr. */
export function endedError(
  fn: string,
  result: Result,
  stderr: string,
  timedOut: boolean,
  timeoutMs: number,
): ModuleError {
  const base = { fn, result, ...(stderr ? { stderr } : {}) };
  if (timedOut || result.status === 'TIMEOUT')
    return new ModuleError('TIMEOUT', `${fn}(): no answer within ${timeoutMs} ms: the child was killed`, base);
  if (result.status === 'VIOLATION' && result.violation) {
    const v = result.violation;
    return new ModuleError(
      'VIOLATION',
      `${fn}(): the child was killed for a policy violation: ${v.syscall}${v.address ? ` to ${v.address}` : ''}`,
      {
        ...base,
        violation: v,
      },
    );
  }
  if (result.status === 'SIGNALED') {
    const sig = result.signal ?? 'unknown';
    if (/out of memory|heap limit|allocation failed/i.test(stderr))
      return new ModuleError('OOM', `${fn}(): the child ran out of memory (${String(sig)})`, { ...base, signal: sig });
    return new ModuleError('CRASHED', `${fn}(): the child crashed with ${String(sig)}`, { ...base, signal: sig });
  }
  if (result.status === 'OK' || (result.status === 'INTERNAL_ERROR' && result.exitCode !== undefined))
    return new ModuleError(
      'EXITED',
      `${fn}(): the child exited with code ${result.exitCode ?? 0} before it answered`,
      base,
    );
  return new ModuleError('CRASHED', `${fn}(): the child ended before it answered: ${result.reason}`, base);
}
