// sandbox.ts: runs an Executor under a policy (Sandbox2's Sandbox2 class). run() resolves to a
// Result value; it rejects only when the SDK itself fails (bad arguments, no forkserver).
import { openSync, readlinkSync, createReadStream, createWriteStream } from 'node:fs';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { Comms, CommsError, SbxError, Tag } from '@sbx/client';
import { closeQuietly, native, type MonitorEvent } from '@sbx/client/internal';
import { Executor, ExecutorError } from './executor.js';
import { type Forked, ForkServerHandleError, pidOfPidfd } from '../forkserver/custom.js';
import { EXEC_FD_TARGET, FsTag, Op, OpList, SeccompFlag } from '../forkserver/protocol.js';
import { ForkServer, ForkServerError, type Exited } from '../forkserver/global.js';
import * as monitor from './monitor.js';
import { SandboxCgroup } from './cgroup.js';
import { INFINITY } from './limits.js';
import { cgroupUsage, treeUsage } from './accounting.js';
import { applyCgroupLimits, missingForLimits, oomKilled } from './cgroup-limits.js';
import { MountError } from '../isolation/mounts.js';
import { addIsolationOps, IsolationError, namespacesUnavailable, type IsolationSetup } from '../isolation/isolation.js';
import { Result, signalName, type Status, type Violation, type Arch } from './result.js';
import { compileFilter, filesystemOf, networkDenialReason, networkTable } from './sandbox-policy.js';
import { Policy } from '../policy/policy.js';
import {
  CLIENT_FD,
  prepareClientHandshake,
  serveClientHandshake,
  type PreparedClientHandshake,
} from './client-handshake.js';
import { syscallName } from '../policy/syscalls.js';
import { nameExhaustedCounter } from './counters.js';
import { SandboxIdsError } from './sandbox-ids.js';
import { ioUringDenialProgram } from '../policy/io-uring-filter.js';

const AUDIT_ARCH = { x86_64: 0xc000003e, i386: 0x40000003, aarch64: 0xc00000b7 } as const;
const X32_BIT = 0x40000000;
const SIGSYS = 31;
const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
let userNotif: boolean | undefined;
/** Whether this kernel has seccomp user notification (asked once). */
function userNotifAvailable(): boolean {
  return (userNotif ??= native().seccompActionAvailable(SECCOMP_RET_USER_NOTIF));
}
/** How long a finished sandbox waits for the monitor's last reports. */
const MONITOR_DRAIN_MS = 2000;
/** A subreaper init (landlock isolation) that has not ended its tree this long after SIGTERM is
 *  SIGKILLed, with its cgroup (the forkserver then kills its orphans): the forkserver's own grace
 *  (SBX_KILL_GRACE_MS, native/forkserver/children.h) plus a margin. */
const TREE_KILL_GRACE_MS = 1200;

/** A sandbox that cannot be set up before anything is started (it becomes a SETUP_ERROR Result). */
export class SandboxSetupError extends SbxError {
  declare readonly code: 'SETUP';
  constructor(message: string) {
    super('SETUP', message);
  }
}

/**
 * @internal Learning mode (learn/learn.ts): the monitor answers the policy's default-action
 * notifications with CONTINUE and reports each new fact. Set before runAsync().
 */
export interface SandboxLearning {
  /** The monitor's learn table for the filter this sandbox installs (learn/table.ts). */
  table(filter: Buffer): Buffer;
  /** A 'learn' or 'learn_limit' report. */
  onEvent(e: MonitorEvent): void;
}

export class Sandbox {
  readonly executor: Executor;
  /** @internal see SandboxLearning. */
  learning: SandboxLearning | null = null;
  readonly policy: Policy;
  /**
   * Streams of the stdio the executor asked to 'pipe' (null for 'inherit' and 'ignore'). They
   * exist from construction: what is written to stdin before the start is delivered once the
   * sandboxee runs, and stdout/stderr end when it is gone (or at once when it never started).
   */
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;

