// sandbox.ts: runs an Executor under a policy (Sandbox2's Sandbox2 class). run() resolves to a
// Result value; it rejects only when the SDK itself fails (bad arguments, no forkserver).
//
// A sandbox's life is one ordered list of steps, each a method below, in this order:
//   1. buildRequest      Executor + Policy → op list, cgroup, fds, setup socket (request.ts)
//   2. sendRequest       to the global forkserver; it clones the child (forkserver/global.ts)
//   3. readSetupChannel  the child's reports until exec (setup-channel.ts), which leads to
//   4. wireMonitor       the seccomp listener handed to the monitor thread, once (monitor.ts)
//   5. waitForEnd        the forkserver's EXITED, the setup and the monitor's last reports
//   6. toResult          the recorded facts → Result, a pure function (result-of.ts)
// Custom-fork mode (a child of a user's forkserver, forkserver/custom.ts) replaces 1–3 with
// forkChild. A failure before anything runs skips to toResult as a SETUP_ERROR.
import { readlinkSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { closeQuietly, native, type MonitorEvent } from '@sbx/client/internal';
import { Executor, ExecutorError } from './executor.js';
import { ForkServerHandleError, pidOfPidfd, type Forked } from '../forkserver/custom.js';
import type { SandboxedSpare } from '../forkserver/sandboxed-spares.js';
import { EXEC_FD_TARGET, type SetupFailure } from '../forkserver/protocol.js';
import { ForkServer, ForkServerError, type Exited } from '../forkserver/global.js';
import * as monitor from './monitor.js';
import type { SandboxCgroup } from './cgroup.js';
import { INFINITY } from './limits.js';
import { cgroupUsage, hasMemoryPeak } from './accounting.js';
import { oomKilled } from './cgroup-limits.js';
import { MountError } from '../isolation/mounts.js';
import { IsolationError, namespacesUnavailable, type IsolationSetup } from '../isolation/isolation.js';
import type { Result, Violation } from './result.js';
import { networkDenialReason, networkTable } from './sandbox-policy.js';
import { Policy } from '../policy/policy.js';
import { CLIENT_FD, prepareClientHandshake, serveClientHandshake } from './client-handshake.js';
import { nameExhaustedCounter } from './counters.js';
import { keepUnusedSandboxIds, SandboxIdsError } from './sandbox-ids.js';
import { buildRequest, SandboxSetupError, type SpawnRequest } from './request.js';
import { type InitRusage, ListenerError, readSetupChannel, takeListener } from './setup-channel.js';
import { resultOf } from './result-of.js';
import { canEndEarly } from './early-end.js';
import { SandboxStdio } from './stdio.js';
import { describeViolation } from './violation.js';
import { collectStackTrace, traceOnTimeout, type StackTrace } from './stack-trace.js';
import { Timeline, type TimelineStage } from './timeline.js';
import { checkNotify, NotifyHooks, type SandboxNotify } from './notify-hooks.js';
import { LongLived } from './long-lived.js';
import { ForkTrace } from '../forkserver/fork-trace.js';
import { monotonicMs } from '../clock.js';

export { SandboxSetupError } from './request.js';

/** How long a finished sandbox waits for the monitor's last reports. */
const MONITOR_DRAIN_MS = 2000;
/** A subreaper init (landlock isolation) that has not ended its tree this long after SIGTERM is
 *  SIGKILLed, with its cgroup (the forkserver then kills its orphans): the forkserver's own grace
 *  (SBX_KILL_GRACE_MS, native/forkserver/children.h) plus a margin. */
const TREE_KILL_GRACE_MS = 1200;

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
  private readonly stdio: SandboxStdio;

  // ---- what happened, recorded as it happens (the facts toResult() reads) ----
  private startTime = 0;
  private setupError: string | null = null;
  private violation: Violation | null = null;
  private timedOut = false;
  /** Why the sandbox was ended from this side (kill(), or run()'s output cap), first one wins. */
  private killedAs: { status: 'EXTERNAL_KILL' | 'OUTPUT_LIMIT'; reason: string } | null = null;
  private setupErrorAtKill: string | null = null;
  private usage: ReturnType<typeof cgroupUsage> = null;
  /** The kernel's OOM killer acted in the sandbox's cgroup (limits.memory reached). */
  private oom = false;
  /** Raw wait status of the target as its init saw it. */
  private targetStatus: number | null = null;
  /** Violations reach the monitor (USER_NOTIF) rather than killing outright. */
  private monitored = false;
  private finished = false;

  // ---- what the sandbox holds while it runs ----
  private started: Promise<void> | null = null;
  private result: Promise<Result> | null = null;
  private pidfd = -1;
  private hostPid = 0;
  /** pidfd of the target (pid 2 under the sandbox's init), when it sent one. */
  private targetPidfd = -1;
  private monitorId = 0;
  private monitorClosed: Promise<void> | null = null;
  private onMonitorClosed: (() => void) | null = null;
  private cgroup: SandboxCgroup | null = null;
  private isolation: IsolationSetup | null = null;
  private appliedLandlockAbi = 0;
  private learnTable: Buffer | undefined;
  private exitPromise: Promise<Exited> | null = null;
  private setupDone: Promise<void> | null = null;
  private escalation: NodeJS.Timeout | null = null;
  private forkWalltime: NodeJS.Timeout | null = null;
  /** Executor option trace: the marks of every stage (null: not asked, nothing is recorded). */
  private trace: Timeline | null = null;
  /** Notify hooks (notify-hooks.ts), when the Sandbox was given any. */
  private hooks: NotifyHooks | null = null;
  private hookTable: Buffer | undefined;
  /** A notify handler failed (threw, answered nonsense, too late): the Result is INTERNAL_ERROR. */
  private hookFailure: string | null = null;
  /** awaitResult(timeoutMs), isTerminated(), setWalltimeLimit() (long-lived.ts). */
  private readonly longLived = new LongLived();
  /** The global forkserver's request id (setWalltimeLimit). */
  private spawnId: bigint | null = null;

  /**
   * notify: Sandbox2's Notify: run-time decisions on the syscalls the policy's notifySyscall()
   * rules send (onSyscall), and the started / signal / finished events (notify-hooks.ts).
   */
  constructor(executor: Executor, policy: Policy, notify?: SandboxNotify) {
    if (!(executor instanceof Executor)) throw new TypeError('Sandbox: the first argument must be an Executor');
    if (!(policy instanceof Policy))
      throw new TypeError('Sandbox: the second argument must be a Policy (from PolicyBuilder.build())');
    this.executor = executor;
    this.policy = policy;
    this.stdio = new SandboxStdio(executor.stdio);
    this.stdin = this.stdio.stdin;
    this.stdout = this.stdio.stdout;
    this.stderr = this.stdio.stderr;
    if (notify !== undefined)
      this.hooks = new NotifyHooks(checkNotify(notify), {
        monitorId: () => this.monitorId,
        describe: describeViolation,
        killed: (v) => {
          this.violation ??= v;
          this.escalateLater(); // the monitor sent the tree signal
        },
        fail: (reason) => {
          this.hookFailure ??= reason;
          this.signalTree();
        },
      });
  }

  /** The sandboxee's pid in the host's view (0 before it started). */
  get pid(): number {
    return this.hostPid;
  }

  /** The host uid the sandboxee runs as (0 before it started): the uid its user namespace maps
   *  to, or landlock isolation's uid. A root executor leases one per sandbox (setSandboxIdRange). */
  get hostUid(): number {
    return this.isolation?.hostIds.uid ?? 0;
  }

  /** The Landlock ABI the sandboxee runs under (its fs rules and scopes), 0 when none was applied. */
  get landlockAbi(): number {
    return this.appliedLandlockAbi;
  }

  /** The sandbox's own cgroup v2 directory, or null (none could be created, or cgroup: 'off'). */
  get cgroupPath(): string | null {
    return this.cgroup?.path ?? null;
  }

  /**
   * With the Executor option `trace: true`: every stage from runAsync() to the Result so far, in
   * time order, with µs timestamps (the forkserver's and the child's setup steps included);
   * complete once awaitResult() has resolved. null without the option.
   */
  get timeline(): TimelineStage[] | null {
    return this.trace?.stages() ?? null;
  }

  /** Marks the end of a stage on the timeline (when tracing): the named points of the steps. */
  private mark(stage: string, detail?: string): void {
    this.trace?.mark(stage, detail);
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
      this.startTime = monotonicMs();
      if (this.executor.trace) this.trace = new Timeline();
      this.started = this.executor.forkServer ? this.forkChild() : this.start();
      this.result = this.started.then(
        () => this.finish(),
        (err) => this.failedToStart(err),
      );
      this.result = this.longLived.track(this.result, (r) => this.hooks?.finished(r, r.signal ?? null));
      this.started.catch(() => {});
    }
    return this.started;
  }

  /**
   * The Result, once the sandboxee and all its processes are gone. With `timeoutMs`, waits at
   * most that long and resolves to undefined when the sandbox still runs (it is not killed:
   * Sandbox2's AwaitResultWithTimeout for long-lived sandboxes).
   */
  awaitResult(): Promise<Result>;
  awaitResult(timeoutMs: number): Promise<Result | undefined>;
  awaitResult(timeoutMs?: number): Promise<Result | undefined> {
    if (!this.result)
      return Promise.reject(new ExecutorError('NOT_STARTED', 'Sandbox: awaitResult() before runAsync()'));
    if (timeoutMs === undefined) return this.result;
    return this.longLived.awaitWithTimeout(this.result, timeoutMs);
  }

  /** True once the sandbox has ended and its Result is known (Sandbox2's IsTerminated). */
  isTerminated(): boolean {
    return this.longLived.terminated;
  }

  /**
   * Sets a running sandbox's wall-time limit to `ms` from now (0: none), replacing the
   * Executor's; at the new deadline the sandbox ends with TIMEOUT. Before runAsync() it throws
   * NOT_STARTED; after the end it does nothing.
   */
  setWalltimeLimit(ms: number): void {
    if (!this.started)
      throw new ExecutorError('NOT_STARTED', 'Sandbox: setWalltimeLimit() before runAsync() (use Executor limits)');
    this.longLived.setWalltime(ms, {
      finished: this.finished,
      apply: (limitMs) => this.applyWalltime(limitMs),
    });
  }

  /** Sends the walltime to whoever keeps it: the forkserver, or this process in custom-fork mode. */
  private applyWalltime(ms: number): boolean {
    if (this.executor.forkServer) {
      if (this.pidfd < 0) return false;
      if (this.forkWalltime) clearTimeout(this.forkWalltime);
      this.forkWalltime = null;
      if (ms > 0) this.forkWalltime = setTimeout(() => this.forkWalltimeExpired(), ms);
      return true;
    }
    if (this.spawnId === null) return false;
    const ex = this.executor;
    const stackFirst = traceOnTimeout({
      stackTraces: ex.stackTraces,
      isolation: ex.isolation,
      limits: { walltime: ms },
    });
    this.startStackWalltimeTimer(stackFirst ? ms : 0);
    const backstop = stackFirst ? this.executor.stackTraces.timeoutMs + 500 : 0;
    ForkServer.shared().setWalltime(this.spawnId, ms === 0 ? 0 : ms + backstop);
    return true;
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
    const ex = this.executor;
    if (status === 'EXTERNAL_KILL' && ex.stackTraces.onKill && ex.isolation === 'namespaces' && this.pidfd >= 0)
      void this.endAfterTrace('kill');
    else this.signalTree();
  }

  /**
   * The stack of a thread of the running sandboxee (default: its target program's main thread),
   * symbolized, with its registers. The thread is stopped meanwhile and resumes afterwards.
   * Rejects with ExecutorError STACK_TRACE saying why when none can be taken.
   */
  async stackTrace(tid?: number): Promise<StackTrace> {
    if (tid !== undefined && !(Number.isInteger(tid) && tid > 0))
      throw new TypeError(`Sandbox.stackTrace(tid): tid must be a positive integer, got ${String(tid)}`);
    const out = await this.stackOf('request', tid, false);
    if (!out.ok) throw new ExecutorError('STACK_TRACE', `Sandbox.stackTrace(): ${out.error}`);
    return out.trace;
  }

  private async stackOf(trigger: StackTrace['trigger'], tid: number | undefined, stopProcess: boolean) {
    const o = this.executor.stackTraces;
    if (this.finished || this.pidfd < 0) return { ok: false as const, error: 'the sandbox is not running' };
    if (this.executor.isolation !== 'namespaces')
      return { ok: false as const, error: 'stack traces need namespaces isolation' };
    // The target names the sandbox's user namespace: the init is not dumpable, so an unprivileged
    // executor may not look at its /proc/<pid>/ns.
    const sandboxPid = this.targetPidfd >= 0 ? pidOfPidfd(this.targetPidfd) : this.hostPid;
    const target = tid ?? sandboxPid;
    return collectStackTrace({
      tid: target,
      sandboxPid,
      trigger,
      stopProcess,
      timeoutMs: o.timeoutMs,
      maxFrames: o.maxFrames,
    });
  }

  /** Takes the Result's stack trace (bounded by stackTraces.timeoutMs), then ends the tree. */
  private async endAfterTrace(trigger: StackTrace['trigger'], tid?: number): Promise<void> {
    if (this.stackTaken) return this.signalTree();
    this.stackTaken = true;
    // Whatever the unwinder does, the tree ends: this timer is the backstop for a stuck spawn.
    const backstop = setTimeout(() => this.signalTree(), this.executor.stackTraces.timeoutMs + 500);
    try {
      const out = await this.stackOf(trigger, tid, true);
      if (out.ok) this.stack = out.trace;
      else this.stackError = out.error;
    } finally {
      clearTimeout(backstop);
      this.signalTree();
    }
  }
  private stackTaken = false;
  private stack: StackTrace | null = null;
  private stackError: string | null = null;
  /** With a stack on timeout, this side keeps the walltime (ms from now; the forkserver's, later
   *  by the unwinder's time, is the backstop). Replaces the timer that ran. */
  private startStackWalltimeTimer(ms: number): void {
    if (this.walltimeTimer) clearTimeout(this.walltimeTimer);
    this.walltimeTimer = null;
    if (ms <= 0) return;
    this.walltimeTimer = setTimeout(() => {
      if (this.finished || this.violation || this.killedAs) return;
      this.timedOut = true;
      void this.endAfterTrace('timeout');
    }, ms);
    this.walltimeTimer.unref();
  }

  /** The executor's walltime timer (stack on timeout): the forkserver's fires later, as a backstop. */
  private walltimeTimer: NodeJS.Timeout | null = null;

  /** Whether the monitor leaves a violation's tree alone, so that the violating thread's stack can
   *  be taken first (endAfterTrace ends it). */
  private holdsViolations(): boolean {
    return this.executor.stackTraces.onViolation && this.executor.isolation === 'namespaces' && !this.learning;
  }

  // ==== the steps, in order ====

  /** Steps 1–3: build the request, send it, read the setup channel (which wires the monitor). */
  private async start(): Promise<void> {
    const ex = this.executor;
    try {
      const req = this.buildRequest();
      await this.sendRequest(req);
      this.readSetupChannel(req);
      if (req.client) this.serveClient(req);
    } finally {
      ex.ipc.releaseOwned();
    }
  }

  /** Step 1: the op list and what it needs on the host (request.ts). */
  private buildRequest(): SpawnRequest {
    const req = buildRequest(this.executor, this.policy, {
      stdio: this.stdio,
      learnTable: this.learning ? (filter) => this.learning!.table(filter) : null,
      hooks: this.hooks,
      ...(this.trace ? { mark: (stage: string, detail?: string) => this.mark(stage, detail) } : {}),
    });
    this.isolation = req.isolation;
    this.appliedLandlockAbi = req.isolation.landlockAbi;
    this.cgroup = req.cgroup;
    this.monitored = req.monitored;
    this.learnTable = req.learnTable;
    this.hookTable = req.hookTable;
    return req;
  }

  /** Step 2: the forkserver clones the child (or hands the request to a pool slot). */
  private async sendRequest(req: SpawnRequest): Promise<void> {
    const ex = this.executor;
    let fs: ForkServer;
    let spawned: Awaited<ReturnType<ForkServer['spawn']>>;
    try {
      fs = ForkServer.shared(); // throws on a bad SBX_SPAWN_POOL: the setup channel is closed below
      spawned = await fs.spawn(req.ops, this.trace ? (stage) => this.mark(stage) : undefined);
    } catch (err) {
      req.setup.close();
      req.client?.channel.close();
      throw err;
    } finally {
      for (const fd of req.closeAfterSpawn) closeQuietly(fd);
    }
    this.pidfd = spawned.spawned.pidfd;
    this.hostPid = spawned.spawned.pid;
    this.mark('spawned');
    if (this.killedAs) this.signalTree(); // kill() (or an abort) came while it was being spawned
    if (traceOnTimeout(ex) && !this.longLived.walltimeOverridden)
      this.startStackWalltimeTimer(ex.limits.walltime * 1000);
    if (spawned.spawned.cgroup && this.cgroup) {
      this.cgroup = this.cgroup.replacedBy(spawned.spawned.cgroup);
      if (ex.limits.rlimitAs !== INFINITY) this.cgroup.limitMemory(ex.limits.rlimitAs);
    }
    // A pool slot brought a uid of its own (the forkserver keeps it taken until the sandbox is reaped).
    const iso = req.isolation;
    if (spawned.spawned.uid !== undefined && spawned.spawned.uid !== iso.hostIds.uid) {
      if (iso.lease) keepUnusedSandboxIds(iso.lease); // no process ran as it: the next sandbox's
      iso.lease = null;
      iso.hostIds = { uid: spawned.spawned.uid, gid: spawned.spawned.uid };
    }
    this.spawnId = spawned.id;
    this.longLived.spawned();
    this.exitPromise = fs.waitExit(spawned.id);
    this.exitPromise.catch(() => {});
  }

  /** Step 3: the child's reports until exec; the listener's number leads to wireMonitor. */
  private readSetupChannel(req: SpawnRequest): void {
    this.setupDone = readSetupChannel(req.setup, {
      failed: (failure) => {
        this.setupError = this.describeSetupFailure(failure);
      },
      initStatus: (status, rusage) => {
        this.targetStatus = status;
        this.initRusage = rusage;
        this.mark('target status', 'the init reaped the tree');
        this.onInitStatus();
      },
      trace: (entries) => this.trace?.addNative(entries),
      expects: (report) => (report === 'targetPidfd' ? this.targetPidfd < 0 : this.monitorId === 0),
      targetPidfd: (fd) => {
        this.targetPidfd = fd;
        this.onTargetPidfd();
      },
      listener: async (n) => {
        // The target's own pidfd when it runs under the sandbox's init; else it is the init.
        const pidfd = this.targetPidfd >= 0 ? this.targetPidfd : this.pidfd;
        let listener: number;
        try {
          listener = await takeListener(pidfd, n, () => req.setup.isClosed || this.setupError !== null);
        } catch (err) {
          if (!(err instanceof ListenerError)) throw err;
          return this.breakSetup(err.message, false);
        }
        if (listener < 0) return;
        this.mark('seccomp listener taken');
        this.wireMonitor(listener, req.policy, EXEC_FD_TARGET, req.isolation.treeSignal, this.learnTable);
      },
      broken: (reason, overrides) => this.breakSetup(reason, overrides),
    }).finally(() => this.onTargetPidfd());
  }

  /** Sandbox-me-here mode: the sandboxee's Client.sandboxMeHere() is served its policy. */
  private serveClient(req: SpawnRequest): void {
    const handshake = serveClientHandshake(req.client!, req.policy, {
      take: async (n) => {
        // The target's pidfd arrives first on the setup socket (it is sent before exec).
        await this.targetPidfdKnown;
        return this.takeListenerOf(this.targetPidfd >= 0 ? this.targetPidfd : this.pidfd, n);
      },
      watch: (listener) => this.wireMonitor(listener, req.policy, -1, req.isolation.treeSignal),
      fail: (reason) => this.failSetup(reason),
    });
    this.setupDone = Promise.all([this.setupDone, handshake]).then(() => {});
  }

  /** Step 4: hands the sandbox's seccomp listener to the monitor thread: the one place the monitor is wired. */
  private wireMonitor(listener: number, policy: Policy, execFd = -1, treeSignal?: number, learnTable?: Buffer): void {
    this.monitorClosed = new Promise((resolve) => (this.onMonitorClosed = resolve));
    this.monitorId = monitor.watch(
      listener,
      this.pidfd,
      execFd,
      (e) => this.onMonitor(e),
      networkTable(policy),
      this.holdsViolations() ? 0 : treeSignal,
      learnTable,
      this.hookTable,
    );
    this.mark('monitor registration');
    if (execFd === -1) this.hooks?.started(this.hostPid); // sandboxMeHere() is done: it runs
  }

  /** The rusage of the tree but its init, sent by a pid namespace's init with the status. */
  private initRusage: InitRusage | null = null;
  /** The init reported the target's status (early-end.ts: the Result may not need EXITED). */
  private onInitStatus: () => void = () => {};
  private readonly initStatusKnown = new Promise<'init'>((resolve) => (this.onInitStatus = () => resolve('init')));

  /** The facts canEndEarly() decides on, as recorded now. */
  private endsEarly(): boolean {
    return canEndEarly({
      beforeExec: this.executor.enableSandboxBeforeExec,
      targetStatus: this.targetStatus,
      haveUsage: this.initRusage !== null && (this.usage !== null || !this.cgroup || !hasMemoryPeak(this.cgroup.path)),
      violation: this.violation !== null,
      setupError: this.setupError !== null,
      killed: this.killedAs !== null,
      timedOut: this.timedOut,
      hookFailure: this.hookFailure !== null,
      learning: this.learning !== null,
    });
  }

  /**
   * Step 5: the forkserver reaped the sandbox; the setup and the monitor have said all. Or, null:
   * the init reported that the target exited on its own after it reaped the rest of the tree,
   * the monitor has said all, and nothing of EXITED is needed (early-end.ts).
   */
  private async waitForEnd(): Promise<Exited | null> {
    const mayEndEarly = this.executor.enableSandboxBeforeExec && !this.learning;
    const first = mayEndEarly ? await Promise.race([this.exitPromise!, this.initStatusKnown]) : null;
    if (first === 'init') {
      if (this.monitorClosed) await raceDelay(this.monitorClosed, MONITOR_DRAIN_MS);
      // The init reaped every process of the tree: its rusage covers the tree as cpu.stat
      // would (whose read flushes the cgroup's stats, ~0.2 ms). The cgroup is read only for what
      // rusage lacks, the tree's peak memory (memory.peak, with the memory controller).
      if (
        this.targetStatus !== null &&
        (this.targetStatus & 0x7f) === 0 &&
        this.cgroup &&
        hasMemoryPeak(this.cgroup.path)
      )
        this.usage = cgroupUsage(this.cgroup.path);
      if (this.endsEarly()) return null;
      this.usage = null;
    }
    const exited = await this.exitPromise!;
    this.mark('exit report');
    await this.setupDone;
    // The monitor's reports come on their own path; its 'closed' comes after all of them, once
    // every filtered task is gone. Bounded, so that a lost report can never hang a run.
    if (this.monitorClosed) await raceDelay(this.monitorClosed, MONITOR_DRAIN_MS);
    return exited;
  }

  /** Steps 5 and 6. */
  private async finish(): Promise<Result> {
    let exited: Exited | null;
    try {
      exited = await this.waitForEnd();
    } catch (err) {
      this.release();
      this.isolation?.cleanup();
      return this.toResult(null, err as Error);
    }
    this.release();
    if (exited === null) {
      // Nothing of the sandboxee runs; its init, which runs none of its code, is exiting. The uid
      // lease (and landlock's IPC objects of it) go now, so that the next sandbox may take it;
      // the cgroup once the forkserver has reaped the init (rmdir needs it empty).
      this.isolation?.cleanup();
      const teardown = () => void this.cgroup?.remove();
      this.exitPromise!.then(teardown, teardown);
      // What EXITED would have said: the init's status and the rusage of the tree it reaped.
      const ru = this.initRusage!;
      return this.toResult({ pid: this.hostPid, status: this.targetStatus!, ...ru, timedOut: false });
    }
    // Every process of the tree is gone (its init reaped them): the cgroup's counters are final.
    if (this.cgroup) this.usage = cgroupUsage(this.cgroup.path);
    if (this.cgroup && this.executor.limits.memory !== null) this.oom = oomKilled(this.cgroup.path);
    await this.cgroup?.remove();
    this.isolation?.cleanup();
    if (exited.timedOut) this.timedOut = true;
    return this.toResult(exited);
  }

  /** Nothing ran: a setup failure becomes a SETUP_ERROR Result, anything else rejects. */
  private failedToStart(err: unknown): Result {
    this.stdio.endUnconnected();
    void this.cgroup?.remove();
    this.isolation?.cleanup();
    if (err instanceof ForkServerError && err.code === 'SPAWN_FAILED') {
      this.setupError = err.failure ? this.describeSetupFailure(err.failure) : err.message;
      return this.toResult(null);
    }
    if (
      err instanceof MountError ||
      err instanceof SandboxSetupError ||
      err instanceof IsolationError ||
      err instanceof SandboxIdsError
    ) {
      this.setupError = err.message;
      return this.toResult(null);
    }
    throw err;
  }

  /** Step 6: the facts recorded → the Result (result-of.ts). */
  private toResult(exited: Exited | null, internal?: Error): Result {
    this.mark('result');
    return resultOf({
      walltimeMs: monotonicMs() - this.startTime,
      exited,
      targetStatus: this.targetStatus,
      usage: this.usage,
      hostPid: this.hostPid,
      isolation: this.executor.isolation,
      internal: internal ?? null,
      setupError: this.setupError,
      hookFailure: this.hookFailure,
      killedAs: this.killedAs && { ...this.killedAs, setupErrorAtKill: this.setupErrorAtKill },
      violation: this.violation,
      timedOut: this.timedOut,
      monitored: this.monitored,
      beforeExec: this.executor.enableSandboxBeforeExec,
      oom: this.oom,
      walltimeLimitS: this.longLived.walltimeSeconds ?? this.executor.limits.walltime,
      memoryLimitBytes: this.executor.limits.memory,
      stackTrace: this.stack,
      stackTraceError: this.stackError,
    });
  }

  // ==== custom-fork mode (forkserver/custom.ts): a child of the user's forkserver instead of steps 1–3 ====

  /** Custom-fork mode with `trace: true`: where the request's time went (fork-trace.ts). */
  forkTrace: ForkTrace | null = null;

  /** Custom-fork mode: true when the child was a sandboxed spare (sandboxed before the request; startForkServer's `childPolicy`). */
  sandboxedAhead = false;

  private async forkChild(): Promise<void> {
    const ex = this.executor;
    const server = ex.forkServer!;
    const trace = (this.forkTrace = ex.forkTrace ? new ForkTrace() : null);
    if (trace && ex.ipc.hasComms()) ex.ipc.comms.onNextMessage(() => trace.mark('first Comms reply'));
    const refusal = NotifyHooks.refusal(this.policy, this.hooks?.notify ?? null, {
      beforeExec: false,
      monitored: true,
    });
    if (refusal) throw new SandboxSetupError(refusal);
    if (ex.ipc.namedFds.size) {
      // The child's environment is the forkserver's: there is no way to pass it the names.
      ex.ipc.releaseOwned();
      throw new SandboxSetupError(
        'custom-fork mode: named fds (ipc.mapFd(fd, name)) need exec mode; map them by number',
      );
    }
    const fds = ex.ipc.list().map((m) => ({ target: m.sandboxee, fd: m.local }));
    // A child sandboxed ahead with this policy (startForkServer's childPolicy) when one is ready.
    const spare = this.hooks?.notify || this.learning ? null : server.takeSandboxedSpare(this.policy);
    if (spare) return this.adoptSandboxedSpare(spare, fds, trace);
    const client = prepareClientHandshake(this.policy);
    fds.push({ target: CLIENT_FD, fd: client.theirs });
    let forked: Forked;
    try {
      forked = await server.fork(fds, trace);
    } catch (err) {
      client.channel.close();
      throw new SandboxSetupError(`custom-fork mode: ${(err as Error).message}`);
    } finally {
      closeQuietly(client.theirs);
      ex.ipc.releaseOwned();
    }
    this.onForked(forked, server.waitExit(forked.id, forked.pidfd));
    this.setupDone = serveClientHandshake(client, this.policy, {
      take: async (n) => this.takeListenerOf(this.pidfd, n),
      watch: (listener) => this.wireMonitor(listener, this.policy),
      fail: (reason) => this.failSetup(reason),
      ...(trace ? { trace } : {}),
    });
  }

  /** A sandboxed spare (forkserver/sandboxed-spares.ts): already filtered and watched; the request's fds go to it. */
  private async adoptSandboxedSpare(
    spare: SandboxedSpare,
    fds: Array<{ target: number; fd: number }>,
    trace: ForkTrace | null,
  ): Promise<void> {
    trace?.mark('sandboxed spare taken');
    this.sandboxedAhead = true;
    this.monitorClosed = new Promise((resolve) => (this.onMonitorClosed = resolve));
    this.monitorId = spare.monitorId;
    // The spare's monitor entry kills nothing itself (it was made before the request's options
    // were known): a violation's tree signal is sent here unless the stack is taken first.
    spare.adopt((e) => {
      if (e.type === 'violation' && !this.holdsViolations() && this.pidfd >= 0) native().pidfdSendSignal(this.pidfd, 9);
      this.onMonitor(e);
    });
    this.onForked(spare.forked, spare.exit);
    this.hooks?.started(this.hostPid);
    try {
      await spare.assign(fds);
      trace?.mark('request assigned');
    } catch (err) {
      this.failSetup(`custom-fork mode: handing the request to a sandboxed spare: ${(err as Error).message}`);
    } finally {
      this.executor.ipc.releaseOwned();
    }
  }

  /** The child exists (`forked`): its pidfd, its end as the forkserver will report it, the walltime. */
  private onForked(forked: Forked, exit: Promise<Exited>): void {
    const ex = this.executor;
    this.pidfd = forked.pidfd;
    this.hostPid = forked.pid;
    this.monitored = true;
    this.longLived.spawned();
    if (this.killedAs) this.signalTree(); // kill() came while it was being forked
    // The forkserver reports the wait status. If it dies first, its sandbox takes the child along:
    // make sure (SIGKILL through our pidfd) and report that once the child is gone.
    this.exitPromise = exit.catch(async (err: unknown) => {
      if (err instanceof ForkServerHandleError && err.code === 'PROTOCOL')
        this.setupError ??= `custom-fork mode: ${err.message}`;
      this.signalTree();
      await pidfdExited(this.pidfd);
      return { pid: forked.nsPid, status: 9, utimeUs: 0, stimeUs: 0, maxRssKiB: 0, timedOut: false };
    });
    if (ex.limits.walltime > 0 && !this.longLived.walltimeOverridden)
      this.forkWalltime = setTimeout(
        () => this.forkWalltimeExpired(),
        Math.max(1, Math.round(ex.limits.walltime * 1000)),
      );
  }

  private forkWalltimeExpired(): void {
    // A child that ended just now (its EXITED still on the way) did not time out.
    if (this.pidfd < 0 || pidOfPidfd(this.pidfd) <= 0) return;
    this.timedOut = true;
    this.signalTree();
  }

  // ==== what the steps share ====

  /** A setup failure's message for the Result: the exhausted kernel counter named, and a host
   *  without namespaces named with the isolation mode that works (never a silent fallback). */
  private describeSetupFailure(failure: SetupFailure): string {
    const named = nameExhaustedCounter(failure, this.isolation?.hostIds.uid ?? null);
    return (this.executor.isolation === 'namespaces' && namespacesUnavailable(failure, named)) || named;
  }

  /** The setup went wrong on this side: recorded, and the sandbox ends. */
  private breakSetup(reason: string, overrides: boolean): void {
    if (overrides) this.setupError = reason;
    else this.setupError ??= reason;
    this.signalTree();
  }

  /** A setup failure reported by the client handshake: recorded, and the sandbox ends. */
  private failSetup(reason: string): void {
    this.breakSetup(reason, false);
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
    const target = fdTarget(fd);
    if (target !== 'anon_inode:seccomp notify') {
      closeQuietly(fd);
      throw new Error(
        `fd ${n} of the sandboxee is ${target || 'unknown'}, not a seccomp listener: sandboxMeHere() must be called by the process the executor started, not by a child of it`,
      );
    }
    return fd;
  }

  private onMonitor(e: MonitorEvent): void {
    if (e.type === 'learn' || e.type === 'learn_limit') {
      this.learning?.onEvent(e);
    } else if (e.type === 'hook' || e.type === 'hook_timeout') {
      this.hooks?.onMonitorEvent(e);
    } else if (e.type === 'exec') {
      // The monitor thread's own time: its report can reach JS after the forkserver's EXITED.
      this.trace?.mark('exec', 'the monitor let it through', e.atNs);
      this.hooks?.started(e.pid);
    } else if (e.type === 'exec_failed') {
      const name = errnoName(e.errno);
      const hint =
        name === 'ENOENT'
          ? ' (the binary or its ELF interpreter is missing inside the sandbox: add its libraries to the policy, e.g. addLibrariesForBinary)'
          : '';
      this.setupError = `execveat(${this.executor.path}): ${name}${hint}`;
      if (this.holdsViolations()) this.signalTree(); // the monitor left the tree alone
    } else if (e.type === 'violation' && !this.violation) {
      this.violation = describeViolation(e);
      if (this.holdsViolations()) void this.endAfterTrace('violation', e.pid);
      else this.escalateLater(); // the monitor sent the tree signal
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

  /** Lets go of the timers, the monitor and the pidfds (the tree is gone). */
  private release(): void {
    this.finished = true;
    if (this.forkWalltime) clearTimeout(this.forkWalltime);
    if (this.walltimeTimer) clearTimeout(this.walltimeTimer);
    if (this.escalation) clearTimeout(this.escalation);
    if (this.monitorId) monitor.unwatch(this.monitorId);
    this.monitorId = 0;
    closeQuietly(this.pidfd);
    closeQuietly(this.targetPidfd);
    this.pidfd = this.targetPidfd = -1;
  }
}

/** What an fd of ours is ('' when unknown). */
function fdTarget(fd: number): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return '';
  }
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
