import { describe, expect, it } from 'vitest';
import {
  ALLOW,
  ARG_32,
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  BPF_ABS,
  BPF_JGE,
  BPF_JMP,
  BPF_K,
  BPF_LD,
  BPF_W,
  JEQ,
  KILL,
  LABEL,
  AT_EMPTY_PATH,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_USER_NOTIF,
  argLo,
  decodeProgram,
} from './bpf.js';
import { classify } from './classify.js';
import { NOTIFY_DATA, clearCompileCache, compilePolicy } from './compiler.js';
import { ALWAYS_DENIED, SBX_EXEC_MAGIC } from './denials.js';
import { evaluate, isConstAllow, validateProgram } from './evaluator.js';
import { PolicyError } from './errors.js';
import { modelVerdict } from './model.js';
import { PolicyBuilder } from './policy-builder.js';
import { SYSCALL_TABLES, syscallNumber } from './syscalls.js';

const X64 = AUDIT_ARCH_X86_64;
const DENIED = new Set(ALWAYS_DENIED.filter((d) => !d.when).map((d) => d.name));
const ALLOWABLE = [...SYSCALL_TABLES.x86_64.byName.keys()].filter((s) => !DENIED.has(s));
const nr = (name: string): number => syscallNumber('x86_64', name)!;
const x64 = (): PolicyBuilder => new PolicyBuilder({ arch: 'x86_64' });
const run = (
  p: ReturnType<typeof compilePolicy>,
  name: string | number,
  args: Array<number | bigint> = [],
  arch = X64,
) => evaluate(p.insns, { arch, nr: typeof name === 'number' ? name : nr(name), args });

describe('compilePolicy() layout', () => {
  const policy = x64().allowDynamicStartup().allowWrite().allowExit().build();

  it('checks the architecture first and the kernel accepts the program', () => {
    const c = compilePolicy(policy);
    expect(c.insns[0]).toEqual({ code: BPF_LD | BPF_W | BPF_ABS, jt: 0, jf: 0, k: 4 });
    expect(c.insns[1]!.k).toBe(AUDIT_ARCH_X86_64);
    expect(validateProgram(c.insns)).toEqual([]);
    expect(decodeProgram(c.program)).toEqual(c.insns);
    expect(c.program.length).toBe(c.length * 8);
  });

  it('reports i386, x32 and unknown architectures as violations', () => {
    const c = compilePolicy(policy);
    expect(run(c, 1, [], AUDIT_ARCH_I386).action).toBe('KILL_PROCESS');
    expect(run(c, 1, [], AUDIT_ARCH_AARCH64).action).toBe('KILL_PROCESS');
    expect(run(c, 0x40000000 + 1).action).toBe('KILL_PROCESS');
    expect(run(c, 0xffffffff).action).toBe('KILL_PROCESS');
    const m = compilePolicy(policy, { monitor: true });
    for (const v of [run(m, 1, [], AUDIT_ARCH_I386), run(m, 0x40000001)]) {
      expect(v.action).toBe('USER_NOTIF');
      expect(v.data).toBe(NOTIFY_DATA.ARCH_VIOLATION);
    }
    expect(classify(m.insns, { arch: X64, nr: 0x40000001 })).toMatchObject({
      kind: 'violation',
      violation: 'arch',
      abi: 'x32',
      syscall: 'write',
    });
    expect(classify(m.insns, { arch: AUDIT_ARCH_I386, nr: 102 })).toMatchObject({
      kind: 'violation',
      abi: 'i386',
      syscall: 'socketcall',
    });
  });

  it('kills a disallowed syscall, or notifies under a monitor', () => {
    expect(run(compilePolicy(policy), 'socket').ret).toBe(SECCOMP_RET_KILL_PROCESS);
    const m = compilePolicy(policy, { monitor: true });
    expect(run(m, 'socket').ret).toBe((SECCOMP_RET_USER_NOTIF | NOTIFY_DATA.SYSCALL_VIOLATION) >>> 0);
    expect(classify(m.insns, { arch: X64, nr: nr('socket') })).toMatchObject({
      kind: 'violation',
      violation: 'syscall',
      syscall: 'socket',
    });
  });

  it('lets exactly the forkserver exec through: USER_NOTIF with a monitor, ALLOW without', () => {
    const exec = [1022, 0, 0, 0, 0x1000, SBX_EXEC_MAGIC];
    const m = compilePolicy(policy, { monitor: true });
    expect(run(m, 'execveat', exec)).toMatchObject({ action: 'USER_NOTIF', data: NOTIFY_DATA.EXEC });
    expect(classify(m.insns, { arch: X64, nr: nr('execveat'), args: exec }).kind).toBe('exec');
    expect(run(compilePolicy(policy), 'execveat', exec).action).toBe('ALLOW');
    expect(run(m, 'execveat', [1021, 0, 0, 0, 0x1000, SBX_EXEC_MAGIC]).data).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    expect(run(m, 'execveat', [1022, 0, 0, 0, 0, SBX_EXEC_MAGIC]).data).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    expect(run(m, 'execve').data).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    expect(
      run(compilePolicy(policy, { monitor: true, execFd: 7 }), 'execveat', [7, 0, 0, 0, 0x1000, SBX_EXEC_MAGIC]).data,
    ).toBe(NOTIFY_DATA.EXEC);
    expect(run(compilePolicy(policy, { execPrologue: false }), 'execveat', exec).action).toBe('KILL_PROCESS');
  });

  it('keeps argument-free allows unconditional so the kernel action cache covers them', () => {
    const c = compilePolicy(x64().allowNodeRuntime().build());
    for (const name of [
      'read',
      'write',
      'futex',
      'epoll_pwait',
      'mmap',
      'mprotect',
      'clock_gettime',
      'getrandom',
      'exit_group',
    ]) {
      expect(isConstAllow(c.insns, X64, nr(name)), name).toBe(true);
    }
    // fcntl has an argument rule; ioctl is allowed but its TIOCSTI check reads an argument.
    expect(isConstAllow(c.insns, X64, nr('fcntl'))).toBe(false);
    expect(isConstAllow(c.insns, X64, nr('ioctl'))).toBe(false);
  });
});

