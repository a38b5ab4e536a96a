// run.ts: the one-call API, in the spirit of child_process.execFile and execa: run a program in
// a sandbox, feed it `input`, capture its output up to a cap, and resolve to { stdout, stderr,
// result }. It is a thin layer over Executor + Sandbox: run().sandbox is the Sandbox, whose
// stdin/stdout/stderr streams stay available for streaming while run() captures.
import { Readable } from 'node:stream';
import { SbxError } from '@sbx/client';
import { Executor, type ExecutorOptions } from '../sandbox/executor.js';
import { Limits, type LimitsOptions } from '../sandbox/limits.js';
import { Policy } from '../policy/policy.js';
import type { Result } from '../sandbox/result.js';
import { Sandbox } from '../sandbox/sandbox.js';
import type { SandboxNotify } from '../sandbox/notify-hooks.js';
import { defaultPolicy, type RunNetwork } from '../cli/default-policy.js';

/** Default output cap per stream, in bytes (run()'s `maxBuffer`). */
export const DEFAULT_MAX_BUFFER = 16 * 1024 * 1024;

export type RunErrorCode = 'BAD_OPTION';

/** A run() argument that is wrong (the sandbox was not started). */
export class RunError extends SbxError {
  declare readonly code: RunErrorCode;
  constructor(code: RunErrorCode, message: string) {
    super(code, message);
  }
}

/** The filesystem view of the default policy (when run() is given no `policy`). */
export interface RunView {
  /** Host paths bound into the sandbox: read-only unless `writable`; at the same path unless `inside`. */
  mounts?: ReadonlyArray<string | { outside: string; inside?: string; writable?: boolean }>;
  /** tmpfs mounts; one at /tmp replaces the default 64 MiB /tmp. `sizeBytes` in bytes. */
  tmpfs?: ReadonlyArray<{ inside: string; sizeBytes: number }>;
}

export interface RunOptions {
  /** Written to the sandboxee's stdin, which is then closed (default: stdin is /dev/null). */
  input?: string | Uint8Array | Readable;
  /** Wall-time limit in MILLISECONDS (Node's unit; limits.walltime is in seconds). The run ends
   *  with status TIMEOUT. Default: limits.walltime, else 120 s. 0: no limit. */
  timeout?: number;
  /** Aborting ends the sandbox as kill() does: status EXTERNAL_KILL, reason "aborted". An
   *  already aborted signal rejects with its reason, and nothing is started. */
  signal?: AbortSignal;
  /** Cap in BYTES on each of stdout and stderr (default 16 MiB). Past it the sandbox is ended with
   *  status OUTPUT_LIMIT; the output returned is cut at the cap. Infinity: no cap. */
  maxBuffer?: number;
  /** How stdout and stderr are returned: a string in this encoding (default 'utf8'), or Buffers ('buffer'). */
  encoding?: BufferEncoding | 'buffer';
  /** The whole environment of the sandboxee (default: PATH only). */
  env?: Record<string, string>;
  /** Working directory inside the sandbox (default "/"). */
  cwd?: string;
  /** The policy (PolicyBuilder.build()). Default: the policy of `sbx run` for `file` (an ordinary
   *  command-line program on a read-only view of the system directories, /tmp, no network). */
  policy?: Policy;
  /** Extra mounts for the default policy (not with `policy`: add them to your own). */
  view?: RunView;
  /** Resource limits (rlimits in bytes/counts, walltime in seconds, memory/pids via cgroup). */
  limits?: LimitsOptions;
  /** Other Executor options (isolation, cgroup, monitor, landlock, sandboxUser, hostname, spawnPool). */
  executor?: Omit<ExecutorOptions, 'env' | 'cwd' | 'limits' | 'stdio'>;
  /** Notify hooks and events (onSyscall for the policy's notifySyscall() rules, onStarted,
   *  onSignal, onFinished): the Sandbox's third argument. */
  notify?: SandboxNotify;
}

export interface RunOutput<T extends string | Buffer = string | Buffer> {
  stdout: T;
  stderr: T;
  /** How it ended; `result.ok` for a clean exit (then `result.exitCode`). */
  result: Result;
}

/** run()'s promise, with the Sandbox it runs (for kill() and live streams). */
export type RunPromise<T extends string | Buffer> = Promise<RunOutput<T>> & { readonly sandbox: Sandbox };

