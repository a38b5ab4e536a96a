// trace.test.ts: the timeline of one sandbox (Executor option trace, sbx run --trace) on real
// sandboxes: present and complete when asked, absent when not.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Executor, formatTimeline, Sandbox, setSpawnPool, spawnPoolStats, type TimelineStage } from '@sbx/executor';
import { native } from '@sbx/client/internal';
import { isolationPolicy, repoRoot, tick } from './helpers.js';

const sbxBin = join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js');

async function traced(argv: string[], trace: boolean) {
  const sandbox = new Sandbox(new Executor(argv[0]!, argv, { stdio: 'ignore', trace }), isolationPolicy());
  const result = await sandbox.run();
  return { result, timeline: sandbox.timeline };
}

const names = (t: readonly TimelineStage[]) => t.map((s) => s.stage);

describe('trace', () => {
  it('names every stage from the API call to the Result, in order, on one monotonic clock', async () => {
    const { result, timeline } = await traced(['/bin/true'], true);
    expect(result.status, result.toString()).toBe('OK');
    expect(timeline).not.toBeNull();
    const t = timeline!;
    // The executor's stages, the forkserver's, and every setup step of the child.
    const expected = [
      'isolation ops',
      'cgroup',
      'socketpairs',
      'policy compile',
      'op list',
      'request write',
      'request',
      'open',
      'release',
      'setsid',
      'ids',
      'mount',
      'hostname',
      'network',
      'cwd',
      'fds',
      'rlimits',
      'signals',
      'capabilities',
      'init',
      'spawned',
      'seccomp listener taken',
      'monitor registration',
      'exec',
      'target status',
      'result',
    ];
    // The Result is given at the init's report that the target exited (after it reaped the rest
    // of the tree), without waiting for the forkserver's EXITED (sandbox/early-end.ts).
    expect(names(t)).not.toContain('exit report');
    if (native().landlockAbi() > 0) expected.push('landlock');
    for (const stage of expected) expect(names(t), stage).toContain(stage);
    // A slot of the spawn pool (pooled suite) or a clone on demand, never neither.
    expect(names(t).filter((n) => n === 'clone' || n === 'pool')).toHaveLength(1);
    expect(t.find((s) => s.stage === 'policy compile')?.detail).toMatch(/^(cached|compiled)$/);
    // Ordered and monotonic: each stage ends at or after the one before, and took what it says.
    for (let i = 0; i < t.length; i++) {
      expect(t[i]!.atUs).toBeGreaterThanOrEqual(i ? t[i - 1]!.atUs : 0);
      expect(t[i]!.tookUs).toBeCloseTo(t[i]!.atUs - (i ? t[i - 1]!.atUs : 0), 3);
    }
    // The causal order across the three processes holds on the one clock.
    const at = (n: string) => t.find((s) => s.stage === n)!.atUs;
    // (the forkserver may parse the request before this side marks its write as done)
    expect(at('op list')).toBeLessThanOrEqual(at('request'));
    expect(at('mount')).toBeLessThanOrEqual(at('capabilities'));
    expect(at('init')).toBeLessThanOrEqual(at('seccomp listener taken'));
    // 'exec' is the monitor thread's own time, taken as it lets the magic execveat through: after
    // the listener was taken (it is received only once registered), before the target could exit.
    // ('monitor registration' is marked when the registering call returns here, which can be after.)
    expect(at('seccomp listener taken')).toBeLessThanOrEqual(at('exec'));
    expect(at('exec')).toBeLessThanOrEqual(at('target status'));
    expect(t.at(-1)!.stage).toBe('result');
    // The last stage is as far from the start as the Result's walltime (same start, µs vs ms).
    expect(t.at(-1)!.atUs / 1000).toBeLessThanOrEqual(result.walltimeMs + 1);
    const table = formatTimeline(t);
    expect(table.split('\n')).toHaveLength(t.length + 1);
    expect(table).toMatch(/^ *at µs +took µs +by +stage$/m);
  });

  it('a sandbox from a spawn-pool slot shows the slot taking its request instead of a clone', async () => {
    setSpawnPool({ size: 1 });
    try {
      await traced(['/bin/true'], false); // the layout becomes the pool's template
      for (let i = 0; i < 500 && (await spawnPoolStats()).ready < 1; i++) await tick(10);
      const { result, timeline } = await traced(['/bin/true'], true);
      expect(result.status).toBe('OK');
      const stages = names(timeline!);
      expect(stages).toContain('pool');
      expect(stages).not.toContain('clone');
      // The slot ran the request half: from cwd on, the child's steps are there.
      for (const stage of ['cwd', 'fds', 'capabilities', 'exec', 'result']) expect(stages).toContain(stage);
    } finally {
      setSpawnPool({ size: 0 });
    }
  });

  it('is absent when not asked: no timeline, nothing recorded', async () => {
    const { result, timeline } = await traced(['/bin/true'], false);
    expect(result.status).toBe('OK');
    expect(timeline).toBeNull();
  });

  it('a sandbox whose setup fails still has its timeline, up to the Result', async () => {
    const ex = new Executor('/bin/true', ['/bin/true'], { stdio: 'ignore', trace: true, cwd: '/nonexistent-dir' });
    const s = new Sandbox(ex, isolationPolicy());
    const failed = await s.run();
    expect(failed.status).toBe('SETUP_ERROR');
    expect(failed.reason).toMatch(/^cwd: chdir\(\/nonexistent-dir\)/);
    const stages = names(s.timeline!);
    // The child fails before it would send its marks (right before the filter): the executor's stand.
    expect(stages).toEqual(expect.arrayContaining(['policy compile', 'request write', 'spawned', 'exit report']));
    expect(stages).not.toContain('exec');
    expect(stages.at(-1)).toBe('result');
  });

  it('rejects a trace option that is not a boolean', () => {
    expect(() => new Executor('/bin/true', ['/bin/true'], { trace: 'yes' as unknown as boolean })).toThrow(
      /Executor: trace must be a boolean, got "yes"/,
    );
  });

  it('sbx run --trace prints the per-stage table to stderr and leaves stdout to the program', () => {
    const r = spawnSync(process.execPath, [sbxBin, 'run', '--trace', '--', '/bin/echo', 'hi'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('hi\n');
    expect(r.stderr).toMatch(/^sbx: trace\n *at µs +took µs +by +stage\n/);
    for (const stage of ['policy compile', 'request write', 'mount', 'exec', 'target status', 'result'])
      expect(r.stderr).toContain(stage);
    const plain = spawnSync(process.execPath, [sbxBin, 'run', '--', '/bin/echo', 'hi'], { encoding: 'utf8' });
    expect(plain.stderr).not.toMatch(/trace/);
  });
});
