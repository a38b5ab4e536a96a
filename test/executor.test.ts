// The executor end to end: real sandboxes on the real kernel (namespaces, mounts, limits, tree kill).
import { createServer } from 'node:net';
import { once } from 'node:events';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync, readFileSync, closeSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Executor,
  Sandbox,
  PolicyBuilder,
  Result,
  sandboxIdRange,
  setSandboxIdRange,
  DEFAULT_SANDBOX_ID_RANGE,
} from '@sbx/executor';
import { ARG_32, JNE, ALLOW, LABEL } from '@sbx/executor/bpf';
import { native } from '@sbx/client/internal';
import { isolationPolicy, openFdCount, processesWith, repoRoot, runCaptured, sh, tick } from './helpers.js';

const asRoot = process.getuid?.() === 0;

/** A sleep duration no other process uses ("300.<unique>" seconds): its cmdline marks the process. */
function uniqueSleep(): string {
  return `300.${process.pid}${Date.now() % 1e6}${Math.floor(Math.random() * 1e3)}`;
}

describe('Sandbox#run() isolation', () => {
  it('runs /bin/true with status OK and exit code 0', async () => {
    const { result } = await runCaptured(['/bin/true']);
    expect(result.status).toBe('OK');
    expect(result.exitCode).toBe(0);
    expect(result).toBeInstanceOf(Result);
    expect(result.toString()).toMatch(/^OK, exit code 0/);
  });

  it('passes the exit code through', async () => {
    const { result } = await sh('exit 42');
    expect(result.status).toBe('OK');
    expect(result.exitCode).toBe(42);
  });

  it('is uid/gid 1000 inside, with no capabilities', async () => {
    const { result, stdout } = await sh('id -u; id -g; grep -E "^Cap(Eff|Prm|Bnd)" /proc/self/status');
    expect(result.status).toBe('OK');
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe('1000');
    expect(lines[1]).toBe('1000');
    expect(stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(stdout).toMatch(/CapPrm:\s+0000000000000000/);
    expect(stdout).toMatch(/CapBnd:\s+0000000000000000/);
  });

  it('maps to an unprivileged host uid (as root: one leased from the sandbox id range per sandbox, owning its user namespace)', async () => {
    let sandbox: Sandbox | undefined;
    const script = 'cat /proc/self/uid_map; sleep 0.2';
    const [a, b] = await Promise.all([sh(script, { before: (s) => (sandbox = s) }), sh(script)]);
    const hostUid = sandbox!.hostUid;
    const [inside, outside] = a.stdout.trim().split(/\s+/).map(Number);
    expect(inside).toBe(1000);
    if (asRoot) {
      const range = sandboxIdRange()!;
      expect(outside).toBeGreaterThanOrEqual(range.first);
      expect(outside).toBeLessThan(range.first + range.count);
      expect(hostUid).toBe(outside);
      // Two sandboxes at once never share a host uid.
      expect(b.stdout.trim().split(/\s+/)[1]).not.toBe(String(outside));
    } else {
      expect(outside).toBe(process.getuid!());
    }
  });

  it.runIf(asRoot)(
    'a sandbox id is leased across executor processes: a full range is a SETUP_ERROR that says so',
    async () => {
      const first = 1_999_000_000 + (process.pid % 1000) * 10;
      const other = () =>
        spawnSync(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `
        import { Executor, Sandbox, PolicyBuilder, setSandboxIdRange } from '@sbx/executor';
        setSandboxIdRange({ first: ${first}, count: 1 });
        const r = await new Sandbox(new Executor('/bin/true', ['true'], { stdio: 'ignore' }), new PolicyBuilder().defaultAction('allow').addLibrariesForBinary('/bin/true').build()).run();
        console.log(r.status + ' ' + r.reason);`,
          ],
          { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 },
        ).stdout;
      setSandboxIdRange({ first, count: 1 });
      try {
        const executor = new Executor('/bin/sleep', ['sleep', '30'], { stdio: 'ignore' });
        const holder = new Sandbox(executor, new PolicyBuilder().build());
        const held = holder.run();
        await holder.runAsync();
        expect(holder.hostUid).toBe(first);
        expect(other()).toMatch(/^SETUP_ERROR no free sandbox uid: all 1 ids from \d+ are leased/);
        holder.kill();
        await held;
        expect(other()).toMatch(/^OK /);
      } finally {
        setSandboxIdRange(DEFAULT_SANDBOX_ID_RANGE);
      }
    },
  );

  it('as root with an explicit sandboxUser (or the id range off), every sandbox is that user', async () => {
    const { stdout } = await sh('cat /proc/self/uid_map', { executor: { sandboxUser: { uid: 54321, gid: 54321 } } });
    expect(Number(stdout.trim().split(/\s+/)[1])).toBe(asRoot ? 54321 : process.getuid!());
    setSandboxIdRange('off');
    try {
      const off = await sh('cat /proc/self/uid_map');
      expect(Number(off.stdout.trim().split(/\s+/)[1])).toBe(asRoot ? 65534 : process.getuid!());
    } finally {
      setSandboxIdRange(DEFAULT_SANDBOX_ID_RANGE);
    }
  });

  it('sets the hostname', async () => {
    const { stdout } = await sh('cat /proc/sys/kernel/hostname', { executor: { hostname: 'sbx-test' } });
    expect(stdout.trim()).toBe('sbx-test');
  });

  it('has only lo in its network namespace', async () => {
    const { stdout } = await sh('ls /sys/class/net 2>/dev/null || tail -n +3 /proc/net/dev | cut -d: -f1');
    expect(stdout.trim().split(/\s+/)).toEqual(['lo']);
  });

  it('cannot reach a TCP server on the host loopback', async () => {
    const server = createServer((s) => s.end('reached'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    // bash's /dev/tcp is not everywhere; use python-free plain sh with a tiny C-less probe: `cat < /dev/tcp` needs bash.
    const { result, stdout } = await runCaptured([
      '/bin/bash',
      '-c',
      `exec 3<>/dev/tcp/127.0.0.1/${port} && echo connected || echo refused`,
    ]);
    server.close();
    expect(result.status).toBe('OK');
    expect(stdout.trim()).toBe('refused');
  });

  it('runs as pid 2 under its own init and sees no host process', async () => {
    const { stdout } = await sh('echo $$; cat /proc/1/comm; ls /proc | grep -E "^[0-9]+$" | wc -l');
    const [pid, init, count] = stdout.trim().split('\n');
    expect(pid).toBe('2');
    expect(init).toBe('sbx-init');
    expect(Number(count)).toBeLessThanOrEqual(6); // init, sh and the pipeline: only the sandbox's own
  });

  it('cannot see files outside its mounts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-secret-'));
    writeFileSync(join(dir, 'secret'), 'host secret');
    const { stdout } = await sh(`cat ${dir}/secret 2>&1 || echo missing; ls /home /root /etc/shadow 2>&1 | head -3`);
    rmSync(dir, { recursive: true });
    expect(stdout).toContain('missing');
    expect(stdout).not.toContain('host secret');
    expect(stdout).toMatch(/No such file/);
  });

  it('/etc/shadow stays unreadable, even bound in, when the executor is root', async () => {
    const { stdout } = await sh('cat /etc/shadow >/dev/null 2>&1 && echo read || echo denied', {
      policy: isolationPolicy((b) => b.addFile('/etc/shadow')),
    });
    expect(stdout.trim()).toBe('denied');
  });

  it('a read-only mount refuses writes; a tmpfs accepts them', async () => {
    const { stdout } = await sh(
      'touch /usr/sbx-probe 2>/dev/null && echo wrote-usr || echo ro-usr; echo hi > /tmp/x && cat /tmp/x',
    );
    expect(stdout.trim().split('\n')).toEqual(['ro-usr', 'hi']);
  });

  it('a rw bind mount writes through, owned by the unprivileged host uid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-rw-'));
    chmodSync(dir, 0o777); // as root the sandboxee is a host uid of its own: it writes only where others may
    const { result } = await sh(`echo data > ${dir}/out`, {
      policy: isolationPolicy((b) => b.addDirectory(dir, { writable: true })),
    });
    expect(result.status).toBe('OK');
    expect(readFileSync(join(dir, 'out'), 'utf8')).toBe('data\n');
    if (asRoot) {
      const { statSync } = await import('node:fs');
      // The sandboxee cannot create root-owned files on the host.
      const uid = statSync(join(dir, 'out')).uid;
      expect(uid).toBeGreaterThanOrEqual(sandboxIdRange()!.first);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('has exactly the mapped fds open', async () => {
    const executor = new Executor('/bin/sh', ['/bin/sh', '-c', 'ls /proc/self/fd'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const [r, w] = native().pipe();
    executor.ipc.mapFd(r, 5);
    const sandbox = new Sandbox(executor, isolationPolicy());
    const out: Buffer[] = [];
    const resultP = sandbox.run();
    await sandbox.runAsync();
    sandbox.stdout!.on('data', (d) => out.push(d));
    await resultP;
    await tick(50);
    closeSync(r);
    closeSync(w);
    // 0-2 stdio, 3 the directory ls reads, 5 the mapped pipe. Nothing of the executor's.
    expect(
      Buffer.concat(out)
        .toString()
        .trim()
        .split('\n')
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual([0, 1, 2, 3, 5]);
  });

  it('a mapped fd is usable inside', async () => {
    const [r, w] = native().pipe();
    const { result } = await sh('echo through-the-fd >&7', { before: (_s, e) => e.ipc.mapFd(w, 7) });
    closeSync(w);
    expect(result.status).toBe('OK');
    expect(readFileSync(r).toString()).toBe('through-the-fd\n');
    closeSync(r);
  });

  it('ipc.receiveFd gives the executor the other end of a socket the sandboxee holds', async () => {
    const executor = new Executor('/bin/sh', ['/bin/sh', '-c', 'echo over-the-socket >&6'], { stdio: 'ignore' });
    const ours = executor.ipc.receiveFd(6);
    const result = await new Sandbox(executor, isolationPolicy()).run();
    expect(result.status).toBe('OK');
    expect(readFileSync(ours).toString()).toBe('over-the-socket\n');
    closeSync(ours);
  });

  it('ipc.comms talks to the sandboxee at fd 1023', async () => {
    // bash: dash redirects only fds 0-9.
    const executor = new Executor('/bin/bash', ['/bin/bash', '-c', 'cat <&1023 >&1023'], { stdio: 'ignore' });
    const sandbox = new Sandbox(executor, isolationPolicy());
    const comms = executor.ipc.comms;
    const resultP = sandbox.run();
    await comms.sendString('echoed by cat');
    expect(await comms.recvString()).toBe('echoed by cat');
    comms.close();
    expect((await resultP).status).toBe('OK');
  });
});

describe('Sandbox limits', () => {
  it('RLIMIT_FSIZE kills the writer with SIGXFSZ', async () => {
    const { result } = await sh('exec head -c 100000 /dev/zero > /tmp/big', {
      executor: { limits: { rlimitFsize: 4096 } },
    });
    expect(result.status).toBe('SIGNALED');
    expect(result.signal).toBe('SIGXFSZ');
  });

  it('RLIMIT_NOFILE caps open files', async () => {
    const { stdout } = await sh('ulimit -n', { executor: { limits: { rlimitNofile: 17 } } });
    expect(stdout.trim()).toBe('17');
  });

  it('RLIMIT_AS makes a large allocation fail', async () => {
    const { stdout, result } = await sh(
      'ulimit -v; head -c 300000000 /dev/zero | tr "\\0" "a" | sort >/dev/null 2>&1 && echo fit || echo failed',
      {
        executor: { limits: { rlimitAs: 64 << 20 } },
      },
    );
    expect(result.status).toBe('OK');
    expect(stdout.trim().split('\n')).toEqual([String(64 * 1024), 'failed']);
  });

  it('RLIMIT_CPU ends a busy loop with SIGKILL/SIGXCPU', async () => {
    const { result } = await sh('exec sh -c "while :; do :; done"', {
      executor: { limits: { rlimitCpu: 1, walltime: 20 } },
    });
    expect(result.status).toBe('SIGNALED');
    expect(['SIGXCPU', 'SIGKILL']).toContain(result.signal);
  });
});

describe('Process-tree control', () => {
  it('walltime kills a sleep: TIMEOUT', async () => {
    const t0 = performance.now();
    const { result } = await runCaptured(['/bin/sleep', '30'], { executor: { limits: { walltime: 0.5 } } });
    expect(result.status).toBe('TIMEOUT');
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('walltime kills every process of a tree that forked and setsid-ed', async () => {
    const marker = uniqueSleep();
    const { result } = await sh(`(setsid sleep ${marker} &) ; (sleep ${marker} &); sleep ${marker}`, {
      executor: { limits: { walltime: 0.7 } },
    });
    expect(result.status).toBe('TIMEOUT');
    await tick(100);
    expect(processesWith(marker)).toEqual([]);
  });

  it('kill() ends the whole tree: EXTERNAL_KILL', async () => {
    const marker = uniqueSleep();
    const executor = new Executor('/bin/sh', ['/bin/sh', '-c', `sleep ${marker} & sleep ${marker}`], {
      stdio: 'ignore',
    });
    const sandbox = new Sandbox(executor, isolationPolicy());
    await sandbox.runAsync();
    await tick(200);
    expect(processesWith(marker).length).toBeGreaterThan(0);
    sandbox.kill();
    const result = await sandbox.awaitResult();
    expect(result.status).toBe('EXTERNAL_KILL');
    await tick(100);
    expect(processesWith(marker)).toEqual([]);
  });

  it('the executor dying kills its sandboxees', async () => {
    const marker = uniqueSleep();
    const script = `
      import { Executor, Sandbox, PolicyBuilder } from '@sbx/executor';
      const b = new PolicyBuilder().defaultAction('allow');
      for (const d of ['/usr', '/bin', '/lib', '/lib64']) b.addDirectory(d);
      const s = new Sandbox(new Executor('/bin/sleep', ['/bin/sleep', '${marker}'], { stdio: 'ignore' }), b.build());
      await s.runAsync();
      console.log('started');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await once(child.stdout!, 'data');
    const sleeping = () => processesWith(marker).filter((p) => p !== child.pid); // its script names the marker too
    // The sandboxee execs a little after runAsync() resolves: wait for it (a busy CI box is slow).
    for (let i = 0; i < 100 && sleeping().length === 0; i++) await tick(50);
    expect(sleeping().length).toBe(1);
    child.kill('SIGKILL');
    await once(child, 'exit');
    await tick(300);
    expect(sleeping()).toEqual([]);
  });

  it('leaves no fds behind in the executor', async () => {
    await runCaptured(['/bin/true']);
    await tick(50);
    const before = openFdCount();
    for (let i = 0; i < 10; i++) await runCaptured(['/bin/true']);
    await tick(50);
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds fds; a finalizer elsewhere may close one meanwhile
  });
});

describe('Bad input', () => {
  it('a missing binary is a clear error before anything starts', () => {
    expect(() => new Executor('/nonexistent/prog')).toThrow(/does not exist/);
    expect(() => new Executor('no-such-program-anywhere')).toThrow(/not found in PATH/);
  });

  it('a missing mount source is a build-time policy error', () => {
    expect(() => new PolicyBuilder().addDirectory('/nonexistent-dir').build()).toThrow(/nonexistent-dir/);
  });

  it('a binary whose libraries are not mounted gives SETUP_ERROR naming execveat', async () => {
    const policy = new PolicyBuilder().defaultAction('allow').build();
    const { result } = await runCaptured(['/bin/true'], { policy });
    expect(result.status).toBe('SETUP_ERROR');
    expect(result.reason).toMatch(/execveat.*ENOENT.*interpreter/);
  });

  it('a cwd that does not exist inside gives SETUP_ERROR', async () => {
    const { result } = await runCaptured(['/bin/true'], { executor: { cwd: '/no/such/dir' } });
    expect(result.status).toBe('SETUP_ERROR');
    expect(result.reason).toMatch(/chdir/);
  });

  it('bad limits are refused with the option named', () => {
    expect(() => new Executor('/bin/true', [], { limits: { walltime: -1 } })).toThrow(/walltime/);
    expect(() => new Executor('/bin/true', [], { limits: { rlimitAs: -5 } })).toThrow(/rlimitAs/);
    expect(() => new Executor('/bin/true', [], { limits: { bogus: 1 } as never })).toThrow(/unknown option "bogus"/);
    expect(() => new Executor('/bin/true', [], { cwd: 'relative' })).toThrow(/cwd/);
    expect(() => new Executor('/bin/true', [], { nonsense: true } as never)).toThrow(/unknown option "nonsense"/);
  });

  it('a policy that cannot compile (over 4096 instructions) is a clear error and leaves no fd', async () => {
    await runCaptured(['/bin/true']); // the forkserver and monitor are up: only this run's fds count
    const before = openFdCount();
    const b = new PolicyBuilder();
    // 2,000 distinct arg rules cannot fit in the kernel's 4096 instructions.
    for (let i = 0; i < 2000; i++) b.addPolicyOnSyscall('write', [ARG_32(0), JNE(i, `n${i}`), ALLOW, LABEL(`n${i}`)]);
    const sandbox = new Sandbox(new Executor('/bin/true', ['/bin/true'], { stdio: 'ignore' }), b.build());
    await expect(sandbox.run()).rejects.toThrow(/4096/);
    await tick(50);
    expect(openFdCount()).toBeLessThanOrEqual(before);
  });

  it('an executor runs once', async () => {
    const e = new Executor('/bin/true', ['/bin/true'], { stdio: 'ignore' });
    await new Sandbox(e, isolationPolicy()).run();
    expect(() => new Sandbox(e, isolationPolicy()).runAsync()).toThrow(/already started/);
  });
});

/** The sandbox's own init (it names itself sbx-init), or a pid gone meanwhile. */
function isSbxInit(pid: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sbx-init';
  } catch {
    return true;
  }
}

describe('cgroup v2 per sandbox', () => {
  it('runs each sandbox in a fresh cgroup where one can be created, and removes it after', async () => {
    const { delegatedCgroupBase } = await import('../packages/executor/src/sandbox/cgroup.js');
    const base = delegatedCgroupBase();
    // The program waits for a line on stdin, so the cgroup is looked at while it surely runs.
    const executor = new Executor('/bin/sh', ['/bin/sh', '-c', 'read x'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const sandbox = new Sandbox(executor, isolationPolicy());
    await sandbox.runAsync();
    if (!base) {
      // No writable delegated cgroup (e.g. unprivileged here): said so, nothing half-made.
      expect(sandbox.cgroupPath).toBeNull();
      sandbox.stdin!.end('\n');
      expect((await sandbox.awaitResult()).status).toBe('OK');
      const required = await runCaptured(['/bin/true'], { executor: { cgroup: 'required' } });
      expect(required.result.status).toBe('SETUP_ERROR');
      expect(required.result.reason).toMatch(/no writable cgroup v2/);
      return;
    }
    const path = sandbox.cgroupPath!;
    expect(path.startsWith(base)).toBe(true);
    const procs = () => readFileSync(join(path, 'cgroup.procs'), 'utf8').trim().split('\n').filter(Boolean);
    for (let i = 0; i < 200 && procs().length < 2; i++) await tick(25);
    expect(procs().length).toBe(2); // init and sh
    sandbox.stdin!.end('\n');
    expect((await sandbox.awaitResult()).status).toBe('OK');
    // At the Result nothing of the sandboxee is left in it; its exiting init may still be, and the
    // directory goes as soon as the forkserver has reaped it (sandbox/early-end.ts).
    const left = existsSync(path) ? procs().filter((p) => !isSbxInit(p)) : [];
    expect(left).toEqual([]);
    for (let i = 0; i < 400 && existsSync(path); i++) await tick(5);
    expect(existsSync(path)).toBe(false);
  });

  it('cgroup: off runs without one', async () => {
    const executor = new Executor('/bin/true', ['/bin/true'], { stdio: 'ignore', cgroup: 'off' });
    const sandbox = new Sandbox(executor, isolationPolicy());
    expect((await sandbox.run()).status).toBe('OK');
    expect(sandbox.cgroupPath).toBeNull();
  });
});
