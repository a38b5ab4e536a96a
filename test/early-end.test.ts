// early-end.test.ts: a sandbox whose target exits on its own gets its Result at its init's report
// (sandbox/early-end.ts), before the forkserver's EXITED. These show that this early Result still
// comes only once nothing of the sandboxee runs, that the cgroup and the uid lease are released
// right after, and that every other ending (signal, walltime, violation, kill) still waits for
// EXITED and says what it says without the early path.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';
import { native } from '@sbx/client/internal';
import { isolationPolicy, processesWith, runWithStdout, tick } from './helpers.js';

/** The pids in a cgroup that are not the sandbox's own (exiting) init. */
function sandboxeePids(cgroup: string): number[] {
  let pids: string[];
  try {
    pids = readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return []; // removed already
  }
  return pids
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== 'sbx-init';
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

async function gone(path: string): Promise<boolean> {
  for (let i = 0; i < 400 && existsSync(path); i++) await tick(5);
  return !existsSync(path);
}

function traced(argv: string[], opts: ConstructorParameters<typeof Executor>[2] = {}, policy = isolationPolicy()) {
  return new Sandbox(new Executor(argv[0]!, argv, { stdio: 'ignore', trace: true, ...opts }), policy);
}

const stagesOf = (s: Sandbox) => s.timeline!.map((t) => t.stage);

describe('the Result at the init report', () => {
  it('comes once every process of the sandboxee is gone, background children included', async () => {
    const marker = `early-end-${process.pid}-${Date.now()}`;
    // The marker in the sleepers' command lines (exec -a) makes them findable from the host.
    const s = traced(['/bin/bash', '-c', `(exec -a ${marker} sleep 1000) & (exec -a ${marker} sleep 1000) & exit 0`]);
    const r = await s.run();
    expect(r.status, r.toString()).toBe('OK');
    expect(r.exitCode).toBe(0);
    expect(stagesOf(s)).toContain('target status');
    expect(stagesOf(s)).not.toContain('exit report'); // the early path was taken
    // The usage covers the tree the init reaped (sh and both sleepers), with or without a cgroup.
    expect(r.maxRssKiB).toBeGreaterThan(0);
    const cg = s.cgroupPath;
    if (cg) {
      expect(sandboxeePids(cg)).toEqual([]);
      expect(r.accounting).not.toBe('none');
      expect(await gone(cg)).toBe(true); // removed once the init was reaped
    }
    expect(processesWith(marker)).toEqual([]);
  });

  it('landlock isolation: the subreaper has reaped every descendant, orphans included, at the Result', async (ctx) => {
    if (native().landlockAbi() < 6) return ctx.skip(); // what isolation: 'landlock' needs
    const marker = `early-end-ll-${process.pid}-${Date.now()}`;
    const s = traced(
      ['/bin/bash', '-c', `( (exec -a ${marker} sleep 1000) & ) ; (setsid exec -a ${marker} sleep 1000 &) ; exit 0`],
      { isolation: 'landlock' },
    );
    const r = await s.run();
    expect(r.status, r.toString()).toBe('OK');
    expect(stagesOf(s)).not.toContain('exit report');
    expect(processesWith(marker)).toEqual([]);
    if (s.cgroupPath) expect(sandboxeePids(s.cgroupPath)).toEqual([]);
  });

  it('a background process that ignores SIGTERM and runs on is gone at the Result', async () => {
    const s = traced(['/bin/sh', '-c', "trap '' TERM HUP; (trap '' TERM HUP; exec sleep 1000) & exit 7"]);
    const r = await s.run();
    expect(r.status, r.toString()).toBe('OK');
    expect(r.exitCode).toBe(7);
    if (s.cgroupPath) expect(sandboxeePids(s.cgroupPath)).toEqual([]);
  });

  it("counts the whole tree's cpu: what the target's children used is in the early Result", async () => {
    // A child busy for a while; `times` then prints the cpu of the children sh waited for.
    const s = traced(['/bin/sh', '-c', '(i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done); times'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const { result: r, stdout: out } = await runWithStdout(s);
    expect(r.status, r.toString()).toBe('OK');
    expect(stagesOf(s)).not.toContain('exit report');
    const secs = [
      ...out
        .trim()
        .split('\n')
        .at(-1)!
        .matchAll(/(\d+)m([\d.]+)s/g),
    ].map((m) => Number(m[1]) * 60 + Number(m[2]));
    const childrenMs = (secs[0]! + secs[1]!) * 1000;
    expect(childrenMs).toBeGreaterThan(20);
    expect(r.cpuUserMs + r.cpuSystemMs).toBeGreaterThanOrEqual(childrenMs - 1); // times rounds to 1 ms
  });

  it('a target killed by a signal waits for EXITED (SIGNALED, as before)', async () => {
    const s = traced(['/bin/sh', '-c', 'kill -9 $$']);
    const r = await s.run();
    expect(r.status).toBe('SIGNALED');
    expect(r.signal).toBe('SIGKILL');
    expect(stagesOf(s)).toContain('exit report');
    if (s.cgroupPath) expect(existsSync(s.cgroupPath)).toBe(false);
  });

  it('the walltime still ends it as TIMEOUT', async () => {
    const s = traced(['/bin/sleep', '100'], { limits: { walltime: 0.3 } });
    const r = await s.run();
    expect(r.status).toBe('TIMEOUT');
    expect(stagesOf(s)).toContain('exit report');
  });

  it('a violation is still a VIOLATION', async () => {
    const b = new PolicyBuilder().allowDynamicStartup().allowExit().allowSyscalls(['write', 'fstat', 'newfstatat']);
    b.addLibrariesForBinary('/bin/sleep');
    const s = traced(['/bin/sleep', '0'], {}, b.build()); // sleep's clock_nanosleep is not allowed
    const r = await s.run();
    expect(r.status, r.toString()).toBe('VIOLATION');
  });

  it('kill() still ends it as EXTERNAL_KILL', async () => {
    const s = traced(['/bin/sleep', '100']);
    const done = s.run();
    await s.runAsync();
    await tick(50);
    s.kill();
    const r = await done;
    expect(r.status).toBe('EXTERNAL_KILL');
  });

  it('sandboxes back to back: each starts in a clean cgroup of its own, none sees the last one', async () => {
    const paths = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const s = traced(['/bin/sh', '-c', 'cat /proc/self/cgroup; ls /proc | grep -c "^[0-9]"'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const { result: r, stdout: out } = await runWithStdout(s);
      expect(r.status, r.toString()).toBe('OK');
      // Inside: the init, sh, and the pipeline's processes; nothing of the sandbox before.
      expect(Number(out.trim().split('\n').at(-1))).toBeLessThanOrEqual(4);
      if (s.cgroupPath) {
        expect(paths.has(s.cgroupPath)).toBe(false);
        paths.add(s.cgroupPath);
      }
    }
  });
});
