// Long-lived sandboxes (Sandbox2's AwaitResultWithTimeout, set_walltime_limit, IsTerminated):
// waiting with a timeout does not kill; the walltime of a running sandbox can be set, extended or
// removed; isTerminated() follows the Result.
import { describe, expect, it } from 'vitest';
import { Executor, Limits, Sandbox } from '@sbx/executor';
import { isolationPolicy, testcase } from './helpers.js';

function sleeper(ms: number, walltimeSeconds = 0): Sandbox {
  const probe = testcase('hook_probe');
  const executor = new Executor(probe, [probe, 'sleep', String(ms)], {
    stdio: ['ignore', 'pipe', 'ignore'],
    limits: new Limits({ walltime: walltimeSeconds }),
  });
  return new Sandbox(executor, isolationPolicy());
}

/** Resolves when the sandboxee wrote `text` to stdout. */
function outputOf(s: Sandbox): Promise<string> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    s.stdout!.on('data', (d: Buffer) => chunks.push(d));
    s.stdout!.on('end', () => resolve(Buffer.concat(chunks).toString()));
  });
}

describe('long-lived sandboxes', () => {
  it('awaitResult(timeoutMs) resolves to undefined while it runs, without killing it', async () => {
    const s = sleeper(600);
    const out = outputOf(s);
    await s.runAsync();
    expect(await s.awaitResult(50)).toBeUndefined();
    expect(s.isTerminated()).toBe(false);
    expect(await s.awaitResult(0)).toBeUndefined();
    const r = await s.awaitResult();
    expect(r.status).toBe('OK');
    expect(await out).toBe('done\n');
    expect(s.isTerminated()).toBe(true);
    // Once ended, a timed wait gives the Result at once.
    expect(await s.awaitResult(0)).toBe(r);
  });

  it('setWalltimeLimit() on a running sandbox ends it with TIMEOUT at the new deadline', async () => {
    const s = sleeper(60_000);
    const out = outputOf(s);
    await s.runAsync();
    expect(await s.awaitResult(30)).toBeUndefined();
    s.setWalltimeLimit(100);
    const r = await s.awaitResult();
    expect(r.status).toBe('TIMEOUT');
    expect(r.reason).toBe('walltime limit of 0.1 s exceeded');
    expect(await out).toBe('');
    expect(s.isTerminated()).toBe(true);
  });

  it('setWalltimeLimit(0) removes the Executor walltime; a larger one extends it', async () => {
    // Both would be TIMEOUT under the Executor's 0.3 s limit.
    const removed = sleeper(900, 0.3);
    const outRemoved = outputOf(removed);
    await removed.runAsync();
    removed.setWalltimeLimit(0);
    const extended = sleeper(900, 0.3);
    const outExtended = outputOf(extended);
    extended.runAsync().catch(() => {}); // set before the spawn returned: applied once it has
    extended.setWalltimeLimit(60_000);
    const [a, b] = await Promise.all([removed.awaitResult(), extended.awaitResult()]);
    expect(a.status).toBe('OK');
    expect(b.status).toBe('OK');
    expect(await outRemoved).toBe('done\n');
    expect(await outExtended).toBe('done\n');
  });

  it('a shorter limit set while the spawn is in flight still applies', async () => {
    const s = sleeper(60_000);
    s.runAsync().catch(() => {});
    s.setWalltimeLimit(50);
    const r = await s.awaitResult();
    expect(r.status).toBe('TIMEOUT');
  });

  it('misuse is named; after the end it changes nothing', async () => {
    const s = sleeper(0);
    expect(() => s.setWalltimeLimit(100)).toThrow(/setWalltimeLimit\(\) before runAsync\(\)/);
    await expect(s.awaitResult(10)).rejects.toThrow(/awaitResult\(\) before runAsync\(\)/);
    const r = await s.run();
    expect(r.status).toBe('OK');
    expect(() => s.setWalltimeLimit(-1)).toThrow(/milliseconds must be a number from 0/);
    expect(() => s.setWalltimeLimit(Number.NaN)).toThrow(/milliseconds must be a number from 0/);
    await expect(s.awaitResult(-5)).rejects.toThrow(/milliseconds must be a number from 0/);
    s.setWalltimeLimit(10);
    expect(await s.awaitResult()).toBe(r);
    expect(s.isTerminated()).toBe(true);
  });
});
