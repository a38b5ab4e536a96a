// request.ts: step 1 of a sandbox's life, building its spawn request. Executor + Policy become one
// op list for the forkserver (forkserver/protocol.ts): what to run, the isolation, the cgroup, the
// limits, the fds and the setup socket, and the seccomp program. Everything made on the host for
// the request (cgroup, pipes, sockets, scratch directories) is in the returned SpawnRequest, or
// undone when building fails.
import { traceOnTimeout } from './stack-trace.js';
import { Comms } from '@sbx/client';
import { closeQuietly, native } from '@sbx/client/internal';
import { SbxError } from '@sbx/client';
import type { Executor } from './executor.js';
import type { Policy } from '../policy/policy.js';
import { EXEC_FD_TARGET, Op, OpList, SeccompFlag } from '../forkserver/protocol.js';
import { SandboxCgroup } from './cgroup.js';
import { INFINITY } from './limits.js';
import { applyCgroupLimits, missingForLimits } from './cgroup-limits.js';
import { addIsolationOps, type IsolationSetup } from '../isolation/isolation.js';
import { compileFilter, filesystemOf } from './sandbox-policy.js';
import { CLIENT_FD, prepareClientHandshake, type PreparedClientHandshake } from './client-handshake.js';
import { NotifyHooks } from './notify-hooks.js';
import { ioUringDenialProgram } from '../policy/io-uring-filter.js';
import type { SandboxStdio } from './stdio.js';

const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
let userNotif: boolean | undefined;
/** Whether this kernel has seccomp user notification (asked once). */
function userNotifAvailable(): boolean {
  return (userNotif ??= native().seccompActionAvailable(SECCOMP_RET_USER_NOTIF));
}

/** A sandbox that cannot be set up before anything is started (it becomes a SETUP_ERROR Result). */
export class SandboxSetupError extends SbxError {
  declare readonly code: 'SETUP';
  constructor(message: string) {
    super('SETUP', message);
  }
}

/** What building a request made; the Sandbox owns it from here. */
export interface SpawnRequest {
  ops: OpList;
  /** The child's ends of pipes and sockets: closed once the forkserver has them (after the spawn). */
  closeAfterSpawn: number[];
  /** Our end of the setup socket (read by setup-channel.ts). */
  setup: Comms;
  /** Sandbox-me-here mode: the handshake to serve once the child runs. */
  client: PreparedClientHandshake | null;
  cgroup: SandboxCgroup | null;
  isolation: IsolationSetup;
  /** The policy as compiled and monitored (the isolation may have adjusted it). */
  policy: Policy;
  /** Violations go to the seccomp monitor (USER_NOTIF), rather than killing outright. */
  monitored: boolean;
  /** Learning mode: the monitor's learn table for the filter. */
  learnTable: Buffer | undefined;
  /** The monitor's notify-hook table for the filter (notify-hooks.ts), if any. */
  hookTable: Buffer | undefined;
}

export interface RequestOptions {
  stdio: SandboxStdio;
  /** Learning mode (learn/): the monitor's learn table for a compiled filter. */
  learnTable?: ((filter: Buffer) => Buffer) | null;
  /** Notify hooks (Sandbox2's Notify), if the Sandbox was given any. */
  hooks?: NotifyHooks | null;
  /** Trace marks (timeline.ts), one per stage of the building. */
  mark?: (stage: string, detail?: string) => void;
}