  private started: Promise<void> | null = null;
  private result: Promise<Result> | null = null;
  private pidfd = -1;
  private hostPid = 0;
  private monitorId = 0;
  private setupError: string | null = null;
  private violation: Violation | null = null;
  private timedOut = false;
  /** Why the sandbox was ended from this side (kill(), or run()'s output cap), first one wins. */
  private killedAs: { status: 'EXTERNAL_KILL' | 'OUTPUT_LIMIT'; reason: string } | null = null;
  private setupErrorAtKill: string | null = null;
  private usage: ReturnType<typeof cgroupUsage> = null;
  /** The kernel's OOM killer acted in the sandbox's cgroup (limits.memory reached). */
  private oom = false;
  private finished = false;
  private startTime = 0;

  constructor(executor: Executor, policy: Policy) {
    if (!(executor instanceof Executor)) throw new TypeError('Sandbox: the first argument must be an Executor');
    if (!(policy instanceof Policy))
      throw new TypeError('Sandbox: the second argument must be a Policy (from PolicyBuilder.build())');
    this.executor = executor;
    this.policy = policy;
    const [i, o, e] = executor.stdio;
    this.stdin = i === 'pipe' ? new PassThrough() : null;
    this.stdout = o === 'pipe' ? new PassThrough() : null;
    this.stderr = e === 'pipe' ? new PassThrough() : null;
  }

  /** Ends the stdio streams no pipe was connected to (the sandboxee never started). */
  private endUnconnectedStreams(): void {
    for (const [i, stream] of [this.stdin, this.stdout, this.stderr].entries()) {
      if (!stream || this.connectedStdio[i]) continue;
      if (i === 0)
        (stream as PassThrough).resume().end(); // nothing will read what was written
      else (stream as PassThrough).end();
    }
  }
  private readonly connectedStdio = [false, false, false];

  /** The sandboxee's pid in the host's view (0 before it started). */
  get pid(): number {
    return this.hostPid;
  }

  /** Starts the sandboxee and resolves once it was cloned (setup goes on; awaitResult() tells how it ended). */
  runAsync(): Promise<void> {
    if (!this.started) {
      if (this.executor.started)
        throw new ExecutorError(
          'ALREADY_STARTED',
          'Sandbox: this Executor was already started (an Executor runs once)',
        );
      this.executor.started = true;
      this.startTime = performance.now();
      this.started = this.start();
      this.result = this.started.then(
        () => this.finish(),
        (err) => {
          this.endUnconnectedStreams();
          void this.cgroup?.remove();
          this.isolation?.cleanup();
          if (
            err instanceof MountError ||
            err instanceof SandboxSetupError ||
            err instanceof IsolationError ||
            err instanceof SandboxIdsError ||
            (err instanceof ForkServerError && err.code === 'SPAWN_FAILED')
          ) {
            // Never a silent fallback: a host without namespaces is named, with the mode that works.
            const message = nameExhaustedCounter(err.message, this.isolation?.hostIds.uid ?? null);
            this.setupError = (this.executor.isolation === 'namespaces' && namespacesUnavailable(message)) || message;
            return this.makeResult(null);
          }
          throw err;
        },
      );
      this.started.catch(() => {});
    }
    return this.started;
  }

  /** The Result, once the sandboxee and all its processes are gone. */
  awaitResult(): Promise<Result> {
    if (!this.result)
      return Promise.reject(new ExecutorError('NOT_STARTED', 'Sandbox: awaitResult() before runAsync()'));
    return this.result;
  }

  /** runAsync() + awaitResult(). */
  async run(): Promise<Result> {
    this.runAsync().catch(() => {});
    return this.awaitResult();
  }

  /** Kills the whole sandbox (EXTERNAL_KILL). Safe at any time. */
  kill(): void {
    this.endWith('EXTERNAL_KILL', 'killed by Sandbox.kill()');
  }

  /** @internal Ends the whole sandbox with this status (run(): OUTPUT_LIMIT, or an abort). */
  endWith(status: 'EXTERNAL_KILL' | 'OUTPUT_LIMIT', reason: string): void {
    if (this.finished || this.killedAs) return;
    this.killedAs = { status, reason };
    // A setup that fails from here on fails because of this kill: the Result says the kill.
    this.setupErrorAtKill = this.setupError;
    this.signalTree();
  }

