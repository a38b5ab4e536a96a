// child.ts: one forked child of a sandboxed module's forkserver, as the executor drives it:
// the fork, a call (request, shared buffers, reply or the child's end), the timeout, stderr.
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { type Comms, CommsError, SharedBuffer } from '@sbx/client';
import { Executor, type ForkServerHandle, type ForkTrace, type Policy, type Result, Sandbox } from '@sbx/executor';
import { endedError, ModuleError } from './errors.js';
import {
  type Attachment,
  type CallReply,
  type CallRequest,
  extractBuffers,
  kindsOf,
  PassFd,
  restoreBuffers,
} from './wire.js';

export interface ChildOptions {
  timeoutMs: number;
  threshold: number;
  stderr: 'capture' | 'inherit';
  /** The sandbox's walltime backstop in seconds (0: none, for sessions). Default: from timeoutMs. */
  walltime?: number;
  /** Stamp every stage of each fork (the executor's ForkTrace) and of each call. */
  trace?: boolean;
}

/**
 * A call's executor side made ahead of the call: an Executor for `server` with the child's
 * channels (Comms, stderr) made and not yet given to any child. It is the next call's, and only
 * its: runAsync() hands the channels' other ends to that call's child alone.
 */
export interface PreparedChild {
  readonly server: ForkServerHandle;
  readonly ex: Executor;
  readonly comms: Comms;
  readonly stderrFd: number;
}

/** How much of a child's stderr is kept (its end). */
const STDERR_TAIL = 4096;
/** Most buffers one reply may announce. */
const MAX_REPLY_BUFFERS = 1024;

export class ModuleChild {
  readonly #sandbox: Sandbox;
  readonly #comms: Comms;
  readonly #result: Promise<Result>;
  readonly #options: ChildOptions;
  #stderr = '';
  #ended = false;
  #closed = false;

  /** The forkserver this child was forked from. */
  readonly server: ForkServerHandle;
  /** Settles once the child is gone (its Result is in). */
  readonly gone: Promise<unknown>;

