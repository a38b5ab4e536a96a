// isolation.ts: how a sandbox is walled off, as forkserver ops: the namespaces mode (user, mount,
// pid, net, ipc, uts, cgroup namespaces, a mount tree, Landlock under it) or the landlock mode
// (no namespace: Landlock rules on host paths, an unprivileged uid, a subreaper init). The rest of
// a spawn (limits, fds, the filter) is the same for both and stays in sandbox.ts.
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Executor } from '../sandbox/executor.js';
import { CloneFlag, FailureFlag, Op, SetupStep, type OpList, type SetupFailure } from '../forkserver/protocol.js';
import { constants } from 'node:os';
import { addLandlockOps, landlockAbi } from './landlock.js';
import { MountError, type FsEntry } from './mounts.js';
import { appendLayoutOps } from './layout-cache.js';
import { Policy } from '../policy/policy.js';
import { sharesHostNetwork } from '../sandbox/sandbox-policy.js';
import { SbxError } from '@sbx/client';
import { native } from '@sbx/client/internal';
import { sandboxIdRange, takeSandboxIds, type SandboxIds } from '../sandbox/sandbox-ids.js';
import { SANDBOX_ID } from '../view/identity.js';

/** Landlock isolation needs the signal and abstract-socket scopes. */
export const LANDLOCK_ISOLATION_MIN_ABI = 6;

const { EPERM, EACCES, ENOSPC, ENOSYS } = constants.errno;

/** What the chosen isolation set up, for the Sandbox. */
export interface IsolationSetup {
  /** The Landlock ABI the sandboxee runs under (0: none). */
  landlockAbi: number;
  /** The policy to compile and monitor: landlock mode turns "no network" into "no rule allows". */
  policy: Policy;
  /** Variables added to the sandboxee's environment (TMPDIR for a /tmp scratch directory). */
  env: Record<string, string>;
  /** The signal that ends the sandbox's whole tree when sent to the forkserver's child. */
  treeSignal: number;
  /** The host uid/gid the sandboxee runs as (the one its user namespace maps to). */
  hostIds: { uid: number; gid: number };
  /** The lease of hostIds when they come from the sandbox id range (root), else null. */
  lease: SandboxIds | null;
  /** Whether a SIGKILL follows treeSignal when the init is not gone after a grace period. */
  escalate?: boolean;
  /** Removes what the setup created on the host (scratch directories) and ends the lease: call it
   *  once the sandbox's whole tree is gone. Safe to call twice. */
  cleanup: () => void;
}

/** The host ids of a new sandbox: a leased pair (root, range on, no sandboxUser given), the
 *  Executor's sandboxUser (root), or this process's own (unprivileged). */
function hostIdsFor(ex: Executor): { uid: number; gid: number; lease: SandboxIds | null } {
  if (process.getuid?.() !== 0) return { uid: process.getuid!(), gid: process.getgid!(), lease: null };
  const range = sandboxIdRange();
  if (range && !ex.sandboxUserGiven) {
    const lease = takeSandboxIds(range);
    return { uid: lease.uid, gid: lease.gid, lease };
  }
  return { ...ex.sandboxUser, lease: null };
}

/** Thrown when the isolation cannot be set up here (it becomes a SETUP_ERROR Result). */
export class IsolationError extends SbxError {
  declare readonly code: 'ISOLATION';
  constructor(message: string) {
    super('ISOLATION', message);
  }
}

/** Appends the namespaces, identity and filesystem ops of the executor's isolation. */
export function addIsolationOps(ops: OpList, ex: Executor, policy: Policy, fsEntries: FsEntry[]): IsolationSetup {
  return ex.isolation === 'landlock'
    ? addLandlockIsolation(ops, ex, policy, fsEntries)
    : addNamespacesIsolation(ops, ex, policy, fsEntries);
}

