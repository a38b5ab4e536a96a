// The one-call run() API, accounting of killed runs, JSON-safe Results and errors, streams from
// construction (issue 20): real sandboxes on the real kernel.
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  Executor,
  ExecutorError,
  PolicyBuilder,
  PolicyError,
  Result,
  RunError,
  Sandbox,
  SbxError,
  errorToJSON,
  run,
  violationFromJSON,
} from '@sbx/executor';
import { KILL } from '@sbx/executor/bpf';
import { isolationPolicy } from './helpers.js';

const PY = '/usr/bin/python3';
const BUSY = 'while True: pass';
// python3 under the permissive isolation policy (the default policy of `sbx run` is another
// issue's: it is exercised here with sh, cat and yes).
const py = { policy: isolationPolicy() };

describe('run()', () => {
  it('captures stdout and stderr, feeds input, and resolves with the Result', async () => {
    const { stdout, stderr, result } = await run('/bin/sh', ['-c', 'tr a-z A-Z; echo err >&2; exit 3'], {
      input: 'hello\n',
    });
    expect(stdout).toBe('HELLO\n');
    expect(stderr).toBe('err\n');
    expect(result.status).toBe('OK');
    expect(result.exitCode).toBe(3);
  });

  it('runs the default policy: a shell pipeline with env and cwd', async () => {
    const { stdout, result } = await run('/bin/sh', ['-c', 'echo $X $(pwd) | wc -w'], { env: { X: 'y' }, cwd: '/tmp' });
    expect(result.status).toBe('OK');
    expect(stdout.trim()).toBe('2');
  });

  it('runs python with env and cwd', async () => {
    const { stdout, result } = await run(PY, ['-c', 'import os; print(6*7, os.environ["X"], os.getcwd())'], {
      ...py,
      env: { X: 'y', PATH: '/usr/bin:/bin' },
      cwd: '/tmp',
    });
    expect(result.status).toBe('OK');
    expect(stdout).toBe('42 y /tmp\n');
  });

  it('takes input from a Readable and returns Buffers with encoding: buffer', async () => {
    const { stdout, result } = await run('/bin/cat', [], {
      input: Readable.from([Buffer.from([0, 1]), Buffer.from([255])]),
      encoding: 'buffer',
    });
    expect(result.status).toBe('OK');
    expect(Buffer.isBuffer(stdout)).toBe(true);
    expect([...stdout]).toEqual([0, 1, 255]);
  });

  it('ends a program that writes past maxBuffer with OUTPUT_LIMIT, the output cut at the cap', async () => {
    const { stdout, result } = await run('/usr/bin/yes', [], { maxBuffer: 100_000, timeout: 20_000 });
    expect(result.status).toBe('OUTPUT_LIMIT');
    expect(result.reason).toMatch(/stdout exceeded maxBuffer \(100000 bytes\)/);
    expect(stdout.length).toBe(100_000);
    // stderr has its own cap
    const e = await run('/bin/sh', ['-c', 'yes >&2'], { maxBuffer: 5000, timeout: 20_000 });
    expect(e.result.status).toBe('OUTPUT_LIMIT');
    expect(e.result.reason).toMatch(/^stderr/);
    expect(e.stderr.length).toBe(5000);
  });

  it('exactly maxBuffer bytes is fine; a pipe-sized chunk past it is not', async () => {
    const exact = await run('/bin/sh', ['-c', 'head -c 100000 /dev/zero'], { maxBuffer: 100_000 });
    expect(exact.result.status).toBe('OK');
    expect(exact.stdout.length).toBe(100_000);
    // the cap hit at a chunk boundary (64 KiB pipe reads), then more comes
    const over = await run('/bin/sh', ['-c', 'yes'], { maxBuffer: 65_536, timeout: 20_000 });
    expect(over.result.status).toBe('OUTPUT_LIMIT');
    expect(over.stdout.length).toBe(65_536);
  });

  it('timeout is in milliseconds: a busy loop ends with TIMEOUT', async () => {
    const { result } = await run(PY, ['-c', BUSY], { ...py, timeout: 300 });
    expect(result.status).toBe('TIMEOUT');
    expect(result.reason).toMatch(/0\.3 s/);
  });

  it('an AbortSignal ends the sandbox as kill() does (EXTERNAL_KILL, reason aborted)', async () => {
    const ac = new AbortController();
    const p = run(PY, ['-c', BUSY], { ...py, signal: ac.signal, timeout: 30_000 });
    expect(p.sandbox).toBeInstanceOf(Sandbox);
    setTimeout(() => ac.abort(new Error('client went away')), 300);
    const { result } = await p;
    expect(result.status).toBe('EXTERNAL_KILL');
    expect(result.reason).toBe('aborted: client went away');
  });

  it('an abort while the sandbox is still being set up ends it too', async () => {
    const ac = new AbortController();
    const p = run(PY, ['-c', BUSY], { ...py, signal: ac.signal, timeout: 60_000 });
    ac.abort(new Error('right away'));
    const { result } = await p;
    // not TIMEOUT: it was ended long before its walltime
    expect(result.status).toBe('EXTERNAL_KILL');
    expect(result.reason).toBe('aborted: right away');
  });

  it('an already aborted signal rejects with its reason and starts nothing', () => {
    const ac = new AbortController();
    ac.abort(new Error('too late'));
    expect(() => run('/bin/true', [], { signal: ac.signal })).toThrow('too late');
  });

  it('streams are live while run() captures', async () => {
    const p = run('/bin/sh', ['-c', 'echo one; sleep 0.2; echo two']);
    const seen: string[] = [];
    p.sandbox.stdout!.on('data', (d: Buffer) => seen.push(d.toString()));
    const { stdout } = await p;
    expect(seen.join('')).toBe('one\ntwo\n');
    expect(stdout).toBe('one\ntwo\n');
  });

  it('rejects bad options with RunError naming them', () => {
    expect(() => run('/bin/true', [], { timeout: -1 })).toThrow(RunError);
    expect(() => run('/bin/true', [], { nope: 1 } as never)).toThrow(/unknown option "nope"/);
    expect(() => run('/bin/true', [], { timeout: 1000, limits: { walltime: 1 } })).toThrow(/not both/);
    expect(() => run('/bin/true', [], { maxBuffer: 0 })).toThrow(/maxBuffer/);
    expect(() => run('/bin/true', [], { policy: isolationPolicy(), view: { mounts: ['/etc'] } })).toThrow(
      /view shapes the default policy/,
    );
    try {
      run('/bin/true', [], { encoding: 'nope' as never });
    } catch (e) {
      expect((e as RunError).code).toBe('BAD_OPTION');
    }
  });

  it('view binds host paths into the default policy', async () => {
    const { stdout, result } = await run('/bin/cat', ['/etc/hostname-view'], {
      view: { mounts: [{ outside: '/etc/os-release', inside: '/etc/hostname-view' }] },
    });
    expect(result.status).toBe('OK');
    expect(stdout).toMatch(/NAME=/);
  });
});

