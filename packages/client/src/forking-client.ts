// forking-client.ts: custom-fork mode for a Node forkserver (docs/architecture.md, "Custom-fork mode"). The forkserver
// is started by Executor.startForkServer() with `node --single-threaded --v8-pool-size=1`; it
// loads and warms what its children share, then calls ForkingClient.waitAndFork() (or
// enterForkLoop()). Each fork request of the executor makes a child that returns 0 with its own
// Comms channel (fd 1023) and sandbox-me-here handshake (fd 1020): it calls
// Client.sandboxMeHere() and does its work.
//
// Why these flags and these steps: docs/architecture.md, "The Node configuration, and why". In short: a forked child has only
// the thread that forked. With --single-threaded V8 compiles and collects garbage on the main
// thread, so nothing the child does waits for a platform worker; --v8-pool-size=1 keeps one
// worker to park. The native side (fork_binding.cc) parks it and drains libuv before fork(),
// and runs uv_loop_fork() in the child; this file fixes process.pid, routes every exit through
// _exit() (Node's own teardown would join the missing worker threads), detects the natural
// exit, and turns what cannot work in a child (Worker threads) into a clear error.
import { readdirSync, readlinkSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { ForkError } from './errors.js';
import { closeQuietly, type ForkBinding, forkNative, native, type NativeErrnoError } from './native.js';
import { Client, defaultClientFd } from './client.js';
import { defaultCommsFd, SyncComms } from './sync-comms.js';
import { warmCodec } from './codec.js';
import { markSandboxedAhead } from './sandboxed-spare.js';
import { dropInheritedSpares } from './buffer-pool.js';

/** The node flags a forkserver needs, and why (checked by waitAndFork()). */
export const FORKSERVER_NODE_FLAGS = ['--single-threaded', '--v8-pool-size=1'] as const;

let opened = false;
let inChild = false;
let spares = 0;

/** Most spares a forkserver keeps (SBX_FORK_MAX_SPARES). */
export const MAX_SPARES = 64;

/** The forkserver side of custom-fork mode. All members are static: a process serves one channel. */
export class ForkingClient {
  private constructor() {}

  /**
   * Checks that this process can fork safely, without taking the channel: the node flags, a fork
   * binding for this Node's ABI and the V8 it was built for. Throws ForkError NODE_FLAGS /
   * NODE_UNSUPPORTED / NODE_BUILD naming what to change.
   * waitAndFork() calls it; call it at start-up to fail before loading anything.
   */
  static check(): void {
    const argv = process.execArgv;
    const missing: string[] = [];
    if (!argv.includes('--single-threaded')) missing.push('--single-threaded');
    // --v8-pool-size=1 is checked on the real worker count once the platform is asked (open).
    if (!argv.some((a) => a === '--v8-pool-size=1')) missing.push('--v8-pool-size=1');
    if (missing.length) {
      throw new ForkError(
        'NODE_FLAGS',
        `a Node forkserver must run as "node ${FORKSERVER_NODE_FLAGS.join(' ')} ${process.argv[1] ?? 'server.js'}": add ${missing.join(' and ')} ` +
          `(a forked child has no V8 worker threads; see docs/architecture.md, custom-fork mode)`,
      );
    }
    const built = forkNative().forkingV8Built();
    const running = process.versions.v8.split('.').slice(0, 2).join('.');
    if (built !== running) {
      throw new ForkError(
        'NODE_BUILD',
        `sbx's fork binding for NODE_MODULE_VERSION ${process.versions.modules} was built against V8 ${built}, this node (${process.version}) runs V8 ${running}: rebuild it with this node (npm rebuild @sbx/client --build-from-source; in the sbx repository pnpm run build:native)`,
      );
    }
  }

  /**
   * Gets the forkserver ready to fork: check(), loads what a child's sandboxMeHere() needs
   * (Client.prepare()), then lets the event loop run until no request is in flight (at most
   * `timeoutMs`, default 5 s; then ForkError BUSY). Await it right before enterForkLoop().
   */
  static async ready(timeoutMs = 5000): Promise<void> {
    ForkingClient.check();
    Client.prepare();
    workerThreads();
    const start = performance.now();
    while (activeRequests() > 0) {
      if (performance.now() - start > timeoutMs) {
        throw new ForkError(
          'BUSY',
          `ForkingClient.ready(): ${activeRequests()} request(s) still in flight after ${timeoutMs} ms: finish them (await them) before forking`,
        );
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /**
   * Children to fork ahead of requests (default 0, at most 64). A spare is forked while no
   * request waits and then waits for one, so that a request costs a message rather than a
   * fork() (whose cost grows with the forkserver's memory). A spare shares the forkserver's state
   * as it was when the spare was made: set it once the forkserver is warm. Takes effect at the
   * next waitAndFork().
   */
  static setSpares(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > MAX_SPARES)
      throw new TypeError(`ForkingClient.setSpares(n): n must be an integer 0..${MAX_SPARES}, got ${String(n)}`);
    if (inChild) throw new ForkError('NOT_FORKSERVER', 'ForkingClient.setSpares() in a forked child');
    spares = n;
    if (opened) forkNative().forkingSetSpares(n);
  }

  /**
   * Work every child does first, run in each new child right after its fork, inside
   * waitAndFork(): a spare does it ahead of its request, so the request does not wait for it
   * (e.g. running a request path once, so that its code is compiled and its memory the child's
   * own). `fn` runs synchronously, before the child's fds are in place and before it is
   * sandboxed, with no event-loop turn: what it starts asynchronously waits for the request.
   * An error it throws is thrown by waitAndFork() in that child. null removes it.
   */
  static onChildForked(fn: (() => void) | null): void {
    if (fn !== null && typeof fn !== 'function')
      throw new TypeError('ForkingClient.onChildForked(fn): fn must be a function or null');
    if (inChild) throw new ForkError('NOT_FORKSERVER', 'ForkingClient.onChildForked() in a forked child');
    childForkedHook = fn;
  }

  /**
   * Kills the spares waiting for a request: they are snapshots of this process from when they
   * were forked. Call it after the forkserver's state changed (a module loaded, a configuration
   * reloaded, a cache warmed) between waitAndFork() calls; the next spares are forked from the
   * state as it is then. A no-op before the first waitAndFork() (no spare exists yet).
   */
  static recycleSpares(): void {
    if (inChild) throw new ForkError('NOT_FORKSERVER', 'ForkingClient.recycleSpares() in a forked child');
    if (opened) forkNative().forkingRecycleSpares();
  }

  /**
   * Waits for the next fork request, reaping and reporting ended children meanwhile; forks.
   * Returns the child's pid (in this forkserver's pid namespace) in the forkserver and 0 in the
   * child. Synchronous: the forkserver's event loop does not run while it waits, and nothing
   * should be in flight when it is called (open requests make it refuse the fork: the executor
   * gets the reason).
   *
   * Throws ForkError: NODE_FLAGS, NODE_UNSUPPORTED, NODE_BUILD, IO_URING, BUSY (requests in flight: await ready() first), NOT_IN_SANDBOX, EXECUTOR_GONE (the executor closed
   * the channel: exit), NOT_FORKSERVER (called in a child), PROTOCOL, IO.
   */
  static waitAndFork(): number {
    if (inChild)
      throw new ForkError(
        'NOT_FORKSERVER',
        'ForkingClient.waitAndFork() in a forked child: only the forkserver serves fork requests',
      );
    if (!opened) {
      ForkingClient.check();
      Client.prepare(); // the child's sandboxMeHere() then finds everything loaded
      warmCodec(); // and its first Comms message compiled
      workerThreads();
      const inFlight = activeRequests();
      if (inFlight > 0) {
        throw new ForkError(
          'BUSY',
          `ForkingClient.waitAndFork(): the forkserver has ${inFlight} request(s) in flight (fs, dns, crypto, stream writes...) whose callbacks could never run while it waits, and a child would inherit them half done: call "await ForkingClient.ready()" first`,
        );
      }
      checkNoIoUring();
      prepareChildren();
      let info: ReturnType<ForkBinding['forkingOpen']>;
      try {
        info = forkNative().forkingOpen(defaultCommsFd(), childFixUps);
      } catch (err) {
        throw fromNative(err as NativeErrnoError);
      }
      if (info.workers !== 1) {
        throw new ForkError(
          'NODE_FLAGS',
          `a Node forkserver must run with --v8-pool-size=1 (this node has ${info.workers} V8 platform workers)`,
        );
      }
      opened = true;
      if (spares) forkNative().forkingSetSpares(spares);
    }
    let pid: number;
    try {
      pid = forkNative().forkingWaitAndFork();
    } catch (err) {
      throw fromNative(err as NativeErrnoError);
    }
    if (pid === 0) {
      if (!inChild) childFixUps(); // a binding without the callback
      if (childFixUpError) throw childFixUpError;
      if (forkNative().forkingChildFlags() & FORK_REQUEST_SANDBOXED) becomeSandboxedSpare();
      else traceChild();
    }
    return pid;
  }

  /**
   * Serves fork requests until one makes this process a child, and returns there. When the
   * executor closes the channel the forkserver exits with code 0.
   */
  static enterForkLoop(): void {
    for (;;) {
      let pid: number;
      try {
        pid = ForkingClient.waitAndFork();
      } catch (err) {
        if (err instanceof ForkError && err.code === 'EXECUTOR_GONE') process.exit(0);
        throw err;
      }
      if (pid === 0) return;
    }
  }

  /** True in a child forked by waitAndFork(). */
  static get isForkedChild(): boolean {
    return inChild;
  }

  /** Children of this forkserver still alive. */
  static get children(): number {
    return opened ? forkNative().forkingStats().children : 0;
  }
}

let wtModule: { Worker: unknown } | null = null;
/** node:worker_threads, loaded in the forkserver (a first load costs milliseconds in every child). */
function workerThreads(): { Worker: unknown } {
  return (wtModule ??= createRequire(import.meta.url)('node:worker_threads') as { Worker: unknown });
}

/**
 * Checks that no io_uring ring is or can be open in this process: a ring is one kernel object
 * shared by the forkserver and every child after fork(), and libuv (Node 22 and later) opens
 * rings at start even with UV_USE_IO_URING=0, falling back to epoll only when io_uring_setup
 * fails. Executor.startForkServer() starts the forkserver under a filter that makes it fail
 * (ENOSYS) from its exec. Throws ForkError IO_URING (waitAndFork(), before it takes the channel).
 */
function checkNoIoUring(): void {
  const rings = ioUringFds();
  if (rings.length > 0) {
    throw new ForkError(
      'IO_URING',
      `this forkserver has ${rings.length} io_uring ring(s) open (fd ${rings.join(', ')}), which every forked child would share: start it with Executor.startForkServer(), which denies io_uring (ENOSYS) from its exec so that libuv uses epoll`,
    );
  }
  if (!forkNative().forkingIoUringDenied()) {
    throw new ForkError(
      'IO_URING',
      'io_uring_setup is not denied in this forkserver, so libuv may open an io_uring ring that forked children would share: start it with Executor.startForkServer(), which denies io_uring (ENOSYS) from its exec',
    );
  }
}

/** The fds of this process that are io_uring rings. */
function ioUringFds(): number[] {
  const rings: number[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === 'anon_inode:[io_uring]') rings.push(Number(name));
    } catch {
      // the fd of the readdir itself, or one closed meanwhile
    }
  }
  return rings;
}

/** libuv requests of this thread whose callbacks have not run yet. */
function activeRequests(): number {
  return (process as unknown as { _getActiveRequests?: () => unknown[] })._getActiveRequests?.().length ?? 0;
}

let childFixUpError: unknown = null;
/** Run by the fork binding in every new child, inside waitAndFork(): for a spare, ahead of its
 *  request. Its errors wait for waitAndFork() to return (nothing may unwind through C). */
let childForkedHook: (() => void) | null = null;
function childFixUps(): void {
  try {
    becomeChild();
    // A spare, ahead of its request: its first Comms messages' code paths run once now, so that
    // the pages they write are copied (copy-on-write faults) before the request rather than on it.
    if (forkNative().forkingChildFlags() & FORK_CHILD_SPARE) warmComms();
    childForkedHook?.();
  } catch (err) {
    childFixUpError = err;
  }
}

/** A traced request: what the fork binding saw goes on with sandboxMeHere()'s own stages. */
function traceChild(): void {
  const trace = forkNative().forkingChildTrace();
  if (trace) {
    const c = native();
    c.clientTraceStart(trace);
    c.clientTraceMark(TRACE_CHILD_JS);
  }
}

/**
 * Run once in the forkserver, before its first fork: what every child needs that can be set up
 * ahead, switched on by `inChild`. A child then only writes the few pages its own fix-ups need
 * (each page a child writes is a copy-on-write fault; ESM export syncing alone cost ~3 ms a child).
 */
let childrenPrepared = false;
function prepareChildren(): void {
  if (childrenPrepared) return;
  childrenPrepared = true;
  const n = forkNative();
  // Every exit through _exit() in a child: Node's teardown would join platform threads it lacks.
  const reallyExit = (process as unknown as { reallyExit: (code?: number) => never }).reallyExit;
  (process as unknown as { reallyExit: (code?: number) => never }).reallyExit = (code?: number) =>
    inChild ? n.forkExit(exitCodeOf(code)) : reallyExit.call(process, code);
  const emit = process.emit;
  process.emit = function (this: NodeJS.Process, event: string | symbol, ...args: unknown[]): boolean {
    const r = (emit as (e: string | symbol, ...a: unknown[]) => boolean).call(this, event, ...args);
    if (inChild && event === 'exit') n.forkExit(exitCodeOf(args[0]));
    return r;
  } as typeof process.emit;

  // Worker threads need V8 platform workers at their end (the isolate's teardown waits for
  // them): in a child they would hang, so they fail at once there.
  const wt = workerThreads() as { Worker: new (...args: unknown[]) => object };
  const Original = wt.Worker;
  wt.Worker = class Worker extends Original {
    constructor(...args: unknown[]) {
      if (inChild)
        throw new ForkError(
          'UNSUPPORTED_IN_CHILD',
          'worker_threads.Worker cannot run in a forked child (it has no V8 platform workers to end it): start Workers in a sandbox of their own, or compute in the child itself',
        );
      super(...args);
    }
  };
  syncBuiltinESMExports();
}

/** The exit code of a child's exit: process.exitCode when set, else `fallback`. */
function exitCodeOf(fallback: unknown): number {
  const c = process.exitCode;
  if (typeof c === 'number') return c;
  if (typeof c === 'string' && /^\d+$/.test(c)) return Number(c);
  return typeof fallback === 'number' ? fallback : 0;
}

/** The child's side of the fork: everything before the user's code runs again (prepareChildren() did the rest). */
function becomeChild(): void {
  inChild = true;
  const n = forkNative();
  Object.defineProperty(process, 'pid', {
    value: n.forkGetpid(),
    configurable: true,
    enumerable: true,
    writable: false,
  });
  // The forkserver's SharedBuffer spares are its own: the child closes its copies now.
  dropInheritedSpares();
  // A natural end: 'beforeExit' when the loop goes idle, the exit when it stays idle after it.
  n.forkNaturalExit((state) => {
    if (state === 1) process.emit('beforeExit', exitCodeOf(0));
    else process.exit();
  });

  // What the forkserver left running is not the child's: its timers never fire here, and its
  // other handles no longer keep the child alive.
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  for (const h of handles) {
    // stdio stays (and process.stdin is not touched: its getter would start reading fd 0)
    const fd =
      (h as { fd?: unknown; _handle?: { fd?: unknown } })?.fd ?? (h as { _handle?: { fd?: unknown } })?._handle?.fd;
    if ((h as { _isStdio?: boolean })?._isStdio || fd === 0 || fd === 1 || fd === 2) continue;
    const name = (h as { constructor?: { name?: string } })?.constructor?.name;
    if (name === 'Timeout') clearTimeout(h as NodeJS.Timeout);
    else (h as { unref?: () => void }).unref?.();
  }
}

/** forking_client.h SBX_FORK_REQUEST_SANDBOXED: sandbox first, then wait for the request. */
const FORK_REQUEST_SANDBOXED = 0x20000;
/** forking_client.h SBX_FORK_CHILD_SPARE: a spare's child hook, ahead of its request. */
const FORK_CHILD_SPARE = 0x80000000;

/** One message each way over a socketpair of its own, with SyncComms (what a child's first Comms
 *  exchange runs: the native send and receive, Buffers, the codec). Best effort. */
function warmComms(): void {
  let pair: [number, number] | null = null;
  try {
    pair = native().socketpair(false, false);
    const a = new SyncComms(pair[0]);
    const b = new SyncComms(pair[1]);
    a.sendMessage({ kind: 'warm', n: 1, ok: true, list: [1, 'two'] });
    b.sendMessage(b.recvMessage());
    a.recvMessage();
  } catch {
    // nothing depends on it
  } finally {
    if (pair) for (const fd of pair) closeQuietly(fd);
  }
}

/** forking_client.h SBX_FORK_SETUP_FAILED */
const FORK_SETUP_FAILED = 125;

/**
 * A sandboxed spare: sandboxMeHere() with the executor's child policy now, then wait (filtered)
 * for the request, whose fds the executor sends on the handshake channel. Whatever fails ends the
 * child: the executor never hands out a spare whose handshake did not finish.
 */
function becomeSandboxedSpare(): void {
  const fd = defaultClientFd();
  warmComms(); // before the filter (it makes a socketpair), and ahead of the request
  try {
    Client.sandboxMeHere({ fd });
    native().clientAwaitAssignment(fd);
  } catch {
    forkNative().forkExit(FORK_SETUP_FAILED);
  }
  markSandboxedAhead();
}

/** native/client/src/trace.h SBX_TRACE_CHILD_JS: back in JS, the child's fix-ups done. */
const TRACE_CHILD_JS = 21;

function fromNative(e: NativeErrnoError): ForkError {
  if (!e || typeof e.code !== 'string') return new ForkError('IO', `ForkingClient: ${String(e)}`, { cause: e });
  const code =
    e.code === 'EPIPE' || e.code === 'ECONNRESET'
      ? 'EXECUTOR_GONE'
      : e.code === 'EBADF' || e.code === 'ENOTSOCK'
        ? 'NOT_IN_SANDBOX'
        : e.code === 'EPROTO'
          ? 'PROTOCOL'
          : 'IO';
  return new ForkError(code, `ForkingClient: ${e.message}`, { cause: e, errno: e.errno });
}
