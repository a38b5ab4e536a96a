// Custom-fork mode end to end: a real Node forkserver (test/fixtures/fork-server.mjs) and the C
// example (examples/custom-fork/forkserver.c) started by startForkServer(), children
// forked on request that sandbox themselves and run real work; what a child may not do to its
// siblings and its forkserver, tried from inside; a forkserver that dies or lies.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Executor,
  type ForkServerHandle,
  PolicyBuilder,
  Sandbox,
  startForkServer,
  type Policy,
  type Result,
} from '@sbx/executor';
import type { Comms } from '@sbx/client';
import { forkNodePolicy, openFdCount, repoRoot, testcase, tick } from './helpers.js';

const serverScript = join(repoRoot, 'test', 'fixtures', 'fork-server.mjs');
const hostileScript = join(repoRoot, 'test', 'fixtures', 'fork-hostile.mjs');
const FLAGS = ['--single-threaded', '--v8-pool-size=1'];
const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' };

function startNodeServer(policy: Policy, args: string[] = [], script = serverScript): Promise<ForkServerHandle> {
  return startForkServer(process.execPath, [process.execPath, ...FLAGS, script, ...args], {
    policy,
    cwd: repoRoot,
    env: ENV,
    forkTimeoutMs: 5000,
  });
}

interface Child {
  sandbox: Sandbox;
  comms: Comms;
  result: Promise<Result>;
}

async function forkChild(server: ForkServerHandle, policy: Policy, walltime = 20): Promise<Child> {
  const ex = new Executor(server, { limits: { walltime } });
  const comms = ex.ipc.comms;
  const sandbox = new Sandbox(ex, policy);
  await sandbox.runAsync();
  return { sandbox, comms, result: sandbox.awaitResult() };
}

/** The forkserver's host pid: the only child of its sandbox's init. */
function forkserverHostPid(server: ForkServerHandle): number {
  const kids = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && stat(Number(d))?.ppid === server.pid);
  expect(kids).toHaveLength(1);
  return Number(kids[0]);
}

/** State and parent of a process, or null when it is gone. */
function stat(pid: number): { state: string; ppid: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { state: /^State:\s+(\S)/m.exec(s)![1]!, ppid: Number(/^PPid:\s+(\d+)/m.exec(s)![1]) };
  } catch {
    return null;
  }
}

function health(pid: number): { threads: number; fds: number; rssKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)![1]),
    rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