describe('accounting of the whole tree in every status', () => {
  // The program prints its own cpu time (time.process_time) as it goes: the Result must show at
  // least the last figure printed, however loaded the machine is. The old report of a killed run
  // was the init's few milliseconds.
  const BUSY_REPORTING = [
    'import time, os',
    'last = 0',
    'while True:',
    '    t = time.process_time()',
    '    if t - last > 0.05:',
    '        print(os.getpid(), t, flush=True)',
    '        last = t',
  ].join('\n');
  /** The sum over processes of the last cpu time each printed, in ms. */
  const printedCpuMs = (stdout: string) => {
    const last = new Map<string, number>();
    for (const line of stdout.trim().split('\n')) {
      const [pid, t] = line.split(' ');
      if (pid && t) last.set(pid, Number(t) * 1000);
    }
    return [...last.values()].reduce((a, b) => a + b, 0);
  };
  const cpu = (r: Result) => r.cpuUserMs + r.cpuSystemMs;

  for (const cgroup of ['auto', 'off'] as const) {
    for (const isolation of ['namespaces', 'landlock'] as const) {
      it(`TIMEOUT and EXTERNAL_KILL report the busy loop's cpu and memory (${isolation}, cgroup ${cgroup})`, async () => {
        const t = await run(PY, ['-c', BUSY_REPORTING], { ...py, timeout: 1000, executor: { cgroup, isolation } });
        expect(t.result.status).toBe('TIMEOUT');
        expect(printedCpuMs(t.stdout)).toBeGreaterThan(50);
        expect(cpu(t.result)).toBeGreaterThanOrEqual(printedCpuMs(t.stdout));
        expect(t.result.maxRssKiB).toBeGreaterThan(4000); // python's, not the init's ~1 MiB
        if (cgroup === 'off') expect(t.result.accounting).toBe('rusage');

        const p = run(PY, ['-c', BUSY_REPORTING], { ...py, timeout: 30_000, executor: { cgroup, isolation } });
        // killed once it has shown some cpu
        p.sandbox.stdout!.once('data', () => setTimeout(() => p.sandbox.kill(), 500));
        const k = await p;
        expect(k.result.status).toBe('EXTERNAL_KILL');
        expect(printedCpuMs(k.stdout)).toBeGreaterThan(50);
        expect(cpu(k.result)).toBeGreaterThanOrEqual(printedCpuMs(k.stdout));
        expect(k.result.maxRssKiB).toBeGreaterThan(4000);
      });
    }
  }

  it('every process of the tree is counted', async () => {
    const { stdout, result } = await run(
      '/bin/sh',
      ['-c', `${PY} -c '${BUSY_REPORTING}' & ${PY} -c '${BUSY_REPORTING}'`],
      { ...py, timeout: 1000, executor: { cgroup: 'off' } },
    );
    expect(result.status).toBe('TIMEOUT');
    expect(result.accounting).toBe('rusage');
    expect(
      new Set(
        stdout
          .trim()
          .split('\n')
          .map((l) => l.split(' ')[0]),
      ).size,
    ).toBe(2);
    expect(cpu(result)).toBeGreaterThanOrEqual(printedCpuMs(stdout));
  });

  it('VIOLATION reports the cpu spent before it', async () => {
    const policy = isolationPolicy((b) => b.addPolicyOnSyscall('kill', [KILL]));
    const prog =
      'import time, os\nwhile time.process_time() < 0.3: pass\nprint(os.getpid(), time.process_time(), flush=True)\nos.kill(1, 0)';
    const { stdout, result } = await run(PY, ['-c', prog], { policy, timeout: 30_000, executor: { cgroup: 'off' } });
    expect(result.status).toBe('VIOLATION');
    expect(result.violation!.syscall).toBe('kill');
    expect(cpu(result)).toBeGreaterThanOrEqual(printedCpuMs(stdout));
  });
});

