// native.ts: loads sbx_native.node (the C++ glue over syscalls and libsbx_comms) once, and types it.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ForkError, NativeLoadError } from './errors.js';
import { availableForkAbis, forkAddonPath, packagedAddonPath } from './native-location.js';

/** What sbx_native.node exports. Internal: the public API wraps it. */
export interface NativeBinding {
  socketpair(nonBlocking0?: boolean, nonBlocking1?: boolean): [number, number];
  pipe(): [number, number];
  setNonBlocking(fd: number, on: boolean): void;
  close(fd: number): void;
  /** flock(fd, LOCK_EX | LOCK_NB): false when another open file holds the lock. */
  flockExclusive(fd: number): boolean;
  recvmsg(fd: number, buf: Buffer, offset: number, length: number): { bytes: number; fds: number[]; ctrunc: boolean };
  sendmsg(fd: number, buf: Buffer, offset: number, length: number, passFds: number | number[]): number;
  Watcher: new (fd: number, cb: (readable: boolean, writable: boolean) => void) => NativeWatcher;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signal: number): boolean;
  pidfdGetfd(pidfd: number, targetFd: number): number;
  /** pidfdGetfd without the exception: the fd, or -errno. */
  pidfdGetfdOrErrno(pidfd: number, targetFd: number): number;
  spawnForkserver(path: string, commsFd: number): { pid: number; pidfd: number };
  reapPidfd(pidfd: number): number;
  landlockAbi(): number;
  /** The termios bytes and line discipline of a terminal (throws when fd is none). */
  ttyState(fd: number): { termios: Buffer; ldisc: number };
  /** Puts a terminal's line discipline and modes back: 0 or an errno. */
  ttyRestore(fd: number, termios: Buffer, ldisc: number): number;
  /** Puts /dev/null in place of fd: 0 or an errno. */
  ttyDetach(fd: number): number;
  /** Removes the host IPC objects `uid` owns or created: counts per kind (mqueue: -errno when they
   *  could not be listed). */
  ipcRemoveOwnedBy(uid: number): { shm: number; msg: number; sem: number; mqueue: number };
  seccompActionAvailable(action: number): boolean;
  /** A connected non-blocking unix stream socket (EAGAIN when the listener's backlog is full). */
  unixConnect(name: string, abstract: boolean): number;
  /** A listening non-blocking unix stream socket. */
  unixListen(name: string, abstract: boolean, backlog: number): number;
  /** A pending connection's fd, or -1 when there is none. */
  unixAccept(fd: number): number;
  /** SO_PEERCRED: who the peer was when it connected (or made the socketpair). */
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  commsSend(fd: number, tag: number, data: Buffer): void;
  commsSendFd(fd: number, passFd: number): void;
  /** data is null when the payload went into `into` (its first `length` bytes). */
  commsRecv(
    fd: number,
    maxMessageSize: number,
    into?: Uint8Array,
  ): { tag: number; data: Buffer | null; length: number; fd: number };
  monitorStart(cb: (event: MonitorEvent) => void): void;
  /** execFd -1: sandbox-me-here mode, no magic exec is expected (every notification is a violation). */
  /** killSignal: SIGKILL (default) or SIGTERM (landlock isolation's subreaper init). learnTable: learning mode (executor learn/table.ts): default-action calls CONTINUE, new facts are reported. */
  monitorWatch(
    id: number,
    listenerFd: number,
    pidfd: number,
    execFd: number,
    networkTable?: Buffer,
    killSignal?: number,
    learnTable?: Buffer,
    hookTable?: Buffer,
  ): void;
  monitorUnwatch(id: number): void;
  /** Answers a 'hook' report: action 0 CONTINUE, 1 fail with -errno, 2 kill the sandbox. False: the call no longer waits. */
  monitorHookReply(id: number, notif: bigint, action: 0 | 1 | 2, errno: number): boolean;
  /** The monitor's network decision for an IP sockaddr (tests: against decideNetwork()). */
  netDecide(table: Buffer, sockaddr: Buffer): { allowed: boolean; rule: number; address: string } | null;
  /** The monitor's learning path on one seccomp_data (tests: against the TS evaluator). */
  learnRun(table: Buffer, seccompData: Buffer): { ret: number; fact: number[] };
  /** libsbx_client: blocks until sandboxed; throws an errno error with .filterInstalled. */
  clientSandboxMeHere(fd: number, flags: number): void;
  clientState(): { sandboxed: boolean; filterInstalled: boolean };
  clientAwaitAssignment(fd: number): void;
  /** Makes the runtime look up now what it would open a file for after the filter (Node 24: the CPU count). */
  clientWarmRuntime(): boolean;
  /** Starts libuv's threadpool now (all its threads), once per process (a forked child: again). False: already started here. */
  clientStartThreadpool(): boolean;
  /** Starts clientWarmRuntime()'s look-ups on a thread (false: none on this node, or already under way). */
  clientWarmRuntimeStart(): boolean;
  /** Waits for the thread clientWarmRuntimeStart() started (no-op without one). */
  clientWarmRuntimeJoin(): void;
  clientKernelSupport(): number;
  clientThreadCount(): number;
  /** This process is the child of a traced fork request: the fork binding's stages so far. */
  clientTraceStart(stages: Buffer): void;
  /** Records a stage of a traced request now (no-op otherwise). */
  clientTraceMark(stage: number): void;
  /** libsbx_client sbx/buffer.h: the ArrayBuffer owns the mapping and the fd (released at GC
   *  unless bufferClose() released them first). expectedSize -1: any. */
  bufferCreate(size: number): { fd: number; size: number; memory: ArrayBuffer };
  bufferPopulate(memory: ArrayBuffer): boolean;
  bufferFromFd(fd: number, expectedSize: number): { fd: number; size: number; memory: ArrayBuffer };
  bufferClose(memory: ArrayBuffer): void;
}

