// kept-unused.test.ts: a request's uid lease and cgroup that a spawn-pool slot did not need (the
// slot brought its own) are kept for this process's next sandbox instead of being released and
// made again (sandbox/sandbox-ids.ts, sandbox/cgroup.ts). What is kept must be state no sandbox
// ever had: no process ran as the uid or in the cgroup, and nothing was written into it; the
// sandboxee has no say in either (both are chosen on this side before the request is sent).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Executor, Sandbox, sandboxIdRange, setSpawnPool, spawnPoolStats } from '@sbx/executor';
// The package's own module instances (the kept state lives in them), as '@sbx/executor' loads them.
import { keptSandboxUid } from '../packages/executor/dist/sandbox/sandbox-ids.js';
import { SandboxCgroup } from '../packages/executor/dist/sandbox/cgroup.js';
import { isolationPolicy, runWithStdout, tick } from './helpers.js';

const root = process.getuid?.() === 0;

async function poolReady(): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if ((await spawnPoolStats()).ready >= 1) return;
    await tick(10);
  }
  throw new Error(`the pool never had a ready slot: ${JSON.stringify(await spawnPoolStats())}`);
}

/** Host pids whose real, effective or saved uid is `uid`. */
function processesOfUid(uid: number): number[] {
  const found: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const line = /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? '';
      if (line.split(/\s+/).map(Number).includes(uid)) found.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function run(opts: ConstructorParameters<typeof Executor>[2]) {
  const s = new Sandbox(
    new Executor('/bin/sh', ['/bin/sh', '-c', 'id -u; cat /proc/self/cgroup'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      ...opts,
    }),
    isolationPolicy(),
  );
  const { result: r, stdout: out } = await runWithStdout(s);
  expect(r.status, r.toString()).toBe('OK');
  return { s, out };
}

describe('a lease and a cgroup a pool slot did not need', () => {
  afterAll(() => setSpawnPool({ size: 0 }));

  it('are kept only while no process ever used them, and the next sandbox gets them fresh', async () => {
    setSpawnPool({ size: 1 });
    await run({ spawnPool: true }); // the layout becomes the pool's template
    await poolReady();
    const hits = (await spawnPoolStats()).hits;
    const a = await run({ spawnPool: true });
    expect((await spawnPoolStats()).hits).toBe(hits + 1); // a slot served A
    // A's teardown (after the forkserver reaped its init) has run: it must not end the kept lease.
    const aCgroup = a.s.cgroupPath;
    for (let i = 0; i < 400 && (aCgroup ? existsSync(aCgroup) : i < 20); i++) await tick(5);
    const uid = keptSandboxUid();
    const cg = SandboxCgroup.keptPath();
    if (root && sandboxIdRange()) {
      // The slot ran A as its own uid; the request's lease was never used by any process.
      expect(uid).not.toBeNull();
      expect(uid).not.toBe(a.s.hostUid);
      expect(processesOfUid(uid!)).toEqual([]);
    }
    if (cg) {
      expect(cg).not.toBe(a.s.cgroupPath);
      expect(readFileSync(join(cg, 'cgroup.procs'), 'utf8').trim()).toBe(''); // never populated
    }
    // An on-demand sandbox takes what was kept: it runs as that uid, in that cgroup, alone.
    const b = await run({ spawnPool: false });
    if (uid !== null) expect(b.s.hostUid).toBe(uid);
    if (cg) expect(b.s.cgroupPath).toBe(cg);
    expect(keptSandboxUid()).toBeNull();
    expect(SandboxCgroup.keptPath()).toBeNull();
    // Used once, never kept again: B's cgroup goes with B.
    if (cg) {
      for (let i = 0; i < 400 && existsSync(cg); i++) await tick(5);
      expect(existsSync(cg)).toBe(false);
    }
  });

  it('a cgroup something was written into (memory.max) is not kept', async () => {
    setSpawnPool({ size: 1 });
    await run({ spawnPool: true, limits: { rlimitAs: 1 << 30 } });
    await poolReady();
    const before = SandboxCgroup.keptPath(); // what the request below takes and writes memory.max into
    const hits = (await spawnPoolStats()).hits;
    await run({ spawnPool: true, limits: { rlimitAs: 1 << 30 } });
    expect((await spawnPoolStats()).hits).toBe(hits + 1);
    expect(SandboxCgroup.keptPath()).toBeNull();
    if (before) expect(existsSync(before)).toBe(false);
  });
});