describe('always-on denials', () => {
  const base = () => x64().allowDynamicStartup().allowSyscalls(['clone', 'unshare', 'seccomp', 'ioctl']);

  it('denies namespaces via clone/unshare, NEW_LISTENER, TIOCSTI/TIOCLINUX (cmd masked to 32 bits)', () => {
    const c = compilePolicy(base().build());
    expect(run(c, 'clone', [0x11]).action).toBe('ALLOW');
    for (const flag of [0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x80]) {
      expect(run(c, 'clone', [flag | 0x11]).action).toBe('KILL_PROCESS');
      expect(run(c, 'unshare', [flag]).action).toBe('KILL_PROCESS');
    }
    expect(run(c, 'unshare', [0x200]).action).toBe('ALLOW');
    expect(run(c, 'seccomp', [1, 8]).action).toBe('KILL_PROCESS');
    expect(run(c, 'seccomp', [1, 1]).action).toBe('ALLOW');
    expect(run(c, 'ioctl', [1, 0x5412]).action).toBe('KILL_PROCESS');
    expect(run(c, 'ioctl', [1, 0x541c]).action).toBe('KILL_PROCESS');
    // CVE-2019-10063: high bits set on the command must not bypass the check.
    expect(run(c, 'ioctl', [1, 0xdead00005412n]).action).toBe('KILL_PROCESS');
    expect(run(c, 'ioctl', [1, 0x5401]).action).toBe('ALLOW');
  });

  it('answers clone3 and io_uring with ENOSYS and kills ptrace, bpf, keyctl, mount...', () => {
    const c = compilePolicy(base().defaultAction('allow').build());
    for (const n of ['clone3', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'])
      expect(run(c, n)).toMatchObject({ action: 'ERRNO', data: 38 });
    for (const n of [
      'ptrace',
      'bpf',
      'keyctl',
      'add_key',
      'request_key',
      'perf_event_open',
      'userfaultfd',
      'open_by_handle_at',
      'kexec_load',
      'kexec_file_load',
      'init_module',
      'finit_module',
      'delete_module',
      'mount',
      'umount2',
      'pivot_root',
      'move_mount',
      'open_tree',
      'fsopen',
      'fsmount',
      'fsconfig',
      'fspick',
      'mount_setattr',
    ]) {
      expect(run(c, n).action, n).toBe('KILL_PROCESS');
    }
    expect(run(c, 'socket').action).toBe('ALLOW');
  });

  it('lets blockSyscallWithErrno turn an always-denied syscall into an errno', () => {
    const c = compilePolicy(
      base().blockSyscallWithErrno('ptrace', 'EPERM').blockSyscallWithErrno('clone3', 'EPERM').build(),
    );
    expect(run(c, 'ptrace')).toMatchObject({ action: 'ERRNO', data: 1 });
    expect(run(c, 'clone3')).toMatchObject({ action: 'ERRNO', data: 1 });
    expect(run(c, 'bpf').action).toBe('KILL_PROCESS');
  });
});

describe('dispatch', () => {
  it('searches in about log2(segments) compares', () => {
    for (const n of [8, 32, 128]) {
      // Every third number: no two allowed numbers touch, so nothing merges.
      const picked = ALLOWABLE.filter((s) => nr(s) % 3 === 0 && nr(s) < 330).slice(0, n);
      const c = compilePolicy(x64().allowSyscalls(picked).build(), { cache: false });
      expect(c.stats.depth).toBeLessThanOrEqual(Math.ceil(Math.log2(c.stats.segments)));
      expect(c.stats.depth).toBeGreaterThanOrEqual(Math.floor(Math.log2(c.stats.segments)));
      // Steps for any allowed syscall: 3 arch/nr loads + the search + ret (+ the argument check of
      // a conditional always-on denial: at most 2 loads and 3 jumps).
      for (const s of picked) {
        const extra = ALWAYS_DENIED.some((d) => d.name === s && d.when) ? 5 : 0;
        expect(run(c, s).steps).toBeLessThanOrEqual(4 + c.stats.depth + extra);
      }
    }
  });

  it('merges contiguous numbers with the same verdict into ranges', () => {
    const contiguous = Array.from({ length: 40 }, (_, i) => i); // read .. 39
    const c = compilePolicy(x64().allowSyscalls(contiguous).build(), { cache: false });
    const lin = compilePolicy(x64().allowSyscalls(contiguous).build(), { cache: false, dispatch: 'linear' });
    // One range for 0..39; the rest are the always-on denials' numbers and the gaps between them.
    const denied = new Set(ALWAYS_DENIED.map((d) => nr(d.name)).filter((n) => n !== undefined && n >= 40));
    expect(c.stats.segments).toBeLessThanOrEqual(2 + 2 * denied.size);
    // The 40 jeqs of the linear chain become one range check.
    expect(lin.length - c.length).toBeGreaterThanOrEqual(30);
    for (let i = 0; i < 60; i++) expect(run(c, i).ret).toBe(run(lin, i).ret);
  });

  it('linear dispatch is a jeq chain', () => {
    const c = compilePolicy(x64().allowSyscalls(['read', 'write', 'close']).build(), { dispatch: 'linear' });
    const jeqs = c.insns.filter((i) => i.code === (BPF_JMP | 0x10 | BPF_K));
    expect(jeqs.map((i) => i.k)).toEqual(expect.arrayContaining([0, 1, 3]));
    expect(c.insns.some((i) => i.code === (BPF_JMP | BPF_JGE | BPF_K) && i.k === 0x40000000)).toBe(true);
  });

  it('inserts ja trampolines when generated jumps exceed 255 instructions', () => {
    const b = x64();
    const names = ALLOWABLE.filter((s) => nr(s) % 2 === 0 && nr(s) < 400);
    for (const s of names) b.addPolicyOnSyscall(s, [ARG_32(0), JEQ(nr(s), 'ok'), KILL, LABEL('ok'), ALLOW]);
    const c = compilePolicy(b.build(), { cache: false });
    expect(c.length).toBeGreaterThan(600);
    expect(validateProgram(c.insns)).toEqual([]);
    expect(c.insns.some((i) => i.code === BPF_JMP)).toBe(true);
    const s = names[names.length - 1]!;
    expect(run(c, s, [nr(s)]).ret).toBe(SECCOMP_RET_ALLOW);
    expect(run(c, s, [nr(s) + 1]).ret).toBe(SECCOMP_RET_KILL_PROCESS);
  });
});

describe('limits and errors', () => {
  it('refuses a program over 4096 instructions with a clear message', () => {
    const b = x64();
    const big = (base: number) => [
      ARG_32(0),
      ...Array.from({ length: 200 }, (_, i) => JEQ(base + i, 'ok')),
      KILL,
      LABEL('ok'),
      ALLOW,
    ];
    const list = [
      'read',
      'write',
      'openat',
      'close',
      'fstat',
      'lseek',
      'mmap',
      'mprotect',
      'munmap',
      'brk',
      'pread64',
      'pwrite64',
      'readv',
      'writev',
      'access',
      'pipe',
      'select',
      'sched_yield',
      'mremap',
      'msync',
      'mincore',
    ];
    list.forEach((name, i) => {
      b.addPolicyOnSyscall(name, big(i * 1000));
    });
    const policy = b.build();
    let err: unknown;
    try {
      compilePolicy(policy);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).code).toBe('PROGRAM_TOO_LONG');
    expect((err as PolicyError).message).toMatch(/has \d+ instructions; the kernel accepts at most 4096/);
  });

  it('reports a user rule whose conditional jump cannot reach its target', () => {
    const far = [
      ARG_32(0),
      JEQ(1, 'far'),
      ...Array.from({ length: 300 }, (_, i) => JEQ(i + 5, 'x')),
      LABEL('x'),
      ALLOW,
      LABEL('far'),
      KILL,
    ];
    const policy = x64().addPolicyOnSyscall('write', far).build();
    expect(() => compilePolicy(policy)).toThrow(
      /spans 3\d\d instructions; a cBPF conditional jump reaches at most 255/,
    );
    try {
      compilePolicy(policy);
    } catch (e) {
      expect((e as PolicyError).code).toBe('JUMP_OUT_OF_RANGE');
    }
  });

  it('rejects bad options with TypeError', () => {
    const p = x64().allowExit().build();
    expect(() => compilePolicy(p, { dispatch: 'tree' as never })).toThrow(TypeError);
    expect(() => compilePolicy(p, { execFd: -1 })).toThrow(TypeError);
    expect(() => compilePolicy({} as never)).toThrow(TypeError);
  });
});

describe('compile cache', () => {
  it('returns the same program for equal policies without recompiling', () => {
    clearCompileCache();
    const a = compilePolicy(x64().allowNodeRuntime().build());
    const b = compilePolicy(x64().allowNodeRuntime().build());
    expect(b.insns).toBe(a.insns);
    expect(b.program).not.toBe(a.program);
    expect(b.program).toEqual(a.program);
    const m = compilePolicy(x64().allowNodeRuntime().build(), { monitor: true });
    expect(m.insns).not.toBe(a.insns);
  });

  it('builds and compiles allowNodeRuntime to the same program every time once warm', () => {
    // Its speed is measured in pnpm bench (never asserted as a time here).
    const program = () => compilePolicy(x64().allowNodeRuntime().build(), { cache: false }).program;
    const first = program();
    for (let i = 0; i < 20; i++) expect(program()).toEqual(first);
  });
});

describe('arch-specific loads', () => {
  it('loads argument halves at the documented seccomp_data offsets', () => {
    const c = compilePolicy(
      x64()
        .addPolicyOnSyscall('write', [ARG_32(3), JEQ(9, 'ok'), KILL, LABEL('ok'), ALLOW])
        .build(),
    );
    expect(c.insns.some((i) => i.code === (BPF_LD | BPF_W | BPF_ABS) && i.k === argLo(3))).toBe(true);
    expect(argLo(3)).toBe(40);
  });
});

describe('sandbox-me-here client rule (clientChannelFd, clientListenerFd)', () => {
  const CLIENT = { monitor: true, execPrologue: false, clientChannelFd: 1020, clientListenerFd: 5 } as const;
  // Neither read, sendto nor close is allowed: only the client rule can let them through.
  const strict = () => x64().allowExit().allowSyscalls(['write']).build();

  it('allows read and sendto without an address on exactly the handshake fd, and close() of exactly the listener', () => {
    const c = compilePolicy(strict(), CLIENT);
    expect(validateProgram(c.insns)).toEqual([]);
    for (const name of ['read', 'sendto']) {
      expect(run(c, name, [1020]).action, name).toBe('ALLOW');
      // The kernel reads the fd as an int: only the low 32 bits count.
      expect(run(c, name, [0xdead000003fcn]).action, name).toBe('ALLOW');
      for (const fd of [0, 1, 5, 1019, 1021, 1023, -1])
        expect(run(c, name, [fd]).data, `${name}(${fd})`).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    }
    // sendto with a destination is not the handshake's: whatever socket sits at 1020 may not use it.
    expect(run(c, 'sendto', [1020, 0x1000, 16, 0, 0x7ffc0000n, 16]).data).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    expect(run(c, 'sendto', [1020, 0x1000, 16, 0, 0x7f0000000000n, 16]).data).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    expect(run(c, 'close', [5]).action).toBe('ALLOW');
    for (const fd of [0, 4, 6, 1020]) expect(run(c, 'close', [fd]).data).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    // Nothing else on the handshake fd: sendmsg (it could name a destination or pass fds), recvmsg, sendmmsg, ioctl, dup stay forbidden.
    for (const name of ['sendmsg', 'recvmsg', 'recvfrom', 'sendmmsg', 'recvmmsg', 'ioctl', 'dup2', 'shutdown']) {
      expect(run(c, name, [1020]).data, name).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    }
    expect(classify(c.insns, { arch: X64, nr: nr('read'), args: [1021] })).toMatchObject({
      kind: 'violation',
      syscall: 'read',
    });
  });

  it('openFiles: false: statx with AT_EMPTY_PATH is ENOSYS whatever the path (no stat by path), without it a violation', () => {
    const c = compilePolicy(x64().allowNodeRuntime({ openFiles: false }).build());
    for (const [dirfd, path] of <Array<[number, number]>>[
      [17, 0x7ffc1000],
      [-100, 0x7ffc1000],
      [3, 0],
    ]) {
      for (const flags of [AT_EMPTY_PATH, AT_EMPTY_PATH | 0x100]) {
        expect(run(c, 'statx', [dirfd, path, flags, 0xfff, 0x7ffc2000]).ret).toBe((SECCOMP_RET_ERRNO | 38) >>> 0);
      }
      expect(run(c, 'statx', [dirfd, path, 0, 0xfff, 0x7ffc2000]).ret).toBe(SECCOMP_RET_KILL_PROCESS);
    }
    expect(run(c, 'fstat', [17, 0x7ffc2000]).ret).toBe(SECCOMP_RET_ALLOW);
    // An explicit statx rule takes over (the ENOSYS rule is only a fall-back).
    expect(
      run(compilePolicy(x64().allowNodeRuntime({ openFiles: false }).allowStat().build()), 'statx', [
        17,
        0,
        AT_EMPTY_PATH,
      ]).ret,
    ).toBe(SECCOMP_RET_ALLOW);
  });

  it('agrees with the policy model on every fd pattern', () => {
    const policies = [
      strict(),
      x64().allowNodeRuntime({ openFiles: false }).build(),
      x64()
        .addPolicyOnSyscall('sendto', [ARG_32(0), JEQ(1023, 'ok'), KILL, LABEL('ok'), ALLOW])
        .blockSyscallWithErrno('read', 'EPERM')
        .build(),
      x64().allowNodeRuntime({ openFiles: false }).allowNetworkClient().allowIPv4('127.0.0.1', 53).build(),
      x64().allowExit().defaultAction('allow').build(),
    ];
    const fds = [0n, 5n, 1020n, 1021n, 1023n, 0x1000003fcn, 0xffffffffn];
    let checked = 0;
    for (const p of policies) {
      for (const opts of [CLIENT, { ...CLIENT, clientListenerFd: -1 }, { monitor: false, clientChannelFd: 1020 }]) {
        const c = compilePolicy(p, opts);
        for (let n = 0; n < 460; n++) {
          for (const fd of fds) {
            for (const addr of [0n, 0x7ffc0000n]) {
              const data = { arch: X64, nr: n, args: [fd, 7n, 0n, 0n, addr, 0n] };
              expect(evaluate(c.insns, data).ret, `nr ${n} fd ${fd} arg4 ${addr}`).toBe(
                modelVerdict(p, data, opts).ret,
              );
              checked++;
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(30_000);
    expect(modelVerdict(strict(), { arch: X64, nr: nr('read'), args: [1020] }, CLIENT).by).toBe('client');
    expect(modelVerdict(strict(), { arch: X64, nr: nr('sendto'), args: [1020, 0, 0, 0, 0x1000, 16] }, CLIENT).by).toBe(
      'default',
    );
  });

  it('does not weaken the policy: its rules still decide other fds, an unconditional allow stays argument-free', () => {
    const p = x64()
      .addPolicyOnSyscall('sendto', [ARG_32(0), JEQ(1023, 'ok'), KILL, LABEL('ok'), ALLOW])
      .blockSyscallWithErrno('read', 'EPERM')
      .build();
    const c = compilePolicy(p, CLIENT);
    expect(run(c, 'sendto', [1023]).action).toBe('ALLOW');
    expect(run(c, 'sendto', [1022]).data).toBe(NOTIFY_DATA.SYSCALL_VIOLATION);
    expect(run(c, 'read', [3])).toMatchObject({ action: 'ERRNO', data: 1 });
    expect(run(c, 'read', [1020]).action).toBe('ALLOW');
    const node = compilePolicy(x64().allowNodeRuntime().build(), CLIENT);
    for (const name of ['read', 'close']) expect(isConstAllow(node.insns, X64, nr(name)), name).toBe(true);
  });

  it('changes nothing when unset (-1) and rejects bad values', () => {
    const p = strict();
    expect(compilePolicy(p, { clientChannelFd: -1, clientListenerFd: -1, cache: false }).insns).toEqual(
      compilePolicy(p, { cache: false }).insns,
    );
    expect(compilePolicy(p, CLIENT).insns).not.toEqual(compilePolicy(p, { ...CLIENT, clientChannelFd: 1019 }).insns);
    expect(() => compilePolicy(p, { clientChannelFd: -2 })).toThrow(TypeError);
    expect(() => compilePolicy(p, { clientListenerFd: 1.5 })).toThrow(TypeError);
  });
});