describe('the init', () => {
  it('SIGTERM to the init from inside the sandbox is ignored (only the executor ends the tree)', async () => {
    const { stdout, result } = await run('/bin/sh', ['-c', 'kill -TERM 1; sleep 0.3; echo alive'], {
      ...py,
      timeout: 20_000,
    });
    expect(result.status).toBe('OK');
    expect(stdout).toBe('alive\n');
  });
});

describe('JSON', () => {
  it('a Result with a violation (bigint args) round-trips through JSON.stringify', async () => {
    const policy = isolationPolicy((b) => b.addPolicyOnSyscall('kill', [KILL]));
    const { result } = await run('/bin/sh', ['-c', 'kill -0 $$'], { policy, timeout: 10_000 });
    expect(result.status).toBe('VIOLATION');
    const v = result.violation!;
    expect(typeof v.args[0]).toBe('bigint');
    // the violation alone, as a user logs it
    const vj = JSON.parse(JSON.stringify({ violation: v })).violation;
    expect(vj.args.every((a: unknown) => typeof a === 'string' && /^\d+$/.test(a as string))).toBe(true);
    expect(violationFromJSON(vj)).toEqual(v);
    // the whole Result
    const text = JSON.stringify(result);
    const back = Result.fromJSON(JSON.parse(text));
    expect(back).toBeInstanceOf(Result);
    expect(JSON.stringify(back)).toBe(text);
    expect(back.violation!.args).toEqual(v.args);
    expect(back.status).toBe('VIOLATION');
    expect(() => Result.fromJSON({ ...JSON.parse(text), status: 'NOPE' })).toThrow(/status must be one of/);
  });

  it('every Result status serializes (OK, TIMEOUT, OUTPUT_LIMIT, SETUP_ERROR)', async () => {
    const results = [
      (await run('/bin/true')).result,
      (await run(PY, ['-c', BUSY], { ...py, timeout: 200 })).result,
      (await run('/usr/bin/yes', [], { maxBuffer: 10 })).result,
      (await run('/bin/true', [], { cwd: '/does/not/exist' })).result,
    ];
    expect(results.map((r) => r.status)).toEqual(['OK', 'TIMEOUT', 'OUTPUT_LIMIT', 'SETUP_ERROR']);
    for (const r of results) {
      const j = JSON.parse(JSON.stringify(r));
      expect(Result.fromJSON(j).toJSON()).toEqual(j);
    }
  });

  it('errors serialize with name, code and message, and round-trip', () => {
    const errors: unknown[] = [];
    const grab = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        errors.push(e);
      }
    };
    grab(() => run('/bin/true', [], { timeout: -1 }));
    grab(() => new Executor('/no/such/binary'));
    grab(() => new PolicyBuilder().allowSyscall('nope').build());
    expect(errors.map((e) => (e as Error).constructor.name)).toEqual(['RunError', 'ExecutorError', 'PolicyError']);
    expect(errors[0]).toBeInstanceOf(SbxError);
    expect(errors[1]).toBeInstanceOf(ExecutorError);
    expect(errors[2]).toBeInstanceOf(PolicyError);
    for (const e of errors) {
      const err = e as Error & { code: string };
      const json = JSON.parse(JSON.stringify(errorToJSON(e)));
      expect(json).toMatchObject({ name: err.name, code: err.code, message: err.message });
      expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    }
    // SbxError's own toJSON: JSON.stringify(err) directly
    const direct = JSON.parse(JSON.stringify(errors[0]));
    expect(direct).toEqual({ name: 'RunError', code: 'BAD_OPTION', message: (errors[0] as Error).message });
    expect(errorToJSON('plain')).toEqual({ message: 'plain' });
  });
});

