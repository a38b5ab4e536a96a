// The tree kill does not depend on the sandbox's init cooperating (issue 18 item 3). The init is
// sabotaged the ways a sandboxee once could (RLIMIT_NOFILE 0 through prlimit, as in the report) or
// that any outside event can cause (stopped by SIGSTOP); walltime, kill(), a violation and the
// executor's death must still end every process of the tree: setsid + double fork included.
// Without a pid namespace (landlock isolation) that is the forkserver's escalation (SIGKILL after a
// grace, cgroup.kill, and its sweep of orphans reparented to it); with one, SIGKILL of pid 1.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { native } from '@sbx/client/internal';
import { Executor, PolicyBuilder, Sandbox, type ExecutorOptions, type LimitsOptions, type Result } from '@sbx/executor';
import { processesWith, repoRoot } from '../helpers.js';
import { asRoot, executorStaysUnharmed, probePath } from './harness.js';

executorStaysUnharmed();

const landlockIsolation = native().landlockAbi() >= 6;

/** Everything allowed but the always-on denials, on the usual system paths (the walls under test
 *  are the tree kill's, not the policy's); valid in both isolation modes. */
function policy() {
  const b = new PolicyBuilder().defaultAction('allow');
  for (const d of ['/usr', '/bin', '/sbin', '/lib', '/lib64']) if (existsSync(d)) b.addDirectory(d);
  for (const f of ['/etc/ld.so.cache', '/etc/passwd', '/etc/group']) if (existsSync(f)) b.addFile(f);
  b.addFile('/dev/null', { writable: true });
  b.addDirectory('/proc');
  b.addFile(probePath());
  return b.build();
}

let serial = 0;
const marker = () => `${420 + (serial++ % 50)}.${process.pid}${Date.now() % 100000}`;
/** A shell that leaves four sleeps behind, two of them in new sessions after a double fork, then
 *  sleeps itself (or runs `then`). */
const tree = (m: string, then = `sleep ${m}`) =>
  `setsid sh -c "setsid sleep ${m} & sleep ${m} &" ; (sleep ${m} &) ; sleep ${m} & ${then}`;

/** True as soon as cond() is (it is not asked again: a count may pass by on its way up). */
async function until(cond: () => boolean, ms = 10000): Promise<boolean> {
  for (let t = 0; t < ms; t += 20) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** The tree's sleeps themselves (not the shells, whose short-lived forks also carry the marker). */
function sleepers(m: string): number {
  return processesWith(m).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8') === `sleep\0${m}\0`;
    } catch {
      return false;
    }
  }).length;
}

function state(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0]!;
  } catch {
    return '';
  }
}

/** Starts the tree, waits for all of it, sabotages its init (sandbox.pid: the forkserver's child). */
async function startSabotaged(
  m: string,
  sabotage: (init: number) => void | Promise<void>,
  options: ExecutorOptions,
  then?: string,
) {
  const ex = new Executor('/bin/sh', ['/bin/sh', '-c', tree(m, then)], {
    stdio: 'ignore',
    ...options,
    limits: { walltime: 60, ...(options.limits as LimitsOptions | undefined) },
  });
  const sandbox = new Sandbox(ex, policy());
  const result = sandbox.run();
  await sandbox.runAsync();
  let ended: Result | null = null;
  void result.then((r) => (ended = r));
  const started = await until(() => ended !== null || sleepers(m) >= 4);
  expect(started && ended === null, `ended early: ${String(ended)}`).toBe(true);
  await sabotage(sandbox.pid);
  return { sandbox, result };
}

const stop = async (init: number) => {
  process.kill(init, 'SIGSTOP');
  expect(await until(() => /[Tt]/.test(state(init)))).toBe(true);
};
/** What the sandboxee did to its init: RLIMIT_NOFILE 0, so that it can open no pidfd. Done
 *  as the init's own uid (what a same-uid process may do; this host's root lacks CAP_SYS_RESOURCE). */
