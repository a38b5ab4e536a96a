// limits.memory / limits.pids through the sandbox's cgroup v2 (issue 20), and the documented way to
// bound a node sandboxee's memory that node itself starts under. Real sandboxes: where the host
// lacks a controller, the Result must say what is missing; where it has it, the limit must hold.
import { describe, expect, it } from 'vitest';
import { Executor, hostChecks, run } from '@sbx/executor';
import { isolationPolicy } from './helpers.js';

const checks = hostChecks();
const has = (c: 'memory' | 'pids') => checks.find((x) => x.name === `cgroup ${c} controller (limits.${c})`)!.ok;
const py = { policy: isolationPolicy() };

describe('limits.memory and limits.pids (cgroup v2)', () => {
  it('sbx doctor lists both controllers', () => {
    for (const c of ['memory', 'pids'] as const) {
      const check = checks.find((x) => x.name === `cgroup ${c} controller (limits.${c})`);
      expect(check, c).toBeDefined();
      if (!check!.ok) expect(check!.fix).toMatch(new RegExp(`Delegate=${c}`));
    }
  });

  it.skipIf(has('memory'))(
    'without the memory controller limits.memory is a SETUP_ERROR naming what is missing',
    async () => {
      const { result } = await run('/bin/true', [], { limits: { memory: 64 << 20 } });
      expect(result.status).toBe('SETUP_ERROR');
      expect(result.reason).toMatch(/limits\.memory need/);
      expect(result.reason).toMatch(/memory controller|no writable, delegated cgroup v2/);
      expect(result.reason).toMatch(/sbx doctor/);
    },
  );

  it.skipIf(has('pids'))(
    'without the pids controller limits.pids is a SETUP_ERROR naming what is missing',
    async () => {
      const { result } = await run('/bin/true', [], { limits: { pids: 16 } });
      expect(result.status).toBe('SETUP_ERROR');
      expect(result.reason).toMatch(/limits\.pids need/);
    },
  );

  it.runIf(has('memory'))(
    'memory.max holds: a program allocating past it is OOM-killed, one under it runs',
    async () => {
      const grow = 'b = []\nwhile True: b.append(bytearray(1 << 20))';
      const { result } = await run('/usr/bin/python3', ['-c', grow], {
        ...py,
        limits: { memory: 64 << 20 },
        timeout: 30_000,
      });
      expect(result.status).toBe('SIGNALED');
      expect(result.reason).toMatch(/OOM killer: limits\.memory/);
      expect(result.maxRssKiB).toBeLessThanOrEqual(64 << 10);
      const ok = await run('/usr/bin/python3', ['-c', 'b = bytearray(8 << 20); print(len(b))'], {
        ...py,
        limits: { memory: 64 << 20 },
      });
      expect(ok.result.status).toBe('OK');
    },
  );

  it.runIf(has('pids'))('pids.max holds: forks past it fail, the sandbox itself runs', async () => {
    const { stdout, result } = await run(
      '/bin/sh',
      ['-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done 2>/dev/null; jobs | wc -l'],
      { ...py, limits: { pids: 4 } },
    );
    expect(result.status).toBe('OK');
    expect(Number(stdout.trim())).toBeLessThan(10);
  });

  it('cgroup limits with cgroup: off are refused at construction', () => {
    expect(() => new Executor('/bin/true', ['true'], { cgroup: 'off', limits: { memory: 64 << 20 } })).toThrow(
      /cannot be combined with cgroup: 'off'/,
    );
    expect(() => new Executor('/bin/true', ['true'], { limits: { memory: 10 } })).toThrow(/at least 1 MiB/);
    expect(() => new Executor('/bin/true', ['true'], { limits: { pids: -1 } })).toThrow(TypeError);
  });
});

describe("bounding a node sandboxee's memory", () => {
  const node = process.execPath;
  const nodePolicy = isolationPolicy(); // node is under /usr

  it('RLIMIT_AS of 512 MiB keeps node from starting at all (why it is not the way)', async () => {
    const { result } = await run(node, ['-e', 'console.log(1)'], {
      policy: nodePolicy,
      limits: { rlimitAs: 512 << 20 },
      timeout: 30_000,
    });
    expect(result.status === 'OK' && result.exitCode === 0).toBe(false);
  });

  it('--max-old-space-size: node starts, works, and a heap past it ends the program, not the host', async () => {
    const ok = await run(node, ['--max-old-space-size=64', '-e', 'console.log(new Array(1e5).fill(1).length)'], {
      policy: nodePolicy,
      timeout: 30_000,
    });
    expect(ok.result.status).toBe('OK');
    expect(ok.stdout.trim()).toBe('100000');
    const grow = 'const a = []; for (;;) a.push(new Array(1e5).fill({ x: 1 }))';
    const big = await run(node, ['--max-old-space-size=64', '-e', grow], { policy: nodePolicy, timeout: 60_000 });
    expect(big.result.status === 'OK' && big.result.exitCode === 0).toBe(false);
    expect(big.stderr).toMatch(/heap out of memory|Reached heap limit/i);
    // the heap stayed near its bound (V8 aborts; rss includes code and buffers)
    expect(big.result.maxRssKiB).toBeLessThan(400 << 10);
  });
});
