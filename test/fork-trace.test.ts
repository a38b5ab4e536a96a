// The trace of one custom-fork request (Executor(forkServer, { trace: true }) → Sandbox.forkTrace):
// a real Node forkserver (test/fixtures/fork-server.mjs) forks real children that install their
// real filter; the trace must name every stage of the executor, the forkserver and the child,
// in the order the request passes them. No absolute times are asserted (bench/fork.mjs has them).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Executor,
  ForkTrace,
  type ForkServerHandle,
  type ForkTraceStage,
  Sandbox,
  startForkServer,
  type Policy,
} from '@sbx/executor';
import { forkNodePolicy, repoRoot, tick } from './helpers.js';

const serverScript = join(repoRoot, 'test', 'fixtures', 'fork-server.mjs');

function startNodeServer(policy: Policy, spares: number): Promise<ForkServerHandle> {
  return startForkServer(
    process.execPath,
    [process.execPath, '--single-threaded', '--v8-pool-size=1', serverScript, '0', String(spares)],
    { policy, cwd: repoRoot, env: { PATH: '/usr/bin:/bin' }, forkTimeoutMs: 10_000 },
  );
}

/** One traced request: the child sandboxes itself and answers a ping. */
async function tracedPing(server: ForkServerHandle, policy: Policy, job: object = { kind: 'ping' }) {
  const ex = new Executor(server, { limits: { walltime: 20 }, trace: true });
  const comms = ex.ipc.comms;
  const sandbox = new Sandbox(ex, policy);
  await sandbox.runAsync();
  await comms.sendMessage(job);
  const reply = (await comms.recvMessage()) as { ok?: boolean };
  const result = await sandbox.awaitResult();
  comms.close();
  expect(result.status).toBe('OK');
  expect(reply.ok).toBe(true);
  expect(sandbox.forkTrace).toBeInstanceOf(ForkTrace);
  return sandbox.forkTrace!.stages;
}

const EXECUTOR = [
  'request',
  'request sent',
  'FORKED received',
  'pidfd checked',
  'HELLO received',
  'INSTALLED received',
  'listener taken',
  'monitor watching',
  'GO sent',
  'first Comms reply',
];
// HELLO goes before the policy is received, or (the policy waiting already) with INSTALLED
const CHILD_HANDSHAKE = [
  'back in JS',
  'sandboxMeHere() called',
  'policy received',
  'NO_NEW_PRIVS',
  'filter installed (TSYNC)',
  'INSTALLED sent',
  'GO received',
];

function at(stages: ForkTraceStage[], process: string, stage: string): number {
  const s = stages.filter((x) => x.process === process && x.stage === stage);
  expect(s, `${process}: ${stage} in\n${stages.map((x) => `${x.process}: ${x.stage}`).join('\n')}`).toHaveLength(1);
  return s[0]!.us;
}

/** Each stage of `names` (of `process`) is there once, and none comes before the one before it. */
function expectOrdered(stages: ForkTraceStage[], process: string, names: string[]): void {
  const times = names.map((n) => at(stages, process, n));
  for (let i = 1; i < times.length; i++)
    expect(times[i], `${process}: "${names[i]}" after "${names[i - 1]}"`).toBeGreaterThanOrEqual(times[i - 1]!);
}

/** What one process stamped must come after what caused it in another (one clock for all). */
function expectCausal(stages: ForkTraceStage[], before: [string, string], after: [string, string]): void {
  expect(at(stages, ...after), `${after.join(': ')} after ${before.join(': ')}`).toBeGreaterThanOrEqual(
    at(stages, ...before),
  );
}

function expectHandshakeCausality(t: ForkTraceStage[]): void {
  expectOrdered(t, 'child', ['sandboxMeHere() called', 'HELLO sent', 'INSTALLED sent']);
  expectCausal(t, ['executor', 'request'], ['forkserver', 'request received']);
  expectCausal(t, ['child', 'sandboxMeHere() called'], ['executor', 'HELLO received']);
  expectCausal(t, ['child', 'filter installed (TSYNC)'], ['executor', 'INSTALLED received']);
  expectCausal(t, ['executor', 'monitor watching'], ['child', 'GO received']);
  expectCausal(t, ['child', 'GO received'], ['executor', 'first Comms reply']);
}

