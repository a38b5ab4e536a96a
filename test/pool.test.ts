// The spawn pool (native/forkserver/pool.h): sandboxes prepared ahead of demand behave exactly
// like on-demand ones, a slot never serves another layout, and slots leak nothing and die with
// the executor. (test/executor.test.ts and test/escape/ run a second time with SBX_SPAWN_POOL=4:
// `pnpm test:pooled`.)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  statSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Executor, setSpawnPool, spawnPoolStats, SpawnPoolError, autoPoolSize, sandboxIdRange } from '@sbx/executor';
import { isolationPolicy, openFdCount, repoRoot, runCaptured, sh, tick } from './helpers.js';

/** Children of pid (host view). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    if (text) out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}

function comm(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** This process's forkserver (our child named sbx-forkserver). */
function forkserverPid(parent = process.pid): number {
  const fs = childrenOf(parent).filter((p) => comm(p) === 'sbx-forkserver');
  expect(fs.length).toBe(1);
  return fs[0]!;
}

const slotsOf = (fs: number) => childrenOf(fs).filter((p) => comm(p) === 'sbx-slot');

function statusField(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

/** Waits (bounded) until the pool has `n` ready slots. */
async function readySlots(n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await spawnPoolStats()).ready >= n) return;
    await tick(25);
  }
  throw new Error(`the pool never had ${n} ready slots: ${JSON.stringify(await spawnPoolStats())}`);
}

// What a sandbox can see of its own walls.
const PROBE = [
  'echo pid=$$ uid=$(id -u) gid=$(id -g)',
  // the outside ids are each sandbox's own (a root executor leases one per sandbox): not compared
  "awk '{print $1, $3}' /proc/self/uid_map /proc/self/gid_map",
  'cat /proc/sys/kernel/hostname',
  'ls /',
  // The pids the shell sees while no child of its own is alive: its glob is expanded in-process,
  // so the answer does not depend on which stage of a pipeline has started or ended yet.
  'echo /proc/[0-9]*',
  'grep -E "^(Cap(Eff|Prm|Bnd|Amb)|NoNewPrivs|Seccomp):" /proc/self/status',
  'tail -n +3 /proc/net/dev | cut -d: -f1',
  'readlink /proc/self/ns/user >/dev/null && echo ns-ok',
  'ls /proc/self/fd',
  'pwd; ulimit -n',
  'touch /usr/x 2>&1 | sed "s/.*: //"',
].join('; ');

afterAll(() => setSpawnPool({ size: 0 }));

