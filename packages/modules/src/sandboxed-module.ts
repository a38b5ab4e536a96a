// sandboxed-module.ts: sandboxedModule(): a module imported once in a warm Node forkserver
// (custom-fork mode), its functions called in forked children that are sandboxed with the
// module's policy. 'call' mode: a fresh child per call; 'session' mode: one child serves calls
// one after another until it is closed or dies. docs/modules.md.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type ForkServerHandle,
  type LimitsOptions,
  type Policy,
  type PolicyBuilder,
  type ForkTrace,
  type Result,
  startForkServer,
} from '@sbx/executor';
import { CallSlots } from './call-slots.js';
import { type ChildOptions, ModuleChild, type PreparedChild } from './child.js';
import { ModuleError } from './errors.js';
import { ForkServerWatch } from './forkserver-gone.js';
import { modulePolicy, resolveModule, runnerFiles, viewDirectories } from './view.js';
import { DEFAULT_BUFFER_THRESHOLD } from './wire.js';

export type ModuleMode = 'call' | 'session';

export interface SandboxedModuleOptions {
  /** 'call' (default): every call runs in a fresh child, nothing carries over. 'session': calls
   *  go one after another to one child (state carries over), replaced when it dies. */
  mode?: ModuleMode;
  /** Adds to the default policy: files or directories to see, syscalls, network rules. The
   *  default lets a child run JavaScript and native code on what it was given, and nothing else. */
  policy?: (b: PolicyBuilder) => void;
  /** Native addons (.node files: paths, or specifiers resolved from `from`) whose shared
   *  libraries outside the module's directories must be in view, e.g. sharp's `sharp.node`. */
  addons?: string[];
  /** Children forked ahead of calls (default 2, at most 64): up to 16 of them also sandboxed
   *  ahead (a call then only hands its fds over), the rest forked only. */
  spares?: number;
  /** Per call, in ms (default 30 000): a call still running then is killed with its child. In
   *  'call' mode the time spent waiting for a free slot (maxConcurrentCalls) counts too. */
  timeoutMs?: number;
  /** 'call' mode: children alive at once for calls, at most (default: twice the CPUs, at least 4;
   *  1..1024). Calls over it wait, in the order they came, for a child to end. */
  maxConcurrentCalls?: number;
  /** Limits of the forkserver's sandbox (its children count in them together), and `heapMiB`:
   *  each child's V8 heap limit (node --max-old-space-size). */
  limits?: Omit<LimitsOptions, 'walltime'> & { heapMiB?: number };
  /** Where a package name or relative path is resolved from (default process.cwd()). */
  from?: string;
  /** Byte arrays of this many bytes or more travel as shared memory (default 64 KiB). */
  bufferThreshold?: number;
  /** A child's stderr: 'capture' (default; its end comes with a crash's ModuleError) or 'inherit'. */
  stderr?: 'capture' | 'inherit';
  /** The node binary (default process.execPath). */
  node?: string;
  /** Record where each 'call' mode call's time goes (SandboxedModule.lastTrace). */
  trace?: boolean;
}

/** Where the last 'call' mode call's time went (the `trace` option): µs from the call's start. */
export interface ModuleCallTrace {
  /** The child was forked and its sandbox was on its way (Sandbox.runAsync() resolved). */
  forkedUs: number;
  /** The reply was decoded. */
  answeredUs: number;
  /** The fork request's own stages (executor, forkserver, child; µs from the request). */
  fork: ForkTrace | null;
}