describe('custom-fork mode: the trace of one request (fork on request)', () => {
  const policy = forkNodePolicy();
  let server: ForkServerHandle;
  beforeAll(async () => {
    server = await startNodeServer(policy, 0);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('names every stage of the executor, the forkserver and the child, in order', async () => {
    const t = await tracedPing(server, policy);
    expectOrdered(t, 'executor', EXECUTOR);
    expectOrdered(t, 'forkserver', [
      'request received',
      'runtime prepared (DOFORK, workers parked)',
      'fork() returned',
      'child isolated (reported)',
    ]);
    expectOrdered(t, 'child', [
      'fork() returned',
      'isolated (setsid, caps, NO_NEW_PRIVS, Landlock)',
      'fds in place',
      'runtime repaired (uv_loop_fork)',
      ...CHILD_HANDSHAKE,
    ]);
    expectCausal(t, ['forkserver', 'request received'], ['child', 'fork() returned']);
    expectCausal(t, ['child', 'fds in place'], ['forkserver', 'child isolated (reported)']);
    expectCausal(t, ['forkserver', 'child isolated (reported)'], ['executor', 'FORKED received']);
    expectHandshakeCausality(t);
    // on request nothing is done ahead, and no spare is involved
    expect(t.every((s) => s.us >= 0)).toBe(true);
    expect(t.some((s) => s.stage.includes('spare'))).toBe(false);
  }, 60_000);

  it('an untraced request has no trace, and the option is checked', async () => {
    const ex = new Executor(server, { limits: { walltime: 20 } });
    const comms = ex.ipc.comms;
    const sandbox = new Sandbox(ex, policy);
    await sandbox.runAsync();
    await comms.sendMessage({ kind: 'ping' });
    expect(((await comms.recvMessage()) as { ok: boolean }).ok).toBe(true);
    expect((await sandbox.awaitResult()).status).toBe('OK');
    comms.close();
    expect(sandbox.forkTrace).toBeNull();
    expect(() => new Executor(server, { trace: 'yes' as unknown as boolean })).toThrow(/trace must be a boolean/);
  }, 60_000);
});

describe('custom-fork mode: the trace of one request (from a spare)', () => {
  const policy = forkNodePolicy();
  let server: ForkServerHandle;
  beforeAll(async () => {
    server = await startNodeServer(policy, 1);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('shows the spare taking the request and what it did ahead of it', async () => {
    await tracedPing(server, policy); // the first child may be forked on request
    await tick(300); // quiet: the forkserver forks its spare
    const t = await tracedPing(server, policy);
    expectOrdered(t, 'executor', EXECUTOR);
    expectOrdered(t, 'forkserver', ['request received', 'spare assigned']);
    expectOrdered(t, 'child', [
      'fork() returned',
      'isolated (setsid, caps, NO_NEW_PRIVS, Landlock)',
      'runtime repaired (uv_loop_fork)',
      'spare got the request',
      'fds in place',
      ...CHILD_HANDSHAKE,
    ]);
    // done ahead: before the request
    for (const s of ['fork() returned', 'isolated (setsid, caps, NO_NEW_PRIVS, Landlock)'])
      expect(at(t, 'child', s), s).toBeLessThan(0);
    expectCausal(t, ['forkserver', 'spare assigned'], ['child', 'spare got the request']);
    expectHandshakeCausality(t);
  }, 60_000);
});

describe('ForkTrace: stamps from the sandboxees are checked', () => {
  const record = (stage: number, ns: bigint) => {
    const b = Buffer.alloc(16);
    b.writeUInt32LE(stage, 0);
    b.writeBigUInt64LE(ns, 8);
    return b;
  };
  const message = (...records: Buffer[]) => {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(records.length, 0);
    return Buffer.concat([head, ...records]);
  };

  it('takes well-formed records of the right process, and refuses the rest whole', () => {
    const t = new ForkTrace();
    const now = process.hrtime.bigint();
    expect(t.addRecords('forkserver', message(record(1, now)))).toBe(true);
    // a child stage in the forkserver's reply, an unknown stage, a short message, a wrong count,
    // too many records, a stamp an hour away
    expect(t.addRecords('forkserver', message(record(16, now)))).toBe(false);
    expect(t.addRecords('child', message(record(99, now)))).toBe(false);
    expect(t.addRecords('child', Buffer.alloc(4))).toBe(false);
    expect(t.addRecords('child', message(record(22, now)).subarray(0, 20))).toBe(false);
    expect(t.addRecords('child', message(...Array.from({ length: 25 }, () => record(22, now))))).toBe(false);
    expect(t.addRecords('child', message(record(22, now), record(23, now + 3_600_000_000_000n)))).toBe(false);
    expect(t.stages.map((s) => `${s.process}: ${s.stage}`)).toEqual([
      'executor: request',
      'forkserver: request received',
    ]);
    expect(t.toString()).toMatch(/forkserver {2}request received/);
  });
});