function addNamespacesIsolation(ops: OpList, ex: Executor, policy: Policy, fsEntries: FsEntry[]): IsolationSetup {
  let ns =
    CloneFlag.NEWUSER | CloneFlag.NEWNS | CloneFlag.NEWPID | CloneFlag.NEWIPC | CloneFlag.NEWUTS | CloneFlag.NEWCGROUP;
  if (!sharesHostNetwork(policy)) ns |= CloneFlag.NEWNET;
  const ids = hostIdsFor(ex);
  try {
    return namespacesOps(ops, ex, policy, fsEntries, ns, ids);
  } catch (err) {
    ids.lease?.release();
    throw err;
  }
}

function namespacesOps(
  ops: OpList,
  ex: Executor,
  policy: Policy,
  fsEntries: FsEntry[],
  ns: number,
  ids: ReturnType<typeof hostIdsFor>,
): IsolationSetup {
  ops.u32(Op.Namespaces, ns);
  ops.str(Op.Hostname, ex.hostname);
  ops.words(Op.IdMap, [SANDBOX_ID, ids.uid, SANDBOX_ID, ids.gid]);
  // The /proc/sys/user counters of the sandbox's own user namespace (limits.ts says why)
  for (const [index, value] of ex.limits.userNamespaceLimits()) ops.userLimit(index, value);
  // The mount tree, and the same rules as a Landlock ruleset where the kernel has it
  const abi = ex.landlock === 'auto' ? landlockAbi() : 0;
  appendLayoutOps(ops, fsEntries, abi > 0);
  // SIGTERM: the pid namespace's init kills and reaps the tree itself, so its rusage counts
  // (native/forkserver/init.c); a SIGKILL follows if it is not gone after a grace period.
  const setup: IsolationSetup = {
    landlockAbi: abi,
    policy,
    env: {},
    treeSignal: 15,
    escalate: true,
    hostIds: { uid: ids.uid, gid: ids.gid },
    lease: ids.lease,
    // The lease the setup holds then: none once a pool slot's own uid replaced it (the Sandbox
    // kept the unused lease for the next sandbox, sandbox-ids.ts).
    cleanup: () => setup.lease?.release(),
  };
  return setup;
}