  private signalTree(): void {
    // SIGTERM for both inits, which kill and reap the tree before they exit (so that its rusage
    // counts); SIGKILL without an init (custom-fork mode's child). The tree must end even when its
    // init does not cooperate (stopped, starved of fds): after a grace, SIGKILL the init and its
    // cgroup; its orphans go to the forkserver, which kills them.
    // Before the spawn returned there is nothing to signal: start() signals once it has a pidfd.
    if (this.pidfd < 0) return;
    native().pidfdSendSignal(this.pidfd, this.isolation?.treeSignal ?? 9);
    this.escalateLater();
  }

  /** After the grace: SIGKILL the init (when its isolation says so) and cgroup.kill. */
  private escalateLater(): void {
    if (!this.escalation && !this.finished) {
      this.escalation = setTimeout(() => {
        if (this.finished) return;
        if (this.pidfd >= 0 && (this.isolation?.escalate ?? true)) native().pidfdSendSignal(this.pidfd, 9);
        this.cgroup?.kill();
      }, TREE_KILL_GRACE_MS);
      this.escalation.unref();
    }
  }

  /** The host uid the sandboxee runs as (0 before it started): the uid its user namespace maps
   *  to, or landlock isolation's uid. A root executor leases one per sandbox (setSandboxIdRange). */
  get hostUid(): number {
    return this.isolation?.hostIds.uid ?? 0;
  }
  private escalation: NodeJS.Timeout | null = null;

  /** The Landlock ABI the sandboxee runs under (its fs rules and scopes), 0 when none was applied. */
  get landlockAbi(): number {
    return this.appliedLandlockAbi;
  }
  private appliedLandlockAbi = 0;

  /** The sandbox's own cgroup v2 directory, or null (none could be created, or cgroup: 'off'). */
  get cgroupPath(): string | null {
    return this.cgroup?.path ?? null;
  }