describe('spawn pool', () => {
  it('refuses a bad size with an error that names it', () => {
    expect(() => setSpawnPool({ size: -1 })).toThrow(SpawnPoolError);
    expect(() => setSpawnPool({ size: 65 })).toThrow(/0\.\.64 or 'auto', got 65/);
    expect(() => setSpawnPool({ size: 1.5 })).toThrow(/got 1\.5/);
    expect(() => setSpawnPool({ size: 'many' as never })).toThrow(/got "many"/);
    expect(autoPoolSize()).toBeGreaterThanOrEqual(2);
  });

  it('a bad SBX_SPAWN_POOL is a clear error before any process starts', () => {
    const script = `
      import { Executor, Sandbox, PolicyBuilder } from '@sbx/executor';
      try {
        await new Sandbox(new Executor('/bin/true', ['true'], { stdio: 'ignore' }), new PolicyBuilder().build()).run();
        console.log('ran');
      } catch (e) { console.log(e.name + ': ' + e.message); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      env: { ...process.env, SBX_SPAWN_POOL: 'lots' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.stdout).toMatch(
      /SpawnPoolError: SBX_SPAWN_POOL: pool size must be an integer 0\.\.64 or 'auto', got "lots"/,
    );
  });

  it('a pooled sandbox gives the same results as an on-demand one', async () => {
    setSpawnPool({ size: 0 });
    const onDemand = await sh(PROBE, { executor: { cwd: '/tmp', limits: { rlimitNofile: 77 } } });
    setSpawnPool({ size: 2 });
    await sh('true'); // the template
    await readySlots(1);
    const before = await spawnPoolStats();
    const pooled = await sh(PROBE, { executor: { cwd: '/tmp', limits: { rlimitNofile: 77 } } });
    const after = await spawnPoolStats();
    expect(after.hits).toBe(before.hits + 1);
    expect(pooled.result.status).toBe('OK');
    expect(onDemand.result.status).toBe('OK');
    expect(pooled.stdout).toBe(onDemand.stdout);
    expect(pooled.stderr).toBe(onDemand.stderr);
    expect(pooled.stdout).toMatch(/pid=2 uid=1000 gid=1000/);
    expect(pooled.stdout).toMatch(/^\/proc\/1 \/proc\/2$/m); // init and the shell, nothing else
    expect(pooled.stdout).toMatch(/Seccomp:\s+2/);
    expect(pooled.stdout).toMatch(/\/tmp\n77\n/);
  });

  it('refills while a pooled sandbox still runs: the refill waits only briefly after a hand-over', async () => {
    setSpawnPool({ size: 2 });
    await sh('true');
    await readySlots(2);
    const s0 = await spawnPoolStats();
    let settled = false;
    const long = sh('sleep 5').finally(() => (settled = true));
    for (let i = 0; i < 200 && (await spawnPoolStats()).hits === s0.hits; i++) await tick(10);
    expect((await spawnPoolStats()).hits).toBe(s0.hits + 1);
    await readySlots(2); // the slot it took is made again, long before it ends
    expect(settled).toBe(false);
    expect((await long).result.status).toBe('OK');
  });

  it('violations, walltime and exit codes come back from a slot as on demand', async () => {
    setSpawnPool({ size: 2 });
    await sh('true');
    await readySlots(2);
    const { hits } = await spawnPoolStats();
    const denied = await sh('exit 3', { policy: isolationPolicy((b) => b.blockSyscallWithErrno('getpid', 1)) });
    expect(denied.result.exitCode).toBe(3);
    const timeout = await sh('sleep 30', { executor: { limits: { walltime: 0.3 } } });
    expect(timeout.result.status).toBe('TIMEOUT');
    expect((await spawnPoolStats()).hits).toBeGreaterThanOrEqual(hits + 2);
  });

  it('never uses a slot prepared for one layout for another', async () => {
    setSpawnPool({ size: 2 });
    const a = { policy: isolationPolicy(), executor: { hostname: 'layout-a' } };
    const b = { policy: isolationPolicy((p) => p.addTmpfs('/only-in-b')), executor: { hostname: 'layout-b' } };
    const see = 'cat /proc/sys/kernel/hostname; test -d /only-in-b && echo has-b || echo no-b';
    await sh('true', a);
    await readySlots(2); // slots of layout A are waiting
    for (let i = 0; i < 3; i++) {
      const s0 = await spawnPoolStats();
      const rb = await sh(see, b); // another layout: on demand, and B becomes the template
      const s1 = await spawnPoolStats();
      expect(rb.stdout).toBe('layout-b\nhas-b\n');
      expect(s1.hits).toBe(s0.hits);
      expect(s1.misses).toBe(s0.misses + 1);
      await readySlots(1);
      const rb2 = await sh(see, b); // now a slot of layout B
      expect(rb2.stdout).toBe('layout-b\nhas-b\n');
      expect((await spawnPoolStats()).hits).toBe(s1.hits + 1);
      const ra = await sh(see, a); // B's slots must not serve A
      expect(ra.stdout).toBe('layout-a\nno-b\n');
      await readySlots(1);
      const ra2 = await sh(see, a);
      expect(ra2.stdout).toBe('layout-a\nno-b\n');
    }
    expect((await spawnPoolStats()).recycled).toBeGreaterThan(0);
  });

  it('spawnPool: false runs on demand and leaves the slots and the template alone', async () => {
    setSpawnPool({ size: 2 });
    const a = { executor: { hostname: 'usual' } };
    await sh('true', a);
    await readySlots(2);
    const s0 = await spawnPoolStats();
    const odd = await sh('cat /proc/sys/kernel/hostname', { executor: { hostname: 'odd', spawnPool: false } });
    expect(odd.stdout).toBe('odd\n');
    const s1 = await spawnPoolStats();
    expect([s1.hits, s1.misses, s1.recycled]).toEqual([s0.hits, s0.misses, s0.recycled]);
    expect((await sh('cat /proc/sys/kernel/hostname', a)).stdout).toBe('usual\n');
    expect((await spawnPoolStats()).hits).toBe(s0.hits + 1);
    expect(() => new Executor('/bin/true', ['true'], { spawnPool: 'yes' as never })).toThrow(
      /spawnPool must be a boolean, got "yes"/,
    );
  });

  it('a host path replaced after the slots were prepared is seen as it is now', async () => {
    setSpawnPool({ size: 2 });
    const dir = mkdtempSync('/var/tmp/sbx-pool-');
    chmodSync(dir, 0o755); // the sandbox's user must reach it
    try {
      const file = join(dir, 'data');
      writeFileSync(file, 'one\n');
      const opts = { policy: isolationPolicy((b) => b.addFile(file)) };
      expect((await sh(`cat ${file}`, opts)).stdout).toBe('one\n');
      await readySlots(2); // these slots bound the inode that says "one"
      writeFileSync(join(dir, 'next'), 'two\n');
      renameSync(join(dir, 'next'), file); // a new inode under the same name
      const s0 = await spawnPoolStats();
      expect((await sh(`cat ${file}`, opts)).stdout).toBe('two\n');
      const s1 = await spawnPoolStats();
      expect(s1.hits).toBe(s0.hits); // served on demand, the stale slots recycled
      expect(s1.recycled).toBeGreaterThan(s0.recycled);
      await readySlots(1);
      expect((await sh(`cat ${file}`, opts)).stdout).toBe('two\n'); // and the new slots bind the new one
      expect((await spawnPoolStats()).hits).toBe(s1.hits + 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.getuid?.() === 0)('a host mount made after the slots were prepared recycles them', async () => {
    setSpawnPool({ size: 2 });
    const dir = mkdtempSync('/var/tmp/sbx-pool-');
    chmodSync(dir, 0o755); // the sandbox's user must reach it
    try {
      const opts = { policy: isolationPolicy((b) => b.addDirectory(dir)) };
      await sh('true', opts);
      await readySlots(2);
      const s0 = await spawnPoolStats();
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'sbxpooltest', join(dir)]);
      try {
        writeFileSync(join(dir, 'on-the-mount'), 'x');
        for (let i = 0; i < 100 && (await spawnPoolStats()).recycled === s0.recycled; i++) await tick(20);
        expect((await spawnPoolStats()).recycled).toBeGreaterThan(s0.recycled);
        await readySlots(1);
        expect((await sh(`ls ${dir}`, opts)).stdout).toBe('on-the-mount\n');
      } finally {
        execFileSync('umount', [dir]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.getuid?.() === 0)(
    'an unrelated host mount and unmount keep the slots; a mount under a bound directory recycles them',
    async () => {
      setSpawnPool({ size: 2 });
      const dir = mkdtempSync('/var/tmp/sbx-pool-');
      const elsewhere = mkdtempSync('/var/tmp/sbx-pool-other-');
      chmodSync(dir, 0o755); // the sandbox's user must reach it
      mkdirSync(join(dir, 'sub'));
      try {
        const opts = { policy: isolationPolicy((b) => b.addDirectory(dir)) };
        await sh('true', opts);
        await readySlots(2);
        const s0 = await spawnPoolStats();
        // A mount and an unmount nowhere near the layout's binds (as a container runtime makes under /run)
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'sbxpoolother', elsewhere]);
        execFileSync('umount', [elsewhere]);
        // The forkserver sees the mount-table change before this stats request (same poll, handled first)
        const s1 = await spawnPoolStats();
        expect(s1.recycled).toBe(s0.recycled);
        expect((await sh(`ls ${dir}`, opts)).stdout).toBe('sub\n');
        expect((await spawnPoolStats()).hits).toBe(s1.hits + 1); // a slot of before the mounts served it
        await readySlots(2);
        // A mount under a bound directory changes what a fresh bind shows: the slots go
        const s2 = await spawnPoolStats();
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'sbxpoolunder', join(dir, 'sub')]);
        try {
          writeFileSync(join(dir, 'sub', 'on-the-mount'), 'x');
          expect((await spawnPoolStats()).recycled).toBeGreaterThan(s2.recycled);
        } finally {
          execFileSync('umount', [join(dir, 'sub')]);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
        rmSync(elsewhere, { recursive: true, force: true });
      }
    },
  );

  it.runIf(process.getuid?.() === 0)('a layout whose slots cannot be built goes on demand and says why', async () => {
    setSpawnPool({ size: 2 });
    const dir = mkdtempSync('/var/tmp/sbx-pool-'); // 0700 root: the sandbox's nobody cannot reach into it
    try {
      writeFileSync(join(dir, 'f'), 'x');
      const opts = { policy: isolationPolicy((b) => b.addFile(join(dir, 'f'))) };
      const first = await sh('true', opts);
      expect(first.result.status).toBe('SETUP_ERROR');
      const settled = (x: { failures: number; ready: number; preparing: number }) =>
        x.failures > 0 && x.ready + x.preparing === 0;
      for (let i = 0; i < 200 && !settled(await spawnPoolStats()); i++) await tick(10);
      const stats = await spawnPoolStats();
      expect(stats.failures, JSON.stringify(stats)).toBeGreaterThan(0);
      expect(stats.lastError).toMatch(/^slot: mount: open_tree\(.*sbx-pool-.*Permission denied/);
      expect(stats.ready + stats.preparing).toBe(0); // no refill for a layout that fails
      await tick(100);
      expect((await spawnPoolStats()).prepared).toBe(stats.prepared);
      const second = await sh('true', opts); // on demand again: the same error as the first
      expect(second.result.status).toBe('SETUP_ERROR');
      expect(second.result.reason).toBe(first.result.reason);
      expect((await spawnPoolStats()).hits).toBe(stats.hits);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a slot holds no fd of the forkserver but its own, and waits non-dumpable', async () => {
    setSpawnPool({ size: 2 });
    await sh('true');
    await readySlots(2);
    const slots = slotsOf(forkserverPid());
    expect(slots.length).toBe(2);
    if (process.getuid?.() === 0) {
      for (const s of slots) {
        // 0-2, its own socket, the forkserver's pidfd and /dev/null: no copy of the executor's
        // channel (fd 3), no other slot's socket, no mount-table watch
        const fds = readdirSync(`/proc/${s}/fd`).map(Number);
        const link = (fd: number) => readlinkSync(`/proc/${s}/fd/${fd}`);
        const above = fds.filter((fd) => fd > 2).map(link);
        expect(above.length).toBe(3);
        expect(above.filter((l) => l.startsWith('socket:')).length).toBe(1);
        expect(above.filter((l) => l.includes('pidfd')).length).toBe(1);
        expect(above.filter((l) => l === '/dev/null').length).toBe(1);
        // non-dumpable while it waits: it runs as a leased sandbox uid (never root), yet its /proc files belong to root
        const uid = Number(/^Uid:\s+(\d+)\s/m.exec(readFileSync(`/proc/${s}/status`, 'utf8'))![1]);
        expect(uid).toBeGreaterThanOrEqual(sandboxIdRange()!.first);
        expect(statSync(`/proc/${s}/fd`).uid).toBe(0);
      }
    }
    for (const s of slots) expect(readFileSync(`/proc/${s}/status`, 'utf8')).toMatch(/NSpid:\s+\d+\s+1\n/); // pid 1 of its own namespace
  });

  it(`survives ${process.env.SBX_POOL_SOAK ?? 500} requests without leaking fds, processes or memory`, async () => {
    const n = Number(process.env.SBX_POOL_SOAK ?? 500);
    setSpawnPool({ size: 4 });
    await runCaptured(['/bin/true']);
    await readySlots(4);
    const fs = forkserverPid();
    const fdsBefore = openFdCount();
    const fsFdsBefore = readdirSync(`/proc/${fs}/fd`).length;
    const s0 = await spawnPoolStats();
    let rssMid = 0;
    for (let i = 0; i < n; i++) {
      const { result } = await runCaptured(['/bin/true']);
      if (result.status !== 'OK') throw new Error(`request ${i}: ${result}`);
      if (i === Math.floor(n / 5)) rssMid = statusField(fs, 'VmRSS');
    }
    await readySlots(4);
    await tick(100);
    const s1 = await spawnPoolStats();
    expect(s1.hits - s0.hits).toBeGreaterThan(n / 4); // most requests found a slot (b2b may outrun the refill)
    expect(s1.hits + s1.misses - s0.hits - s0.misses).toBe(n);
    expect(openFdCount()).toBeLessThanOrEqual(fdsBefore);
    expect(readdirSync(`/proc/${fs}/fd`).length).toBeLessThanOrEqual(fsFdsBefore);
    expect(childrenOf(fs).length).toBeLessThanOrEqual(4); // the slots, nothing else
    expect(statusField(fs, 'VmRSS')).toBeLessThanOrEqual(rssMid + 1024); // KiB: no growth per request
    console.log(
      `pool soak: ${n} requests, ${s1.hits - s0.hits} hits, forkserver fds ${fsFdsBefore} -> ${readdirSync(`/proc/${fs}/fd`).length}, VmRSS ${rssMid} -> ${statusField(fs, 'VmRSS')} KiB`,
    );
  }, 600_000);

  it('killing the executor leaves no slot alive', async () => {
    const script = `
      import { setSpawnPool, spawnPoolStats, Executor, Sandbox, PolicyBuilder } from '@sbx/executor';
      setSpawnPool({ size: 3 });
      const b = new PolicyBuilder().defaultAction('allow');
      for (const d of ['/usr', '/bin', '/lib', '/lib64']) b.addDirectory(d);
      const s = new Sandbox(new Executor('/bin/true', ['/bin/true'], { stdio: 'ignore' }), b.build());
      await s.run();
      for (let i = 0; i < 400 && (await spawnPoolStats()).ready < 3; i++) await new Promise((r) => setTimeout(r, 25));
      console.log('ready ' + (await spawnPoolStats()).ready);
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    expect(line.toString()).toMatch(/ready 3/);
    const fs = forkserverPid(child.pid!);
    const slots = slotsOf(fs);
    expect(slots.length).toBe(3);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const alive = () =>
      [fs, ...slots].filter((p) => comm(p) !== null && ['sbx-slot', 'sbx-forkserver'].includes(comm(p)!));
    for (let i = 0; i < 100 && alive().length > 0; i++) await tick(30);
    expect(alive()).toEqual([]);
  });
});
