// Admission control (Runner) and the example code-runner service (issue 20), with real sandboxes.
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runner, RunnerError } from '@sbx/executor';
import { isolationPolicy, repoRoot } from './helpers.js';

describe('Runner', () => {
  it('runs at most `concurrency` sandboxes at once and rejects past maxQueue with QUEUE_FULL', async () => {
    const runner = new Runner({ concurrency: 2, maxQueue: 1 });
    const policy = isolationPolicy();
    let peak = 0;
    const sleepers = [0, 1, 2].map(() => {
      const p = runner.run('/bin/sleep', ['0.3'], { policy });
      peak = Math.max(peak, runner.active);
      return p;
    });
    expect(runner.active + runner.queued).toBe(3);
    await expect(runner.run('/bin/true', [], { policy })).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    const results = await Promise.all(sleepers);
    expect(results.map((r) => r.result.status)).toEqual(['OK', 'OK', 'OK']);
    expect(peak).toBeLessThanOrEqual(2);
    expect(runner.active + runner.queued).toBe(0);
    // room again
    expect((await runner.run('/bin/echo', ['again'], { policy })).stdout).toBe('again\n');
  });

  it('a queued run whose signal aborts never starts', async () => {
    const runner = new Runner({ concurrency: 1 });
    const policy = isolationPolicy();
    const first = runner.run('/bin/sleep', ['0.3'], { policy });
    const ac = new AbortController();
    const second = runner.run('/bin/touch', ['/tmp/x'], { policy, signal: ac.signal });
    ac.abort(new Error('gone'));
    await expect(second).rejects.toThrow('gone');
    expect((await first).result.status).toBe('OK');
  });

  it('rejects bad options', () => {
    expect(() => new Runner({ concurrency: 0 })).toThrow(RunnerError);
    expect(() => new Runner({ maxQueue: -1 })).toThrow(/maxQueue/);
    expect(() => new Runner({ nope: 1 } as never)).toThrow(/unknown option "nope"/);
  });
});

describe('examples/code-runner', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const mod = await import(join(repoRoot, 'examples', 'code-runner', 'server.mjs'));
    server = await mod.startServer({ port: 0, concurrency: 2, queue: 2 });
    const addr = server.address() as { port: number };
    base = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const post = (body: unknown) => fetch(`${base}/run`, { method: 'POST', body: JSON.stringify(body) });
  /** The service's JSON answer (examples/code-runner). */
  interface Reply {
    result: { status: string; cpuUserMs: number; cpuSystemMs: number; violation: { syscall: string; args: unknown[] } };
    stdout: string;
  }
  const reply = async (r: Response) => (await r.json()) as Reply;

  it('runs python, node and sh snippets, with input', async () => {
    for (const [lang, code, want] of [
      ['python', 'print(6*7)', '42\n'],
      ['node', 'console.log(6*7)', '42\n'],
      ['sh', 'read x; echo $((x*2))', '42\n'],
    ] as const) {
      const r = await post({ lang, code, input: '21\n' });
      expect(r.status).toBe(200);
      const body = await reply(r);
      expect(body.result.status, `${lang}: ${JSON.stringify(body)}`).toBe('OK');
      expect(body.stdout).toBe(want);
    }
  });

  it('bounds time, output and the queue, and answers bad requests', async () => {
    const slow = await reply(await post({ lang: 'python', code: 'while True: pass' }));
    expect(slow.result.status).toBe('TIMEOUT');
    expect(slow.result.cpuUserMs + slow.result.cpuSystemMs).toBeGreaterThan(0);
    const loud = await reply(await post({ lang: 'sh', code: 'yes' }));
    expect(loud.result.status).toBe('OUTPUT_LIMIT');
    expect(loud.stdout.length).toBe(64 * 1024);
    const bad = await post({ lang: 'ruby', code: '' });
    expect(bad.status).toBe(400);
    const big = await post({ lang: 'sh', code: 'x'.repeat(70 * 1024) });
    expect(big.status).toBe(413);
    // 2 running + 2 queued: the rest are turned away with 503, none waits without bound
    const burst = await Promise.all(Array.from({ length: 8 }, () => post({ lang: 'sh', code: 'sleep 0.5' })));
    const codes = burst.map((r) => r.status);
    expect(codes.filter((c) => c === 200).length).toBeGreaterThanOrEqual(4);
    expect(codes.filter((c) => c === 503).length).toBeGreaterThanOrEqual(1);
    expect(codes.every((c) => c === 200 || c === 503)).toBe(true);
  });

  it('a violation comes back as JSON (bigint arguments as strings)', async () => {
    const r = await reply(await post({ lang: 'python', code: 'import os\nos.setuid(0)' }));
    expect(r.result.status).toBe('VIOLATION');
    expect(r.result.violation.syscall).toBe('setuid');
    expect(r.result.violation.args.every((a: unknown) => typeof a === 'string')).toBe(true);
  });
});