  private async start(): Promise<void> {
    const ex = this.executor;
    if (ex.forkServer) return this.startForked();
    const n = native();
    const ops = new OpList();
    const closeAfterSpawn: number[] = [];
    let policy = this.policy;
    try {
      // What to run
      ops.str(Op.ExecPath, ex.path);
      for (const a of ex.argv) ops.str(Op.Arg, a);
      ops.str(Op.Cwd, ex.cwd);

      // Namespaces (or none), identity, the filesystem view (isolation.ts)
      const iso = (this.isolation = addIsolationOps(ops, ex, this.policy, filesystemOf(this.policy)));
      this.appliedLandlockAbi = iso.landlockAbi;
      policy = iso.policy;
      for (const [k, v] of Object.entries({ ...ex.env, ...iso.env })) ops.str(Op.Env, `${k}=${v}`);

      // A cgroup of its own where the host allows one: the whole tree dies with cgroup.kill.
      if (ex.cgroup !== 'off') {
        this.cgroup = SandboxCgroup.create();
        if (this.cgroup) ops.str(Op.Cgroup, this.cgroup.path);
        // RLIMIT_AS bounds the address space; memfd and tmpfs pages need the memory controller.
        if (this.cgroup && ex.limits.rlimitAs !== INFINITY) this.cgroup.limitMemory(ex.limits.rlimitAs);
        else if (ex.cgroup === 'required') {
          throw new SandboxSetupError(
            `no writable cgroup v2 here (cgroup: 'required'): run where a delegated cgroup v2 subtree is writable, or use cgroup: 'auto'; see sbx doctor`,
          );
        }
      }

      // cgroup limits (limits.memory, limits.pids) go into the fresh cgroup before anything runs
      // in it; such a sandbox never comes from the spawn pool (a slot's cgroup has none).
      const missing = missingForLimits(ex.limits, this.cgroup !== null);
      if (missing) throw new SandboxSetupError(missing);
      const cgroupLimited = ex.limits.memory !== null || ex.limits.pids !== null;
      if (cgroupLimited) {
        try {
          applyCgroupLimits(this.cgroup!.path, ex.limits);
        } catch (err) {
          throw new SandboxSetupError((err as Error).message);
        }
      }

      // Limits. The walltime is kept by the forkserver: it fires even when this event loop is busy.
      for (const [res, v] of ex.limits.rlimits()) ops.rlimit(res, v, v);
      if (ex.limits.walltime > 0) ops.u64(Op.Walltime, BigInt(Math.max(1, Math.round(ex.limits.walltime * 1000))));
      if (!ex.spawnPool || cgroupLimited) ops.raw(Op.NoPool, Buffer.alloc(0));

      // fds: stdio, the IPC mappings, the setup socket
      const stdioFds = this.prepareStdio(closeAfterSpawn);
      stdioFds.forEach((fd, i) => {
        ops.fd(i, fd);
      });
      for (const m of ex.ipc.list()) ops.fd(m.sandboxee, m.local);
      const [setupOurs, setupTheirs] = n.socketpair(false, false);
      closeAfterSpawn.push(setupTheirs);
      ops.setupSocket(setupTheirs);
      const setup = new Comms(setupOurs, { maxMessageSize: 4096 });

      // The policy, installed right before execveat; or, in sandbox-me-here mode, served to the
      // sandboxee's Client.sandboxMeHere() on the handshake socket (client-handshake.ts)
      let client: PreparedClientHandshake | null = null;
      try {
        if (ex.enableSandboxBeforeExec) {
          // Without user notification (old kernel, or monitor: 'kill') violations are KILL_PROCESS:
          // the target dies of SIGSYS and the Result says what is known.
          this.monitored = ex.monitor === 'unotify' && userNotifAvailable();
          if (this.learning && !this.monitored)
            throw new SandboxSetupError(
              "learning needs the seccomp monitor (user notification, Linux 5.5+; not with monitor: 'kill')",
            );
          const filter = compileFilter(policy, { monitor: this.monitored, execFd: EXEC_FD_TARGET });
          ops.raw(Op.Seccomp, filter);
          this.learnTable = this.learning?.table(filter);
          if (this.monitored) ops.u32(Op.SeccompFlags, SeccompFlag.Listener);
        } else {
          if (this.learning) throw new SandboxSetupError('learning runs in sandbox-before-exec mode only');
          client = prepareClientHandshake(policy);
          closeAfterSpawn.push(client.theirs);
          ops.fd(CLIENT_FD, client.theirs);
          // The policy's io_uring denial already from exec: libuv (Node 22 and later) opens rings at
          // start and would fail once sandboxMeHere() denies them; with io_uring_setup failing it
          // uses epoll. A forkserver so has no ring that fork() would share with its children.
          ops.raw(Op.Seccomp, Buffer.from(ioUringDenialProgram(policy.arch)));
        }
      } catch (err) {
        setup.close(); // a policy that does not compile must not leave the setup channel open
        throw err;
      }

      let fs: ForkServer;
      let spawned: Awaited<ReturnType<ForkServer['spawn']>>;
      try {
        fs = ForkServer.shared(); // throws on a bad SBX_SPAWN_POOL: the setup channel is closed below
        spawned = await fs.spawn(ops);
      } catch (err) {
        setup.close();
        client?.channel.close();
        throw err;
      }
      this.pidfd = spawned.spawned.pidfd;
      this.hostPid = spawned.spawned.pid;
      if (this.killedAs) this.signalTree(); // kill() (or an abort) came while it was being spawned
      if (spawned.spawned.cgroup && this.cgroup) {
        this.cgroup = this.cgroup.replacedBy(spawned.spawned.cgroup);
        if (ex.limits.rlimitAs !== INFINITY) this.cgroup.limitMemory(ex.limits.rlimitAs);
      }
      // A pool slot brought a uid of its own (the forkserver keeps it taken until the sandbox is reaped).
      if (spawned.spawned.uid !== undefined && spawned.spawned.uid !== iso.hostIds.uid) {
        iso.lease?.release();
        iso.lease = null;
        iso.hostIds = { uid: spawned.spawned.uid, gid: spawned.spawned.uid };
      }
      this.exitPromise = fs.waitExit(spawned.id);
      this.exitPromise.catch(() => {});
      this.setupDone = this.readSetup(setup);
      if (client) {
        const handshake = serveClientHandshake(client, policy, {
          take: async (n) => {
            // The target's pidfd arrives first on the setup socket (it is sent before exec).
            await this.targetPidfdKnown;
            return this.takeListenerOf(this.targetPidfd >= 0 ? this.targetPidfd : this.pidfd, n);
          },
          watch: (listener) => this.watchListener(listener, policy, -1, this.isolation?.treeSignal),
          fail: (reason) => this.failSetup(reason),
        });
        this.setupDone = Promise.all([this.setupDone, handshake]).then(() => {});
      }
    } finally {
      for (const fd of closeAfterSpawn) closeQuietly(fd);
      ex.ipc.releaseOwned();
    }
  }