  private constructor(
    server: ForkServerHandle,
    sandbox: Sandbox,
    comms: Comms,
    options: ChildOptions,
    stderrFd: number,
  ) {
    this.server = server;
    this.#sandbox = sandbox;
    this.#comms = comms;
    this.#options = options;
    this.#result = sandbox.awaitResult().finally(() => {
      this.#ended = true;
    });
    this.#result.catch(() => {});
    this.gone = this.#result.then(
      () => {},
      () => {},
    );
    // One reaction for the child's life, not one per call (a session makes many calls): it
    // tells the call in progress, if any.
    const tell = (): void => this.#onEnded?.();
    this.#result.then(tell, tell);
    if (stderrFd >= 0) {
      // The stream on the child's stderr is made after the call's request has gone out (the
      // pipe holds what the child writes meanwhile): not on the call's path.
      this.#stderrDone = new Promise((r) =>
        setImmediate(() => {
          const stderr = new Socket({ fd: stderrFd, readable: true, writable: false });
          stderr.setEncoding('utf8');
          stderr.on('data', (s: string) => {
            this.#stderr = (this.#stderr + s).slice(-STDERR_TAIL);
          });
          stderr.on('error', () => {});
          stderr.once('close', r);
        }),
      );
    }
  }
  #stderrDone: Promise<unknown> = Promise.resolve();
  /** The call in progress learns here that the child ended. */
  #onEnded: (() => void) | null = null;

  /** An executor and the channels for one child of `server`, made now for a later fork(). */
  static prepare(server: ForkServerHandle, options: ChildOptions): PreparedChild {
    const walltime = options.walltime ?? Math.ceil(options.timeoutMs / 1000) + 1;
    const ex = new Executor(server, { limits: { walltime }, ...(options.trace ? { trace: true } : {}) });
    const comms = ex.ipc.comms;
    const stderrFd = options.stderr === 'capture' ? ex.ipc.receiveFd(2) : -1;
    return { server, ex, comms, stderrFd };
  }

  /** Closes what prepare() made, unused. */
  static discard(p: PreparedChild): void {
    p.comms.close();
    if (p.stderrFd >= 0) closeSync(p.stderrFd);
    p.ex.ipc.releaseOwned();
  }

  /** A child of `server` (with `prepared`, made by prepare() for that server, when given). */
  static async fork(
    server: ForkServerHandle,
    policy: Policy,
    options: ChildOptions,
    prepared: PreparedChild | null = null,
  ): Promise<ModuleChild> {
    if (prepared && prepared.server !== server) {
      ModuleChild.discard(prepared);
      prepared = null;
    }
    const { ex, comms, stderrFd } = prepared ?? ModuleChild.prepare(server, options);
    comms.ref(); // a prepared one waits unref'd: it keeps no process alive
    const sandbox = new Sandbox(ex, policy);
    try {
      await sandbox.runAsync();
    } catch (err) {
      comms.close();
      if (stderrFd >= 0) closeSync(stderrFd);
      throw err;
    }
    return new ModuleChild(server, sandbox, comms, options, stderrFd);
  }

  /** With the `trace` option: the fork request's stages (executor, forkserver, child). */
  get forkTrace(): ForkTrace | null {
    return this.#sandbox.forkTrace;
  }

  /** True once the child is gone, or is being killed after a failed call. */
  get ended(): boolean {
    return this.#ended || this.#failed;
  }
  #failed = false;

  /** One call: its value, or a ModuleError. `describe` asks for the module's exports instead.
   *  `timeoutMs`: what is left of the call's time (default: the module's timeoutMs). */
  async call(fn: string, args: unknown[], describe = false, timeoutMs = this.#options.timeoutMs): Promise<unknown> {
    if (this.#closed || this.ended) throw new ModuleError('CLOSED', `${fn}(): the child is gone`, { fn });
    try {
      return await this.#call(fn, args, describe, timeoutMs);
    } catch (err) {
      // After anything but an answer (an error reply, or an argument that was never sent), the
      // child is not used again: it is gone, or it is killed now.
      const code = err instanceof ModuleError ? err.code : '';
      if (!['THROWN', 'NO_SUCH_FUNCTION', 'BAD_RESULT', 'BAD_ARGUMENT'].includes(code)) {
        this.#failed = true;
        if (!this.#ended) this.#sandbox.kill();
      }
      throw err;
    }
  }

  async #call(fn: string, args: unknown[], describe: boolean, timeoutMs: number): Promise<unknown> {
    const out: Attachment[] = [];
    const sent = extractBuffers(args, this.#options.threshold, out) as unknown[];
    const req: CallRequest = { fn, args: sent, buffers: out.length, kinds: out.length ? kindsOf(out) : '' };
    if (describe) req.describe = true;

    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    try {
      // A channel that breaks means the child is ending: its Result says why.
      let broken: CommsError | null = null;
      const first = await new Promise<{ value: unknown } | 'ended' | 'timeout' | 'broken'>((resolve, reject) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(1, timeoutMs));
        if (this.#ended) resolve('ended');
        this.#onEnded = () => resolve('ended');
        this.#exchange(fn, req, out).then(resolve, (err: unknown) => {
          if (!(err instanceof CommsError)) return reject(err);
          broken = err;
          resolve('broken');
        });
      });
      if (first === 'timeout') {
        timedOut = true;
        this.#sandbox.kill();
      } else if (first !== 'ended' && first !== 'broken') {
        return first.value;
      }
      // The child ended (or was killed) before its reply: say why. A channel that broke while
      // the child lives on (it wrote garbage on it) is the child's fault: it is killed.
      if (first === 'broken' && !this.#ended) {
        const gone = await Promise.race([
          this.#result.then(
            () => 'ended' as const,
            () => 'ended' as const,
          ),
          delay(1000),
        ]);
        if (gone !== 'ended') throw this.#protocol(fn, (broken as CommsError | null)?.message ?? 'the channel broke');
      }
      const result = await this.#result;
      await Promise.race([this.#stderrDone, delay(50)]);
      throw endedError(fn, result, this.#stderr, timedOut, this.#options.timeoutMs);
    } finally {
      this.#onEnded = null;
      clearTimeout(timer);
    }
  }

  /** Sends the request and its buffers; receives the reply and its buffers (copied out). */
  async #exchange(fn: string, req: CallRequest, out: Attachment[]): Promise<{ value: unknown }> {
    try {
      await this.#comms.sendMessage(req);
    } catch (err) {
      if (err instanceof CommsError && err.code !== 'IO' && err.code !== 'PEER_CLOSED' && err.code !== 'CLOSED')
        throw new ModuleError('BAD_ARGUMENT', `${fn}(): an argument cannot be sent: ${err.message}`, {
          fn,
          cause: err,
        });
      if (!(err instanceof CommsError))
        throw new ModuleError('BAD_ARGUMENT', `${fn}(): ${(err as Error).message}`, { fn, cause: err });
      throw err;
    }
    for (const b of out) {
      if (b instanceof PassFd) await this.#comms.sendFd(b.fd);
      else if (b instanceof SharedBuffer) await this.#comms.sendBuffer(b);
      else {
        const sb = SharedBuffer.create(b.byteLength);
        try {
          sb.bytes.set(b);
          await this.#comms.sendBuffer(sb);
        } finally {
          sb.close();
        }
      }
    }
    const reply = await this.#comms.recvMessage<CallReply>();
    if (reply === null || typeof reply !== 'object' || typeof reply.ok !== 'boolean')
      throw this.#protocol(fn, 'the reply is not { ok, ... }');
    if (!reply.ok) {
      const e = reply.error;
      if (e === null || typeof e !== 'object' || typeof e.message !== 'string')
        throw this.#protocol(fn, 'an error reply without a message');
      const remote = {
        name: typeof e.name === 'string' ? e.name : 'Error',
        message: e.message,
        ...(typeof e.stack === 'string' ? { stack: e.stack } : {}),
        ...(typeof e.code === 'string' ? { code: e.code } : {}),
      };
      if (e.code === 'IMPORT_FAILED')
        throw new ModuleError('IMPORT_FAILED', `the module could not be imported: ${remote.name}: ${remote.message}`, {
          remote,
        });
      const code = e.code === 'NO_SUCH_FUNCTION' || e.code === 'BAD_RESULT' ? e.code : 'THROWN';
      throw new ModuleError(code, `${fn}(): ${remote.name}: ${remote.message}`, { fn, remote });
    }
    const n = reply.buffers;
    if (!Number.isInteger(n) || n < 0 || n > MAX_REPLY_BUFFERS)
      throw this.#protocol(fn, `a reply announcing ${String(n)} buffers`);
    const buffers: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const sb = await this.#comms.recvBuffer();
      try {
        buffers.push(Buffer.from(sb.bytes)); // a copy: the child could still write to the shared pages
      } finally {
        sb.close();
      }
    }
    try {
      return { value: restoreBuffers(reply.value, buffers) };
    } catch (err) {
      throw this.#protocol(fn, (err as Error).message);
    }
  }

  #protocol(fn: string, what: string): ModuleError {
    this.#sandbox.kill();
    return new ModuleError('PROTOCOL', `${fn}(): the child broke the protocol (${what}): it was killed`, { fn });
  }

  /** Closes the channel: the child exits at its next receive (or is killed if it does not). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#comms.close();
    // A child that does not exit on EOF (busy, hostile) is killed after a short grace.
    const t = setTimeout(() => this.#sandbox.kill(), 1000);
    t.unref();
    this.#result.finally(() => clearTimeout(t)).catch(() => {});
  }
}

function delay(ms: number): Promise<'delay'> {
  return new Promise((r) => setTimeout(() => r('delay'), ms));
}
