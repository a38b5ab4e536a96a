// Sandboxed modules (@sbx/modules): the limit on 'call' mode children alive at once
// (maxConcurrentCalls: calls over it wait in order, their timeout running), and a forkserver
// that dies (killed here from the test): the calls it takes with it get FORKSERVER_DIED naming
// how it ended, and the next call starts a new forkserver.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxedModule, sandboxedModule } from '@sbx/modules';
import { openFdCount, repoRoot } from './helpers.js';
import { moduleFailure as failure } from './module-failure.js';

const hold = join(repoRoot, 'test', 'fixtures', 'modules', 'hold.mjs');
type Hold = typeof import('./fixtures/modules/hold.mjs');
interface Held {
  start: number;
  end: number;
  pid: number;
}

/** Most intervals open at one time (an end at the same ms as a start does not overlap it). */
function mostAtOnce(spans: Held[]): number {
  const edges: Array<[number, number]> = spans.flatMap(
    (s): Array<[number, number]> => [
      [s.start, 1],
      [s.end, -1],
    ],
  );
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let most = 0;
  for (const [, d] of edges) {
    open += d;
    most = Math.max(most, open);
  }
  return most;
}

/** The pids of `pid`'s children. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** True once `pid` is gone or a zombie. */
function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 10));
}

/** The forkserver's node process: its sandbox's init, or the init's child running runner.js. */
function forkServerNode(initPid: number): number {
  for (const pid of [initPid, ...childrenOf(initPid)]) {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmd.includes('runner.js')) return pid;
  }
  throw new Error(`no runner.js process at or under ${initPid}`);
}

describe("sandboxedModule, 'call' mode: maxConcurrentCalls", () => {
  it('N+k concurrent calls never have more than N children at once, and all complete', async () => {
    const m = await sandboxedModule<Hold>(hold, { maxConcurrentCalls: 2, spares: 1 });
    try {
      expect(m.maxConcurrentCalls).toBe(2);
      const spans = (await Promise.all(Array.from({ length: 6 }, () => m.api.hold(150)))) as Held[];
      expect(spans).toHaveLength(6);
      expect(new Set(spans.map((s) => s.pid)).size).toBe(6);
      expect(mostAtOnce(spans)).toBeLessThanOrEqual(2);
    } finally {
      await m.close();
    }
  });

  it('calls over the limit run in the order they came', async () => {
    const m = await sandboxedModule<Hold>(hold, { maxConcurrentCalls: 1, spares: 1 });
    try {
      const spans = (await Promise.all(Array.from({ length: 4 }, () => m.api.hold(20)))) as Held[];
      expect(mostAtOnce(spans)).toBe(1);
      for (let i = 1; i < spans.length; i++) expect(spans[i]?.start).toBeGreaterThanOrEqual(spans[i - 1]?.end ?? NaN);
    } finally {
      await m.close();
    }
  });

  it("a call's timeout counts its wait for a slot", async () => {
    const m = await sandboxedModule<Hold>(hold, { maxConcurrentCalls: 1, spares: 1, timeoutMs: 1500 });
    try {
      // the second call waits >= 1000 ms for the first, then needs 1000 ms more: past 1500 ms
      const first = m.api.hold(1000);
      const second = failure(m.api.hold(1000));
      expect(((await first) as Held).end).toBeGreaterThan(0);
      expect((await second).code).toBe('TIMEOUT');
      expect(await m.api.ping()).toBe('pong');
    } finally {
      await m.close();
    }
  });

  it('names a bad maxConcurrentCalls', async () => {
    for (const bad of [0, -1, 1.5, 2000, '2'])
      await expect(sandboxedModule(hold, { maxConcurrentCalls: bad as number })).rejects.toThrow(/maxConcurrentCalls/);
  });
});

describe('sandboxedModule: the forkserver dies', () => {
  let m: SandboxedModule<Hold>;
  beforeAll(async () => {
    m = await sandboxedModule<Hold>(hold, { spares: 1 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('a pending call gets FORKSERVER_DIED naming how it ended; the next call starts a new forkserver', async () => {
    const first = m.forkServerPid;
    const pending = failure(m.api.hold(10_000));
    await new Promise((r) => setTimeout(r, 300));
    process.kill(forkServerNode(first), 'SIGKILL');
    const err = await pending;
    expect(err.code).toBe('FORKSERVER_DIED');
    expect(err.message).toMatch(/forkserver died/);
    expect(err.result).toBeDefined();
    expect(err.fn).toBe('hold');
    expect(await m.api.ping()).toBe('pong');
    expect(m.restarts).toBe(1);
    expect(m.forkServerPid).not.toBe(first);
  });

  it('a call made once the forkserver is dead (init killed, no call pending) starts a new one and answers', async () => {
    const before = m.restarts;
    const pid = m.forkServerPid;
    process.kill(pid, 'SIGKILL');
    await until(() => exited(pid));
    expect(await m.api.ping()).toBe('pong');
    expect(m.restarts).toBe(before + 1);
    expect(m.forkServerPid).not.toBe(pid);
  });

  it("a session's pending call gets FORKSERVER_DIED; its next call runs in a child of the new forkserver", async () => {
    const s = m.session();
    try {
      expect(await s.api.ping()).toBe('pong');
      const pending = failure(s.api.hold(10_000));
      await new Promise((r) => setTimeout(r, 300));
      process.kill(forkServerNode(m.forkServerPid), 'SIGSEGV');
      const err = await pending;
      expect(err.code).toBe('FORKSERVER_DIED');
      expect(await s.api.ping()).toBe('pong');
    } finally {
      s.close();
    }
  });
});

describe("sandboxedModule, 'call' mode: the next call's channels are made ahead", () => {
  const sample = join(repoRoot, 'test', 'fixtures', 'modules', 'sample.mjs');

  it('the channels made while a child forges messages on its own are clean for the next call', async () => {
    const m = await sandboxedModule(sample, { spares: 1, timeoutMs: 20_000 });
    try {
      expect(await m.call('add', 1, 1)).toBe(2);
      // the next call's channels are made while this child writes a forged header on its channel
      expect((await failure(m.call('forge'))).code).toBe('PROTOCOL');
      expect(await m.call('add', 2, 3)).toBe(5);
      expect(await m.call('echo', { a: [1, 'x'] })).toEqual({ a: [1, 'x'] });
    } finally {
      await m.close();
    }
  });

  it('closing the module closes the channels made ahead (no fd left)', async () => {
    const before = openFdCount();
    const m = await sandboxedModule(sample, { spares: 1 });
    expect(await m.call('add', 1, 2)).toBe(3);
    await m.close();
    let now = openFdCount();
    for (let i = 0; i < 100 && now > before; i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = openFdCount();
    }
    expect(now).toBeLessThanOrEqual(before);
  });
});