  // ---- custom-fork mode (forkserver/custom.ts): a child of the user's forkserver instead of an exec ----
  private forkWalltime: NodeJS.Timeout | null = null;

  private async startForked(): Promise<void> {
    const ex = this.executor;
    const server = ex.forkServer!;
    const client = prepareClientHandshake(this.policy);
    const fds = ex.ipc.list().map((m) => ({ target: m.sandboxee, fd: m.local }));
    fds.push({ target: CLIENT_FD, fd: client.theirs });
    let forked: Forked;
    try {
      forked = await server.fork(fds);
    } catch (err) {
      client.channel.close();
      throw new SandboxSetupError(`custom-fork mode: ${(err as Error).message}`);
    } finally {
      closeQuietly(client.theirs);
      ex.ipc.releaseOwned();
    }
    this.pidfd = forked.pidfd;
    this.hostPid = forked.pid;
    this.monitored = true;
    if (this.killedAs) this.signalTree(); // kill() came while it was being forked
    // The forkserver reports the wait status. If it dies first, its sandbox takes the child along:
    // make sure (SIGKILL through our pidfd) and report that once the child is gone.
    this.exitPromise = server.waitExit(forked.id, forked.pidfd).catch(async (err: unknown) => {
      if (err instanceof ForkServerHandleError && err.code === 'PROTOCOL')
        this.setupError ??= `custom-fork mode: ${err.message}`;
      this.signalTree();
      await pidfdExited(this.pidfd);
      return { pid: forked.nsPid, status: 9, utimeUs: 0, stimeUs: 0, maxRssKiB: 0, timedOut: false };
    });
    if (ex.limits.walltime > 0) {
      this.forkWalltime = setTimeout(
        () => {
          // A child that ended just now (its EXITED still on the way) did not time out.
          if (pidOfPidfd(this.pidfd) <= 0) return;
          this.timedOut = true;
          this.signalTree();
        },
        Math.max(1, Math.round(ex.limits.walltime * 1000)),
      );
    }
    this.setupDone = serveClientHandshake(client, this.policy, {
      take: async (n) => this.takeListenerOf(this.pidfd, n),
      watch: (listener) => this.watchListener(listener, this.policy),
      fail: (reason) => this.failSetup(reason),
    });
  }

  private exitPromise: Promise<Exited> | null = null;
  private learnTable: Buffer | undefined;
  /** Violations reach the monitor (USER_NOTIF) rather than killing outright. */
  private monitored = false;
  private cgroup: SandboxCgroup | null = null;
  private isolation: IsolationSetup | null = null;
  private monitorClosed: Promise<void> | null = null;
  private onMonitorClosed: (() => void) | null = null;
  /** pidfd of the target (pid 2 under the sandbox's init), when it sent one. */
  private targetPidfd = -1;
  /** Raw wait status of the target as its init saw it. */
  private targetStatus: number | null = null;
  private setupDone: Promise<void> | null = null;

  /** Hands the sandbox's seccomp listener to the monitor thread: the one place the monitor is wired. */
  private watchListener(listener: number, policy: Policy, execFd = -1, treeSignal?: number, learnTable?: Buffer): void {
    this.monitorClosed = new Promise((resolve) => (this.onMonitorClosed = resolve));
    this.monitorId = monitor.watch(
      listener,
      this.pidfd,
      execFd,
      (e) => this.onMonitor(e),
      networkTable(policy),
      treeSignal,
      learnTable,
    );
  }

