// Scheduling of processes outside a landlock-isolation sandbox (attack pass after issue 18). In
// landlock isolation the sandboxee shares the host's pid namespace. When its uid is shared with
// processes outside (an unprivileged executor: its own uid; a root executor with an explicit
// sandboxUser), setpriority(PRIO_PROCESS, pid) / PRIO_USER, sched_setaffinity,
// sched_setscheduler(SCHED_IDLE) and ioprio_set reach them: Landlock's scopes cover signals and
// ptrace, not these. On the old code `sbx run --isolation landlock -- renice -n 19 -p PID` reniced a
// same-uid host process to 19 (not to be raised back without CAP_SYS_NICE), and `renice -u`
// reniced the sandbox's own sbx-forkserver. sbx run's default now allows them on the caller only.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native } from '@sbx/client/internal';
import { isolationPolicy, repoRoot, runCaptured } from '../helpers.js';
import { asRoot } from './harness.js';

const abi = (() => {
  try {
    return native().landlockAbi();
  } catch {
    return 0;
  }
})();
const uid = 54321;
const sbx = join(repoRoot, 'packages/executor/bin/sbx.js');
/** Root: every sandbox and the canary share uid 54321 (--sandbox-user); else the executor's own uid. */
const shared = asRoot ? ['--sandbox-user', `${uid}:${uid}`] : [];

function niceOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
}

describe.skipIf(abi < 6)('landlock isolation with a shared uid: scheduling of processes outside', () => {
  it('sbx run: renice, taskset and chrt of a same-uid process outside are refused; its nice stays 0', () => {
    const canary = asRoot
      ? spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'sleep', '30'], {
          stdio: 'ignore',
        })
      : spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      spawnSync('sleep', ['0.3']);
      const pid = canary.pid!;
      const run = (cmd: string[]) =>
        spawnSync(process.execPath, [sbx, 'run', '--isolation', 'landlock', ...shared, '--', ...cmd], {
          encoding: 'utf8',
          timeout: 30_000,
        });
      const renice = run(['/usr/bin/renice', '-n', '19', '-p', String(pid)]);
      expect(renice.stderr).toMatch(/Operation not permitted/);
      expect(niceOf(pid)).toBe(0); // old code: 19
      const reniceUser = run(['/usr/bin/renice', '-n', '19', '-u', String(asRoot ? uid : process.getuid!())]);
      expect(reniceUser.stderr).toMatch(/Operation not permitted/);
      expect(niceOf(pid)).toBe(0);
      const affinity = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Cpus_allowed_list:\s*(\S+)/m)![1];
      const taskset = run(['/usr/bin/taskset', '-p', '-c', '0', String(pid)]);
      expect(taskset.status).not.toBe(0);
      expect(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Cpus_allowed_list:\s*(\S+)/m)![1]).toBe(affinity);
      const chrt = run(['/usr/bin/chrt', '-i', '-p', '0', String(pid)]);
      expect(chrt.status).not.toBe(0);
      expect(readFileSync(`/proc/${pid}/sched`, 'utf8')).toMatch(/^policy\s*:\s*0$/m); // SCHED_OTHER
    } finally {
      canary.kill('SIGKILL');
    }
  });

  it('sbx run: nice on itself still works (setpriority(PRIO_PROCESS, 0))', () => {
    const r = spawnSync(
      process.execPath,
      [
        sbx,
        'run',
        '--isolation',
        'landlock',
        ...shared,
        '--',
        '/usr/bin/nice',
        '-n',
        '5',
        '/bin/sh',
        '-c',
        'cut -d" " -f19 /proc/self/stat',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.stdout.trim(), r.stderr).toBe('5');
  });

  it('an always-on denial: a policy allowing everything still reaches the caller only (renice -p PID / -u UID, taskset, chrt are EPERM; nice on itself works)', async () => {
    const canary = asRoot
      ? spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'sleep', '30'], {
          stdio: 'ignore',
        })
      : spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const pid = canary.pid!;
      const run = (cmd: string[]) =>
        runCaptured(cmd, {
          policy: isolationPolicy(), // default allow: only the always-on denials stand in the way
          executor: {
            isolation: 'landlock',
            ...(asRoot ? { sandboxUser: { uid, gid: uid } } : {}),
            limits: { walltime: 10 },
          },
        });
      const renice = await run(['/usr/bin/renice', '-n', '19', '-p', String(pid)]);
      expect(renice.stderr).toMatch(/Operation not permitted/);
      const reniceUser = await run(['/usr/bin/renice', '-n', '19', '-u', String(asRoot ? uid : process.getuid!())]);
      expect(reniceUser.stderr).toMatch(/Operation not permitted/);
      expect(niceOf(pid)).toBe(0); // old main: 19
      const taskset = await run(['/usr/bin/taskset', '-p', '-c', '0', String(pid)]);
      expect(taskset.result.exitCode).not.toBe(0);
      const chrt = await run(['/usr/bin/chrt', '-i', '-p', '0', String(pid)]);
      expect(chrt.result.exitCode).not.toBe(0);
      expect(readFileSync(`/proc/${pid}/sched`, 'utf8')).toMatch(/^policy\s*:\s*0$/m); // SCHED_OTHER
      const self = await run(['/usr/bin/nice', '-n', '5', '/bin/sh', '-c', 'cut -d" " -f19 /proc/self/stat']);
      expect(self.stdout.trim(), self.stderr).toBe('5');
    } finally {
      canary.kill('SIGKILL');
    }
  });
});
