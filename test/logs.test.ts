// Logs to the supervisor (Sandbox2's SendLogsToSupervisor / LogServer): a sandboxee's log lines
// reach the Executor's `logs` handler over their own channel (the named fd "sbx.log"), from Node
// (console redirected by sendLogsToSupervisor) and C (sbx_client_log); hostile records end the
// channel with a clear record, without hanging the run or leaking a fd.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Executor, LogRecord } from '@sbx/executor';
import { fdCountSettled, isolationPolicy, openFdCount, repoRoot, runCaptured, testcase } from './helpers.js';

async function runWithLogs(argv: string[], policy = isolationPolicy()) {
  const records: LogRecord[] = [];
  let executor!: Executor;
  const c = await runCaptured(argv, {
    policy,
    executor: { limits: { walltime: 30 }, logs: (r) => records.push(r) },
    before: (_s, e) => {
      executor = e;
    },
  });
  await executor.logsDrained;
  return { ...c, records };
}

describe('logs to the supervisor', () => {
  it('C: sbx_client_log records arrive in order with their levels', async () => {
    const r = await runWithLogs([testcase('named_fds_peer'), 'log']);
    expect(r.result.status).toBe('OK');
    expect(r.stdout).toBe('info: 0\nwarn: 0\nerror: 0\ndebug: 0\nbad level: -22\n');
    expect(r.records).toEqual([
      { level: 'info', message: 'hello from C 42' },
      { level: 'warn', message: 'careful' },
      { level: 'error', message: 'broken' },
      { level: 'debug', message: 'details' },
    ]);
  });

  it('C: without the logs option there is no channel (-ENOENT) and nothing else changes', async () => {
    const c = await runCaptured([testcase('named_fds_peer'), 'log']);
    expect(c.result.status).toBe('OK');
    expect(c.stdout).toContain('info: -2\n');
  });

  it('Node: console.* goes to the handler until restored, formatted as console would', async () => {
    const policy = isolationPolicy((b) => {
      b.addDirectory(repoRoot);
      if (!process.execPath.startsWith('/usr/')) b.addFile(process.execPath).addLibrariesForBinary(process.execPath);
    });
    const r = await runWithLogs([process.execPath, join(repoRoot, 'test', 'fixtures', 'logs.mjs')], policy);
    expect(r.result.status, r.stderr).toBe('OK');
    expect(r.stdout).toBe('back on stdout\n');
    expect(r.stderr).toBe('');
    expect(r.records.slice(0, 5)).toEqual([
      { level: 'info', message: "hello 42 { from: 'Node' }" },
      { level: 'info', message: 'info line' },
      { level: 'warn', message: 'careful' },
      { level: 'error', message: 'broken' },
      { level: 'debug', message: 'details 7' },
    ]);
    // The long line is cut at 16 KiB and says so.
    expect(r.records).toHaveLength(6);
    expect(Buffer.byteLength(r.records[5]!.message)).toBeLessThanOrEqual(16 * 1024);
    expect(r.records[5]!.message.endsWith('…')).toBe(true);
  });

  for (const [mode, why] of [
    ['log-bad-tag', /a message with tag 0x7 is not a log record/],
    ['log-garbage', /MESSAGE_TOO_LARGE|above|too large/i],
  ] as const) {
    it(`a hostile record (${mode}) closes the channel with a record saying why; the run ends normally`, async () => {
      const before = openFdCount();
      const r = await runWithLogs([testcase('named_fds_peer'), mode]);
      expect(r.result.status).toBe('OK');
      expect(r.records).toHaveLength(1);
      expect(r.records[0]).toMatchObject({ level: 'error', sbx: true });
      expect(r.records[0]!.message).toMatch(why);
      // Records the sandboxee sent after the bad one are dropped with the channel (whether its
      // later sends already fail depends on when the executor read the bad one).
      expect(r.stdout).toMatch(/after: (0|-32|-104)\n/);
      expect(await fdCountSettled(before)).toBeLessThanOrEqual(before);
    });
  }

  it('a logs option that is not a function is a TypeError', async () => {
    const { Executor } = await import('@sbx/executor');
    // @ts-expect-error wrong type on purpose
    expect(() => new Executor('/bin/true', ['true'], { logs: 'yes' })).toThrow(/logs must be a function/);
  });
});
