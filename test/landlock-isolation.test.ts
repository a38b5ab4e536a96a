// landlock-isolation.test.ts: isolation 'landlock' (issue #12, part B), a sandbox without any
// namespace. Most cases run the executor under native/testcases/container_sim, a container
// host's seccomp profile (unshare/setns EPERM, clone with CLONE_NEW* EPERM, clone3 ENOSYS), and
// try the forbidden thing from inside: host files, signals to outside processes, the host's
// loopback network, escaping the walltime by double fork + setsid.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '@sbx/client/internal';
import { DEFAULT_SANDBOX_ID_RANGE, Executor, PolicyBuilder } from '@sbx/executor';
import { isolationPolicy, openFdCount, processesWith, repoRoot, runCaptured, testcase } from './helpers.js';

const abi = (() => {
  const v = native().landlockAbi();
  return Math.max(v, 0);
})();
const root = process.getuid!() === 0;
/** Whether `uid` is what the sandboxee runs as: one leased from the sandbox id range when the
 *  executor is root, else the executor's own. */
const isSandboxeeUid = (uid: number) =>
  root
    ? uid >= DEFAULT_SANDBOX_ID_RANGE.first && uid < DEFAULT_SANDBOX_ID_RANGE.first + DEFAULT_SANDBOX_ID_RANGE.count
    : uid === process.getuid!();
const sbxBin = join(repoRoot, 'packages', 'executor', 'bin', 'sbx.js');
const fixture = join(repoRoot, 'test', 'fixtures', 'isolation-run.mjs');

/** `sbx ARGS` under the container simulator. */
function simSbx(args: string[]) {
  const r = spawnSync(testcase('container_sim'), [process.execPath, sbxBin, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Run {
  result: {
    status: string;
    reason: string;
    exitCode: number | null;
    isolation: string | null;
    violation: { kind: string; syscall: string; address?: string } | null;
  };
  stdout: string;
  stderr: string;
  ms: number;
}

/** One sandbox through the API, the executor under the container simulator (fixtures/isolation-run.mjs). */
function simRun(spec: Record<string, unknown>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(testcase('container_sim'), [process.execPath, fixture, JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as Run);
      } catch {
        reject(new Error(`isolation-run exited ${code}: ${out}\n${err}`));
      }
    });
  });
}

