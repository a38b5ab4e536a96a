// Sandbox-me-here mode end to end: real sandboxes started with enableSandboxBeforeExec: false,
// whose Node (test/fixtures/me-here.mjs) or C (native/testcases/client_me_here.c) program calls
// sandboxMeHere() itself. The refusal cases also run the programs outside any sandbox, and
// against a hand-played executor to see what the client does when the executor goes away.
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Comms, ClientTag, CLIENT_HELLO_SIZE } from '@sbx/client';
import { native } from '@sbx/client/internal';
import { Executor, PolicyBuilder, type Policy } from '@sbx/executor';
import { compilePolicy } from '@sbx/executor/bpf';
import {
  fdCountSettled,
  isolationPolicy,
  openFdCount,
  repoRoot,
  runCaptured,
  testcase,
  tick,
  type Captured,
  addNodeView,
} from './helpers.js';

const fixture = join(repoRoot, 'test', 'fixtures', 'me-here.mjs');
/** A valid HELLO (version 2, TSYNC) as printf escapes, for a shell that lies to the executor. */
const HELLO =
  '\\x10\\x53\\x00\\x00\\x10\\x00\\x00\\x00\\x00\\x00\\x00\\x00' +
  '\\x02\\x00\\x00\\x00\\xff\\xff\\xff\\xff\\x01\\x00\\x00\\x00\\xff\\xff\\xff\\xff';
const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' };

/** allowNodeRuntime(opts) with what a Node program needs in view: node, its libraries, the repo
 *  (for @sbx/client and the addon), /proc, /dev/null, /dev/urandom and a tmpfs /tmp. */
function nodePolicy(opts: { threads?: boolean; openFiles?: boolean } = {}): Policy {
  const b = new PolicyBuilder().allowNodeRuntime(opts);
  addNodeView(b);
  b.addTmpfs('/tmp', { sizeBytes: 16 << 20 });
  return b.build();
}

/** One JSON line the fixture printed: each mode prints its own shape, which the tests read by property. */
// biome-ignore lint/suspicious/noExplicitAny: the fixture's output shapes vary by mode; the expectations check them
type JsonLine = any;

/** Runs the Node fixture in a sandbox-me-here sandbox; returns the Result and its JSON lines. */
async function runNode(
  mode: string,
  policy: Policy,
  args: string[] = [],
  nodeFlags: string[] = [],
): Promise<Captured & { lines: JsonLine[] }> {
  const c = await runCaptured([process.execPath, ...nodeFlags, fixture, mode, ...args], {
    policy,
    executor: { enableSandboxBeforeExec: false, cwd: repoRoot, env: ENV },
  });
  return { ...c, lines: jsonLines(c.stdout) };
}

function jsonLines(out: string): JsonLine[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

/** Runs a program outside any sandbox (extra: an fd to map at 3) and collects its stdout. */
function runPlain(
  argv: string[],
  env: Record<string, string> = {},
  fd3?: number,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const stdio: Array<'ignore' | 'pipe' | 'inherit' | number> = ['ignore', 'pipe', 'inherit'];
    if (fd3 !== undefined) stdio.push(fd3);
    const child = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, env: { ...ENV, ...env }, stdio });
    let stdout = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