const KNOWN = new Set([
  'input',
  'timeout',
  'signal',
  'maxBuffer',
  'encoding',
  'env',
  'cwd',
  'policy',
  'view',
  'limits',
  'executor',
  'notify',
]);

/**
 * Runs `file` with `args` in a sandbox and resolves to { stdout, stderr, result } once it and
 * all its processes are gone. Never rejects for what the program did (a violation, a timeout,
 * a non-zero exit are in `result`); rejects with RunError, TypeError or ExecutorError for bad
 * arguments, and with the abort reason for an already aborted `signal`.
 *
 *   const { stdout, result } = await run('python3', ['-c', 'print(6*7)'], { timeout: 2000 });
 */
export function run(
  file: string,
  args?: readonly string[],
  options?: RunOptions & { encoding: 'buffer' },
): RunPromise<Buffer>;
export function run(file: string, args?: readonly string[], options?: RunOptions): RunPromise<string>;
export function run(file: string, args: readonly string[] = [], options: RunOptions = {}): RunPromise<string | Buffer> {
  const sandbox = prepare(file, args, options);
  const promise = capture(sandbox, options) as RunPromise<string | Buffer>;
  Object.defineProperty(promise, 'sandbox', { value: sandbox, enumerable: true });
  return promise;
}

function prepare(file: string, args: readonly string[], o: RunOptions): Sandbox {
  if (o === null || typeof o !== 'object')
    throw new RunError('BAD_OPTION', 'run(file, args, options): options must be an object');
  for (const k of Object.keys(o))
    if (!KNOWN.has(k)) throw new RunError('BAD_OPTION', `run: unknown option "${k}" (known: ${[...KNOWN].join(', ')})`);
  if (!Array.isArray(args)) throw new RunError('BAD_OPTION', 'run(file, args): args must be an array of strings');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new RunError('BAD_OPTION', 'run: signal must be an AbortSignal');
  o.signal?.throwIfAborted();
  const maxBuffer = o.maxBuffer ?? DEFAULT_MAX_BUFFER;
  if (typeof maxBuffer !== 'number' || !(maxBuffer > 0))
    throw new RunError(
      'BAD_OPTION',
      `run: maxBuffer must be a number of bytes > 0 (or Infinity), got ${String(o.maxBuffer)}`,
    );
  const enc = o.encoding ?? 'utf8';
  if (enc !== 'buffer' && !Buffer.isEncoding(enc))
    throw new RunError('BAD_OPTION', `run: encoding must be a Buffer encoding or 'buffer', got ${JSON.stringify(enc)}`);
  const input = o.input;
  if (
    input !== undefined &&
    typeof input !== 'string' &&
    !(input instanceof Uint8Array) &&
    !(input instanceof Readable)
  ) {
    throw new RunError('BAD_OPTION', 'run: input must be a string, a Buffer/Uint8Array or a Readable');
  }
  const limits: LimitsOptions = { ...(o.limits ?? {}) };
  if (o.timeout !== undefined) {
    if (typeof o.timeout !== 'number' || !Number.isFinite(o.timeout) || o.timeout < 0)
      throw new RunError('BAD_OPTION', `run: timeout must be a number of milliseconds >= 0, got ${String(o.timeout)}`);
    if (o.limits?.walltime !== undefined)
      throw new RunError('BAD_OPTION', 'run: give timeout (ms) or limits.walltime (s), not both');
    limits.walltime = o.timeout / 1000;
  }
  let policy = o.policy;
  if (policy !== undefined && !(policy instanceof Policy))
    throw new RunError('BAD_OPTION', 'run: policy must be a Policy (from PolicyBuilder.build())');
  if (policy && o.view)
    throw new RunError(
      'BAD_OPTION',
      'run: view shapes the default policy; with your own policy, add the mounts to it (PolicyBuilder.addDirectoryAt, addTmpfs)',
    );
  const executor = new Executor(file, [file, ...args], {
    ...(o.executor ?? {}),
    ...(o.env !== undefined ? { env: o.env } : {}),
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    limits: new Limits(limits),
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  policy ??= defaultPolicy(executor.path, {
    allow: [],
    errno: [],
    ...viewOf(o.view),
    network: { mode: 'none', allow: [], deny: [], dns: [], unix: [] } satisfies RunNetwork,
  });
  try {
    return o.notify === undefined ? new Sandbox(executor, policy) : new Sandbox(executor, policy, o.notify);
  } catch (err) {
    throw new RunError('BAD_OPTION', `run: notify: ${(err as Error).message}`);
  }
}

function viewOf(view: RunView | undefined): {
  mounts: Array<{ outside: string; inside: string; writable: boolean }>;
  tmpfs: Array<{ inside: string; sizeBytes: number }>;
} {
  if (view === undefined) return { mounts: [], tmpfs: [] };
  if (view === null || typeof view !== 'object')
    throw new RunError('BAD_OPTION', 'run: view must be an object { mounts?, tmpfs? }');
  for (const k of Object.keys(view))
    if (k !== 'mounts' && k !== 'tmpfs')
      throw new RunError('BAD_OPTION', `run: unknown view option "${k}" (known: mounts, tmpfs)`);
  const mounts = (view.mounts ?? []).map((m) => {
    const e = typeof m === 'string' ? { outside: m } : m;
    if (e === null || typeof e !== 'object' || typeof e.outside !== 'string' || !e.outside.startsWith('/'))
      throw new RunError(
        'BAD_OPTION',
        `run: view.mounts entries must be absolute paths or { outside, inside?, writable? }, got ${JSON.stringify(m)}`,
      );
    return { outside: e.outside, inside: e.inside ?? e.outside, writable: e.writable ?? false };
  });
  const tmpfs = (view.tmpfs ?? []).map((t) => {
    if (
      t === null ||
      typeof t !== 'object' ||
      typeof t.inside !== 'string' ||
      !Number.isSafeInteger(t.sizeBytes) ||
      t.sizeBytes <= 0
    )
      throw new RunError(
        'BAD_OPTION',
        `run: view.tmpfs entries must be { inside, sizeBytes }, got ${JSON.stringify(t)}`,
      );
    return { inside: t.inside, sizeBytes: t.sizeBytes };
  });
  return { mounts, tmpfs };
}

async function capture(sandbox: Sandbox, o: RunOptions): Promise<RunOutput> {
  const maxBuffer = o.maxBuffer ?? DEFAULT_MAX_BUFFER;
  const collect = (stream: Readable, name: 'stdout' | 'stderr') => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = new Promise<Buffer>((resolve) => {
      stream.on('data', (d: Buffer) => {
        const room = maxBuffer - size;
        if (d.length <= room) {
          chunks.push(d);
          size += d.length;
          return;
        }
        // One byte more than maxBuffer ends the run (exactly maxBuffer bytes is fine).
        if (room > 0) chunks.push(d.subarray(0, room));
        size = maxBuffer;
        sandbox.endWith('OUTPUT_LIMIT', `${name} exceeded maxBuffer (${maxBuffer} bytes)`);
      });
      stream.on('end', () => resolve(Buffer.concat(chunks)));
      stream.on('error', () => resolve(Buffer.concat(chunks)));
    });
    return done;
  };
  const out = collect(sandbox.stdout!, 'stdout');
  const err = collect(sandbox.stderr!, 'stderr');
  const onAbort = () =>
    sandbox.endWith(
      'EXTERNAL_KILL',
      `aborted${o.signal?.reason !== undefined ? `: ${reasonText(o.signal.reason)}` : ''}`,
    );
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    feed(sandbox, o.input);
    const result = await sandbox.run();
    const [stdout, stderr] = await Promise.all([out, err]);
    const enc = o.encoding ?? 'utf8';
    return enc === 'buffer'
      ? { stdout, stderr, result }
      : { stdout: stdout.toString(enc), stderr: stderr.toString(enc), result };
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** Sends `input` to the sandboxee's stdin and closes it. A sandboxee that does not read it all
 *  (it exits, or closes stdin: EPIPE) is not an error of the run. */
function feed(sandbox: Sandbox, input: RunOptions['input']): void {
  const stdin = sandbox.stdin;
  if (!stdin || input === undefined) return;
  stdin.on('error', () => {});
  if (input instanceof Readable) input.pipe(stdin);
  else stdin.end(input);
}

function reasonText(r: unknown): string {
  return r instanceof Error ? r.message : String(r);
}