describe('custom-fork mode: a Node forkserver', () => {
  const policy = forkNodePolicy();
  let server: ForkServerHandle;
  beforeAll(async () => {
    server = await startNodeServer(policy);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('soak: 300 forks run the mixed workload, exit with the right code by process.exit and naturally, and the forkserver stays the same size', async () => {
    const runOne = async (i: number) => {
      const exit = i % 3 === 0 ? 'natural' : 'exit';
      const code = i % 4;
      const c = await forkChild(server, policy);
      await c.comms.sendMessage({ kind: 'workload', light: i % 10 !== 0, exit, code });
      const reply = (await c.comms.recvMessage()) as { ok: boolean; pid: number };
      const after: Record<string, unknown> = {};
      for (let k = 0; k < (exit === 'natural' ? 2 : 1); k++) Object.assign(after, await c.comms.recvMessage());
      const r = await c.result;
      c.comms.close();
      return { i, exit, code, reply, after, r };
    };
    // warm-up, then the baseline the forkserver must keep
    for (let i = 0; i < 6; i++) await runOne(i);
    const fsPid = forkserverHostPid(server);
    const before = health(fsPid);
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < 300) {
        const { i, exit, code, reply, after, r } = await runOne(next++);
        const ok =
          r.status === 'OK' &&
          r.exitCode === code &&
          reply.ok &&
          after.exitListener === code &&
          (exit !== 'natural' || after.beforeExit === true);
        if (!ok) failures.push(`#${i} ${exit} ${code}: ${r.toString()} ${JSON.stringify({ reply, after })}`);
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    expect(failures).toEqual([]);
    const now = health(fsPid);
    expect(now.fds).toBeLessThanOrEqual(before.fds);
    expect(now.threads).toBeLessThanOrEqual(before.threads);
    expect(now.rssKiB).toBeLessThan(before.rssKiB + 32 * 1024);
    expect(server.alive).toBe(true);
  }, 240_000);

  it('no io_uring ring in the forkserver or its children: it runs under the io_uring denial from its exec, and libuv uses epoll', async () => {
    const c = await forkChild(server, policy);
    await c.comms.sendMessage({ kind: 'ping', rings: true });
    // counted in the child right after fork(), before its own filter: the forkserver's fd table
    expect(await c.comms.recvMessage()).toMatchObject({ ok: true, inheritedRings: 0 });
    expect((await c.result).status).toBe('OK');
    const fsPid = forkserverHostPid(server);
    expect(
      Number(/^Seccomp_filters:\s+(\d+)/m.exec(readFileSync(`/proc/${fsPid}/status`, 'utf8'))![1]),
    ).toBeGreaterThanOrEqual(1);
  });

  it('an uncaught exception in a child exits it with code 1', async () => {
    const c = await forkChild(server, policy);
    await c.comms.sendMessage({ kind: 'ping', exit: 'throw' });
    expect(((await c.comms.recvMessage()) as { ok: boolean }).ok).toBe(true);
    const r = await c.result;
    expect(r.status).toBe('OK');
    expect(r.exitCode).toBe(1);
  });

  it('a violation in a forked child is reported like any other', async () => {
    const c = await forkChild(server, policy);
    await c.comms.sendMessage({ kind: 'violate' });
    const r = await c.result;
    expect(r.status).toBe('VIOLATION');
    expect(r.violation?.syscall).toBe('mkdir');
    expect(server.alive).toBe(true);
  });

  it("network rules hold in a forked child: allowed TCP and UDP reach the host's loopback, a denied port is a network violation", async () => {
    const { createServer } = await import('node:net');
    const { createSocket } = await import('node:dgram');
    const tcp = createServer((c) => c.end('hello from the host'));
    tcp.listen(0, '127.0.0.1');
    await new Promise((r) => tcp.once('listening', r));
    const udp = createSocket('udp4');
    udp.bind(0, '127.0.0.1');
    await new Promise((r) => udp.once('listening', r));
    let datagrams = 0;
    udp.on('message', () => datagrams++);
    const tcpPort = (tcp.address() as { port: number }).port;
    const udpPort = udp.address().port;
    try {
      const netPolicy = forkNodePolicy((b) =>
        b.allowNetworkClient().allowSyscall('bind').allowIPv4('127.0.0.1', tcpPort).allowIPv4('127.0.0.1', udpPort),
      );
      const c = await forkChild(server, netPolicy);
      await c.comms.sendMessage({ kind: 'net', tcpPort, udpPort });
      expect(await c.comms.recvMessage()).toMatchObject({ tcp: 'hello from the host', udp: 'sent' });
      expect((await c.result).status).toBe('OK');
      c.comms.close();
      await new Promise((r) => setTimeout(r, 50));
      expect(datagrams).toBe(1);
      // The same child asked for a port no rule allows.
      const d = await forkChild(
        server,
        forkNodePolicy((b) => b.allowNetworkClient().allowIPv4('127.0.0.1', udpPort)),
      );
      await d.comms.sendMessage({ kind: 'net', tcpPort, udpPort });
      const r = await d.result;
      d.comms.close();
      expect(r.status).toBe('VIOLATION');
      expect(r.violation).toMatchObject({ kind: 'network', syscall: 'connect', address: `127.0.0.1:${tcpPort}` });
    } finally {
      tcp.close();
      udp.close();
    }
  });

  it('the walltime ends a child that hangs (TIMEOUT), and the forkserver goes on', async () => {
    const c = await forkChild(server, policy, 0.5);
    await c.comms.sendMessage({ kind: 'ping', exit: 'wait' });
    const r = await c.result;
    expect(r.status).toBe('TIMEOUT');
    const d = await forkChild(server, policy);
    await d.comms.sendMessage({ kind: 'ping' });
    expect((await d.result).status).toBe('OK');
  });

  it('setWalltimeLimit() gives a running child without a walltime one (TIMEOUT); 0 removes one', async () => {
    const c = await forkChild(server, policy, 0);
    await c.comms.sendMessage({ kind: 'ping', exit: 'wait' });
    await c.comms.recvMessage();
    expect(await c.sandbox.awaitResult(50)).toBeUndefined();
    c.sandbox.setWalltimeLimit(100);
    const r = await c.result;
    expect(r.status).toBe('TIMEOUT');
    expect(r.reason).toBe('walltime limit of 0.1 s exceeded');
    const d = await forkChild(server, policy, 0.3);
    d.sandbox.setWalltimeLimit(0);
    await d.comms.sendMessage({ kind: 'ping', exit: 'wait' });
    await d.comms.recvMessage();
    expect(await d.sandbox.awaitResult(600)).toBeUndefined(); // past the Executor's 0.3 s
    d.sandbox.kill();
    expect((await d.result).status).toBe('EXTERNAL_KILL');
  });

  it('Worker threads fail at once in a child with UNSUPPORTED_IN_CHILD; async WebAssembly works', async () => {
    const c = await forkChild(server, forkNodePolicy());
    await c.comms.sendMessage({ kind: 'probe', worker: true, wasm: true });
    const reply = (await c.comms.recvMessage()) as { worker: string; wasm: number };
    expect(reply.worker).toBe('UNSUPPORTED_IN_CHILD');
    expect(reply.wasm).toBe(5);
    expect((await c.result).status).toBe('OK');
  });

  it('kill() ends a forked child (EXTERNAL_KILL)', async () => {
    const c = await forkChild(server, policy);
    await c.comms.sendMessage({ kind: 'ping', exit: 'wait' });
    await c.comms.recvMessage();
    c.sandbox.kill();
    expect((await c.result).status).toBe('EXTERNAL_KILL');
  });
});

describe('custom-fork mode: spares (children forked ahead)', () => {
  const policy = forkNodePolicy((b) => b.allowSyscalls(['kill']));
  let server: ForkServerHandle;
  beforeAll(async () => {
    server = await startNodeServer(policy, ['0', '2']);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('60 children from spares run the workload, exit right, and cannot signal the forkserver', async () => {
    const failures: string[] = [];
    for (let i = 0; i < 60; i++) {
      const code = i % 4;
      const c = await forkChild(server, policy);
      await c.comms.sendMessage({
        kind: i % 2 ? 'workload' : 'probe',
        light: true,
        targets: { forkserver: 2 },
        exit: i % 3 ? 'exit' : 'natural',
        code,
      });
      const reply = (await c.comms.recvMessage()) as Record<string, unknown>;
      const r = await c.result;
      c.comms.close();
      const ok =
        r.status === 'OK' &&
        r.exitCode === code &&
        (i % 2 ? reply.ok === true : reply['kill:forkserver'] === 'EPERM' && reply.ppid === 2);
      if (!ok) failures.push(`#${i}: ${r.toString()} ${JSON.stringify(reply)}`);
    }
    expect(failures).toEqual([]);
  }, 120_000);
});

describe("custom-fork mode: spares follow the forkserver's state (recycleSpares)", () => {
  const policy = forkNodePolicy();
  const recycleScript = join(repoRoot, 'test', 'fixtures', 'fork-server-recycle.mjs');

  /** Generations 3 children saw (the forkserver adds 1 after each fork): one alone, then two
   *  asked at once, so that the third is served while the forkserver is at generation 3 by
   *  whatever spare is left (made at generation 1 or 2) unless recycleSpares() killed it. */
  async function generations(mode: 'recycle' | 'keep'): Promise<number[]> {
    const server = await startNodeServer(policy, [mode], recycleScript);
    const ask = async () => {
      const c = await forkChild(server, policy);
      await c.comms.sendMessage({});
      const g = ((await c.comms.recvMessage()) as { generation: number }).generation;
      expect((await c.result).status).toBe('OK');
      c.comms.close();
      return g;
    };
    try {
      await tick(300); // quiet: the forkserver forks its spares
      const first = await ask();
      await tick(100);
      const rest = await Promise.all([ask(), ask()]);
      return [first, ...rest].sort((a, b) => a - b);
    } finally {
      await server.close();
    }
  }

  it('after recycleSpares() every child sees the state of the forkserver when it was asked for', async () => {
    expect(await generations('recycle')).toEqual([1, 2, 3]);
  }, 60_000);

  it('without it, a child from an older spare sees the older state (what recycleSpares is for)', async () => {
    const seen = await generations('keep');
    expect(seen[0]).toBe(1);
    expect(seen).not.toEqual([1, 2, 3]);
  }, 60_000);
});

describe('custom-fork mode: sibling isolation', () => {
  // The children's policy allows the calls, so what stops them is the child's own wall.
  const policy = forkNodePolicy((b) =>
    b.allowSyscalls([
      'kill',
      'socket',
      'connect',
      'bind',
      'listen',
      'getsockname',
      'getpeername',
      'setsockopt',
      'getsockopt',
    ]),
  );
  let server: ForkServerHandle;
  beforeAll(async () => {
    server = await startNodeServer(policy);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a child can neither signal, read the memory of, nor connect to a sibling or the forkserver', async () => {
    const a = await forkChild(server, policy);
    await a.comms.sendMessage({ kind: 'probe', listen: 'sbx-fork-sibling', exit: 'wait' });
    const sibling = (await a.comms.recvMessage()) as { pid: number; ppid: number; listening: boolean };
    expect(sibling.listening).toBe(true);

    const b = await forkChild(server, policy);
    await b.comms.sendMessage({
      kind: 'probe',
      targets: { sibling: sibling.pid, forkserver: sibling.ppid },
      abstract: 'sbx-fork-sibling',
    });
    const seen = (await b.comms.recvMessage()) as Record<string, string | number>;
    expect(seen.ppid).toBe(sibling.ppid); // the same forkserver: the pids are the right ones
    expect(seen['kill:sibling']).toBe('EPERM');
    expect(seen['kill:forkserver']).toBe('EPERM');
    expect(seen['mem:sibling']).toMatch(/^(EACCES|EPERM)$/);
    expect(seen['mem:forkserver']).toMatch(/^(EACCES|EPERM)$/);
    expect(seen.connect).toBe('EPERM');
    expect((await b.result).status).toBe('OK');

    // The same signal to itself goes through: the probe works, the wall is what refused.
    const d = await forkChild(server, policy);
    await d.comms.sendMessage({ kind: 'probe', targets: { self: 0 } }); // pid 0: its own group
    const self = (await d.comms.recvMessage()) as Record<string, string>;
    expect(self['kill:self']).toBe('allowed');
    await a.comms.sendMessage({ go: true });
    expect((await a.result).status).toBe('OK');
    expect((await d.result).status).toBe('OK');
  });
});

describe('custom-fork mode: the forkserver dies or lies', () => {
  const policy = forkNodePolicy();

  it("the forkserver's death kills its children", async () => {
    const server = await startNodeServer(policy);
    const c = await forkChild(server, policy);
    await c.comms.sendMessage({ kind: 'ping', exit: 'wait' });
    await c.comms.recvMessage();
    const childPid = c.sandbox.pid;
    process.kill(forkserverHostPid(server), 'SIGKILL');
    const r = await c.result;
    expect(r.status).toBe('SIGNALED');
    expect(r.signal).toBe('SIGKILL');
    const left = stat(childPid);
    expect(left === null || left.state === 'Z').toBe(true);
    expect(['SIGNALED', 'EXTERNAL_KILL']).toContain((await server.result).status);
    expect(server.alive).toBe(false);
    // and a fork request after it is a SETUP_ERROR that says why
    const late = await new Sandbox(new Executor(server), policy).run();
    expect(late.status).toBe('SETUP_ERROR');
    expect(late.reason).toMatch(/forkserver/);
  });

  it('close() ends the forkserver and its children', async () => {
    const server = await startNodeServer(policy);
    const c = await forkChild(server, policy);
    await c.comms.sendMessage({ kind: 'ping', exit: 'wait' });
    await c.comms.recvMessage();
    expect((await server.close()).status).toBe('EXTERNAL_KILL');
    expect((await c.result).status).toBe('SIGNALED');
  });

  for (const [mode, pattern] of [
    ['not-pidfd', /no pidfd of a child of the forkserver/],
    ['self-pidfd', /no pidfd of a child of the forkserver/],
    ['die', /forkserver/],
    ['silent', /did not answer fork request 1 within/],
    ['garbage', /unexpected message from the forkserver/],
    ['no-fd', /sent no pidfd after FORKED/],
    ['lying-exit', /reported the end of child 1 while it still runs/],
  ] as const) {
    it(`a forkserver that answers "${mode}" gives a SETUP_ERROR naming it, and leaks no fd`, async () => {
      const before = openFdCount();
      const server = await startNodeServer(policy, [mode], hostileScript);
      const r = await new Sandbox(new Executor(server), policy).run();
      expect(r.status).toBe('SETUP_ERROR');
      expect(r.reason).toMatch(pattern);
      await server.result;
      expect(server.alive).toBe(false);
      await new Promise((res) => setTimeout(res, 50));
      expect(openFdCount()).toBeLessThanOrEqual(before);
    }, 20_000);
  }

  it('a Node forkserver without the flags refuses to start and names them', () => {
    const r = spawnSync(process.execPath, [serverScript], {
      cwd: repoRoot,
      env: ENV,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/add --single-threaded and --v8-pool-size=1/);
  });

  it('waitAndFork() with a request in flight refuses (BUSY) instead of handing children half-done work', () => {
    const code =
      "import { readFile } from 'node:fs'; import { ForkingClient } from '@sbx/client'; readFile('/proc/self/status', () => {}); try { ForkingClient.waitAndFork(); } catch (e) { console.log(e.code); }";
    const r = spawnSync(process.execPath, [...FLAGS, '--input-type=module', '-e', code], {
      cwd: repoRoot,
      env: ENV,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.stdout.trim()).toBe('BUSY');
  });

  it('a Node forkserver that has or could open an io_uring ring refuses to fork (IO_URING): started without the denial', () => {
    const code = [
      "import { readdirSync, readlinkSync } from 'node:fs'; import { ForkingClient } from '@sbx/client';",
      "const rings = readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync('/proc/self/fd/' + fd) === 'anon_inode:[io_uring]'; } catch { return false; } }).length;",
      'try { await ForkingClient.ready(); ForkingClient.waitAndFork(); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, rings })); }',
    ].join('\n');
    const r = spawnSync(process.execPath, [...FLAGS, '--input-type=module', '-e', code], {
      cwd: repoRoot,
      env: ENV,
      encoding: 'utf8',
      timeout: 20_000,
    });
    const out = JSON.parse(r.stdout) as { code: string; message: string; rings: number };
    expect(out.code).toBe('IO_URING');
    // Node 22 and later open rings at start (even with UV_USE_IO_URING=0); Node 20 could open one later.
    if (Number(process.versions.node.split('.')[0]) >= 22) {
      expect(out.rings).toBeGreaterThan(0);
      expect(out.message).toMatch(/has \d+ io_uring ring\(s\) open/);
    } else {
      expect(out.message).toMatch(/io_uring_setup is not denied/);
    }
  });

  it('a Node without a fork binding for its ABI gets NODE_UNSUPPORTED naming its version and what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-no-fork-binding-'));
    try {
      const addon = join(dir, 'sbx_native.node');
      symlinkSync(join(repoRoot, 'packages', 'client', 'build', 'Release', 'sbx_native.node'), addon);
      const code =
        "import { ForkingClient } from '@sbx/client'; try { ForkingClient.check(); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }";
      const r = spawnSync(process.execPath, [...FLAGS, '--input-type=module', '-e', code], {
        cwd: repoRoot,
        env: { ...ENV, SBX_NATIVE_PATH: addon },
        encoding: 'utf8',
        timeout: 20_000,
      });
      const out = JSON.parse(r.stdout) as { code: string; message: string };
      expect(out.code).toBe('NODE_UNSUPPORTED');
      expect(out.message).toContain(`Node ${process.version} (NODE_MODULE_VERSION ${process.versions.modules})`);
      expect(out.message).toContain(`sbx_fork-node-v${process.versions.modules}.node is not in ${dir}`);
      expect(out.message).toContain('npm rebuild @sbx/client --build-from-source');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Executor(forkServer) refuses exec-mode options', async () => {
    const server = await startNodeServer(policy, ['silent'], hostileScript);
    expect(() => new Executor(server, { env: {} } as never)).toThrow(/option "env" does not apply in custom-fork mode/);
    await server.close();
  });
});

describe('custom-fork mode: the C example forkserver', () => {
  const policy = new PolicyBuilder()
    .allowStaticStartup()
    .allowDynamicStartup()
    .allowExit()
    .allowRead()
    .allowWrite()
    .allowSystemMalloc()
    .allowSyscalls(['getpid', 'close', 'sendmsg', 'recvmsg'])
    .addFile(testcase('c_forkserver'))
    .addLibrariesForBinary(testcase('c_forkserver'))
    .build();

  it('forks sandboxed children that answer on their Comms; a violation is reported', async () => {
    // Through the deprecated Executor.startForkServer() alias, which must keep working.
    const server = await Executor.startForkServer(testcase('c_forkserver'), undefined, { policy, env: ENV });
    try {
      const pids = new Set<number>();
      for (let i = 0; i < 20; i++) {
        const c = await forkChild(server, policy);
        await c.comms.sendString(`hello ${i}`);
        const [pid, sq, ...text] = (await c.comms.recvString()).split(' ');
        expect(text.join(' ')).toBe(`hello ${i}`);
        expect(Number(sq)).toBe((`hello ${i}`.length % 16) ** 2);
        pids.add(Number(pid));
        const r = await c.result;
        expect(r.status).toBe('OK');
        expect(r.exitCode).toBe(0);
      }
      expect(pids.size).toBe(20);
      const v = await forkChild(server, policy);
      await v.comms.sendString('violate');
      const r = await v.result;
      expect(r.status).toBe('VIOLATION');
      expect(r.violation?.syscall).toBe('mkdir');
    } finally {
      await server.close();
    }
  });
});