describe('Client.sandboxMeHere() in a Node sandboxee', () => {
  it('puts the filter on every thread and leaves no listener behind', async () => {
    const { result, lines } = await runNode('status', nodePolicy());
    expect(result.status).toBe('OK');
    expect(result.exitCode).toBe(0);
    const [s] = lines;
    expect(s.err).toBeNull();
    expect(s.sandboxed).toBe(true);
    expect(s.threads.length).toBeGreaterThanOrEqual(5); // main, V8 platform workers, libuv pool
    for (const t of s.threads) expect(t, `thread ${t.tid}`).toMatchObject({ seccomp: 2 });
    // the io_uring denial the executor installs before exec, and the policy
    for (const t of s.threads) expect(t.filters).toBe(2);
    expect(s.listeners).toBe(0);
  });

  it('filters a Worker created afterwards (allowNodeRuntime({ threads: true }))', async () => {
    const { result, lines } = await runNode('worker', nodePolicy({ threads: true }));
    expect(result.status, result.toString()).toBe('OK');
    expect(lines).toContainEqual({ worker: { seccomp: 2, filters: 2 } });
  });

  it('reports an fs.readFile of a new file from the libuv threadpool as an openat violation', async () => {
    const { result, lines } = await runNode('readfile', nodePolicy({ openFiles: false }), ['/etc/hostname']);
    expect(result.status).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('openat');
    expect(lines).toEqual([{ err: null }]); // the callback never ran
  });

  it('reports socket() as a violation', async () => {
    const { result, lines } = await runNode('socket', nodePolicy());
    expect(result.status).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('socket');
    expect(lines).toEqual([{ err: null }]);
  });

  it('reports starting a child process as a violation', async () => {
    const { result, lines } = await runNode('child', nodePolicy());
    expect(result.status).toBe('VIOLATION');
    // libuv makes the stdio/exec-error pipe first, then clones: whichever comes first is fatal.
    expect(['pipe2', 'socketpair', 'clone', 'clone3', 'vfork', 'execve']).toContain(result.violation?.syscall);
    expect(lines).toEqual([{ err: null }]);
  });

  it('keeps timers, promises, reads on open fds, zlib, crypto, JSON, GC and JIT working, 20 runs in a row', async () => {
    const policy = nodePolicy({ openFiles: false });
    for (let i = 0; i < 20; i++) {
      const exit = i % 2 === 0 ? 'exit' : 'natural';
      const { result, lines, stderr } = await runNode('workload', policy, [exit], ['--expose-gc']);
      expect(result.status, `run ${i} (${exit}): ${result} ${stderr}`).toBe('OK');
      expect(result.exitCode).toBe(0);
      expect(lines).toHaveLength(1);
      expect(lines[0].err).toBeNull();
      expect(lines[0].checks).toEqual({
        timers: true,
        promises: true,
        readSync: true,
        readAsync: true,
        zlib: true,
        crypto: true,
        json: true,
        gc: true,
        jit: true,
      });
    }
    // 20 Node starts: on 2 cores shared with the other Node-line suites a run took up to 3.9 s.
  }, 120_000);

  it('openFiles: false: fs.fstat, fs.fstatSync and fs.readFile work on fds opened before; a stat by path stays a violation', async () => {
    const file = join(repoRoot, 'package.json');
    const size = statSync(file).size;
    const { result, lines } = await runNode('fstat', nodePolicy({ openFiles: false }), [file]);
    expect(lines).toEqual([{ err: null }, { fstatSync: size }, { fstat: size }, { readFile: size }]);
    expect(result.status).toBe('VIOLATION');
    expect(['stat', 'newfstatat', 'statx']).toContain(result.violation?.syscall);
  });

  it('leaves no fd behind in the executor (handshake done, violation, never called)', async () => {
    const policy = nodePolicy();
    await runNode('status', policy); // warm: the forkserver and the monitor exist
    const before = openFdCount();
    await runNode('status', policy);
    await runNode('socket', policy);
    await runCaptured(['/bin/true'], { policy: isolationPolicy(), executor: { enableSandboxBeforeExec: false } });
    await tick(50);
    expect(openFdCount()).toBeLessThanOrEqual(before); // a leak only adds fds; a finalizer elsewhere may close one meanwhile
  });

  it('fd 1020 is reserved for the handshake socket', () => {
    const ex = new Executor('/bin/true', ['true']);
    expect(() => ex.ipc.mapFd(0, 1020)).toThrow(
      /sandboxee fd 1020 is reserved by sbx: it is the sandbox-me-here handshake socket/,
    );
  });

  it('a sandboxee that never calls it just runs: a normal Result', async () => {
    const { result, stdout } = await runCaptured(['/bin/sh', '-c', 'echo plain; exit 3'], {
      policy: isolationPolicy(),
      executor: { enableSandboxBeforeExec: false },
    });
    expect(result.status).toBe('OK');
    expect(result.exitCode).toBe(3);
    expect(stdout).toBe('plain\n');
  });
});