describe('small API points', () => {
  it('allowSyscalls([]) is harmless at build()', async () => {
    const policy = isolationPolicy((b) => b.allowSyscalls([]).blockSyscallsWithErrno([], 'EPERM'));
    const { result } = await run('/bin/true', [], { policy });
    expect(result.status).toBe('OK');
  });

  it('sandbox.stdin/stdout/stderr exist from construction; input written early arrives', async () => {
    const s = new Sandbox(new Executor('/bin/cat', ['cat'], { stdio: 'pipe' }), isolationPolicy());
    expect(s.stdin).not.toBeNull();
    expect(s.stdout).not.toBeNull();
    expect(s.stderr).not.toBeNull();
    const out: Buffer[] = [];
    s.stdout!.on('data', (d: Buffer) => out.push(d));
    s.stdin!.end('early\n');
    const ended = new Promise((r) => s.stdout!.on('end', r));
    const result = await s.run();
    await ended;
    expect(result.status).toBe('OK');
    expect(Buffer.concat(out).toString()).toBe('early\n');
  });

  it('streams of a sandbox that never starts end', async () => {
    // a bind whose source is gone by the time the sandbox starts
    const dir = mkdtempSync(join(tmpdir(), 'sbx-run-'));
    const policy = isolationPolicy((b) => b.addDirectoryAt(dir, '/x'));
    rmdirSync(dir);
    const bad = new Sandbox(new Executor('/bin/true', ['true'], { stdio: 'pipe' }), policy);
    const badEnded = new Promise((r) => bad.stderr!.on('end', r).resume());
    const r = await bad.run();
    expect(r.status).toBe('SETUP_ERROR');
    await badEnded;
  });

  it('inherit and ignore have no streams', () => {
    const s = new Sandbox(
      new Executor('/bin/true', ['true'], { stdio: ['ignore', 'inherit', 'pipe'] }),
      isolationPolicy(),
    );
    expect(s.stdin).toBeNull();
    expect(s.stdout).toBeNull();
    expect(s.stderr).not.toBeNull();
  });
});
