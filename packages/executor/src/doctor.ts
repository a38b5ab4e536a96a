// doctor.ts: what this host allows a sandbox to use, each missing piece with how to fix it.
import { existsSync, readFileSync, accessSync, constants as fsc, mkdtempSync, rmdirSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { native } from '@sbx/client/internal';
import { forkserverPath } from './forkserver/paths.js';
import { LANDLOCK_ISOLATION_MIN_ABI } from './isolation/isolation.js';
import { sandboxControllers } from './sandbox/cgroup-limits.js';

export interface Check {
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** How to fix it when !ok (and whether sbx needs it). */
  fix?: string;
  /** A missing required piece makes every sandbox fail. */
  required: boolean;
}

const SECCOMP_RET_USER_NOTIF = 0x7fc00000;

function kernelAtLeast(major: number, minor: number): boolean {
  const [a = 0, b = 0] = release().split(/[.-]/).map(Number);
  return a > major || (a === major && b >= minor);
}

function readTrim(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Probes the host. Cheap: reads /proc and /sys and asks the kernel; starts no sandbox. */
export function hostChecks(): Check[] {
  const n = native();
  const checks: Check[] = [];

  const maxUserNs = readTrim('/proc/sys/user/max_user_namespaces');
  const unprivClone = readTrim('/proc/sys/kernel/unprivileged_userns_clone');
  const apparmor = readTrim('/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
  const userNsOk = maxUserNs !== '0' && unprivClone !== '0' && apparmor !== '1';
  checks.push({
    name: 'user namespaces',
    ok: userNsOk,
    required: false,
    detail: `max_user_namespaces=${maxUserNs ?? '?'}${unprivClone !== null ? `, unprivileged_userns_clone=${unprivClone}` : ''}${apparmor !== null ? `, apparmor_restrict_unprivileged_userns=${apparmor}` : ''}`,
    fix: 'sysctl -w user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 / kernel.apparmor_restrict_unprivileged_userns=0 where present); inside a container, allow unshare/clone with namespace flags in its seccomp profile',
  });

  const seccompActions = readTrim('/proc/sys/kernel/seccomp/actions_avail');
  checks.push({
    name: 'seccomp filter',
    ok: seccompActions !== null,
    required: true,
    detail: seccompActions ?? 'no /proc/sys/kernel/seccomp (kernel without CONFIG_SECCOMP_FILTER)',
    fix: 'a kernel built with CONFIG_SECCOMP_FILTER',
  });
  checks.push({
    name: 'seccomp user notification',
    ok: n.seccompActionAvailable(SECCOMP_RET_USER_NOTIF),
    required: true,
    detail: 'SECCOMP_RET_USER_NOTIF (violation reports, network rules)',
    fix: 'Linux 5.0 or newer',
  });
  checks.push({
    name: 'seccomp TSYNC_ESRCH',
    ok: kernelAtLeast(5, 7),
    required: false,
    detail: `kernel ${release()} (TSYNC with a listener needs 5.7+: sandboxMeHere() in multi-threaded programs)`,
    fix: 'Linux 5.7 or newer',
  });
  checks.push({
    name: 'seccomp notification sync wake-up',
    ok: kernelAtLeast(6, 6),
    required: false,
    detail: 'SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP makes notified calls ~20x faster',
    fix: 'Linux 6.6 or newer (optional)',
  });

  let pidfd = false;
  try {
    const fd = n.pidfdOpen(process.pid);
    n.close(fd);
    pidfd = true;
  } catch {
    pidfd = false;
  }
  checks.push({
    name: 'pidfd',
    ok: pidfd,
    required: true,
    detail: 'pidfd_open/pidfd_send_signal/pidfd_getfd',
    fix: 'Linux 5.6 or newer',
  });

  const cg = cgroupV2Status();
  checks.push({ name: 'cgroup v2 (delegated, writable)', ok: cg.ok, required: false, detail: cg.detail, fix: cg.fix });
  // limits.memory / limits.pids: the controllers a sandbox's cgroup gets here.
  const ctl = sandboxControllers();
  const v1 = (['memory', 'pids'] as const).filter((c) => existsSync(`/sys/fs/cgroup/${c}/cgroup.procs`));
  for (const c of ['memory', 'pids'] as const) {
    const ok = ctl.enabled.includes(c);
    checks.push({
      name: `cgroup ${c} controller (limits.${c})`,
      ok,
      required: false,
      detail: ok
        ? `enabled for sandbox cgroups under ${ctl.base}`
        : ctl.base === null
          ? 'no sandbox cgroup can be created here'
          : `not in ${ctl.base}/cgroup.subtree_control (this cgroup offers: ${ctl.available.join(', ') || 'none'})${v1.includes(c) ? `; the ${c} controller is on a cgroup v1 hierarchy, which sbx does not use` : ''}`,
      fix: `delegate the ${c} controller to this process's cgroup v2 (systemd: Delegate=${c}); without it limits.${c} is a SETUP_ERROR${c === 'memory' ? ' (rlimitAs, or node --max-old-space-size, bound memory without a cgroup)' : ' (rlimitNproc bounds processes without a cgroup)'}`,
    });
  }

  const abi = n.landlockAbi();
  checks.push({
    name: 'Landlock',
    ok: abi > 0,
    required: false,
    detail: abi > 0 ? `ABI ${abi}` : abi === -95 ? 'disabled at boot' : 'not available',
    fix: 'Linux 5.13+ with landlock in the lsm= boot parameter',
  });

  // The isolation modes, asked the way a spawn asks (the forkserver clones into the namespaces).
  const probe = probeIsolation();
  const nsOk = probe.namespaces === 'ok';
  checks.push({
    name: 'isolation: namespaces',
    ok: nsOk,
    required: false,
    detail: nsOk
      ? 'user, mount, pid, net, ipc, uts and cgroup namespaces can be created (the default)'
      : `unavailable: ${probe.namespaces}`,
    fix: 'allow user namespaces (see "user namespaces" above), or run with isolation: \'landlock\' (sbx run --isolation landlock)',
  });
  const llOk = probe.landlockAbi >= LANDLOCK_ISOLATION_MIN_ABI;
  checks.push({
    name: 'isolation: landlock',
    ok: llOk,
    required: false,
    detail: llOk
      ? `available (Landlock ABI ${probe.landlockAbi}): isolation: 'landlock' / sbx run --isolation landlock`
      : `needs Landlock ABI ${LANDLOCK_ISOLATION_MIN_ABI}, this kernel offers ${probe.landlockAbi || 'none'}`,
    fix: `Linux 6.12+ with landlock in the lsm= boot parameter`,
  });
  const modes = [nsOk && 'namespaces', llOk && 'landlock'].filter(Boolean);
  checks.push({
    name: 'isolation modes',
    ok: modes.length > 0,
    required: true,
    detail: modes.length
      ? `this host supports: ${modes.join(', ')}`
      : 'neither namespaces nor Landlock isolation is available',
    fix: 'allow user namespaces, or use Linux 6.12+ with Landlock',
  });
  return checks;
}

/** `sbx-forkserver --probe`: "namespaces ok" or the failing call, and the Landlock ABI. */
function probeIsolation(): { namespaces: string; landlockAbi: number } {
  const r = spawnSync(forkserverPath(), ['--probe'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0)
    return { namespaces: `the forkserver probe failed: ${r.error?.message ?? r.stderr.trim()}`, landlockAbi: 0 };
  const ns = /^namespaces (.*)$/m.exec(r.stdout)?.[1] ?? 'no answer from the probe';
  const abi = Number(/^landlock (\d+)$/m.exec(r.stdout)?.[1] ?? 0);
  return { namespaces: ns, landlockAbi: abi };
}

function cgroupV2Status(): { ok: boolean; detail: string; fix?: string } {
  const mounts = readTrim('/proc/self/mountinfo') ?? '';
  const line = mounts.split('\n').find((l) => l.includes(' - cgroup2 '));
  if (!line)
    return {
      ok: false,
      detail: 'no cgroup2 mount',
      fix: 'mount cgroup2 (systemd.unified_cgroup_hierarchy=1); without it sbx kills trees through the pid namespace only',
    };
  const mountPoint = line.split(' ')[4]!;
  const self = (readTrim('/proc/self/cgroup') ?? '').split('\n').find((l) => l.startsWith('0::'));
  const dir = join(mountPoint, self ? self.slice(3) : '');
  const controllers = readTrim(join(dir, 'cgroup.controllers')) ?? '';
  let writable = false;
  try {
    accessSync(dir, fsc.W_OK);
    const probe = mkdtempSync(join(dir, 'sbx-doctor-'));
    writable = existsSync(join(probe, 'cgroup.kill'));
    rmdirSync(probe);
  } catch {
    writable = false;
  }
  return {
    ok: writable,
    detail: `${dir}: ${writable ? 'writable, cgroup.kill works' : 'not writable'}; controllers: ${controllers || 'none'}`,
    ...(writable
      ? {}
      : {
          fix: 'delegate a cgroup v2 subtree to this user (systemd: Delegate=yes); without it sbx kills trees through the pid namespace only',
        }),
  };
}

export function formatChecks(checks: Check[]): string {
  return checks
    .map(
      (c) =>
        `${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'}  ${c.name}: ${c.detail}${!c.ok && c.fix ? `\n      fix: ${c.fix}` : ''}`,
    )
    .join('\n');
}
