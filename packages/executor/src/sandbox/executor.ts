// executor.ts: what to run and with which limits and fds (Sandbox2's Executor). The policy says
// what the sandboxee may do; Sandbox puts the two together.
import { resolveStackTraceOptions, type ResolvedStackTraceOptions, type StackTraceOptions } from './stack-trace.js';
import { type Stats, fstatSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { Ipc } from './ipc.js';
import { Limits, type LimitsOptions } from './limits.js';
import { ForkServerHandle } from '../forkserver/custom.js';
import type { Mount, Policy } from '../policy/policy.js';
import { isExecutableFile, resolveCommandInView } from '../view/resolve.js';
import { ExecutorError } from './executor-error.js';
import { LogChannel, type LogHandler } from './log-channel.js';

export { ExecutorError } from './executor-error.js';

export type StdioOption = 'inherit' | 'ignore' | 'pipe';

/** Options of a custom-fork mode Executor (`new Executor(forkServer, options)`). */
export interface ForkExecutorOptions {
  /** Only the walltime applies: the child inherits the rest from the forkserver. */
  limits?: LimitsOptions | Limits;
  /** Stamp every stage of the request, in the executor, the forkserver and the child (Sandbox.forkTrace). */
  trace?: boolean;
}

export interface ExecutorOptions {
  /** The sandboxee's whole environment (default: PATH only). Nothing is inherited implicitly. */
  env?: Record<string, string>;
  /** Working directory inside the sandbox (default "/"). */
  cwd?: string;
  /** Install the policy before exec (default true). false: the program calls sandboxMeHere() itself. */
  enableSandboxBeforeExec?: boolean;
  limits?: LimitsOptions | Limits;
  /** stdin, stdout, stderr: the executor's own ('inherit', default), /dev/null ('ignore'), or a pipe ('pipe'). */
  stdio?: StdioOption | [StdioOption, StdioOption, StdioOption];
  /** Hostname inside (default "sandbox"; namespaces mode only: landlock isolation has the host's). */
  hostname?: string;
  /**
   * A fresh cgroup v2 per sandbox, killed as a whole at the end: 'auto' (default) where this
   * process may create one, 'required' (SETUP_ERROR where it cannot), 'off'.
   */
  cgroup?: 'auto' | 'required' | 'off';
  /**
   * How violations are caught: 'unotify' (default) through the monitor, which names the syscall;
   * 'kill': KILL_PROCESS, the Result only knows it was SIGSYS. 'unotify' falls back to 'kill' on
   * kernels without seccomp user notification.
   */
  monitor?: 'unotify' | 'kill';
  /**
   * Landlock as a second wall under the mount tree: 'auto' (default) applies the policy's
   * filesystem rules and the signal / abstract-socket scopes where the kernel has Landlock
   * (Sandbox.landlockAbi tells which ABI ran); 'off' never.
   */
  landlock?: 'auto' | 'off';
  /**
   * How the sandbox is walled off: 'namespaces' (default): user, mount, pid, net, ipc, uts and
   * cgroup namespaces, with Landlock under them. 'landlock': no namespace at all, for hosts that
   * forbid them (container seccomp profiles, restricted user namespaces): Landlock filesystem
   * rules and scopes (ABI 6+), the same seccomp policy and monitor, rlimits, walltime and a
   * subreaper init that kills the whole tree; as an unprivileged user when the executor is root.
   * Never chosen implicitly: where namespaces fail, the Result says so and names this option.
   * docs/security.md lists what each mode guarantees.
   */
  isolation?: Isolation;
  /**
   * The host uid/gid the sandboxee runs as when this process is root (never 0). Namespaces mode
   * maps the sandbox's user to it; landlock mode switches to it. By default a root executor leases
   * a uid/gid of its own for each sandbox from a range (setSandboxIdRange; nobody 65534/65534
   * when the range is 'off'); giving sandboxUser makes every sandbox of this Executor share it.
   * An unprivileged executor's sandboxee keeps the executor's own ids.
   */
  sandboxUser?: { uid: number; gid: number };
  /**
   * Whether this sandbox may come from the spawn pool (setSpawnPool; default true). false: always
   * started on demand, and its layout does not become the pool's template (for an occasional
   * layout that must not recycle the slots a service keeps for its usual one).
   */
  spawnPool?: boolean;
  /**
   * Record a timeline of this sandbox: µs timestamps of every stage from runAsync() to the Result,
   * the forkserver's and the child's setup steps included (Sandbox.timeline; `sbx run --trace`).
   * Default false: then no clock is read for it anywhere.
   */
  trace?: boolean;
  /**
   * Look the program up in this file view (a Policy, or anything with its `mounts`) instead of on
   * the host: a path as the sandbox sees it (`/app/bin/tool` under addDirectoryAt('/opt/app',
   * '/app')), a bare name through `env.PATH` inside the view, symlinks followed inside the view.
   * A #! script found there runs as the kernel would run it inside: `path` becomes the host file
   * of its interpreter (found in the view) and `argv` [interpreter, its #! argument, the script's
   * path inside, ...argv.slice(1)].
   * Default: the host path (Sandbox2's semantics: a bare name searches this process's PATH).
   */
  resolveInView?: { readonly mounts: readonly Mount[] };
  /**
   * Receives the sandboxee's log records (Sandbox2's LogServer): a Node sandboxee that called
   * sendLogsToSupervisor() (@sbx/client) sends its console output here, a C one what it passes
   * to sbx_client_log(). One Comms channel, mapped as the named fd "sbx.log"; nothing else of the
   * sandboxee changes. `executor.logsDrained` resolves once every record was delivered.
   */
  logs?: LogHandler;
  /**
   * Symbolized native stack traces in the Result (Result.stackTrace): of the violating thread
   * on a violation, of the target on timeout and on Sandbox.kill(). Default true (all three);
   * false turns them off; an object picks (StackTraceOptions). Namespaces isolation only.
   */
  stackTraces?: boolean | StackTraceOptions;
}

export type Isolation = 'namespaces' | 'landlock';
/** nobody/nogroup: the default sandboxee ids of a root executor. */
export const NOBODY_ID = 65534;

export const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

export interface ForkServerOptions extends Omit<ExecutorOptions, 'enableSandboxBeforeExec'> {
  /** The forkserver's sandbox: its mounts (the filesystem every child sees) and network. Its
   *  syscall rules do not apply to the forkserver (it runs under an io_uring-only denial; each
   *  child installs the policy's filter itself). */
  policy: Policy;
  /** How long one fork request may take before the forkserver counts as hung (default 10 s). */
  forkTimeoutMs?: number;
  /**
   * The policy of the children, when it is known before requests come: children are then forked
   * and sandboxed ahead (sandboxMeHere() done, filter on every thread, listener with the monitor),
   * `sandboxedSpares` at a time. A request whose policy compiles to the same program takes one
   * and costs a message; any other policy gets an ordinary fork. The policy must allow recvmsg,
   * fcntl(F_DUPFD, F_DUPFD_CLOEXEC, F_SETFD) and close (allowNodeRuntime() does): the child puts its
   * request's fds in place under its filter. The forkserver's program needs no change: a child of
   * such a spare finds its later Client.sandboxMeHere() done (a no-op).
   */
  childPolicy?: Policy;
  /** With `childPolicy`: children kept sandboxed ahead (default 2, at most 16). */
  sandboxedSpares?: number;
}

type StartForkServer = (
  path: string,
  argv: readonly string[] | undefined,
  options: ForkServerOptions,
) => Promise<ForkServerHandle>;
let startForkServerImpl: StartForkServer | null = null;
/** @internal start-fork-server.ts hands its startForkServer() to the deprecated static alias. */
export function provideStartForkServer(fn: StartForkServer): void {
  startForkServerImpl = fn;
}

export class Executor {
  /** Absolute host path of the binary (resolved through PATH when given a bare name). */
  readonly path: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly enableSandboxBeforeExec: boolean;
  readonly limits: Limits;
  readonly ipc = new Ipc();
  readonly stdio: readonly [StdioOption, StdioOption, StdioOption];
  readonly hostname: string;
  readonly cgroup: 'auto' | 'required' | 'off';
  readonly monitor: 'unotify' | 'kill';
  readonly landlock: 'auto' | 'off';
  readonly isolation: Isolation;
  readonly sandboxUser: { readonly uid: number; readonly gid: number };
  readonly stackTraces: ResolvedStackTraceOptions = resolveStackTraceOptions(undefined);
  /** @internal sandboxUser was given: a root executor then uses it instead of leasing ids (sandbox-ids.ts). */
  readonly sandboxUserGiven: boolean = false;
  readonly spawnPool: boolean = true;
  /** See ExecutorOptions.trace. */
  readonly trace: boolean = false;
  /** @internal set when a Sandbox starts it: an executor runs once. */
  started = false;
  /** Custom-fork mode: the forkserver that forks this sandboxee (null: exec mode). */
  readonly forkServer: ForkServerHandle | null = null;
  /** Custom-fork mode: trace the request (Sandbox.forkTrace). */
  readonly forkTrace: boolean = false;
  readonly #logChannel: LogChannel | null = null;

  /**
   * With the `logs` option: resolves once the sandboxee's side of the log channel closed (every
   * record delivered; await it after run()). Without: resolved.
   */
  get logsDrained(): Promise<void> {
    return this.#logChannel?.drained ?? Promise.resolve();
  }

  /**
   * Custom-fork mode: starts `path` as a forkserver in a sandbox of its own.
   * @deprecated use the free function `startForkServer()` (same arguments); this alias stays for
   * existing callers.
   */
  static startForkServer(
    path: string,
    argv: readonly string[] | undefined,
    options: ForkServerOptions,
  ): Promise<ForkServerHandle> {
    if (!startForkServerImpl)
      return Promise.reject(
        new ExecutorError('NOT_LOADED', 'sbx: startForkServer is not loaded (import @sbx/executor)'),
      );
    return startForkServerImpl(path, argv, options);
  }

  /**
   * Exec mode from an open fd of the program (Sandbox2's Executor(exec_fd, ...)): a file that has
   * no path (a memfd with a program written into it, a file since deleted or replaced) or that
   * was opened before the executor dropped access to its path. The fd stays the caller's and must
   * stay open until the sandbox has started (`await sandbox.runAsync()`); the forkserver opens the
   * same file through /proc/<this pid>/fd/<fd>. argv is required (argv[0] names the program).
   */
  static fromFd(fd: number, argv: readonly string[], options: ExecutorOptions = {}): Executor {
    if (!Number.isInteger(fd) || fd < 0)
      throw new TypeError(`Executor.fromFd(fd, argv): fd must be a non-negative integer, got ${String(fd)}`);
    if (!Array.isArray(argv) || argv.length === 0)
      throw new TypeError('Executor.fromFd(fd, argv): argv must be a non-empty array (argv[0] names the program)');
    if (options !== null && typeof options === 'object' && options.resolveInView !== undefined)
      throw new TypeError('Executor.fromFd: resolveInView does not apply to a program given by fd');
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch (e) {
      throw new ExecutorError(
        'BINARY_NOT_FOUND',
        `Executor.fromFd: fd ${fd} is not open (${(e as NodeJS.ErrnoException).code})`,
      );
    }
    if (!st.isFile())
      throw new ExecutorError('BINARY_NOT_EXECUTABLE', `Executor.fromFd: fd ${fd} is not a regular file`);
    if ((st.mode & 0o111) === 0)
      throw new ExecutorError(
        'BINARY_NOT_EXECUTABLE',
        `Executor.fromFd: fd ${fd} is not executable (mode ${(st.mode & 0o777).toString(8)})`,
      );
    return new Executor(`/proc/${process.pid}/fd/${fd}`, argv, options);
  }

  /**
   * Exec mode: `new Executor(path, argv, options)`. Custom-fork mode: `new Executor(forkServer,
   * { limits, trace })`; `trace: true` stamps every stage of the request (Sandbox.forkTrace).
   */
  constructor(forkServer: ForkServerHandle, options?: ForkExecutorOptions);
  constructor(path: string, argv?: readonly string[], options?: ExecutorOptions);
  constructor(
    pathOrServer: string | ForkServerHandle,
    argvOrOptions?: readonly string[] | ForkExecutorOptions,
    execOptions: ExecutorOptions = {},
  ) {
    if (pathOrServer instanceof ForkServerHandle) {
      // Custom-fork mode: the child inherits the forkserver's program, environment, namespaces and
      // rlimits; it always sandboxes itself (sandboxMeHere), and the walltime is the executor's.
      const options = (argvOrOptions ?? {}) as ForkExecutorOptions;
      if (options === null || typeof options !== 'object' || Array.isArray(options))
        throw new TypeError('Executor(forkServer, options): options must be an object');
      for (const k of Object.keys(options)) {
        if (k !== 'limits' && k !== 'trace')
          throw new TypeError(
            `Executor(forkServer): option "${k}" does not apply in custom-fork mode (the child inherits it from the forkserver); known: limits (walltime), trace`,
          );
      }
      if (options.trace !== undefined && typeof options.trace !== 'boolean')
        throw new TypeError(`Executor(forkServer): trace must be a boolean, got ${typeof options.trace}`);
      this.forkTrace = options.trace ?? false;
      this.forkServer = pathOrServer;
      this.path = '(forked)';
      this.argv = Object.freeze([]);
      this.env = Object.freeze({});
      this.cwd = '/';
      this.enableSandboxBeforeExec = false;
      this.limits = options.limits instanceof Limits ? options.limits : new Limits(options.limits);
      this.stdio = ['inherit', 'inherit', 'inherit'];
      this.hostname = 'sandbox';
      this.cgroup = 'off';
      this.monitor = 'unotify';
      this.landlock = 'off';
      // The forkserver's sandbox (startForkServer) is always a namespaces one.
      this.isolation = 'namespaces';
      this.sandboxUser = Object.freeze({ uid: NOBODY_ID, gid: NOBODY_ID });
      return;
    }
    const path = pathOrServer;
    const argv = argvOrOptions as readonly string[] | undefined;
    const options = execOptions;
    // Validate arguments
    if (typeof path !== 'string' || path === '') throw new TypeError('Executor: path must be a non-empty string');
    if (argv !== undefined && (!Array.isArray(argv) || argv.some((a) => typeof a !== 'string'))) {
      throw new TypeError('Executor: argv must be an array of strings');
    }
    if (options === null || typeof options !== 'object') throw new TypeError('Executor: options must be an object');
    const known = new Set([
      'stackTraces',
      'env',
      'cwd',
      'enableSandboxBeforeExec',
      'limits',
      'stdio',
      'hostname',
      'cgroup',
      'monitor',
      'landlock',
      'isolation',
      'sandboxUser',
      'spawnPool',
      'resolveInView',
      'logs',
      'trace',
    ]);
    for (const k of Object.keys(options))
      if (!known.has(k)) throw new TypeError(`Executor: unknown option "${k}" (known: ${[...known].join(', ')})`);

    // Interpret
    this.env = Object.freeze(checkEnv(options.env ?? { PATH: DEFAULT_PATH }));
    const cwd = options.cwd ?? '/';
    if (typeof cwd !== 'string' || !isAbsolute(cwd))
      throw new TypeError(`Executor: cwd must be an absolute path inside the sandbox, got ${JSON.stringify(cwd)}`);
    this.cwd = cwd;
    const view = options.resolveInView;
    if (view !== undefined && (view === null || typeof view !== 'object' || !Array.isArray(view.mounts)))
      throw new TypeError('Executor: resolveInView must be a Policy (or an object with its mounts)');
    if (view) {
      const r = inView(path, argv ?? [path], view.mounts, this.env.PATH ?? DEFAULT_PATH, cwd);
      this.path = r.path;
      this.argv = Object.freeze(r.argv);
    } else {
      this.path = resolveBinary(path);
      this.argv = Object.freeze([...(argv ?? [path])]);
    }
    this.enableSandboxBeforeExec = options.enableSandboxBeforeExec ?? true;
    this.stackTraces = resolveStackTraceOptions(options.stackTraces);
    this.limits = options.limits instanceof Limits ? options.limits : new Limits(options.limits);
    this.stdio = normalizeStdio(options.stdio ?? 'inherit');
    const hostname = options.hostname ?? 'sandbox';
    if (typeof hostname !== 'string' || hostname.length === 0 || hostname.length > 64 || hostname.includes('\0')) {
      throw new TypeError('Executor: hostname must be 1..64 characters');
    }
    this.hostname = hostname;
    const cgroup = options.cgroup ?? 'auto';
    if (cgroup !== 'auto' && cgroup !== 'required' && cgroup !== 'off')
      throw new TypeError(`Executor: cgroup must be 'auto', 'required' or 'off', got ${JSON.stringify(cgroup)}`);
    this.cgroup = cgroup;
    if (cgroup === 'off' && (this.limits.memory !== null || this.limits.pids !== null)) {
      throw new TypeError(
        `Executor: limits.memory and limits.pids are cgroup limits: they cannot be combined with cgroup: 'off'`,
      );
    }
    const monitorMode = options.monitor ?? 'unotify';
    if (monitorMode !== 'unotify' && monitorMode !== 'kill')
      throw new TypeError(`Executor: monitor must be 'unotify' or 'kill', got ${JSON.stringify(monitorMode)}`);
    this.monitor = monitorMode;
    const landlock = options.landlock ?? 'auto';
    if (landlock !== 'auto' && landlock !== 'off')
      throw new TypeError(`Executor: landlock must be 'auto' or 'off', got ${JSON.stringify(landlock)}`);
    this.landlock = landlock;
    const isolation = options.isolation ?? 'namespaces';
    if (isolation !== 'namespaces' && isolation !== 'landlock')
      throw new TypeError(`Executor: isolation must be 'namespaces' or 'landlock', got ${JSON.stringify(isolation)}`);
    if (isolation === 'landlock' && landlock === 'off')
      throw new TypeError(`Executor: isolation 'landlock' needs Landlock: it cannot be combined with landlock: 'off'`);
    this.isolation = isolation;
    this.sandboxUser = Object.freeze(checkSandboxUser(options.sandboxUser ?? { uid: NOBODY_ID, gid: NOBODY_ID }));
    this.sandboxUserGiven = options.sandboxUser !== undefined;
    const spawnPool = options.spawnPool ?? true;
    if (typeof spawnPool !== 'boolean')
      throw new TypeError(`Executor: spawnPool must be a boolean, got ${JSON.stringify(spawnPool)}`);
    this.spawnPool = spawnPool;
    if (options.logs !== undefined) {
      if (typeof options.logs !== 'function')
        throw new TypeError(`Executor: logs must be a function (record) => void, got ${typeof options.logs}`);
      this.#logChannel = new LogChannel(this.ipc, options.logs);
    }
    const trace = options.trace ?? false;
    if (typeof trace !== 'boolean')
      throw new TypeError(`Executor: trace must be a boolean, got ${JSON.stringify(trace)}`);
    this.trace = trace;
  }
}

function inView(
  path: string,
  argv: readonly string[],
  mounts: readonly Mount[],
  pathEnv: string,
  cwd: string,
): { path: string; argv: string[] } {
  try {
    return resolveCommandInView(path, argv, mounts, pathEnv, cwd);
  } catch (err) {
    if (err instanceof TypeError) throw err;
    throw new ExecutorError('BINARY_NOT_FOUND', `Executor: ${(err as Error).message}`);
  }
}

/** A bare name is looked up in the executor's PATH, as execvp would; the result must be an executable file. */
export function resolveBinary(path: string): string {
  let full: string | undefined;
  if (path.includes('/')) full = resolve(path);
  else {
    for (const dir of (process.env.PATH ?? DEFAULT_PATH).split(delimiter)) {
      if (!dir) continue;
      const candidate = join(dir, path);
      if (isExecutableFile(candidate)) {
        full = candidate;
        break;
      }
    }
    if (!full)
      throw new ExecutorError(
        'BINARY_NOT_FOUND',
        `Executor: "${path}" was not found in PATH (${process.env.PATH ?? DEFAULT_PATH})`,
      );
  }
  let st: Stats;
  try {
    st = statSync(full);
  } catch {
    throw new ExecutorError('BINARY_NOT_FOUND', `Executor: the binary ${full} does not exist`);
  }
  if (!st.isFile()) throw new ExecutorError('BINARY_NOT_EXECUTABLE', `Executor: ${full} is not a regular file`);
  if (!isExecutableFile(full)) throw new ExecutorError('BINARY_NOT_EXECUTABLE', `Executor: ${full} is not executable`);
  return full;
}

function checkSandboxUser(u: { uid: number; gid: number }): { uid: number; gid: number } {
  const id = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 0xffffffff;
  if (u === null || typeof u !== 'object' || !id(u.uid) || !id(u.gid)) {
    throw new TypeError(
      `Executor: sandboxUser must be { uid, gid } with ids from 1 to 4294967294 (never root), got ${JSON.stringify(u)}`,
    );
  }
  return { uid: u.uid, gid: u.gid };
}

function checkEnv(env: Record<string, string>): Record<string, string> {
  if (env === null || typeof env !== 'object') throw new TypeError('Executor: env must be an object of strings');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (typeof v !== 'string') throw new TypeError(`Executor: env.${k} must be a string`);
    if (k === '' || k.includes('=') || k.includes('\0') || v.includes('\0'))
      throw new TypeError(`Executor: bad environment variable ${JSON.stringify(k)}`);
    out[k] = v;
  }
  return out;
}

function normalizeStdio(s: StdioOption | StdioOption[]): [StdioOption, StdioOption, StdioOption] {
  const ok = (x: unknown): x is StdioOption => x === 'inherit' || x === 'ignore' || x === 'pipe';
  if (ok(s)) return [s, s, s];
  if (Array.isArray(s) && s.length === 3 && s.every(ok)) return [s[0]!, s[1]!, s[2]!];
  throw new TypeError(`Executor: stdio must be 'inherit', 'ignore', 'pipe' or an array of three of them`);
}
