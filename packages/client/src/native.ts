// native.ts: loads sbx_native.node (the C++ glue over syscalls and libsbx_comms) once, and types it.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What sbx_native.node exports. Internal: the public API wraps it. */
export interface NativeBinding {
  socketpair(nonBlocking0?: boolean, nonBlocking1?: boolean): [number, number];
  pipe(): [number, number];
  setNonBlocking(fd: number, on: boolean): void;
  close(fd: number): void;
  recvmsg(fd: number, buf: Buffer, offset: number, length: number): { bytes: number; fds: number[]; ctrunc: boolean };
  sendmsg(fd: number, buf: Buffer, offset: number, length: number, passFds: number | number[]): number;
  Watcher: new (fd: number, cb: (readable: boolean, writable: boolean) => void) => NativeWatcher;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signal: number): boolean;
  pidfdGetfd(pidfd: number, targetFd: number): number;
  spawnForkserver(path: string, commsFd: number): { pid: number; pidfd: number };
  reapPidfd(pidfd: number): number;
  landlockAbi(): number;
  seccompActionAvailable(action: number): boolean;
  commsSend(fd: number, tag: number, data: Buffer): void;
  commsSendFd(fd: number, passFd: number): void;
  commsRecv(fd: number, maxMessageSize: number): { tag: number; data: Buffer; fd: number };
  monitorStart(cb: (event: MonitorEvent) => void): void;
  /** execFd -1: sandbox-me-here mode, no magic exec is expected (every notification is a violation). */
  /** killSignal: SIGKILL (default) or SIGTERM (landlock isolation's subreaper init). learnTable: learning mode (executor learn/table.ts): default-action calls CONTINUE, new facts are reported. */
  monitorWatch(id: number, listenerFd: number, pidfd: number, execFd: number, networkTable?: Buffer, killSignal?: number, learnTable?: Buffer): void;
  monitorUnwatch(id: number): void;
  /** The monitor's network decision for an IP sockaddr (tests: against decideNetwork()). */
  netDecide(table: Buffer, sockaddr: Buffer): { allowed: boolean; rule: number; address: string } | null;
  /** The monitor's learning path on one seccomp_data (tests: against the TS evaluator). */
  learnRun(table: Buffer, seccompData: Buffer): { ret: number; fact: number[] };
  /** libsbx_client: blocks until sandboxed; throws an errno error with .filterInstalled. */
  clientSandboxMeHere(fd: number, flags: number): void;
  clientState(): { sandboxed: boolean; filterInstalled: boolean };
  clientKernelSupport(): number;
  clientThreadCount(): number;
  /** fork_binding.cc: custom-fork mode (sbx/forking_client.h plus Node's fork preparation). */
  forkingOpen(commsFd: number): { workers: number };
  forkingV8Built(): string;
  forkingWaitAndFork(): number;
  forkingStats(): { children: number };
  forkingSetSpares(n: number): void;
  forkExit(code: number): never;
  forkNaturalExit(fn: (state: number) => void): void;
  forkGetpid(): number;
  /** libsbx_client sbx/buffer.h: the ArrayBuffer owns the mapping and the fd (released at GC
   *  unless bufferClose() released them first). expectedSize -1: any. */
  bufferCreate(size: number): { fd: number; size: number; memory: ArrayBuffer };
  bufferFromFd(fd: number, expectedSize: number): { fd: number; size: number; memory: ArrayBuffer };
  bufferClose(memory: ArrayBuffer): void;
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
  type: 'exec' | 'exec_failed' | 'violation' | 'closed' | 'learn' | 'learn_limit';
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
}

/** An error from a native call: Node-style errno facts. */
export interface NativeErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
  lastTag?: number;
}

let binding: NativeBinding | undefined;

/** Where the addon may be, in order. SBX_NATIVE_PATH overrides. */
export function nativeCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = resolve(here, '..', '..', '..');
  const list = [join(root, 'native', 'build', 'Release', 'sbx_native.node')];
  if (process.env.SBX_NATIVE_PATH) list.unshift(process.env.SBX_NATIVE_PATH);
  return list;
}

/** The native binding, loaded on first use. Throws listing every path tried. */
export function native(): NativeBinding {
  if (binding) return binding;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  let lastError: unknown;
  for (const path of nativeCandidates()) {
    tried.push(path);
    if (!existsSync(path)) continue;
    try {
      binding = require(path) as NativeBinding;
      return binding;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(
    `sbx: cannot load the native addon sbx_native.node. Tried:\n  ${tried.join('\n  ')}\n` +
      `Build it with \`pnpm install\` (or \`node native/build.mjs\`).` +
      (lastError ? `\nLast error: ${(lastError as Error).message}` : ''),
    { cause: lastError },
  );
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