/** Any function a module may export. */
export type AnyFunction = (...args: never[]) => unknown;
/** The module's functions, each returning a Promise of its (awaited) result. */
export type ModuleApi<T> = {
  [K in keyof T as T[K] extends AnyFunction ? K : never]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

const runnerPath = join(import.meta.dirname, 'runner.js');
/** Spares kept sandboxed ahead of calls at most (startForkServer's sandboxedSpares). */
const MAX_SANDBOXED_SPARES = 16;

/**
 * Imports `specifier` in a new warm forkserver and returns a handle whose calls run in
 * sandboxed children. Throws ModuleError IMPORT_FAILED when the module cannot be imported.
 */
export async function sandboxedModule<T = Record<string, AnyFunction>>(
  specifier: string,
  options: SandboxedModuleOptions = {},
): Promise<SandboxedModule<T>> {
  if (options === null || typeof options !== 'object')
    throw new TypeError('sandboxedModule(specifier, options): options must be an object');
  const mode = options.mode ?? 'call';
  if (mode !== 'call' && mode !== 'session')
    throw new TypeError(`sandboxedModule(): mode must be 'call' or 'session', got ${JSON.stringify(mode)}`);
  const spares = options.spares ?? 2;
  if (!Number.isInteger(spares) || spares < 0 || spares > 64)
    throw new TypeError(`sandboxedModule(): spares must be an integer 0..64, got ${String(spares)}`);
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new TypeError(`sandboxedModule(): timeoutMs must be a positive number, got ${String(timeoutMs)}`);
  const threshold = options.bufferThreshold ?? DEFAULT_BUFFER_THRESHOLD;
  if (!Number.isInteger(threshold) || threshold < 1)
    throw new TypeError(`sandboxedModule(): bufferThreshold must be a positive integer, got ${String(threshold)}`);
  const maxCalls = options.maxConcurrentCalls ?? defaultMaxConcurrentCalls();
  if (!Number.isInteger(maxCalls) || maxCalls < 1 || maxCalls > 1024)
    throw new TypeError(
      `sandboxedModule(): maxConcurrentCalls must be an integer 1..1024, got ${String(options.maxConcurrentCalls)}`,
    );
  const stderr = options.stderr ?? 'capture';
  if (stderr !== 'capture' && stderr !== 'inherit')
    throw new TypeError(`sandboxedModule(): stderr must be 'capture' or 'inherit', got ${JSON.stringify(stderr)}`);
  const { heapMiB, ...limits } = options.limits ?? {};
  if (heapMiB !== undefined && (!Number.isInteger(heapMiB) || heapMiB < 16))
    throw new TypeError(`sandboxedModule(): limits.heapMiB must be an integer >= 16, got ${String(heapMiB)}`);
  if ('walltime' in limits)
    throw new TypeError('sandboxedModule(): limits.walltime does not apply (use timeoutMs, per call)');

  const from = options.from ?? process.cwd();
  const file = resolveModule(specifier, from);
  if (options.addons !== undefined && !Array.isArray(options.addons))
    throw new TypeError('sandboxedModule(): addons must be an array of paths or specifiers');
  const addons = (options.addons ?? []).map((a) => resolveModule(a, from));
  const node = options.node ?? process.execPath;
  const view = viewDirectories([...runnerFiles(runnerPath), file, ...addons]);
  const policy = modulePolicy(node, view, addons, options.policy);
  const argv = [
    node,
    '--single-threaded',
    '--v8-pool-size=1',
    ...(heapMiB ? [`--max-old-space-size=${heapMiB}`] : []),
    runnerPath,
    pathToFileURL(file).href,
    String(spares - Math.min(spares, MAX_SANDBOXED_SPARES)),
    String(threshold),
  ];
  // The children's policy is known now: spares are forked and sandboxed ahead of the calls, so
  // that a call only hands its fds to one (plain spares, forked but not sandboxed, above 16).
  const sandboxedSpares = Math.min(spares, MAX_SANDBOXED_SPARES);
  const start = (): Promise<ForkServerHandle> =>
    startForkServer(node, argv, {
      policy,
      cwd: '/',
      env: { PATH: '/usr/bin:/bin' },
      limits,
      forkTimeoutMs: 10_000,
      ...(sandboxedSpares > 0 ? { childPolicy: policy, sandboxedSpares } : {}),
    });
  const server = await start();
  const m = new SandboxedModule<T>(
    server,
    start,
    policy,
    mode,
    {
      timeoutMs,
      threshold,
      stderr,
      ...(options.trace ? { trace: true } : {}),
    },
    maxCalls,
  );
  try {
    m.exports = (await m.describe()) as string[];
  } catch (err) {
    await m.close();
    throw err;
  }
  return m;
}

/** maxConcurrentCalls' default: twice the CPUs this process may use, at least 4. */
function defaultMaxConcurrentCalls(): number {
  return Math.max(4, 2 * availableParallelism());
}

/** A module imported in a sandboxed forkserver. Calls never throw anything but ModuleError. */
export class SandboxedModule<T = Record<string, AnyFunction>> {
  /** The module's function exports (named ones, and those of its default export). */
  exports: string[] = [];
  #server: ForkServerHandle;
  /** Asks the kernel whether #server died. */
  #watch: ForkServerWatch;
  /** Starts a new forkserver like the first (after one died). */
  readonly #start: () => Promise<ForkServerHandle>;
  #restarting: Promise<void> | null = null;
  /** 'call' mode: the next call's executor side, made after the last call's request went out. */
  #next: PreparedChild | null = null;
  readonly #slots: CallSlots;
  readonly #policy: Policy;
  readonly #mode: ModuleMode;
  readonly #options: ChildOptions;
  #session: ModuleSession | null = null;
  readonly #sessions = new Set<ModuleSession>();
  #closed = false;
  #api: ModuleApi<T> | null = null;
  /** With the `trace` option: where the last 'call' mode call's time went. */
  lastTrace: ModuleCallTrace | null = null;
  /** How many times a forkserver that died was replaced by a new one. */
  restarts = 0;

  /** @internal */
  constructor(
    server: ForkServerHandle,
    start: () => Promise<ForkServerHandle>,
    policy: Policy,
    mode: ModuleMode,
    options: ChildOptions,
    maxConcurrentCalls: number,
  ) {
    this.#server = server;
    this.#watch = new ForkServerWatch(server);
    this.#start = start;
    this.#slots = new CallSlots(maxConcurrentCalls);
    this.#policy = policy;
    this.#mode = mode;
    this.#options = options;
  }

  get mode(): ModuleMode {
    return this.#mode;
  }

  /** The pid (host pid namespace) of the forkserver's sandbox init; a new one after a restart. */
  get forkServerPid(): number {
    return this.#server.pid;
  }

  /** 'call' mode: the limit on children alive at once for calls (maxConcurrentCalls). */
  get maxConcurrentCalls(): number {
    return this.#slots.max;
  }

  /** Calls `fn(...args)` in a child ('call' mode: a fresh one; 'session' mode: the module's session). */
  async call(fn: string, ...args: unknown[]): Promise<unknown> {
    if (typeof fn !== 'string' || fn === '') throw new TypeError('call(fn, ...args): fn must be a non-empty string');
    if (this.#closed) throw new ModuleError('CLOSED', `${fn}(): the sandboxed module is closed`, { fn });
    if (this.#mode === 'session') {
      this.#session ??= this.#newSession();
      return this.#session.call(fn, ...args);
    }
    const t0 = performance.now();
    const timeoutMs = this.#options.timeoutMs;
    const slot = this.#slots.acquire(timeoutMs);
    const release = typeof slot === 'function' ? slot : await slot;
    if (!release)
      throw new ModuleError(
        'TIMEOUT',
        `${fn}(): no answer within ${timeoutMs} ms: the call waited for one of the ${this.#slots.max} children allowed at once (maxConcurrentCalls)`,
        { fn },
      );
    let child: ModuleChild | null = null;
    try {
      child = await this.#fork(fn, this.#takeNext());
      // the next call's executor side, made once this call's request went out (the child works)
      setImmediate(() => this.#prepareNext());
      const forked = performance.now();
      try {
        return await child.call(fn, args, false, timeoutMs - (forked - t0));
      } catch (err) {
        throw await this.#explain(err, fn, child.server);
      } finally {
        if (this.#options.trace)
          this.lastTrace = {
            forkedUs: (forked - t0) * 1000,
            answeredUs: (performance.now() - t0) * 1000,
            fork: child.forkTrace,
          };
        child.close();
      }
    } finally {
      // the slot is free once the child is gone, not when its answer is in
      if (child) child.gone.then(release, release);
      else release();
    }
  }

  /** The functions as methods: `await m.api.parse(text)` is `await m.call('parse', text)`. */
  get api(): ModuleApi<T> {
    this.#api ??= new Proxy(Object.create(null) as ModuleApi<T>, {
      get: (_t, name) => (typeof name === 'string' ? (...args: unknown[]) => this.call(name, ...args) : undefined),
    });
    return this.#api;
  }

  /** A session of its own: one child for the calls made through it, until close(). */
  session(): ModuleSession<T> {
    if (this.#closed) throw new ModuleError('CLOSED', 'session(): the sandboxed module is closed');
    return this.#newSession() as ModuleSession<T>;
  }

  /** Ends every child and the forkserver. */
  async close(): Promise<Result | undefined> {
    if (this.#closed) return undefined;
    this.#closed = true;
    for (const s of this.#sessions) s.close();
    const next = this.#takeNext();
    if (next) ModuleChild.discard(next);
    await this.#restarting?.catch(() => {});
    this.#watch.close();
    return this.#server.close();
  }

  /** @internal The module's function names (a call in a child of its own). */
  async describe(): Promise<unknown> {
    const child = await this.#fork('describe');
    try {
      return await child.call('describe', [], true);
    } finally {
      child.close();
    }
  }

  #newSession(): ModuleSession {
    const s = new ModuleSession(
      (fn) => this.#fork(fn),
      (err, fn, child) => this.#explain(err, fn, child?.server ?? this.#server),
      () => this.#sessions.delete(s),
    );
    this.#sessions.add(s);
    return s;
  }

  #takeNext(): PreparedChild | null {
    const next = this.#next;
    this.#next = null;
    return next;
  }

  #prepareNext(): void {
    if (this.#closed || this.#next || this.#gone(this.#server)) return;
    try {
      const next = ModuleChild.prepare(this.#server, this.#options);
      next.comms.unref();
      this.#next = next;
    } catch {
      // out of fds, say: the next call makes its own and reports what fails
    }
  }

  async #fork(fn: string, prepared: PreparedChild | null = null): Promise<ModuleChild> {
    let server = this.#server;
    if (this.#gone(server)) {
      if (prepared) ModuleChild.discard(prepared); // it was made for the dead one
      prepared = null;
      server = await this.#liveServer(fn);
    }
    try {
      return await ModuleChild.fork(
        server,
        this.#policy,
        this.#mode === 'call' ? this.#options : { ...this.#options, walltime: 0 },
        prepared,
      );
    } catch (err) {
      if (err instanceof ModuleError) throw err;
      const died = await this.#explain(err, fn, server);
      if (died.code === 'FORKSERVER_DIED') throw died;
      throw new ModuleError('FORK_FAILED', `${fn}(): no child could be forked: ${(err as Error).message}`, {
        fn,
        cause: err,
      });
    }
  }

  /** A new forkserver for the one that died (started once for all the calls waiting). */
  async #liveServer(fn: string): Promise<ForkServerHandle> {
    this.#restarting ??= this.#restart().finally(() => {
      this.#restarting = null;
    });
    try {
      await this.#restarting;
    } catch (err) {
      if (err instanceof ModuleError) throw err;
      throw new ModuleError(
        'FORKSERVER_DIED',
        `${fn}(): the module's forkserver died and a new one could not be started: ${(err as Error).message}`,
        { fn, cause: err },
      );
    }
    return this.#server;
  }

  async #restart(): Promise<void> {
    const old = this.#server;
    await old.close().catch(() => {});
    if (this.#closed) throw new ModuleError('CLOSED', 'the sandboxed module is closed');
    const server = await this.#start();
    if (this.#closed) {
      await server.close().catch(() => {});
      throw new ModuleError('CLOSED', 'the sandboxed module is closed');
    }
    this.#watch.close();
    this.#server = server;
    this.#watch = new ForkServerWatch(server);
    this.restarts++;
  }

  /** True once `server` died: an earlier forkserver is (it was replaced because it died). */
  #gone(server: ForkServerHandle): boolean {
    return server !== this.#watch.server || this.#watch.gone;
  }

  /**
   * What a failed call's error becomes: FORKSERVER_DIED when the forkserver `server` died (its
   * children die with it), naming how it ended; else the error itself (a ModuleError).
   */
  async #explain(err: unknown, fn: string, server: ForkServerHandle): Promise<ModuleError> {
    const own = err instanceof ModuleError ? err : null;
    const explained =
      own === null || !['THROWN', 'NO_SUCH_FUNCTION', 'BAD_RESULT', 'BAD_ARGUMENT', 'CLOSED'].includes(own.code);
    if (explained && this.#gone(server)) {
      const result = await server.result.catch(() => undefined);
      const how = result ? result.toString() : 'its sandbox failed';
      return new ModuleError(
        'FORKSERVER_DIED',
        `${fn}(): the module's forkserver died (${how}); the next call starts a new one`,
        { fn, cause: err, ...(result ? { result } : {}) },
      );
    }
    if (own) return own;
    return new ModuleError('PROTOCOL', `${fn}(): ${(err as Error)?.message ?? String(err)}`, { fn, cause: err });
  }
}