describe('Client.sandboxMeHere() refusals', () => {
  it('twice: ALREADY_SANDBOXED', async () => {
    const { result, lines } = await runNode('twice', nodePolicy());
    expect(result.status).toBe('OK');
    expect(lines[0].first).toBeNull();
    expect(lines[0].second).toMatchObject({ code: 'ALREADY_SANDBOXED', filterInstalled: true });
    expect(lines[0].second.message).toMatch(/already sandboxed/);
    expect(lines[0].sandboxed).toBe(true);
  });

  it('outside a sandbox: NOT_IN_SANDBOX, naming SBX_CLIENT_FD', async () => {
    const { code, stdout } = await runPlain([process.execPath, fixture, 'alone']);
    expect(code).toBe(0);
    const [line] = jsonLines(stdout);
    expect(line.err).toMatchObject({ code: 'NOT_IN_SANDBOX', filterInstalled: false });
    expect(line.err.message).toMatch(/fd 1020 \(SBX_CLIENT_FD\) is not open.*enableSandboxBeforeExec: false/);
    const bad = jsonLines((await runPlain([process.execPath, fixture, 'alone'], { SBX_CLIENT_FD: 'x' })).stdout)[0];
    expect(bad.err).toMatchObject({ code: 'NOT_IN_SANDBOX' });
    expect(bad.err.message).toMatch(/SBX_CLIENT_FD="x" is not a file descriptor number/);
  });

  it('several threads on a kernel without TSYNC_ESRCH: THREADS_WITHOUT_TSYNC (simulated)', async () => {
    const { result, lines } = await runNode('alone', nodePolicy(), ['notsync']);
    expect(result.status).toBe('OK');
    expect(lines[0].err).toMatchObject({ code: 'THREADS_WITHOUT_TSYNC', filterInstalled: false });
    expect(lines[0].err.message).toMatch(/this process has \d+ threads.*TSYNC_ESRCH needs Linux 5\.7/);
  });

  it('a sandboxee that breaks the handshake after the policy went out is ended: SETUP_ERROR', async () => {
    // The policy allows close(), so the executor sent it before HELLO: garbage then is fatal.
    const { result } = await runCaptured(
      ['/bin/bash', '-c', 'printf "%s" "not a HELLO message at all" >&1020; sleep 5'],
      {
        policy: isolationPolicy(),
        executor: { enableSandboxBeforeExec: false },
      },
    );
    expect(result.status).toBe('SETUP_ERROR');
    expect(result.reason).toMatch(/^sandboxMeHere handshake: /);
    expect(result.walltimeMs).toBeLessThan(4000);
  });

  it('a sandboxee that sent HELLO but never installed its policy does not end OK', async () => {
    // A valid HELLO (version 2, TSYNC), then the program carries on without the filter and exits 0.
    const { result, stdout } = await runCaptured(
      ['/bin/bash', '-c', `printf '${HELLO}' >&1020; echo carried on; exit 0`],
      {
        policy: isolationPolicy(),
        executor: { enableSandboxBeforeExec: false },
      },
    );
    expect(stdout).toBe('carried on\n');
    expect(result.status).toBe('SETUP_ERROR');
    expect(result.reason).toMatch(/asked for its policy but never installed it/);
  });

  it('a sandboxee that sends HELLO and exits at once, 20 times: each run ends SETUP_ERROR, none hangs or ends OK', async () => {
    // The executor must read the HELLO and then the end of the channel behind it, whichever
    // comes first: its policy write (EPIPE) or its read of a short message followed by EOF.
    for (let i = 0; i < 20; i++) {
      const { result } = await runCaptured(['/bin/bash', '-c', `printf '${HELLO}' >&1020; exit 0`], {
        policy: isolationPolicy(),
        executor: { enableSandboxBeforeExec: false, limits: { walltime: 10 } },
      });
      expect(result.status, `run ${i}: ${result}`).toBe('SETUP_ERROR');
    }
  }, 60_000);

  it('a HELLO carrying 150 fds is refused and leaves no fd in the executor', async () => {
    const policy = nodePolicy();
    await runNode('hello-fds', policy); // warm: the forkserver exists
    const before = openFdCount();
    for (let i = 0; i < 3; i++) {
      const { result, lines } = await runNode('hello-fds', policy);
      expect(lines[0]).toEqual({ sending: 150 });
      expect(result.status).toBe('SETUP_ERROR');
      expect(result.reason).toMatch(/^sandboxMeHere handshake: .*fd/);
    }
    // A sandbox's own fds may close a moment after its Result on a loaded machine; a leak (16 or
    // more per run before the fix) never goes away.
    expect(await fdCountSettled(before)).toBeLessThanOrEqual(before);
  });

  /**
   * Plays the executor on a socketpair mapped at the client's fd 3, doing `act` after HELLO. The
   * program runs in a sandbox that serves no handshake of its own (SBX_CLIENT_FD moves the client
   * to fd 3): it starts, as every sandbox-me-here sandboxee, under the io_uring denial, without
   * which libuv (Node 22 and later) would hold rings that the played policy then breaks.
   */
  async function againstFakeExecutor(act: (c: Comms, hello: Buffer) => Promise<void>): Promise<JsonLine> {
    const [ours, theirs] = native().socketpair(false, false);
    const comms = new Comms(ours, { maxMessageSize: 1024 });
    const done = runCaptured([process.execPath, fixture, 'alone'], {
      policy: nodePolicy(),
      executor: { enableSandboxBeforeExec: false, cwd: repoRoot, env: { ...ENV, SBX_CLIENT_FD: '3' } },
      before: (_s, e) => void e.ipc.mapFd(theirs, 3),
    });
    const hello = await comms.recvTLV(ClientTag.Hello);
    native().close(theirs);
    expect(hello.data.length).toBe(CLIENT_HELLO_SIZE);
    await act(comms, hello.data);
    comms.close();
    const { result, stdout } = await done;
    expect(result.exitCode, result.toString()).toBe(0);
    return jsonLines(stdout)[0];
  }

  it('executor gone before the policy: EXECUTOR_GONE, nothing installed', async () => {
    const line = await againstFakeExecutor(async () => {});
    expect(line.err).toMatchObject({ code: 'EXECUTOR_GONE', filterInstalled: false });
    expect(line.err.message).toMatch(/executor closed the handshake channel/);
  });

  it('executor gone after INSTALLED, before GO: EXECUTOR_GONE with the filter on', async () => {
    const line = await againstFakeExecutor(async (c, hello) => {
      const policy = new PolicyBuilder().allowNodeRuntime().build();
      const opts = { monitor: true, execPrologue: false, clientChannelFd: 3, clientListenerFd: hello.readUInt32LE(12) };
      await c.sendTLV(ClientTag.Policy, compilePolicy(policy, opts).program);
      const installed = await c.recvAny();
      expect(installed.tag).toBe(ClientTag.Installed);
    });
    expect(line.err).toMatchObject({ code: 'EXECUTOR_GONE', filterInstalled: true });
  });

  it("the executor's ERROR: POLICY_REJECTED with its reason", async () => {
    const line = await againstFakeExecutor(async (c) => {
      await c.sendTLV(ClientTag.Error, Buffer.from('no policy for you'));
    });
    expect(line.err).toMatchObject({ code: 'POLICY_REJECTED', filterInstalled: false });
    expect(line.err.message).toMatch(/the executor refused: no policy for you/);
  });
});

