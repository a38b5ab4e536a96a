// Processes, signals, fds and resource exhaustion: the sandboxee reaches no process outside, sees
// no fd of the executor, and exhausting processes, threads, memory, disk or dumping core stays
// inside its limits. executor.test.ts covers the mapped-fd list, RLIMIT_FSIZE/NOFILE/AS/CPU and
// the tree kill of a forking, setsid-ing shell; these are the hostile versions.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, tick } from '../helpers.js';
import { asRoot, escapePolicy, executorStaysUnharmed, lines, probe, probePath, processesRunning } from './harness.js';

executorStaysUnharmed();

const scratch = mkdtempSync(join(tmpdir(), 'sbx-escape-res-'));
chmodSync(scratch, 0o755);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A host process running as the sandboxee's host uid (nobody for a root executor), so that only
 *  the pid namespace, not permissions, keeps the sandboxee's signals away from it. */
async function canary(): Promise<ChildProcess> {
  const marker = `${400 + Math.floor(Math.random() * 100)}.${process.pid}${Date.now() % 1e6}`;
  const child = spawn('/bin/sleep', [marker], { stdio: 'ignore', ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
  await once(child, 'spawn');
  return child;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('signals', () => {
  it('kill(-1, SIGKILL) kills only inside the sandbox: a same-uid canary on the host survives', async () => {
    const c0 = await canary();
    try {
      const c = await probe(['kill-all']);
      expect(c.result.status, c.result.toString()).toBe('OK');
      expect(lines(c)).toEqual(['kill -1: ok', 'own child: killed']);
      await tick(50);
      expect(alive(c0.pid!)).toBe(true);
    } finally {
      c0.kill('SIGKILL');
    }
  });

  it('kill(host pid of the canary) is ESRCH: host pids do not exist inside', async () => {
    const c0 = await canary();
    try {
      const c = await probe(['kill', String(c0.pid)]);
      expect(lines(c)).toEqual(['kill: errno ESRCH']);
      expect(alive(c0.pid!)).toBe(true);
    } finally {
      c0.kill('SIGKILL');
    }
  });
});

describe('fds of the executor', () => {
  // Node marks every fd above 2 close-on-exec at start and opens its own with O_CLOEXEC, and the
  // addon does the same; an inheritable fd can still come from another native module. Such an fd
  // would reach the forkserver (posix_spawn passes it on) and from there could reach sandboxees.
  // A wrapper started as the forkserver (SBX_FORKSERVER_PATH) opens two inheritable fds, a host
  // directory and a secret file, then execs the real forkserver: the sandboxee must see neither.
  it('inheritable fds that reached the forkserver (a host directory, a secret file) are not in the sandboxee', async () => {
    writeFileSync(join(scratch, 'secret'), 'host secret\n');
    chmodSync(join(scratch, 'secret'), 0o644);
    const { forkserverPath } = await import('../../packages/executor/src/forkserver/paths.js');
    const wrapper = join(scratch, 'forkserver-wrapper.sh');
    const seen = join(scratch, 'wrapper-fds');
    // The forkserver starts with an empty environment: the real path is written into the script.
    writeFileSync(
      wrapper,
      `#!/bin/sh\nexec 7<"${join(scratch, 'secret')}" 8<"${scratch}"\nls /proc/$$/fd > "${seen}"\nexec "${forkserverPath()}" "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    const script = `
      import { existsSync } from 'node:fs';
      import { Executor, Sandbox, PolicyBuilder } from '@sbx/executor';
      const b = new PolicyBuilder().defaultAction('allow');
      for (const d of ['/usr', '/bin', '/lib', '/lib64']) if (existsSync(d)) b.addDirectory(d);
      b.addDirectory('/proc');
      const e = new Executor('/bin/sh', ['/bin/sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\\\n" " " | sed "s/ $//"; echo; for fd in 7 8; do (cat <&$fd) 2>/dev/null || echo "no fd $fd"; done'], { stdio: ['ignore', 'inherit', 'inherit'] });
      console.log(String((await new Sandbox(e, b.build()).run()).status));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, SBX_FORKSERVER_PATH: wrapper },
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await once(child, 'exit');
    // The leak is real: the forkserver started with both fds open (ls adds its own directory fd).
    expect(readFileSync(seen, 'utf8').trim().split('\n')).toEqual(expect.arrayContaining(['3', '7', '8']));
    const got = out.trim().split('\n');
    expect(got).toEqual(['0 1 2 3', 'no fd 7', 'no fd 8', 'OK']); // stdio, and the directory ls reads
    expect(out).not.toContain('host secret');
  });
});

describe('exhaustion stays inside the limits', () => {
  it('a fork bomb under RLIMIT_NPROC 64 never exceeds 64 processes and dies whole at the walltime', async () => {
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, processesRunning(probePath()).length)), 50);
    const t0 = performance.now();
    const c = await probe(['fork-bomb'], { executor: { limits: { rlimitNproc: 64, walltime: 1.5 } } });
    const elapsed = performance.now() - t0;
    clearInterval(sampler);
    expect(c.result.status, c.result.toString()).toBe('TIMEOUT');
    expect(lines(c)).toEqual(['fork-bomb: started']);
    expect(elapsed).toBeLessThan(6_000);
    expect(peak).toBeGreaterThan(8); // it did bomb
    expect(peak).toBeLessThanOrEqual(64); // RLIMIT_NPROC counts per sandbox: its own user namespace
    await tick(100);
    expect(processesRunning(probePath())).toEqual([]);
  });

  it('thread exhaustion: pthread_create fails with EAGAIN at RLIMIT_NPROC', async () => {
    const c = await probe(['threads'], { executor: { limits: { rlimitNproc: 32 } } });
    expect(c.result.status).toBe('OK');
    // 32 tasks of uid 1000 in the sandbox: init, the probe, 30 threads.
    expect(lines(c)).toEqual(['threads: 30 created, then EAGAIN']);
  });

  it('memory exhaustion: allocation fails with ENOMEM under RLIMIT_AS, the sandbox ends normally', async () => {
    const c = await probe(['memory'], { executor: { limits: { rlimitAs: 64 << 20 } } });
    expect(c.result.status).toBe('OK');
    const m = /^memory: (\d+) MiB, then ENOMEM$/.exec(lines(c)[0] ?? '');
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(32);
    expect(Number(m![1])).toBeLessThan(64);
  });

  it('disk exhaustion: a 16 MiB tmpfs fills to exactly 16 MiB, then ENOSPC', async () => {
    const c = await probe(['fill', '/tmp/big']);
    expect(c.result.status).toBe('OK');
    expect(lines(c)).toEqual([`fill: ${16 << 20} bytes, then ENOSPC`]);
  });

  it('core dumps: RLIMIT_CORE is 0 and cannot be raised; an abort leaves no core file, even in a writable host directory', async () => {
    const dir = join(scratch, 'cwd');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    // /cores, not under a path the policy binds more things below (their mountpoints would be made in it).
    const c = await probe(['core'], {
      policy: escapePolicy((b) => b.addDirectoryAt(dir, '/cores', { writable: true })),
      executor: { cwd: '/cores' },
    });
    expect(c.result.status).toBe('SIGNALED');
    expect(['SIGABRT', 'SIGIOT']).toContain(c.result.signal); // the same signal, 6
    expect(lines(c)).toEqual(['RLIMIT_CORE: 0 0', 'raise RLIMIT_CORE: errno EPERM', 'dumpable: 1']);
    await tick(100);
    expect(readdirSync(dir)).toEqual([]);
  });
});