  /** A setup failure reported by the client handshake: recorded, and the sandbox ends. */
  private failSetup(reason: string): void {
    this.setupError ??= reason;
    this.signalTree();
  }

  /** Reads the child's setup reports until exec (EOF): an error, or the listener's fd number. */
  private async readSetup(setup: Comms): Promise<void> {
    try {
      for (;;) {
        const m = await setup.recvAny();
        if (m.tag === Tag.String) {
          const message = nameExhaustedCounter(m.data.toString('utf8'), this.isolation?.hostIds.uid ?? null);
          this.setupError = (this.executor.isolation === 'namespaces' && namespacesUnavailable(message)) || message;
        } else if (m.tag === FsTag.InitStatus && m.data.length === 4) {
          this.targetStatus = m.data.readInt32LE(0);
        } else if (m.tag === Tag.Fd && this.targetPidfd < 0) {
          this.targetPidfd = m.fd;
          this.onTargetPidfd();
        } else if (m.tag === Tag.Uint32 && m.data.length === 4 && this.monitorId === 0) {
          const listener = await this.takeListener(m.data.readUInt32LE(0), setup);
          if (listener >= 0)
            this.watchListener(
              listener,
              this.isolation?.policy ?? this.policy,
              EXEC_FD_TARGET,
              this.isolation?.treeSignal,
              this.learnTable,
            );
        } else {
          if (m.fd >= 0) closeQuietly(m.fd);
          this.setupError = `unexpected setup message (tag 0x${m.tag.toString(16)})`;
          this.signalTree();
        }
      }
    } catch (err) {
      if (!(err instanceof CommsError && err.code === 'PEER_CLOSED')) {
        this.setupError ??= `setup channel: ${(err as Error).message}`;
        this.signalTree();
      }
    } finally {
      setup.close();
      this.onTargetPidfd();
    }
  }

  /** Settles when the target's pidfd came on the setup socket, or the socket closed without it. */
  private onTargetPidfd: () => void = () => {};
  private readonly targetPidfdKnown = new Promise<void>((resolve) => (this.onTargetPidfd = resolve));