function addLandlockIsolation(ops: OpList, ex: Executor, policy: Policy, fsEntries: FsEntry[]): IsolationSetup {
  const abi = landlockAbi();
  if (abi < LANDLOCK_ISOLATION_MIN_ABI) {
    throw new IsolationError(
      `isolation 'landlock' needs Landlock ABI ${LANDLOCK_ISOLATION_MIN_ABI} or newer (Linux 6.12+: its signal and abstract-unix-socket scopes keep the sandboxee from reaching other processes), ` +
        `but this kernel offers ${abi > 0 ? `ABI ${abi}` : 'no Landlock'}; use isolation: 'namespaces' where the host allows namespaces (see sbx doctor)`,
    );
  }
  const root = process.getuid?.() === 0;
  const ids = hostIdsFor(ex);
  const { uid, gid } = ids;
  const scratch: string[] = [];
  // The host's IPC namespace is shared: a leased uid's SysV and POSIX IPC objects would outlive
  // its sandbox and be the next holder's. Removed when the lease ends, and when it begins (a
  // holder that died could not).
  if (ids.lease) removeIpcObjectsOf(uid);
  const cleanup = () => {
    for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
    if (ids.lease?.held) removeIpcObjectsOf(uid);
    ids.lease?.release();
  };
  const env: Record<string, string> = {};
  try {
    // biome-ignore lint/suspicious/useIterableCallbackReturn: the switch covers every FsEntry type and each case returns or throws (tsc checks it)
    const entries = fsEntries.map((e): FsEntry => {
      switch (e.type) {
        case 'bind':
          if (e.outside !== e.inside)
            throw new MountError(
              `isolation 'landlock' has no mount namespace: ${e.outside} cannot appear at ${e.inside}; allow it at its own path instead (addDirectory('${e.outside}') / addFile, or sbx run --mount ${e.outside})`,
            );
          return e;
        case 'proc':
        case 'dev': {
          const own = `/${e.type}`;
          if (e.inside !== own)
            throw new MountError(`isolation 'landlock' has no mount namespace: ${own} cannot appear at ${e.inside}`);
          return e;
        }
        case 'tmpfs': {
          // No tmpfs without a mount namespace: a private, empty directory of the host instead,
          // removed after the run. Only /tmp has a conventional way to be found there: TMPDIR.
          if (e.inside !== '/tmp')
            throw new MountError(
              `isolation 'landlock' has no mount namespace: cannot mount a tmpfs at ${e.inside}; allow a host directory there with addDirectory('${e.inside}', { writable: true }) instead`,
            );
          const dir = mkdtempSync(join(tmpdir(), 'sbx-tmp-'));
          scratch.push(dir);
          if (root) chownSync(dir, uid, gid);
          if (ex.env.TMPDIR === undefined) env.TMPDIR = dir;
          return { type: 'tmpfs', inside: dir, sizeBytes: e.sizeBytes };
        }
      }
    });
    ops.u32(Op.Namespaces, 0);
    if (root) ops.words(Op.HostIds, [uid, gid]);
    ops.raw(Op.Reaper, Buffer.alloc(0));
    const hostNetwork = sharesHostNetwork(policy);
    addLandlockOps(ops, entries, { restrictTcp: !hostNetwork });
    // No network namespace: "no network" becomes network rules that allow nothing, so that every
    // connect (and send with an address, and listen) is decided by the monitor.
    const effective =
      policy.network.mode === 'none'
        ? new Policy({ ...policyData(policy), network: { mode: 'rules', rules: [] } })
        : policy;
    return {
      landlockAbi: abi,
      policy: effective,
      env,
      treeSignal: 15,
      hostIds: { uid, gid },
      lease: ids.lease,
      cleanup,
    };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/** Removes the host IPC objects (SysV, POSIX message queues) a leased uid owns or created. */
function removeIpcObjectsOf(uid: number): void {
  native().ipcRemoveOwnedBy(uid);
}

function policyData(p: Policy) {
  return {
    arch: p.arch,
    rules: p.rules,
    overridable: p.overridable,
    defaultAction: p.defaultAction,
    mounts: p.mounts,
    network: p.network,
    presets: p.presets,
  };
}

/** The steps that, refused with EPERM or EACCES, mean the host refuses namespaces to us. */
const NAMESPACE_STEPS: readonly number[] = [SetupStep.Ids, SetupStep.Mount, SetupStep.Network, SetupStep.Hostname];
/** The errnos of a refused clone into new namespaces (ENOSYS: a container profile refusing both clones). */
const CLONE_REFUSED: readonly number[] = [EPERM, EACCES, ENOSPC, ENOSYS];

/**
 * A failure of namespaces mode that means the host forbids namespaces (a container's seccomp
 * profile, restricted user namespaces): `message` with what to do instead; null otherwise.
 * Decided by the failed step, its errno and flags, never by the message text. A path the sandbox
 * binds that the caller may not read (SetupFailure flag Path) is the policy's problem, not the
 * host's: it keeps its own message.
 */
export function namespacesUnavailable(f: SetupFailure, message = f.message): string | null {
  const refused = f.errno === EPERM || f.errno === EACCES;
  const hostRefuses =
    (f.step === SetupStep.Clone && CLONE_REFUSED.includes(f.errno)) ||
    f.step === SetupStep.IdMap ||
    (refused && !(f.flags & FailureFlag.Path) && NAMESPACE_STEPS.includes(f.step));
  if (!hostRefuses) return null;
  return (
    `namespaces are not available on this host: ${message}. ` +
    `To run without namespaces use isolation: 'landlock' (sbx run --isolation landlock); sbx doctor lists the isolation modes this host supports`
  );
}