const starve = (init: number) => {
  const [uid, gid] = ['Uid', 'Gid'].map((k) =>
    Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${init}/status`, 'utf8'))![1]),
  );
  const r = spawnSync('prlimit', ['--pid', String(init), '--nofile=0:0'], {
    encoding: 'utf8',
    ...(asRoot ? { uid, gid } : {}),
  });
  expect(r.status, r.stderr).toBe(0);
  expect(readFileSync(`/proc/${init}/limits`, 'utf8')).toMatch(/^Max open files\s+0\s+0\s/m);
};

async function expectTreeGone(m: string, result: Result, status: string): Promise<void> {
  expect(result.status, result.toString()).toBe(status);
  // The init's orphans are swept by the forkserver right after the init is reaped.
  expect(await until(() => processesWith(m).length === 0, 3000), `left: ${processesWith(m).join(' ')}`).toBe(true);
}

const modes: Array<{ name: string; options: ExecutorOptions; run: boolean }> = [
  { name: 'landlock isolation, no cgroup', options: { isolation: 'landlock', cgroup: 'off' }, run: landlockIsolation },
  {
    name: 'landlock isolation, cgroup where one can be made',
    options: { isolation: 'landlock', cgroup: 'auto' },
    run: landlockIsolation,
  },
  { name: 'namespaces', options: {}, run: true },
];

describe.each(modes)('an init that does not cooperate ($name)', ({ options, run }) => {
  it.runIf(run)('stopped (SIGSTOP): kill() ends the whole tree', async () => {
    const m = marker();
    const { sandbox, result } = await startSabotaged(m, stop, options);
    sandbox.kill();
    await expectTreeGone(m, await result, 'EXTERNAL_KILL');
  });

  it.runIf(run)('stopped: the walltime ends the whole tree', async () => {
    const m = marker();
    const { result } = await startSabotaged(m, stop, { ...options, limits: { walltime: 1.5 } });
    await expectTreeGone(m, await result, 'TIMEOUT');
  });

  // A pid namespace's init dies with SIGKILL whatever its limits: landlock isolation only.
  it.runIf(run && options.isolation === 'landlock')(
    'RLIMIT_NOFILE 0 (it can open no pidfd): the walltime and kill() end the whole tree',
    async () => {
      const m1 = marker();
      const timed = await startSabotaged(m1, starve, { ...options, limits: { walltime: 1.5 } });
      await expectTreeGone(m1, await timed.result, 'TIMEOUT');
      const m2 = marker();
      const killed = await startSabotaged(m2, starve, options);
      killed.sandbox.kill();
      await expectTreeGone(m2, await killed.result, 'EXTERNAL_KILL');
    },
  );

  it.runIf(run)('stopped: a violation ends the whole tree', async () => {
    const m = marker();
    // unshare(CLONE_NEWNS) is an always-on denial; the shell waits until the init is stopped.
    const { result } = await startSabotaged(m, stop, options, `sleep 0.5; ${probePath()} unshare-mnt; sleep ${m}`);
    const r = await result;
    expect(r.violation?.syscall).toBe('unshare');
    await expectTreeGone(m, r, 'VIOLATION');
  });

  it.runIf(run)("stopped: the executor's death ends the whole tree", async () => {
    const m = marker();
    const script = `
      import { Executor, PolicyBuilder, Sandbox } from '@sbx/executor';
      import { existsSync } from 'node:fs';
      const b = new PolicyBuilder().defaultAction('allow');
      for (const d of ['/usr', '/bin', '/sbin', '/lib', '/lib64']) if (existsSync(d)) b.addDirectory(d);
      for (const f of ['/etc/ld.so.cache', '/dev/null']) if (existsSync(f)) b.addFile(f, { writable: f === '/dev/null' });
      b.addDirectory('/proc');
      const s = new Sandbox(new Executor('/bin/sh', ['/bin/sh', '-c', ${JSON.stringify(tree(m))}], { stdio: 'ignore', ...${JSON.stringify(options)} }), b.build());
      s.run();
      await s.runAsync();
      console.log(s.pid);
      setInterval(() => {}, 1000);`;
    const executor = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      executor.stdout!.on('data', (d) => (out += d));
      expect(await until(() => /^\d+\n/.test(out) && sleepers(m) >= 4, 10000)).toBe(true);
      const init = Number(out.trim());
      await stop(init);
      executor.kill('SIGKILL');
      const left = () => processesWith(m).filter((p) => p !== executor.pid);
      expect(await until(() => left().length === 0, 5000), `left: ${left().join(' ')}`).toBe(true);
    } finally {
      executor.kill('SIGKILL');
    }
  });
});

describe("the init is out of the sandboxee's reach", () => {
  // A root executor's landlock init keeps root's uid with CAP_KILL alone; the sandboxee runs as a
  // leased uid: signals (and prlimit, ptrace) on the init need what it does not have. (prlimit64 on
  // another pid is also an always-on seccomp denial: test/escape/prlimit.test.ts.) (An
  // unprivileged executor has one uid for both: there, the seccomp denial of prlimit64 on other
  // pids, and the escalation above, are what hold.)
  it.runIf(landlockIsolation && asRoot)(
    'a signal to its init from inside is refused; the init keeps only CAP_KILL',
    async () => {
      const ex = new Executor('/bin/sh', ['/bin/sh', '-c', 'kill -STOP $PPID 2>&1; echo init=$PPID; sleep 3'], {
        stdio: ['ignore', 'pipe', 'ignore'],
        isolation: 'landlock',
        cgroup: 'off',
        limits: { walltime: 20 },
      });
      const sandbox = new Sandbox(ex, policy());
      const result = sandbox.run();
      await sandbox.runAsync();
      let out = '';
      sandbox.stdout!.on('data', (d) => (out += d));
      expect(await until(() => /init=\d+/.test(out))).toBe(true);
      const init = sandbox.pid;
      expect(out).toContain(`init=${init}`);
      const status = readFileSync(`/proc/${init}/status`, 'utf8');
      expect(status).toMatch(/^CapEff:\s+0000000000000020$/m); // CAP_KILL (bit 5) only
      expect(status).toMatch(/^CapBnd:\s+0000000000000000$/m);
      expect(readFileSync(`/proc/${init}/limits`, 'utf8')).not.toMatch(/^Max open files\s+0\s/m);
      const r = await result;
      // Refused by the kernel (EPERM): the init was never stopped.
      expect(r.status).toBe('OK');
      expect(out).toMatch(/Operation not permitted/);
      expect(status).not.toMatch(/^State:\s+T/m);
      expect(readdirSync('/proc').includes(String(init))).toBe(false);
    },
  );
});