/** One child serving calls one after another. A child that dies is replaced at the next call. */
export class ModuleSession<T = Record<string, AnyFunction>> {
  readonly #fork: (fn: string) => Promise<ModuleChild>;
  readonly #explain: (err: unknown, fn: string, child: ModuleChild | null) => Promise<ModuleError>;
  readonly #onClose: () => void;
  #child: ModuleChild | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #api: ModuleApi<T> | null = null;

  /** @internal */
  constructor(
    fork: (fn: string) => Promise<ModuleChild>,
    explain: (err: unknown, fn: string, child: ModuleChild | null) => Promise<ModuleError>,
    onClose: () => void,
  ) {
    this.#fork = fork;
    this.#explain = explain;
    this.#onClose = onClose;
  }

  call(fn: string, ...args: unknown[]): Promise<unknown> {
    const run = async (): Promise<unknown> => {
      if (this.#closed) throw new ModuleError('CLOSED', `${fn}(): the session is closed`, { fn });
      if (!this.#child || this.#child.ended) this.#child = await this.#fork(fn);
      const child = this.#child;
      try {
        return await child.call(fn, args);
      } catch (err) {
        throw await this.#explain(err, fn, child);
      }
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  get api(): ModuleApi<T> {
    this.#api ??= new Proxy(Object.create(null) as ModuleApi<T>, {
      get: (_t, name) => (typeof name === 'string' ? (...args: unknown[]) => this.call(name, ...args) : undefined),
    });
    return this.#api;
  }

  /** Ends the session's child (calls still queued fail with CLOSED). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#child?.close();
    this.#onClose();
  }
}
