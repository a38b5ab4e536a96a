// client.ts: sandbox-me-here for Node programs (docs/architecture.md, "Sandbox-me-here (client) mode"). The program is started by an
// executor with `enableSandboxBeforeExec: false`: inside its namespaces and mounts, but without
// a filter. It loads its modules, opens its files, and then calls Client.sandboxMeHere(), which
// receives the policy on the handshake socket (fd 1020), installs it on every thread and hands the
// seccomp listener to the executor's monitor. The work is done by libsbx_client (native/client),
// the same code C programs call; this file validates, prepares Node and types the errors.
import { getMappedFd, hasMappedFd } from './named-fds.js';
import { sendLogsToSupervisor } from './logs.js';
import { loadCodec } from './codec.js';
import { ClientError, type ClientErrorCode } from './errors.js';
import { native, type NativeErrnoError } from './native.js';
import { wasSandboxedAhead } from './sandboxed-spare.js';

/** The handshake socket of a sandboxee unless $SBX_CLIENT_FD names another. Mirrors sbx/client.h. */
export const DEFAULT_CLIENT_FD = 1020;
export const CLIENT_PROTOCOL_VERSION = 2;

/** Handshake tags (Comms user tags). Mirrors native/client/include/sbx/client.h: keep them equal. */
export const ClientTag = {
  /** client → executor: u32 version | u32 threads | u32 flags | u32 listener fd (little-endian). */
  Hello: 0x00005310,
  /** executor → client: the compiled policy, struct sock_filter[]. */
  Policy: 0x00005311,
  /** executor → client: empty; the monitor watches the listener. */
  Go: 0x00005312,
  /** executor → client: a UTF-8 reason; the handshake ends. */
  Error: 0x00005313,
  /** client → executor: u32 fd number of the seccomp listener, which the executor takes with pidfd_getfd(). */
  Installed: 0x00005314,
} as const;

/** HELLO's fields. */
export const CLIENT_HELLO_SIZE = 16;
/** HELLO flags: the filter goes on all threads (TSYNC). */
export const CLIENT_HELLO_TSYNC = 0x1;
/** HELLO's "unknown" value for the thread count and the listener fd. */
export const CLIENT_NO_FD = 0xffffffff;

/** sbx_client_kernel_support() bits. */
const KERNEL_LISTENER = 0x1;
const KERNEL_TSYNC_LISTENER = 0x2;
/** sbx_client_sandbox_me_here_fd() flags. */
const ASSUME_NO_TSYNC = 0x1;

export interface SandboxMeHereOptions {
  /** The handshake fd (default: $SBX_CLIENT_FD, else 1020). */
  fd?: number;
  /** For tests: act as on a kernel without TSYNC_ESRCH (a Node process then gets THREADS_WITHOUT_TSYNC). */
  assumeNoTsync?: boolean;
}

/** The handshake fd a sandboxee was given: $SBX_CLIENT_FD, else 1020. */
export function defaultClientFd(): number {
  const env = process.env.SBX_CLIENT_FD;
  if (env === undefined || env === '') return DEFAULT_CLIENT_FD;
  const fd = Number(env);
  if (!/^\d+$/.test(env) || !Number.isSafeInteger(fd) || fd > 0x7fffffff) {
    throw new ClientError('NOT_IN_SANDBOX', `SBX_CLIENT_FD="${env}" is not a file descriptor number`);
  }
  return fd;
}

let prepared = false;

/** The sandboxee side of sandbox-me-here mode. All members are static: a process is sandboxed once. */
export class Client {
  private constructor() {}

  /** The fd the executor mapped under `name` (Sandbox2's Client::GetMappedFD); ClientError NOT_MAPPED otherwise. */
  static getMappedFd(name: string): number {
    return getMappedFd(name);
  }

  /** Whether the executor mapped a fd under `name` (Sandbox2's Client::HasMappedFD). */
  static hasMappedFd(name: string): boolean {
    return hasMappedFd(name);
  }

  /** console.* to the executor's `logs` handler (Sandbox2's SendLogsToSupervisor); see logs.ts. */
  static sendLogsToSupervisor(): () => void {
    return sendLogsToSupervisor();
  }