describe.skipIf(abi < 6)('isolation: landlock', () => {
  it('the simulator really forbids namespaces (the premise of this suite)', () => {
    const r = spawnSync(testcase('container_sim'), ['/usr/bin/unshare', '--user', '/bin/true'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Operation not permitted/);
  });

  it('without --isolation landlock: fails fast with the documented error naming the flag', async () => {
    const cli = simSbx(['run', '--', '/bin/echo', 'never']);
    expect(cli.code).toBe(126);
    expect(cli.stdout).toBe('');
    expect(cli.stderr).toMatch(
      /SETUP_ERROR, namespaces are not available on this host: clone3?\(.*CLONE_NEWUSER.*\): Operation not permitted/,
    );
    expect(cli.stderr).toMatch(/--isolation landlock/);

    const api = await simRun({ argv: ['/bin/echo', 'never'] });
    expect(api.result.status).toBe('SETUP_ERROR');
    expect(api.result.isolation).toBe('namespaces');
    expect(api.result.reason).toMatch(/isolation: 'landlock'/);
    expect(api.stdout).toBe('');
  });

  it('runs an ordinary program, as an unprivileged user with no capabilities, and says which isolation ran', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-iso-json-'));
    chmodSync(dir, 0o777);
    try {
      const json = join(dir, 'r.json');
      const r = simSbx([
        'run',
        '--isolation',
        'landlock',
        '--result-json',
        json,
        '--',
        '/bin/sh',
        '-c',
        'echo hello | tr a-z A-Z; id -u; grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):" /proc/self/status',
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toBe('HELLO');
      expect(isSandboxeeUid(Number(lines[1])), lines[1]).toBe(true);
      const status = Object.fromEntries(lines.slice(2).map((l) => l.split(/:\s+/) as [string, string]));
      for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) expect(status[cap], cap).toBe('0000000000000000');
      // The bounding set is empty when root dropped to the sandbox's uid; an unprivileged executor cannot change its own.
      if (root) expect(status.CapBnd).toBe('0000000000000000');
      expect(status.NoNewPrivs).toBe('1');
      expect(JSON.parse(readFileSync(json, 'utf8'))).toMatchObject({
        status: 'OK',
        exitCode: 0,
        isolation: 'landlock',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('host files outside the allowed paths', () => {
    let outside: string;
    let allowed: string;
    beforeAll(() => {
      // World-readable and world-writable: only Landlock stands between them and the sandboxee.
      outside = mkdtempSync(join(tmpdir(), 'sbx-iso-outside-'));
      writeFileSync(join(outside, 'readable'), 'secret\n');
      chmodSync(join(outside, 'readable'), 0o644);
      writeFileSync(join(outside, 'writable'), 'original\n');
      chmodSync(join(outside, 'writable'), 0o666);
      chmodSync(outside, 0o777);
      allowed = mkdtempSync(join(tmpdir(), 'sbx-iso-allowed-'));
      chmodSync(allowed, 0o777);
    });
    afterAll(() => {
      rmSync(outside, { recursive: true, force: true });
      rmSync(allowed, { recursive: true, force: true });
    });

    it('cannot be read, written, created or listed, even world-readable/writable ones; /etc/shadow neither', async () => {
      const script = [
        'cat /etc/shadow >/dev/null 2>&1 && echo shadow-read || echo shadow-denied',
        `cat ${outside}/readable 2>/dev/null || echo read-denied`,
        `(echo pwned >> ${outside}/writable) 2>/dev/null && echo wrote || echo write-denied`,
        `(echo new > ${outside}/new) 2>/dev/null && echo created || echo create-denied`,
        `ls ${outside} >/dev/null 2>&1 && echo listed || echo list-denied`,
        `(echo ok > ${allowed}/out) && cat ${allowed}/out`,
        'echo scratch > "$TMPDIR/s" && cat "$TMPDIR/s"',
      ].join('; ');
      const r = simSbx(['run', '--isolation', 'landlock', '--mount', `${allowed}:rw`, '--', '/bin/sh', '-c', script]);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual([
        'shadow-denied',
        'read-denied',
        'write-denied',
        'create-denied',
        'list-denied',
        'ok',
        'scratch',
      ]);
      expect(readFileSync(join(outside, 'writable'), 'utf8')).toBe('original\n');
      expect(existsSync(join(outside, 'new'))).toBe(false);
      expect(readFileSync(join(allowed, 'out'), 'utf8')).toBe('ok\n');
    });

    it('the same through the API (Result.isolation), and the scratch TMPDIR is removed afterwards', async () => {
      const r = await simRun({
        isolation: 'landlock',
        writable: [allowed],
        argv: ['/bin/sh', '-c', `echo "$TMPDIR"; cat ${outside}/readable || true; echo x > ${allowed}/api`],
      });
      expect(r.result.status, r.result.reason).toBe('OK');
      expect(r.result.isolation).toBe('landlock');
      const [scratch] = r.stdout.trim().split('\n');
      expect(scratch).toMatch(/sbx-tmp-/);
      expect(r.stdout).not.toMatch(/secret/);
      expect(r.stderr).toMatch(/Permission denied/);
      expect(existsSync(scratch!)).toBe(false);
      expect(readFileSync(join(allowed, 'api'), 'utf8')).toBe('x\n');
    });
  });

  it('kill(-1, SIGCONT) from inside reaches no process outside', async () => {
    // A stopped process of the sandboxee's own uid, outside the sandbox: SIGCONT would resume it.
    const victim: ChildProcess = spawn('/bin/sleep', ['300'], {
      stdio: 'ignore',
      ...(root ? { uid: 65534, gid: 65534 } : {}),
    });
    const state = () => readFileSync(`/proc/${victim.pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
    try {
      process.kill(victim.pid!, 'SIGSTOP');
      for (let i = 0; i < 200 && state() !== 'T'; i++) await new Promise((r) => setTimeout(r, 5));
      expect(state()).toBe('T');
      // --sandbox-user: the sandboxee is nobody like the victim, so only the Landlock scope stands between them.
      const r = simSbx([
        'run',
        '--isolation',
        'landlock',
        ...(root ? ['--sandbox-user', '65534:65534'] : []),
        '--',
        '/bin/sh',
        '-c',
        `kill -s CONT -- -1; kill -s CONT ${victim.pid} 2>/dev/null && echo direct-sent || echo direct-denied`,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('direct-denied');
      expect(state()).toBe('T');
      // Control: the victim does resume on a SIGCONT that is allowed to reach it.
      process.kill(victim.pid!, 'SIGCONT');
      for (let i = 0; i < 200 && state() === 'T'; i++) await new Promise((r) => setTimeout(r, 5));
      expect(state()).not.toBe('T');
    } finally {
      victim.kill('SIGKILL');
    }
  });

  describe('the host loopback network', () => {
    let server: Server;
    let port = 0;
    beforeAll(async () => {
      server = createServer((c) => c.end('banner\n'));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => server.close());

    it('a TCP connect is refused (a network violation) unless a network rule allows it', async () => {
      const client = testcase('net_client');
      const denied = await simRun({ isolation: 'landlock', argv: [client, 'tcp', '127.0.0.1', String(port)] });
      expect(denied.result.status).toBe('VIOLATION');
      expect(denied.result.violation).toMatchObject({
        kind: 'network',
        syscall: 'connect',
        address: `127.0.0.1:${port}`,
      });
      expect(denied.stdout).not.toMatch(/banner/);

      const allowed = await simRun({
        isolation: 'landlock',
        allowTcp: ['127.0.0.1', port],
        argv: [client, 'tcp', '127.0.0.1', String(port)],
      });
      expect(allowed.result.status, allowed.result.reason + allowed.stderr).toBe('OK');
      expect(allowed.stdout).toMatch(/banner/);
    });

    // Without a network namespace every socket is the host's: the monitor, which decides bind under
    // network rules, refuses it (EINVAL, as listen); Landlock's TCP bind right (ABI 4, no port
    // allowed) stands behind it. The sandboxee cannot take a host port.
    it.skipIf(!existsSync('/usr/bin/python3'))('its own sockets cannot bind a TCP port', async () => {
      const py =
        'import socket\ns=socket.socket()\ntry:\n  s.bind(("127.0.0.1", 0)); print("bound")\nexcept OSError as e:\n  print("errno", e.errno)';
      const r = await simRun({ isolation: 'landlock', argv: ['/usr/bin/python3', '-c', py] });
      expect(r.result.status, r.result.reason + r.stderr).toBe('OK');
      expect(r.stdout.trim()).toBe('errno 22');
    });
  });

  it('reports violations as usual (syscall, exit 159)', () => {
    const r = simSbx(['run', '--isolation', 'landlock', '--', testcase('violations'), 'ptrace']);
    expect(r.code).toBe(159);
    expect(r.stderr).toMatch(/VIOLATION, syscall violation: \[x86_64\] ptrace \(101\)/);
  });

  // Without a pid namespace nothing would take these along: setsid() + double fork, a daemon
  // the target leaves behind, and a tree ended by walltime or kill(). With and without a cgroup
  // (the subreaper init alone must do it).
  for (const cgroup of ['auto', 'off'] as const) {
    it(`walltime, kill() and the target's exit leave no survivors, even after double fork + setsid (cgroup: ${cgroup})`, async () => {
      const marker = (n: number) => `${400 + n}.${process.pid}${Date.now() % 100000}`;
      const escapees = (m: string) =>
        `setsid sh -c "setsid sleep ${m} & sleep ${m} &" ; (sleep ${m} &) ; sleep ${m} & `;
      const m1 = marker(1);
      const timeout = await simRun({
        isolation: 'landlock',
        cgroup,
        walltime: 1,
        argv: ['/bin/sh', '-c', `${escapees(m1)} sleep ${m1}`],
      });
      expect(timeout.result.status).toBe('TIMEOUT');
      expect(processesWith(m1)).toEqual([]);

      const m2 = marker(2);
      const killed = await simRun({
        isolation: 'landlock',
        cgroup,
        killAfterMs: 500,
        argv: ['/bin/sh', '-c', `${escapees(m2)} sleep ${m2}`],
      });
      expect(killed.result.status).toBe('EXTERNAL_KILL');
      expect(processesWith(m2)).toEqual([]);

      const m3 = marker(3);
      const exited = await simRun({
        isolation: 'landlock',
        cgroup,
        argv: ['/bin/sh', '-c', `${escapees(m3)} echo started`],
      });
      expect(exited.result.status).toBe('OK');
      expect(exited.stdout).toBe('started\n');
      expect(processesWith(m3)).toEqual([]);
    });
  }

  it('the executor dying leaves no survivors either (no cgroup: the init alone)', async () => {
    const m = `${410}.${process.pid}${Date.now() % 100000}`;
    const spec = {
      isolation: 'landlock',
      cgroup: 'off',
      argv: ['/bin/sh', '-c', `setsid sh -c "setsid sleep ${m} & sleep ${m} &" ; (sleep ${m} &) ; sleep ${m}`],
    };
    const child = spawn(testcase('container_sim'), [process.execPath, fixture, JSON.stringify(spec)], {
      stdio: 'ignore',
    });
    const sleeping = () => processesWith(m).filter((p) => p !== child.pid); // the executor's argv names the marker too
    try {
      // The shell (its argv names the marker) and its four sleeps.
      // Up to 20 s: the executor, its forkserver and the shell start on a machine the other suites load.
      for (const until = Date.now() + 20_000; sleeping().length < 5 && Date.now() < until; )
        await new Promise((r) => setTimeout(r, 25));
      expect(sleeping().length).toBeGreaterThanOrEqual(5);
      child.kill('SIGKILL');
      // The forkserver dies of PDEATHSIG, the init gets SIGTERM (its own PDEATHSIG) and ends the tree.
      for (const until = Date.now() + 20_000; sleeping().length > 0 && Date.now() < until; )
        await new Promise((r) => setTimeout(r, 25));
      expect(sleeping()).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('sbx doctor names the isolation modes this host supports', () => {
    const r = simSbx(['doctor', '--json']);
    const checks = JSON.parse(r.stdout) as Array<{ name: string; ok: boolean; detail: string }>;
    const by = (n: string) => checks.find((c) => c.name === n)!;
    expect(by('isolation: namespaces')).toMatchObject({ ok: false });
    expect(by('isolation: namespaces').detail).toMatch(/Operation not permitted/);
    expect(by('isolation: landlock')).toMatchObject({ ok: true });
    expect(by('isolation modes')).toMatchObject({ ok: true, detail: 'this host supports: landlock' });
    expect(r.code).toBe(0);
  });
});

describe.skipIf(abi < 6)('isolation: landlock on an ordinary host', () => {
  it('runs without the simulator too, and the Result says so', async () => {
    const { result, stdout } = await runCaptured(
      ['/bin/sh', '-c', 'echo hi > "$TMPDIR/f" && cat "$TMPDIR/f" && cat /proc/self/uid_map'],
      { executor: { isolation: 'landlock' } },
    );
    expect(result.status, result.reason).toBe('OK');
    expect(result.isolation).toBe('landlock');
    // The host's own user namespace: the identity map of the initial namespace.
    expect(stdout.split('\n')[0]).toBe('hi');
    expect(stdout).toMatch(/^\s+0\s+0\s+4294967295$/m);
  });

  it('leaves no fd, scratch directory or process behind, also for sandboxes started together', async () => {
    await runCaptured(['/bin/true'], { executor: { isolation: 'landlock' } });
    await new Promise((r) => setTimeout(r, 50));
    const scratch = () => readdirSync(tmpdir()).filter((n) => n.startsWith('sbx-tmp-')).length;
    const fds = openFdCount();
    const dirs = scratch();
    const m = `${420}.${process.pid}${Date.now() % 100000}`;
    const runs = await Promise.all(
      Array.from({ length: 8 }, () =>
        runCaptured(['/bin/sh', '-c', `(sleep ${m} &); echo ok`], { executor: { isolation: 'landlock' } }),
      ),
    );
    for (const r of runs) expect(r.result.status, r.result.reason).toBe('OK');
    expect(runs.map((r) => r.stdout)).toEqual(Array(8).fill('ok\n'));
    expect(processesWith(m)).toEqual([]);
    await new Promise((r) => setTimeout(r, 50));
    expect(openFdCount()).toBeLessThanOrEqual(fds);
    expect(scratch()).toBeLessThanOrEqual(dirs);
  });

  it('sandbox-me-here works in it too: the program installs the policy, a violation is reported', async () => {
    const bin = testcase('client_me_here');
    const b = new PolicyBuilder()
      .allowWrite()
      .allowExit()
      .allowSystemMalloc()
      .allowSyscalls(['read', 'fstat', 'newfstatat', 'rt_sigprocmask']);
    const policy = b.addFile(bin).addLibrariesForBinary(bin).build();
    const executor = { enableSandboxBeforeExec: false, isolation: 'landlock', env: { PATH: '/usr/bin:/bin' } } as const;
    const ok = await runCaptured([bin, 'print'], { policy, executor });
    expect(ok.result.status, ok.result.reason).toBe('OK');
    expect(ok.stdout).toMatch(/^me_here: ok/);
    const bad = await runCaptured([bin, 'socket'], { policy, executor });
    expect(bad.result.status).toBe('VIOLATION');
    expect(bad.result.violation?.syscall).toBe('socket');
    expect(bad.result.isolation).toBe('landlock');
  });

  it('refuses what it cannot honour without a mount namespace, with a clear error', async () => {
    const remap = await runCaptured(['/bin/true'], {
      executor: { isolation: 'landlock' },
      policy: isolationPolicy((b) => b.addDirectoryAt('/usr', '/elsewhere')),
    });
    expect(remap.result.status).toBe('SETUP_ERROR');
    expect(remap.result.reason).toMatch(/no mount namespace: \/usr cannot appear at \/elsewhere/);
    const tmpfs = await runCaptured(['/bin/true'], {
      executor: { isolation: 'landlock' },
      policy: isolationPolicy((b) => b.addTmpfs('/scratch')),
    });
    expect(tmpfs.result.status).toBe('SETUP_ERROR');
    expect(tmpfs.result.reason).toMatch(/cannot mount a tmpfs at \/scratch/);
  });

  it('rejects bad options and flags', () => {
    expect(() => new Executor('/bin/true', ['/bin/true'], { isolation: 'chroot' as never })).toThrow(
      /isolation must be 'namespaces' or 'landlock'/,
    );
    expect(() => new Executor('/bin/true', ['/bin/true'], { isolation: 'landlock', landlock: 'off' })).toThrow(
      /cannot be combined with landlock: 'off'/,
    );
    expect(() => new Executor('/bin/true', ['/bin/true'], { sandboxUser: { uid: 0, gid: 0 } })).toThrow(/never root/);
    const sbx = (args: string[]) =>
      spawnSync(process.execPath, [sbxBin, ...args], { encoding: 'utf8', timeout: 30_000 });
    for (const [args, msg] of [
      [['--isolation', 'chroot'], /--isolation must be namespaces or landlock/],
      [
        ['--isolation', 'landlock', '--mount', '/usr:/x'],
        /--mount \/usr:\/x: --isolation landlock has no mount namespace/,
      ],
      [
        ['--isolation', 'landlock', '--tmpfs', '/scratch'],
        /--tmpfs \/scratch: --isolation landlock cannot mount a tmpfs/,
      ],
      [['--isolation', 'landlock', '--landlock', 'off'], /cannot be combined with --landlock off/],
      [['--sandbox-user', 'nobody'], /--sandbox-user expects UID\[:GID\]/],
    ] as const) {
      const r = sbx(['run', ...args, '--', '/bin/true']);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });

  it.skipIf(!root)('runs as the configured sandboxUser when the executor is root', async () => {
    const { result, stdout } = await runCaptured(['/bin/sh', '-c', 'id -u; id -g'], {
      executor: { isolation: 'landlock', sandboxUser: { uid: 12345, gid: 23456 } },
    });
    expect(result.status, result.reason).toBe('OK');
    expect(stdout.split('\n').slice(0, 2)).toEqual(['12345', '23456']);
  });
});
