import { existsSync, lstatSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALLOW, ARG_32, AUDIT_ARCH_X86_64, JEQ, KILL, LABEL } from './bpf.js';
import { compilePolicy } from './compiler.js';
import { PolicyError } from './errors.js';
import { evaluate } from './evaluator.js';
import { Policy } from './policy.js';
import { PolicyBuilder } from './policy-builder.js';
import { syscallNumber } from './syscalls.js';

const x64 = (): PolicyBuilder => new PolicyBuilder({ arch: 'x86_64' });

function problemsOf(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    expect((e as PolicyError).code).toBe('INVALID_POLICY');
    return (e as PolicyError).problems;
  }
  throw new Error('expected build() to throw');
}

describe('PolicyBuilder#build() errors', () => {
  it('names an unknown syscall and suggests the closest known names', () => {
    const problems = problemsOf(() => x64().allowSyscall('opne').build());
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/unknown syscall "opne" on x86_64 \(did you mean .*open/);
  });

  it('collects every problem and throws them together', () => {
    const problems = problemsOf(() =>
      x64()
        .allowSyscall('no_such_call')
        .blockSyscallWithErrno('write', 'EPREM')
        .allowIPv4('300.1.1.1/8')
        .allowIPv6('2001:db8::1/129')
        .addFile('relative/path')
        .build(),
    );
    expect(problems, problems.join('\n')).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/no_such_call/);
    expect(problems.join('\n')).toMatch(/unknown errno name "EPREM" \(did you mean EPERM/);
    expect(problems.join('\n')).toMatch(/"300.1.1.1" is not an IPv4 address/);
    expect(problems.join('\n')).toMatch(/prefix length must be 0..128/);
    expect(problems.join('\n')).toMatch(/must be absolute/);
  });

  it('says when a syscall belongs to the other architecture', () => {
    expect(problemsOf(() => new PolicyBuilder({ arch: 'aarch64' }).allowSyscall('open').build())[0]).toMatch(
      /"open" does not exist on aarch64 \(it is a x86_64 syscall\)/,
    );
  });

  it('refuses to allow an always-denied syscall', () => {
    expect(problemsOf(() => x64().allowSyscall('ptrace').build())[0]).toMatch(
      /ptrace is always denied; blockSyscallWithErrno/,
    );
    expect(problemsOf(() => x64().addPolicyOnSyscall('bpf', [ALLOW]).build())[0]).toMatch(/cannot add a rule for bpf/);
    expect(() => x64().allowSyscall('ioctl').allowSyscall('clone').build()).not.toThrow();
  });

  it('reports malformed raw rules', () => {
    const p = problemsOf(() =>
      x64()
        .addPolicyOnSyscall('write', [ARG_32(0), JEQ(1, 'nowhere'), ALLOW])
        .build(),
    );
    expect(p[0]).toMatch(/jumps to unknown label "nowhere"/);
    const q = problemsOf(() =>
      x64()
        .addPolicyOnSyscall('write', [ARG_32(0), JEQ(0x100000000n, 'x'), LABEL('x'), ALLOW])
        .build(),
    );
    expect(q[0]).toMatch(/needs 64 bits \(use ARG\(i\)/);
    const r = problemsOf(() =>
      x64()
        .addPolicyOnSyscall('write', [LABEL('a'), JEQ(1, 'a'), ALLOW])
        .build(),
    );
    expect(r[0]).toMatch(/jumps backwards/);
    // Empty lists are harmless: they add nothing (issue 20).
    expect(() =>
      x64().addPolicyOnSyscalls([], [ALLOW]).allowSyscalls([]).blockSyscallsWithErrno([], 'EPERM').build(),
    ).not.toThrow();
  });

  it('throws TypeError for wrong argument types', () => {
    expect(() => x64().allowSyscall({} as never)).toThrow(TypeError);
    expect(() => x64().allowSyscall(1.5)).toThrow(TypeError);
    expect(() => x64().allowSyscalls('read' as never)).toThrow(TypeError);
    expect(() => x64().blockSyscallWithErrno('read', null as never)).toThrow(TypeError);
    expect(() => x64().addPolicyOnSyscall('read', 'ALLOW' as never)).toThrow(TypeError);
    expect(() => x64().addPolicyOnSyscall('read', [{} as never])).toThrow(TypeError);
    expect(() => x64().defaultAction('deny' as never)).toThrow(TypeError);
    expect(() => x64().addTmpfs('/tmp', { sizeBytes: -1 })).toThrow(TypeError);
    expect(() => x64().allowIPv4(10 as never)).toThrow(TypeError);
    expect(() => new PolicyBuilder({ arch: 'mips' as never })).toThrow(TypeError);
  });

  it('builds once', () => {
    const b = x64().allowExit();
    b.build();
    expect(() => b.build()).toThrow(expect.objectContaining({ code: 'ALREADY_BUILT' }));
  });
});

describe('PolicyBuilder rules', () => {
  it('keeps rules in call order; the first allow/block of a number wins (Sandbox2)', () => {
    const p = x64()
      .allowRead()
      .blockSyscallWithErrno('read', 'EIO')
      .blockSyscallWithErrno('uname', 1)
      .allowSyscall('uname')
      .build();
    const read = p.rules.filter((r) => r.name === 'read');
    expect(read).toEqual([{ kind: 'allow', nr: 0, name: 'read' }]);
    expect(p.rules.filter((r) => r.name === 'uname')).toEqual([{ kind: 'errno', nr: 63, name: 'uname', errno: 1 }]);
  });

  it('accepts syscall numbers and errno names', () => {
    const p = x64().allowSyscall(60).blockSyscallWithErrno(39, 'EACCES').build();
    expect(p.rules).toEqual([
      { kind: 'allow', nr: 60, name: 'exit' },
      { kind: 'errno', nr: 39, name: 'getpid', errno: 13 },
    ]);
  });

  it('applies presets once, and skips names the architecture lacks', () => {
    const a = x64().allowStat().allowStat().build();
    expect(a.rules.map((r) => r.name)).toEqual(['stat', 'fstat', 'lstat', 'newfstatat', 'statx', 'statfs', 'fstatfs']);
    const b = new PolicyBuilder({ arch: 'aarch64' }).allowStat().allowOpen().build();
    expect(b.rules.map((r) => r.name)).toEqual([
      'fstat',
      'newfstatat',
      'statx',
      'statfs',
      'fstatfs',
      'openat',
      'openat2',
    ]);
  });

  it('allowNodeRuntime includes the 25 syscalls research Q3 found plus the documented extras', () => {
    const p = x64().allowNodeRuntime().build();
    const names = new Set(p.rules.map((r) => r.name));
    for (const n of 'read write pread64 close fstat fcntl ioctl mmap munmap mprotect madvise brk futex epoll_pwait epoll_ctl getpid rt_sigprocmask rt_sigaction sched_yield exit exit_group openat newfstatat statx getdents64'.split(
      ' ',
    )) {
      expect(names.has(n), n).toBe(true);
    }
    for (const n of ['epoll_wait', 'rt_sigreturn', 'getrandom', 'clock_gettime']) expect(names.has(n), n).toBe(true);
    expect(names.has('clone')).toBe(false);
    expect(names.has('socket')).toBe(false);
    expect(
      x64()
        .allowNodeRuntime({ threads: true })
        .build()
        .rules.some((r) => r.name === 'clone'),
    ).toBe(true);
    expect(
      x64()
        .allowNodeRuntime({ openFiles: false })
        .build()
        .rules.some((r) => r.name === 'openat'),
    ).toBe(false);
  });

  it('allowSafeFcntl allows only the safe commands', () => {
    const c = compilePolicy(x64().allowSafeFcntl().build());
    const fcntl = syscallNumber('x86_64', 'fcntl')!;
    const f = (cmd: number) => evaluate(c.insns, { arch: AUDIT_ARCH_X86_64, nr: fcntl, args: [3, cmd] }).action;
    for (const cmd of [0, 1, 2, 3, 4, 5, 6, 7, 1030]) expect(f(cmd)).toBe('ALLOW');
    for (const cmd of [8, 9, 1024, 1031]) expect(f(cmd)).toBe('KILL_PROCESS');
  });

  it('allowStaticStartup reads limits but never sets them, and answers readlink with ENOENT', () => {
    const c = compilePolicy(x64().allowStaticStartup().build());
    const prlimit = syscallNumber('x86_64', 'prlimit64')!;
    const e = (nr: number, args: Array<number | bigint>) => evaluate(c.insns, { arch: AUDIT_ARCH_X86_64, nr, args });
    expect(e(prlimit, [0, 3, 0, 0x7ffc0000]).action).toBe('ALLOW');
    expect(e(prlimit, [0, 3, 0x7ffc0000, 0]).action).toBe('KILL_PROCESS');
    expect(e(prlimit, [0, 3, 0x100000000n, 0]).action).toBe('KILL_PROCESS');
    expect(e(syscallNumber('x86_64', 'readlink')!, [])).toMatchObject({ action: 'ERRNO', data: 2 });
    expect(e(syscallNumber('x86_64', 'arch_prctl')!, [0x1002])).toMatchObject({ action: 'ALLOW' });
    expect(e(syscallNumber('x86_64', 'arch_prctl')!, [0x3001])).toMatchObject({ action: 'ERRNO', data: 22 });
    // A user rule overrides the overridable one.
    const d = compilePolicy(x64().allowStaticStartup().allowSyscall('readlink').build());
    expect(evaluate(d.insns, { arch: AUDIT_ARCH_X86_64, nr: syscallNumber('x86_64', 'readlink')! }).action).toBe(
      'ALLOW',
    );
  });

  it('runs raw rules: write only to fd 1', () => {
    const c = compilePolicy(
      x64()
        .addPolicyOnSyscall('write', [ARG_32(0), JEQ(1, 'ok'), KILL, LABEL('ok'), ALLOW])
        .build(),
    );
    expect(evaluate(c.insns, { arch: AUDIT_ARCH_X86_64, nr: 1, args: [1] }).action).toBe('ALLOW');
    expect(evaluate(c.insns, { arch: AUDIT_ARCH_X86_64, nr: 1, args: [2] }).action).toBe('KILL_PROCESS');
  });
});

describe('Policy', () => {
  it('is immutable', () => {
    const p = x64()
      .allowExit()
      .addTmpfs('/tmp', { sizeBytes: 1 << 20 })
      .build();
    expect(Object.isFrozen(p.rules)).toBe(true);
    expect(Object.isFrozen(p.rules[0])).toBe(true);
    expect(Object.isFrozen(p.mounts)).toBe(true);
    expect(() => {
      (p as { defaultAction: unknown }).defaultAction = 'allow';
    }).toThrow(TypeError);
  });

  it('round-trips through JSON with the same key', () => {
    const p = x64()
      .allowNodeRuntime()
      .addPolicyOnSyscall('write', [ARG_32(0), JEQ(1, 'ok'), KILL, LABEL('ok'), ALLOW])
      .addPolicyOnSyscall('mmap', [
        { kind: 'load', field: 'arg', index: 2, width: 64 },
        JEQ(0xffffffff00000000n, 'x'),
        LABEL('x'),
        ALLOW,
      ])
      .blockSyscallWithErrno('uname', 'EPERM')
      .allowIPv4('10.0.0.0/8', 443)
      .build();
    const q = Policy.fromJSON(JSON.parse(JSON.stringify(p)));
    expect(q.key).toBe(p.key);
    expect(q.network).toEqual(p.network);
    expect(compilePolicy(q).insns).toEqual(compilePolicy(p).insns);
    expect(() => Policy.fromJSON({ arch: 'sparc', rules: [] })).toThrow(PolicyError);
  });
});

describe('PolicyBuilder filesystem and network data', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-policy-'));
  writeFileSync(join(dir, 'f'), 'x');

  it('stores mounts, read-only by default, and checks paths', () => {
    const p = x64()
      .addFile(join(dir, 'f'))
      .addDirectoryAt(dir, '/data', { writable: true })
      .addTmpfs('/tmp', { sizeBytes: 4096 })
      .build();
    expect(p.mounts).toEqual(
      [
        { kind: 'dir', outside: dir, inside: '/data', writable: true },
        { kind: 'tmpfs', inside: '/tmp', sizeBytes: 4096 },
        { kind: 'file', outside: join(dir, 'f'), inside: join(dir, 'f'), writable: false },
      ].sort((a, b) => (a.inside < b.inside ? -1 : 1)),
    );
    const problems = problemsOf(() =>
      x64()
        .addFile(dir)
        .addDirectory(join(dir, 'f'))
        .addFile(join(dir, 'missing'))
        .addDirectory('/usr/')
        .addFile('/proc/self/mem')
        .addTmpfs('/data')
        .addDirectoryAt(dir, '/data')
        .build(),
    );
    expect(problems.join('\n')).toMatch(/is a directory \(use addDirectory\)/);
    expect(problems.join('\n')).toMatch(/is not a directory \(use addFile\)/);
    expect(problems.join('\n')).toMatch(/ENOENT/);
    expect(problems.join('\n')).toMatch(/is not canonical \(write "\/usr"\)/);
    expect(problems.join('\n')).toMatch(/mount the whole \/proc inside instead/);
    expect(problems.join('\n')).toMatch(/"\/data" is already mounted/);
  });

  it('adds the interpreter and every library of a dynamic binary, links and targets', () => {
    const bin = ['/bin/ls', '/usr/bin/ls', '/bin/true'].find((b) => existsSync(b))!;
    const p = x64().addLibrariesForBinary(bin).build();
    const files = p.mounts.map((m) => (m.kind === 'file' ? m.outside : ''));
    expect(files.some((f) => /\/libc\.so\.6$/.test(f))).toBe(true);
    const interp = files.find((f) => /ld-linux-x86-64\.so\.2$/.test(f));
    expect(interp).toBeDefined();
    for (const f of files) {
      if (lstatSync(f).isSymbolicLink()) expect(files).toContain(realpathSync(f));
    }
    expect(p.mounts.every((m) => m.kind === 'file' && !m.writable && m.inside === m.outside)).toBe(true);
    expect(problemsOf(() => x64().addLibrariesForBinary(join(dir, 'f')).build())[0]).toMatch(/is not an ELF file/);
  });

  it('normalizes network rules and keeps modes exclusive', () => {
    const p = x64().allowIPv4('10.1.0.0/16', 443).allowIPv6('2001:DB8:0:0::/32').allowIPv4('192.168.1.7').build();
    expect(p.network).toEqual({
      mode: 'rules',
      rules: [
        { family: 4, address: '10.1.0.0', prefix: 16, port: 443 },
        { family: 6, address: '2001:db8::', prefix: 32, port: 0 },
        { family: 4, address: '192.168.1.7', prefix: 32, port: 0 },
      ],
    });
    expect(x64().allowUnrestrictedNetworking().build().network.mode).toBe('unrestricted');
    expect(x64().build().network.mode).toBe('none');
    expect(problemsOf(() => x64().allowIPv4('10.0.0.1/8').build())[0]).toMatch(
      /host bits are set; the network is 10.0.0.0\/8/,
    );
    expect(problemsOf(() => x64().allowIPv4('10.0.0.0/8', 70000).build())[0]).toMatch(/port must be 0..65535/);
    expect(problemsOf(() => x64().allowUnrestrictedNetworking().allowIPv4('10.0.0.0/8').build())[0]).toMatch(
      /would have no effect/,
    );
  });
});