  /**
   * Sandbox-me-here: takes fd `n` of `pidfd`'s process, which must be a seccomp listener (the
   * client said it is). Another file there means another process ran the handshake.
   */
  private takeListenerOf(pidfd: number, n: number): number {
    const fd = native().pidfdGetfd(pidfd, n);
    let target = '';
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // checked below
    }
    if (target !== 'anon_inode:seccomp notify') {
      closeQuietly(fd);
      throw new Error(
        `fd ${n} of the sandboxee is ${target || 'unknown'}, not a seccomp listener: sandboxMeHere() must be called by the process the executor started, not by a child of it`,
      );
    }
    return fd;
  }

  /**
   * Takes the child's seccomp listener (fd `n` in the child) with pidfd_getfd(). The child sent
   * `n` just before calling seccomp(), so until that returns the fd does not exist (EBADF): retry
   * until it does, the child reports a failure on the setup socket, or it is gone. Returns -1 then.
   */
  private async takeListener(n: number, setup: Comms): Promise<number> {
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      try {
        // The target's own pidfd when it runs under the sandbox's init; else it is the init.
        return native().pidfdGetfd(this.targetPidfd >= 0 ? this.targetPidfd : this.pidfd, n);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== 'EBADF') {
          this.setupError ??=
            `pidfd_getfd(sandboxee, ${n}) for the seccomp listener: ${(err as Error).message}` +
            (code === 'EPERM' ? ' (the host forbids it: check kernel.yama.ptrace_scope <= 1)' : '');
          this.signalTree();
          return -1;
        }
      }
      if (setup.isClosed || this.setupError) return -1;
      if (performance.now() - started > 5000) {
        this.setupError = `the sandboxee did not install its seccomp filter within 5 s`;
        this.signalTree();
        return -1;
      }
      await new Promise((r) => (attempt < 100 ? setImmediate(r) : setTimeout(r, 1)));
    }
  }

  private onMonitor(e: MonitorEvent): void {
    if (e.type === 'learn' || e.type === 'learn_limit') {
      this.learning?.onEvent(e);
    } else if (e.type === 'exec_failed') {
      const name = errnoName(e.errno);
      const hint =
        name === 'ENOENT'
          ? ' (the binary or its ELF interpreter is missing inside the sandbox: add its libraries to the policy, e.g. addLibrariesForBinary)'
          : '';
      this.setupError = `execveat(${this.executor.path}): ${name}${hint}`;
    } else if (e.type === 'violation' && !this.violation) {
      this.violation = describeViolation(e);
      this.escalateLater(); // the monitor sent the tree signal
      // Network rules: a denied destination (netproxy.cc), named with the rule that denied it.
      if (e.address !== undefined)
        Object.assign(this.violation, {
          kind: 'network',
          address: e.address,
          rule: networkDenialReason(this.isolation?.policy ?? this.policy, e.netRule, e.netReason),
        });
    } else if (e.type === 'closed') {
      monitor.unwatch(this.monitorId);
      this.monitorId = 0;
      this.onMonitorClosed?.();
    }
  }

  private async finish(): Promise<Result> {
    let exited: Exited | null = null;
    try {
      exited = await this.exitPromise!;
      await this.setupDone;
      // The monitor's reports come on their own path; its 'closed' comes after all of them, once
      // every filtered task is gone. Bounded, so that a lost report can never hang a run.
      if (this.monitorClosed) await raceDelay(this.monitorClosed, MONITOR_DRAIN_MS);
    } catch (err) {
      this.cleanup();
      this.isolation?.cleanup();
      return this.makeResult(null, err as Error);
    }
    this.cleanup();
    // Every process of the tree is gone (its init reaped them): the cgroup's counters are final.
    if (this.cgroup) this.usage = cgroupUsage(this.cgroup.path);
    if (this.cgroup && this.executor.limits.memory !== null) this.oom = oomKilled(this.cgroup.path);
    await this.cgroup?.remove();
    this.isolation?.cleanup();
    if (exited.timedOut) this.timedOut = true;
    return this.makeResult(exited);
  }

  private cleanup(): void {
    this.finished = true;
    if (this.forkWalltime) clearTimeout(this.forkWalltime);
    if (this.escalation) clearTimeout(this.escalation);
    if (this.monitorId) monitor.unwatch(this.monitorId);
    this.monitorId = 0;
    closeQuietly(this.pidfd);
    closeQuietly(this.targetPidfd);
    this.pidfd = this.targetPidfd = -1;
  }

  private makeResult(exited: Exited | null, internal?: Error): Result {
    const walltimeMs = performance.now() - this.startTime;
    const base = {
      walltimeMs,
      ...treeUsage(this.usage, exited),
      ...(this.hostPid ? { pid: this.hostPid } : {}),
      isolation: this.executor.isolation,
    };
    // The init's report of the target is exact; without one (no pid namespace), the forkserver's.
    const st = this.targetStatus ?? exited?.status ?? 0;
    const signaled = (this.targetStatus !== null || exited !== null) && (st & 0x7f) !== 0 && (st & 0x7f) !== 0x7f;
    const sig = st & 0x7f;
    let status: Status;
    let reason = '';
    const extra: { exitCode?: number; signal?: NodeJS.Signals | number; violation?: Violation } = {};
    if (internal) {
      status = 'INTERNAL_ERROR';
      reason = internal.message;
    } else if (this.killedAs ? this.setupErrorAtKill : this.setupError) {
      status = 'SETUP_ERROR';
      reason = (this.killedAs ? this.setupErrorAtKill : this.setupError)!;
    } else if (this.violation) {
      status = 'VIOLATION';
      extra.violation = this.violation;
      const v = this.violation;
      reason = `${v.kind} violation: ${v.syscall}${v.address ? ` to ${v.address}` : ''}${v.rule ? ` (${v.rule})` : ''}`;
    } else if (this.timedOut) {
      status = 'TIMEOUT';
      reason = `walltime limit of ${this.executor.limits.walltime} s exceeded`;
    } else if (this.killedAs) {
      ({ status, reason } = this.killedAs);
    } else if (signaled && sig === SIGSYS && !this.monitored && this.executor.enableSandboxBeforeExec) {
      // KILL_PROCESS with no monitor to ask: a violation of an unknown syscall.
      status = 'VIOLATION';
      extra.violation = {
        kind: 'syscall',
        syscall: 'unknown (SIGSYS, no monitor)',
        nr: -1,
        arch: 'unknown',
        args: [],
        pid: this.hostPid,
      };
      reason = 'syscall violation: killed by SIGSYS (no seccomp monitor: the syscall is not known)';
    } else if (signaled) {
      status = 'SIGNALED';
      extra.signal = signalName(sig);
      reason = this.oom
        ? `killed by the kernel's OOM killer: limits.memory (${this.executor.limits.memory} bytes) reached`
        : `terminated by ${extra.signal}`;
    } else {
      status = 'OK';
      extra.exitCode = (st >> 8) & 0xff;
    }
    if (signaled && status !== 'OK') extra.signal ??= signalName(sig);
    return new Result({ status, reason, ...base, ...extra });
  }

  private prepareStdio(closeAfterSpawn: number[]): number[] {
    const fds: number[] = [];
    this.executor.stdio.forEach((mode, i) => {
      if (mode === 'inherit') fds.push(i);
      else if (mode === 'ignore') {
        const fd = openSync('/dev/null', i === 0 ? 'r' : 'w');
        closeAfterSpawn.push(fd);
        fds.push(fd);
      } else {
        const [r, w] = native().pipe();
        const [childEnd, ourEnd] = i === 0 ? [r, w] : [w, r];
        closeAfterSpawn.push(childEnd);
        fds.push(childEnd);
        this.connectedStdio[i] = true;
        if (i === 0) {
          // Errors of the pipe (EPIPE: the sandboxee closed its stdin) reach the user's stream.
          const pipe = createWriteStream('', { fd: ourEnd });
          pipe.on('error', (err) => this.stdin!.destroy(err));
          (this.stdin as PassThrough).pipe(pipe);
        } else {
          const out = (i === 1 ? this.stdout : this.stderr)!;
          const pipe = createReadStream('', { fd: ourEnd });
          pipe.on('error', (err) => out.destroy(err));
          pipe.pipe(out as PassThrough);
        }
      }
    });
    return fds;
  }
}