describe('sbx_client_sandbox_me_here() in a C sandboxee', () => {
  /** What client_me_here does after the call: print, join a thread, exit; `status` also reads
   *  /proc (open, getdents, close). Without close() the executor must wait for HELLO to add the
   *  close() of the client's listener number to the policy: both paths of the handshake run. */
  function cPolicy(readProc: boolean): Policy {
    const bin = testcase('client_me_here');
    const b = new PolicyBuilder()
      .allowWrite()
      .allowExit()
      .allowSystemMalloc()
      .allowSyscalls(['read', 'fstat', 'newfstatat', 'rt_sigprocmask']);
    if (readProc)
      b.allowOpen()
        .allowStat()
        .allowSyscalls(['close', 'getdents64', 'readlink', 'readlinkat', 'lseek'])
        .addDirectory('/proc');
    return b.addFile(bin).addLibrariesForBinary(bin).build();
  }
  const runC = (mode: string) =>
    runCaptured([testcase('client_me_here'), mode], {
      policy: cPolicy(mode === 'status'),
      executor: { enableSandboxBeforeExec: false, env: ENV },
    });

  it('filters both threads and leaves no listener', async () => {
    const { result, stdout } = await runC('status');
    expect(result.status, `${stdout} ${result}`).toBe('OK');
    expect(stdout).toBe('me_here: ok\nthreads: 2 filtered: 2 listeners: 0\n');
  });

  it('reports socket() as a violation', async () => {
    const { result, stdout } = await runC('socket');
    expect(result.status).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('socket');
    expect(stdout).toBe('me_here: ok\n');
  });

  it('prlimit64 on its parent is a violation even where the policy allows prlimit64; on itself (pid 0) it works', async () => {
    const bin = testcase('client_me_here');
    const policy = new PolicyBuilder()
      .allowWrite()
      .allowExit()
      .allowSystemMalloc()
      .allowSyscalls(['read', 'fstat', 'newfstatat', 'rt_sigprocmask', 'prlimit64', 'getppid'])
      .addFile(bin)
      .addLibrariesForBinary(bin)
      .build();
    const { result, stdout } = await runCaptured([bin, 'prlimit'], {
      policy,
      executor: { enableSandboxBeforeExec: false, env: ENV },
    });
    expect(result.status, `${stdout} ${result}`).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('prlimit64');
    expect(stdout).toBe('me_here: ok\nprlimit 0: 0\nprlimit parent: calling\n');
  });

  it('twice: EALREADY; outside a sandbox: EBADF naming SBX_CLIENT_FD', async () => {
    const { result, stdout } = await runC('twice');
    expect(result.status).toBe('OK');
    expect(stdout).toMatch(/^me_here: ok\nsecond: EALREADY: this process is already sandboxed/);
    expect(stdout).toMatch(/sandboxed: 1\n$/);
    const outside = await runPlain([testcase('client_me_here'), 'outside']);
    expect(outside.stdout).toMatch(/^me_here: EBADF: fd 1020 \(SBX_CLIENT_FD\) is not open/);
  });
});
