// Stack traces (issue #22 item 2): a symbolized native stack, registers and program name in the
// Result on violation, timeout and kill, on demand for a running sandbox, taken by the confined
// sbx-unwind; opt-out; hostile targets give no stack and no hang.
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Executor, Sandbox, formatStackTrace, type Result } from '@sbx/executor';
import { KILL } from '@sbx/executor/bpf';
import { collectStackTrace } from '../packages/executor/src/sandbox/stack-trace.js';
import { isolationPolicy, testcase } from './helpers.js';

const probe = testcase('stack_probe');
const CHAIN = ['deep_violation', 'middle_frame', 'outer_frame', 'main'];
const work = mkdtempSync(join(tmpdir(), 'sbx-stack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function symbols(r: { stackTrace?: { frames: { symbol?: string }[] } }): string[] {
  return (r.stackTrace?.frames ?? []).map((f) => f.symbol ?? '?');
}

function run(mode: string, options: ConstructorParameters<typeof Executor>[2] = {}, path = probe) {
  const sandbox = new Sandbox(new Executor(path, [path, mode], { stdio: 'ignore', ...options }), isolationPolicy());
  return { sandbox, result: sandbox.run() };
}

/** Runs until the sandboxee sleeps in deep_sleep (its main thread is in nanosleep or clock_nanosleep). */
async function sleeping(options: ConstructorParameters<typeof Executor>[2] = {}) {
  const r = run('sleep', options);
  await r.sandbox.runAsync();
  for (let i = 0; i < 500; i++) {
    const target = childOf(r.sandbox.pid);
    if (target && /^(35|230) /.test(readFileSync(`/proc/${target}/syscall`, 'utf8'))) return { ...r, target };
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error('stack_probe did not reach nanosleep');
}

/** The first child of `pid` (the target under the sandbox's init), found through /proc. */
function childOf(pid: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

describe('stack traces', () => {
  it('a violation three frames deep gives the violating thread symbolized stack, registers and name', async () => {
    const result: Result = await run('violate').result;
    expect(result.status).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('ptrace');
    expect(result.stackTraceError).toBeUndefined();
    const t = result.stackTrace!;
    expect(t.trigger).toBe('violation');
    expect(t.tid).toBe(result.violation!.pid);
    const names = symbols(result);
    // libc's syscall() wrapper first, then our chain in order.
    const at = names.indexOf('deep_violation');
    expect(at).toBeGreaterThanOrEqual(0);
    expect(names.slice(at, at + 4)).toEqual(CHAIN);
    expect(t.comm).toBe('stack_probe');
    expect(t.exe).toMatch(/stack_probe$/);
    expect(t.registers.orig_rax ?? t.registers.x8).toBeDefined();
    expect(BigInt(t.registers.orig_rax!)).toBe(101n); // ptrace on x86_64
    expect(BigInt(t.sp)).toBeGreaterThan(0n);
    expect(t.ip).toBe(t.registers.rip);
    expect(formatStackTrace(t)).toContain('deep_violation+0x');
    // The Result's JSON round trip keeps it.
    const back = JSON.parse(JSON.stringify(result));
    expect(back.stackTrace.frames.length).toBe(t.frames.length);
  });

  it('timeout and kill give the stack of the target', async () => {
    const timeout = await run('sleep', { limits: { walltime: 0.5 } }).result;
    expect(timeout.status).toBe('TIMEOUT');
    expect(symbols(timeout)).toEqual(expect.arrayContaining(['deep_sleep', 'middle_frame', 'outer_frame', 'main']));
    expect(timeout.stackTrace?.trigger).toBe('timeout');

    const s = await sleeping();
    s.sandbox.kill();
    const killed = await s.result;
    expect(killed.status).toBe('EXTERNAL_KILL');
    expect(killed.stackTrace?.trigger).toBe('kill');
    expect(killed.stackTrace?.tid).toBe(s.target);
    expect(symbols(killed)).toEqual(expect.arrayContaining(['deep_sleep', 'middle_frame', 'outer_frame', 'main']));
  });

  it('on demand: a running sandbox is traced and keeps running', async () => {
    const s = await sleeping();
    const t = await s.sandbox.stackTrace();
    expect(t.trigger).toBe('request');
    expect(t.frames.map((f) => f.symbol)).toEqual(expect.arrayContaining(['deep_sleep', 'main']));
    // Still alive and sleeping after the unwinder detached.
    await new Promise((res) => setTimeout(res, 50));
    expect(readFileSync(`/proc/${s.target}/stat`, 'utf8').split(') ')[1]![0]).toMatch(/[SR]/);
    await expect(s.sandbox.stackTrace(-1)).rejects.toThrow(/tid must be a positive integer/);
    const again = await s.sandbox.stackTrace();
    expect(again.frames.length).toBe(t.frames.length);
    s.sandbox.kill();
    expect((await s.result).status).toBe('EXTERNAL_KILL');
  });

  it('Node sandboxees: JS frames are named from the perf map (--perf-basic-prof)', async () => {
    const app = mkdtempSync(join(work, 'js-'));
    // The sandbox's (leased) uid must reach the bound directory.
    chmodSync(work, 0o755);
    chmodSync(app, 0o755);
    writeFileSync(
      join(app, 'app.js'),
      [
        'function deepJsViolation() { return process.ppid; }',
        'function middleJs() { return deepJsViolation() + 1; }',
        'function outerJs() { return middleJs() + 1; }',
        'outerJs();',
      ].join('\n'),
    );
    const policy = isolationPolicy((b) => {
      if (!process.execPath.startsWith('/usr/')) b.addDirectory(dirname(process.execPath));
      b.addDirectoryAt(app, '/app');
      b.addPolicyOnSyscall('getppid', [KILL]); // process.ppid: a violation from JS
    });
    const argv = ['node', '--perf-basic-prof', '--interpreted-frames-native-stack', '/app/app.js'];
    const result = await new Sandbox(new Executor(process.execPath, argv, { stdio: 'ignore' }), policy).run();
    expect(result.status).toBe('VIOLATION');
    expect(result.violation?.syscall).toBe('getppid');
    const names = symbols(result);
    // Native frames (libc, Node's C++) down to the JS ones, named as V8 lists them.
    expect(names[0]).toMatch(/getppid/);
    const js = names.filter((n) => n.startsWith('JS:')).map((n) => n.split(' ')[0]!.replace(/^JS:[~*^]?/, ''));
    expect(js.slice(0, 3)).toEqual(['deepJsViolation', 'middleJs', 'outerJs']);
    expect(result.stackTrace!.frames.find((f) => f.symbol?.includes('deepJsViolation'))?.module).toBe('[jit]');
  });

  it('opt-out: stackTraces false (or per trigger) gives none', async () => {
    const r = await run('violate', { stackTraces: false }).result;
    expect(r.status).toBe('VIOLATION');
    expect(r.stackTrace).toBeUndefined();
    expect(r.stackTraceError).toBeUndefined();
    const t = await run('sleep', { limits: { walltime: 0.3 }, stackTraces: { onTimeout: false } }).result;
    expect(t.status).toBe('TIMEOUT');
    expect(t.stackTrace).toBeUndefined();
    expect(() => new Executor(probe, [probe], { stackTraces: { onKill: 'yes' as never } })).toThrow(/onKill/);
  });

  it('a binary with corrupt unwind data still ends in a Result, with whatever frames libdw can vouch for', async () => {
    // Overwrite .eh_frame and .eh_frame_hdr of a copy of stack_probe with 0xff bytes.
    const bad = join(work, 'corrupt_probe');
    copyFileSync(probe, bad);
    const elf = readFileSync(bad);
    for (const name of ['.eh_frame', '.eh_frame_hdr']) {
      const sec = section(elf, name);
      expect(sec).toBeDefined();
      elf.fill(0xff, sec!.offset, sec!.offset + sec!.size);
    }
    writeFileSync(bad, elf);
    chmodSync(bad, 0o755);
    const result = await run('violate', {}, bad).result;
    expect(result.status).toBe('VIOLATION');
    // libdw falls back to the frame-pointer chain (this binary keeps frame pointers); either way
    // the unwinder ends and its output stays well formed.
    expect(result.stackTrace ?? result.stackTraceError).toBeTruthy();
    for (const f of result.stackTrace?.frames ?? []) expect(f.pc).toMatch(/^0x[0-9a-f]+$/);
  });

  it('a stack that loops forever is cut at maxFrames, and the sandbox ends', async () => {
    const result = await run('loop', { stackTraces: { maxFrames: 20 } }).result;
    expect(result.status).toBe('VIOLATION');
    const t = result.stackTrace!;
    expect(t.frames.length).toBe(20);
    expect(t.incomplete).toMatch(/cut at 20 frames/);
    expect(symbols(result).filter((s) => s === 'deep_loop').length).toBeGreaterThan(5);
  });

  it('a process that exits while traced gives a trace or a reason, never a hang', async () => {
    // 'exit' ends at once: traces asked meanwhile race its exit.
    for (let i = 0; i < 5; i++) {
      const r = run('exit');
      await r.sandbox.runAsync();
      const outcomes = await Promise.allSettled([r.sandbox.stackTrace(), r.sandbox.stackTrace()]);
      for (const o of outcomes) {
        if (o.status === 'rejected') expect(String(o.reason)).toMatch(/Sandbox.stackTrace\(\): ./);
        else expect(o.value.frames.length).toBeGreaterThan(0);
      }
      expect((await r.result).status).toBe('OK');
    }
  });

  it('a thread that is gone gives an error, not a hang', async () => {
    const s = await sleeping();
    s.sandbox.kill();
    await s.result;
    const out = await collectStackTrace({
      tid: s.target,
      sandboxPid: process.pid,
      trigger: 'request',
      stopProcess: false,
      timeoutMs: 2000,
      maxFrames: 8,
    });
    expect(out.ok).toBe(false);
    await expect(s.sandbox.stackTrace()).rejects.toThrow(/not running/);
  });

  it('the unwinder refuses a process outside the sandbox user namespace it was given', async () => {
    const s = await sleeping();
    // The executor itself, claimed to be in the sandbox: the namespace check refuses it.
    const out = await collectStackTrace({
      tid: process.pid,
      sandboxPid: s.target,
      trigger: 'request',
      stopProcess: false,
      timeoutMs: 2000,
      maxFrames: 8,
    });
    expect(out).toMatchObject({ ok: false, error: expect.stringMatching(/not in the sandbox's user namespace/) });
    s.sandbox.kill();
    await s.result;
  });

  it('the unwinder is confined: it cannot open a host file outside the sandbox view', async () => {
    const secret = join(work, 'host-secret');
    writeFileSync(secret, 'host only\n', { mode: 0o644 });
    const s = await sleeping();
    const base = {
      sandboxPid: s.target,
      trigger: 'request' as const,
      stopProcess: false,
      timeoutMs: 3000,
      maxFrames: 8,
    };
    const denied = await collectStackTrace({ ...base, tid: s.target, probePath: secret });
    expect(denied.probe).toBe('ENOENT');
    // Control: a file of the sandbox's view opens (the probe itself works).
    const allowed = await collectStackTrace({ ...base, tid: s.target, probePath: '/etc/passwd' });
    expect(allowed.probe).toBe('opened');
    expect(allowed.ok).toBe(true);
    s.sandbox.kill();
    await s.result;
  });
});

/** An ELF64 section's file offset and size, by name. */
function section(elf: Buffer, name: string): { offset: number; size: number } | undefined {
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const strtab = Number(elf.readBigUInt64LE(shoff + shstrndx * shentsize + 0x18));
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * shentsize;
    const nameOff = elf.readUInt32LE(h);
    const end = elf.indexOf(0, strtab + nameOff);
    if (elf.toString('latin1', strtab + nameOff, end) === name)
      return { offset: Number(elf.readBigUInt64LE(h + 0x18)), size: Number(elf.readBigUInt64LE(h + 0x20)) };
  }
  return undefined;
}