function describeViolation(e: MonitorEvent): Violation {
  let arch: Arch = 'unknown';
  let kind: Violation['kind'] = 'arch';
  let name: string | undefined;
  if (e.arch === AUDIT_ARCH.x86_64 && e.nr & X32_BIT) arch = 'x32';
  else if (e.arch === AUDIT_ARCH.x86_64) {
    arch = 'x86_64';
    kind = 'syscall';
    name = syscallName('x86_64', e.nr);
  } else if (e.arch === AUDIT_ARCH.i386) {
    arch = 'i386';
    name = syscallName('i386', e.nr);
  } else if (e.arch === AUDIT_ARCH.aarch64) {
    arch = 'aarch64';
    kind = process.arch === 'arm64' ? 'syscall' : 'arch';
    name = syscallName('aarch64', e.nr);
  }
  if (arch === 'x32') name = syscallName('x86_64', e.nr & ~X32_BIT);
  return { kind, syscall: name ?? `unknown(${e.nr})`, nr: e.nr, arch, args: e.args, pid: e.pid };
}

/**
 * `p` or `ms` milliseconds, whichever first. The timer is ref'd (then cleared): the monitor's
 * report comes through an unref'd thread-safe function, so with nothing else alive an unref'd
 * timer would let the event loop end, and the process exit, before the report arrives.
 */
function raceDelay(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Resolves once the process of `pidfd` has ended (its pidfd turns readable). */
function pidfdExited(pidfd: number): Promise<void> {
  return new Promise((resolve) => {
    const w = new (native().Watcher)(pidfd, () => {
      w.close();
      resolve();
    });
    w.start(true, false);
  });
}

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `errno ${errno}`;
  }
}