  /**
   * Sandboxes this process: receives the policy from the executor, sets NO_NEW_PRIVS, installs
   * the filter on every thread (TSYNC, TSYNC_ESRCH with the listener), hands the listener to the
   * executor's monitor and waits for its go-ahead. Synchronous: it returns once every later
   * syscall the policy forbids is reported and kills the sandbox.
   *
   * Load modules, open files and start Workers that need more than the policy allows before the
   * call. What @sbx/client itself sets up lazily is done here (see prepare()).
   *
   * Throws ClientError: NOT_IN_SANDBOX, ALREADY_SANDBOXED, EXECUTOR_GONE,
   * THREADS_WITHOUT_TSYNC, TSYNC_FAILED, UNSUPPORTED_KERNEL, POLICY_REJECTED, PROTOCOL, IO.
   *
   * In a child of a sandboxed spare (custom-fork mode, startForkServer's `childPolicy`) it returns
   * at once: the child was sandboxed with that policy before its request, and the executor hands
   * such a child only to requests whose policy compiles to the same program.
   */
  static sandboxMeHere(options: SandboxMeHereOptions = {}): void {
    // Validate arguments
    if (options === null || typeof options !== 'object')
      throw new TypeError('Client.sandboxMeHere(options): options must be an object');
    for (const k of Object.keys(options)) {
      if (k !== 'fd' && k !== 'assumeNoTsync')
        throw new TypeError(`Client.sandboxMeHere(): unknown option "${k}" (known: fd, assumeNoTsync)`);
    }
    const fd = options.fd ?? defaultClientFd();
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)
      throw new TypeError(`Client.sandboxMeHere(): fd must be a file descriptor number, got ${String(fd)}`);
    if (options.assumeNoTsync !== undefined && typeof options.assumeNoTsync !== 'boolean') {
      throw new TypeError('Client.sandboxMeHere(): assumeNoTsync must be a boolean');
    }

    // A sandboxed spare's child: the executor gave it this request only because the request's
    // policy is the one it was sandboxed with (docs/architecture.md, "Sandboxed spares").
    if (wasSandboxedAhead()) return;

    Client.prepare();

    // Hand over to libsbx_client (it refuses a second call itself, before any system call)
    try {
      native().clientSandboxMeHere(fd, options.assumeNoTsync ? ASSUME_NO_TSYNC : 0);
    } catch (err) {
      throw fromNative(err as NativeErrnoError & { filterInstalled?: boolean });
    }
  }

  /**
   * Sets up now what would otherwise be set up lazily, by opening or loading files, after the
   * filter is on: process.stdout and process.stderr (their first use may open /dev/null, research
   * Q3), the Comms message codec (msgpackr, loaded on the first sendMessage/recvMessage), the
   * native addon, and V8's CPU count (Node 24 opens /sys/devices/system/cpu/online for it the
   * first time a lock is contended). sandboxMeHere() calls it; call it earlier, during initialisation, to keep that
   * work (several milliseconds the first time) out of the sandboxing call. Idempotent.
   */
  static prepare(): void {
    // Per process: a forked child has none of its forkserver's threadpool threads.
    native().clientStartThreadpool();
    if (prepared) return; // the rest a forked child finds done by its forkserver
    // Node 22 and 24 may measure the cycle clock (milliseconds): on a thread, meanwhile.
    const warming = native().clientWarmRuntimeStart();
    try {
      void process.stdout;
      void process.stderr;
      loadCodec({ nativeStrings: false });
    } finally {
      if (warming) native().clientWarmRuntimeJoin();
    }
    native().clientWarmRuntime();
    prepared = true;
  }

  /** True once sandboxMeHere() succeeded in this process (asks no system call). */
  static get isSandboxed(): boolean {
    return native().clientState().sandboxed;
  }

  /** True once a sandboxMeHere() of this process installed the filter, even if it failed after. */
  static get filterInstalled(): boolean {
    return native().clientState().filterInstalled;
  }

  /** What the kernel offers: user notification (Linux 5.0) and TSYNC with a listener (Linux 5.7). */
  static kernelSupport(): { listener: boolean; tsyncWithListener: boolean } {
    const bits = native().clientKernelSupport();
    return { listener: (bits & KERNEL_LISTENER) !== 0, tsyncWithListener: (bits & KERNEL_TSYNC_LISTENER) !== 0 };
  }
}

/** libsbx_client's documented errors as ClientError codes. */
function fromNative(e: NativeErrnoError & { filterInstalled?: boolean }): ClientError {
  if (!e || typeof e.code !== 'string')
    return new ClientError('IO', `Client.sandboxMeHere(): ${String(e)}`, { cause: e });
  const codes: Record<string, ClientErrorCode> = {
    EBADF: 'NOT_IN_SANDBOX',
    ENOTSOCK: 'NOT_IN_SANDBOX',
    EALREADY: 'ALREADY_SANDBOXED',
    EPIPE: 'EXECUTOR_GONE',
    ECONNRESET: 'EXECUTOR_GONE',
    EOPNOTSUPP: 'THREADS_WITHOUT_TSYNC',
    ENOTSUP: 'THREADS_WITHOUT_TSYNC',
    ESRCH: 'TSYNC_FAILED',
    ENOSYS: 'UNSUPPORTED_KERNEL',
    ECANCELED: 'POLICY_REJECTED',
    EINVAL: 'POLICY_REJECTED',
    EPROTO: 'PROTOCOL',
  };
  return new ClientError(codes[e.code] ?? 'IO', `Client.sandboxMeHere(): ${e.message}`, {
    cause: e,
    errno: e.errno,
    filterInstalled: e.filterInstalled ?? false,
  });
}