/** What sbx_fork-node-v<ABI>.node (fork_binding.cc, custom-fork mode) exports. Internal. */
export interface ForkBinding {
  /** `onChild` runs in every new child after the runtime repair (a spare: before its request). */
  forkingOpen(commsFd: number, onChild?: () => void): { workers: number };
  forkingV8Built(): string;
  forkingWaitAndFork(): number;
  forkingStats(): { children: number };
  forkingSetSpares(n: number): void;
  forkingRecycleSpares(): void;
  /** io_uring_setup fails here (a filter, or no io_uring): libuv cannot open a ring. */
  forkingIoUringDenied(): boolean;
  forkExit(code: number): never;
  forkNaturalExit(fn: (state: number) => void): void;
  forkGetpid(): number;
  /** In the child of a traced request: its stages so far (u32 count | u32 0 | records), else null. */
  forkingChildTrace(): Buffer | null;
  forkingChildFlags(): number;
  /** The NODE_MODULE_VERSION it was built for. */
  nodeModuleVersion: number;
}

export interface NativeWatcher {
  start(readable: boolean, writable: boolean): void;
  stop(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface MonitorEvent {
  /** learn: a new (nr, args) fact of a learning run (args not recorded are 0); learn_limit: too many facts, the sandbox was killed. */
  /** hook: a call a notifySyscall() rule sent to the handler, parked until monitorHookReply(); hook_timeout: no answer in time, the sandbox was killed. */
  type: 'exec' | 'exec_failed' | 'violation' | 'closed' | 'learn' | 'learn_limit' | 'hook' | 'hook_timeout';
  id: number;
  pid: number;
  nr: number;
  arch: number;
  ip: bigint;
  args: bigint[];
  errno: number;
  /** A network violation: the denied destination ("10.0.0.1:443", "[::1]:80", "unix:/path"). */
  address?: string;
  /** Index of the deciding network rule; -1: no allow rule matched; -2: netReason says why. */
  netRule?: number;
  netReason?: string;
  /** hook, hook_timeout: the notification id monitorHookReply() answers. */
  notif?: bigint;
  /** exec: when the monitor let the exec through (CLOCK_MONOTONIC ns, the trace's clock). */
  atNs?: bigint;
}

/** An error from a native call: Node-style errno facts. */
export interface NativeErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
  lastTag?: number;
}

let binding: NativeBinding | undefined;

/** The addon to load: SBX_NATIVE_PATH when set, else this package's own (native-location.ts). */
export function nativeAddonPath(): string {
  return process.env.SBX_NATIVE_PATH || packagedAddonPath();
}

/** The native binding, loaded on first use. Throws naming the path and how to get the addon. */
export function native(): NativeBinding {
  if (binding) return binding;
  let path: string | undefined;
  try {
    path = nativeAddonPath();
    binding = createRequire(import.meta.url)(path) as NativeBinding;
    return binding;
  } catch (err) {
    throw new NativeLoadError(
      `sbx: cannot load the native addon sbx_native.node${path ? ` from ${path}` : ''}: ${(err as Error).message}\n` +
        'npm installs ship a prebuilt addon for linux-x64 (glibc 2.28 or later) that needs no install script; ' +
        'elsewhere it must be built from source (needs cmake, a C and a C++17 compiler), which package managers ' +
        `that do not run dependencies' install scripts (npm 11, pnpm 10) leave undone. Build it with:\n  ${buildCommand()}\n` +
        'In the sbx repository: `pnpm install` (or `node native/build.mjs`).',
      { cause: err },
    );
  }
}

/** The exact command that builds this package's native parts from source (its install script). */
function buildCommand(): string {
  const script = fileURLToPath(new URL('../scripts/install.mjs', import.meta.url));
  return `npm_config_build_from_source=true node ${script}`;
}

let forkBinding: ForkBinding | undefined;

/** Node lines by NODE_MODULE_VERSION (for messages). */
const NODE_LINE_OF_ABI: Record<string, string> = { '115': 'Node 20', '127': 'Node 22', '137': 'Node 24' };

/**
 * The custom-fork binding for this node's ABI (process.versions.modules), loaded on first use.
 * Throws ForkError NODE_UNSUPPORTED naming this Node, the bindings there are, and what to do.
 */
export function forkNative(): ForkBinding {
  if (forkBinding) return forkBinding;
  const abi = process.versions.modules;
  const path = forkAddonPath(abi);
  if (!existsSync(path)) {
    const have = availableForkAbis(path).map((a) => `${NODE_LINE_OF_ABI[a] ?? 'a Node'} (NODE_MODULE_VERSION ${a})`);
    throw new ForkError(
      'NODE_UNSUPPORTED',
      `custom-fork mode has no fork binding for Node ${process.version} (NODE_MODULE_VERSION ${abi}): ${basename(path)} is not in ${dirname(path)}` +
        ` (there are bindings for ${have.length ? have.join(', ') : 'no Node'}). Run the forkserver with a supported Node line (20, 22 or 24),` +
        " or build the binding for this Node from source: `npm rebuild @sbx/client --build-from-source` (needs cmake, a C++ compiler and this Node's headers, include/node).",
    );
  }
  try {
    forkBinding = createRequire(import.meta.url)(path) as ForkBinding;
  } catch (err) {
    throw new ForkError(
      'NODE_UNSUPPORTED',
      `custom-fork mode: the fork binding ${path} for Node ${process.version} does not load: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return forkBinding;
}

/** Closes an fd this process owns; a negative fd or one already closed is not an error. */
export function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    native().close(fd);
  } catch {
    // already closed: nothing left to release
  }
}