/** Builds the op list of `ex` under `policy`. Throws (after undoing what it made) when it cannot. */
export function buildRequest(ex: Executor, policy: Policy, opts: RequestOptions): SpawnRequest {
  const mark = opts.mark ?? (() => {});
  const ops = new OpList();
  const closeAfterSpawn: number[] = [];
  let isolation: IsolationSetup | null = null;
  let cgroup: SandboxCgroup | null = null;
  let setup: Comms | null = null;
  let client: PreparedClientHandshake | null = null;
  try {
    // What to run
    ops.str(Op.ExecPath, ex.path);
    for (const a of ex.argv) ops.str(Op.Arg, a);
    ops.str(Op.Cwd, ex.cwd);

    // Namespaces (or none), identity, the filesystem view (isolation.ts)
    isolation = addIsolationOps(ops, ex, policy, filesystemOf(policy));
    const isoPolicy = isolation.policy;
    for (const [k, v] of Object.entries({ ...ex.env, ...isolation.env })) ops.str(Op.Env, `${k}=${v}`);
    mark('isolation ops');

    // A cgroup of its own where the host allows one: the whole tree dies with cgroup.kill.
    if (ex.cgroup !== 'off') {
      cgroup = SandboxCgroup.create();
      if (cgroup) ops.str(Op.Cgroup, cgroup.path);
      // RLIMIT_AS bounds the address space; memfd and tmpfs pages need the memory controller.
      if (cgroup && ex.limits.rlimitAs !== INFINITY) cgroup.limitMemory(ex.limits.rlimitAs);
      else if (ex.cgroup === 'required') {
        throw new SandboxSetupError(
          `no writable cgroup v2 here (cgroup: 'required'): run where a delegated cgroup v2 subtree is writable, or use cgroup: 'auto'; see sbx doctor`,
        );
      }
    }

    // cgroup limits (limits.memory, limits.pids) go into the fresh cgroup before anything runs
    // in it; such a sandbox never comes from the spawn pool (a slot's cgroup has none).
    const missing = missingForLimits(ex.limits, cgroup !== null);
    if (missing) throw new SandboxSetupError(missing);
    const cgroupLimited = ex.limits.memory !== null || ex.limits.pids !== null;
    if (cgroupLimited) {
      try {
        applyCgroupLimits(cgroup!.path, ex.limits);
      } catch (err) {
        throw new SandboxSetupError((err as Error).message);
      }
    }
    mark('cgroup', cgroup ? 'created' : 'none');

    // Limits. The walltime is kept by the forkserver: it fires even when this event loop is busy.
    for (const [res, v] of ex.limits.rlimits()) ops.rlimit(res, v, v);
    // With a stack on timeout (stack-trace.ts), the Sandbox's own timer takes the trace at the limit
    // and ends the tree; the forkserver's fires the unwinder's time budget later, should it be late.
    const walltimeMs = ex.limits.walltime * 1000 + (traceOnTimeout(ex) ? ex.stackTraces.timeoutMs + 500 : 0);
    if (ex.limits.walltime > 0) ops.u64(Op.Walltime, BigInt(Math.max(1, Math.round(walltimeMs))));
    if (!ex.spawnPool || cgroupLimited) ops.raw(Op.NoPool, Buffer.alloc(0));

    // fds: stdio, the IPC mappings, the setup socket
    const stdioFds = opts.stdio.connect(closeAfterSpawn);
    for (const [i, fd] of stdioFds.entries()) ops.fd(i, fd);
    for (const m of ex.ipc.list()) ops.fd(m.sandboxee, m.local);
    const [setupOurs, setupTheirs] = native().socketpair(false, false);
    closeAfterSpawn.push(setupTheirs);
    ops.setupSocket(setupTheirs);
    setup = new Comms(setupOurs, { maxMessageSize: 4096 });
    mark('socketpairs');

    // The policy, installed right before execveat; or, in sandbox-me-here mode, served to the
    // sandboxee's Client.sandboxMeHere() on the handshake socket (client-handshake.ts)
    let monitored = false;
    let learnTable: Buffer | undefined;
    let hookTable: Buffer | undefined;
    const notify = opts.hooks?.notify ?? null;
    if (ex.enableSandboxBeforeExec) {
      // Without user notification (old kernel, or monitor: 'kill') violations are KILL_PROCESS:
      // the target dies of SIGSYS and the Result says what is known.
      monitored = ex.monitor === 'unotify' && userNotifAvailable();
      if (opts.learnTable && !monitored)
        throw new SandboxSetupError(
          "learning needs the seccomp monitor (user notification, Linux 5.5+; not with monitor: 'kill')",
        );
      const { filter, cached } = compileFilter(isoPolicy, { monitor: monitored, execFd: EXEC_FD_TARGET });
      ops.raw(Op.Seccomp, filter);
      learnTable = opts.learnTable?.(filter);
      const refusal = NotifyHooks.refusal(isoPolicy, notify, { beforeExec: true, monitored });
      if (refusal) throw new SandboxSetupError(refusal);
      hookTable = opts.hooks?.table(isoPolicy, filter);
      if (monitored) ops.u32(Op.SeccompFlags, SeccompFlag.Listener);
      mark('policy compile', cached ? 'cached' : 'compiled');
    } else {
      if (opts.learnTable) throw new SandboxSetupError('learning runs in sandbox-before-exec mode only');
      const refusal = NotifyHooks.refusal(isoPolicy, notify, { beforeExec: false, monitored: true });
      if (refusal) throw new SandboxSetupError(refusal);
      client = prepareClientHandshake(isoPolicy);
      closeAfterSpawn.push(client.theirs);
      ops.fd(CLIENT_FD, client.theirs);
      // The policy's io_uring denial already from exec: libuv (Node 22 and later) opens rings at
      // start and would fail once sandboxMeHere() denies them; with io_uring_setup failing it
      // uses epoll. A forkserver so has no ring that fork() would share with its children.
      ops.raw(Op.Seccomp, Buffer.from(ioUringDenialProgram(isoPolicy.arch)));
      mark('policy compile', 'handshake');
    }
    // The trace: the forkserver and the child mark each step (zero cost without the op).
    if (ex.trace) ops.raw(Op.Trace, Buffer.alloc(0));
    return {
      ops,
      closeAfterSpawn,
      setup,
      client,
      cgroup,
      isolation,
      policy: isoPolicy,
      monitored,
      learnTable,
      hookTable,
    };
  } catch (err) {
    // Nothing was started: undo what was made for the request.
    setup?.close(); // a policy that does not compile must not leave the setup channel open
    client?.channel.close();
    for (const fd of closeAfterSpawn) closeQuietly(fd);
    void cgroup?.remove();
    isolation?.cleanup();
    throw err;
  }
}
