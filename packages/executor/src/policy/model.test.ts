// The compiled program and the policy model must agree on every syscall number, every arch case
// and a set of argument patterns, for several policies and every compile option combination.
import { describe, expect, it } from 'vitest';
import {
  ALLOW,
  ARG,
  ARG_32,
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_ARM,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  ERRNO,
  JA,
  JEQ,
  JGE,
  JGT,
  JNE,
  JSET,
  KILL,
  LABEL,
  LOG,
  TRAP,
  USER_NOTIF,
  X32_SYSCALL_BIT,
} from './bpf.js';
import type { BpfInsn } from './bpf.js';
import { compilePolicy } from './compiler.js';
import type { CompileOptions } from './compiler.js';
import { SBX_EXEC_MAGIC } from './denials.js';
import { evaluate } from './evaluator.js';
import { modelVerdict } from './model.js';
import type { Policy } from './policy.js';
import { PolicyBuilder } from './policy-builder.js';
import { SYSCALL_TABLES } from './syscalls.js';
import type { Arch } from './syscalls.js';
import { random as rng } from '../../../../test/prng.js';

const VALUES: bigint[] = [
  0n,
  1n,
  2n,
  3n,
  8n,
  0x1000n,
  0x5412n,
  0x541cn,
  0xffffffffn,
  0x100000000n,
  0x100000001n,
  0x7e020080n,
  0x80n,
  0xffffffffffffffffn,
  0x5b78ec00n,
  1022n,
];

/** Argument patterns: zeros, each arg set to each interesting value, and random mixes. */
function argPatterns(seed: number): bigint[][] {
  const r = rng(seed);
  const out: bigint[][] = [[0n, 0n, 0n, 0n, 0n, 0n]];
  for (let i = 0; i < 6; i++) {
    for (const v of VALUES) {
      const a = [0n, 0n, 0n, 0n, 0n, 0n];
      a[i] = v;
      out.push(a);
    }
  }
  for (let n = 0; n < 24; n++) out.push(Array.from({ length: 6 }, () => VALUES[Math.floor(r() * VALUES.length)]!));
  // The forkserver's exec, and near misses of it.
  out.push([1022n, 0n, 0n, 0n, 0x1000n, BigInt(SBX_EXEC_MAGIC)]);
  out.push([1022n, 0n, 0n, 0n, 0x1000n, BigInt(SBX_EXEC_MAGIC) | (7n << 32n)]);
  out.push([1021n, 0n, 0n, 0n, 0x1000n, BigInt(SBX_EXEC_MAGIC)]);
  out.push([1022n, 0n, 0n, 0n, 0n, BigInt(SBX_EXEC_MAGIC)]);
  // The sandbox-me-here handshake fd, with and without high bits.
  out.push([1020n, 0n, 0n, 0n, 0n, 0n], [0x7000003fcn, 0n, 0n, 0n, 0n, 0n]);
  return out;
}

function randomRule(r: () => number): BpfInsn[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const ret = (): BpfInsn => pick([ALLOW, ALLOW, KILL, ERRNO(1 + Math.floor(r() * 100)), TRAP, LOG, USER_NOTIF]);
  const items: BpfInsn[] = [];
  const checks = 1 + Math.floor(r() * 3);
  for (let c = 0; c < checks; c++) {
    const idx = Math.floor(r() * 6);
    const wide = r() < 0.5;
    items.push(wide ? ARG(idx) : ARG_32(idx));
    let v = pick(VALUES);
    if (!wide) v &= 0xffffffffn;
    const op = pick([JEQ, JNE, JGT, JGE, JSET]);
    items.push(op(v, `hit${c}`), JA(`next${c}`), LABEL(`hit${c}`), ret(), LABEL(`next${c}`));
  }
  if (r() < 0.3) items.push(ret());
  return items;
}

/** A seeded random policy with about `n` rules mixing allows, errnos and argument rules. */
function randomPolicy(seed: number, n: number, arch: Arch = 'x86_64'): Policy {
  const r = rng(seed);
  const names = [...SYSCALL_TABLES[arch].byName.keys()];
  const b = new PolicyBuilder({ arch });
  const denied = new Set([
    'ptrace',
    'bpf',
    'clone3',
    'io_uring_setup',
    'io_uring_enter',
    'io_uring_register',
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
    'open_tree_attr',
    'fsopen',
    'fsmount',
    'fsconfig',
    'fspick',
    'mount_setattr',
  ]);
  for (let i = 0; i < n; i++) {
    const name = names[Math.floor(r() * names.length)]!;
    const k = r();
    if (denied.has(name)) b.blockSyscallWithErrno(name, 1 + Math.floor(r() * 50));
    else if (k < 0.45) b.allowSyscall(name);
    else if (k < 0.65) b.blockSyscallWithErrno(name, 1 + Math.floor(r() * 50));
    else b.addPolicyOnSyscall(name, randomRule(r));
  }
  // Always exercise the conditional denials with user rules behind them.
  b.addPolicyOnSyscall('ioctl', [ARG_32(1), JEQ(0x5401, 'ok'), ERRNO(25), LABEL('ok'), ALLOW]);
  b.allowSyscall('clone');
  return b.build();
}

const NATIVE: Record<Arch, number> = { x86_64: AUDIT_ARCH_X86_64, aarch64: AUDIT_ARCH_AARCH64 };

function checkAgreement(policy: Policy, options: CompileOptions, seed = 1): number {
  const compiled = compilePolicy(policy, options);
  const patterns = argPatterns(seed);
  const native = NATIVE[policy.arch];
  let checked = 0;
  const check = (arch: number, nr: number, args: bigint[]): void => {
    const data = { arch, nr, args };
    const got = evaluate(compiled.insns, data);
    const want = modelVerdict(policy, data, options);
    if (got.ret !== want.ret) {
      throw new Error(
        `disagreement for arch 0x${arch.toString(16)} nr ${nr} args [${args.map((a) => `0x${a.toString(16)}`).join(', ')}] ` +
          `options ${JSON.stringify(options)}: program ${got.action}(${got.data}) model ${want.action}(${want.data}) by ${want.by}`,
      );
    }
    checked++;
  };
  // Numbers whose verdict can depend on arguments get every pattern; the others a few.
  const argDependent = new Set<number>(
    [...policy.rules, ...policy.overridable].filter((r) => r.kind === 'bpf').map((r) => r.nr),
  );
  for (const name of ['clone', 'unshare', 'seccomp', 'ioctl', 'execveat']) {
    const nr = SYSCALL_TABLES[policy.arch].byName.get(name);
    if (nr !== undefined) argDependent.add(nr);
  }
  for (let nr = 0; nr <= 480; nr++)
    for (const args of argDependent.has(nr) ? patterns : patterns.slice(0, 6)) check(native, nr, args);
  for (const nr of [
    500,
    1000,
    4095,
    0x3fffffff,
    X32_SYSCALL_BIT,
    X32_SYSCALL_BIT + 1,
    X32_SYSCALL_BIT + 59,
    0x7fffffff,
    0x80000000,
    0xffffffff,
  ]) {
    for (const args of patterns.slice(0, 8)) check(native, nr, args);
  }
  for (const arch of [AUDIT_ARCH_I386, AUDIT_ARCH_ARM, AUDIT_ARCH_X86_64, AUDIT_ARCH_AARCH64, 0, 0xffffffff]) {
    for (const nr of [0, 1, 2, 11, 59, 60, 101, 102, 231, 322, 435]) check(arch, nr, patterns[0]!);
  }
  return checked;
}

const OPTIONS: CompileOptions[] = [
  { monitor: false },
  { monitor: true },
  { monitor: true, execPrologue: false },
  { monitor: false, dispatch: 'linear' },
  { monitor: true, dispatch: 'linear', execFd: 1021 },
  { monitor: true, execPrologue: false, clientChannelFd: 1020, clientListenerFd: 3 },
];

describe('policy model vs compiled program', () => {
  const policies: Array<[string, () => Policy]> = [
    ['allowNodeRuntime', () => new PolicyBuilder({ arch: 'x86_64' }).allowNodeRuntime().build()],
    [
      'allowNodeRuntime with threads',
      () => new PolicyBuilder({ arch: 'x86_64' }).allowNodeRuntime({ threads: true }).build(),
    ],
    [
      'dynamic startup + write + exit',
      () => new PolicyBuilder({ arch: 'x86_64' }).allowDynamicStartup().allowWrite().allowExit().build(),
    ],
    [
      'write only to fd 1, exit',
      () =>
        new PolicyBuilder({ arch: 'x86_64' })
          .addPolicyOnSyscall('write', [ARG_32(0), JEQ(1, 'ok'), KILL, LABEL('ok'), ALLOW])
          .allowExit()
          .build(),
    ],
    [
      '64-bit arg rules and fall-through chains',
      () =>
        new PolicyBuilder({ arch: 'x86_64' })
          .addPolicyOnSyscall('mmap', [ARG(2), JSET(4, 'noexec'), ALLOW, LABEL('noexec'), ERRNO(13)])
          .addPolicyOnSyscall('read', [ARG(0), JGT(0xffffffffn, 'big', 'end'), LABEL('big'), KILL, LABEL('end')])
          .addPolicyOnSyscall('read', [ARG(0), JGE(3, 'x'), ALLOW, LABEL('x'), ERRNO(9)])
          .addPolicyOnSyscall('write', [
            ARG(1),
            JSET(0x100000000n, 'k'),
            JA(1),
            LABEL('k'),
            KILL,
            ARG_32(0),
            JNE(2, 1),
            ALLOW,
          ])
          .allowSyscall('read')
          .build(),
    ],
    [
      'blockSyscallWithErrno, including always-denied ones',
      () =>
        new PolicyBuilder({ arch: 'x86_64' })
          .allowDynamicStartup()
          .blockSyscallWithErrno('ptrace', 'EPERM')
          .blockSyscallWithErrno('bpf', 'EACCES')
          .blockSyscallWithErrno('clone3', 'EPERM')
          .blockSyscallWithErrno('ioctl', 'ENOTTY')
          .blockSyscallWithErrno('uname', 'EPERM')
          .blockSyscallsWithErrno(['mkdir', 'mkdirat'], 'EROFS')
          .build(),
    ],
    [
      'default allow',
      () =>
        new PolicyBuilder({ arch: 'x86_64' })
          .allowRead()
          .blockSyscallWithErrno('write', 'EBADF')
          .defaultAction('allow')
          .build(),
    ],
    ['default log', () => new PolicyBuilder({ arch: 'x86_64' }).allowNodeRuntime().defaultAction('log').build()],
    [
      'default errno',
      () => new PolicyBuilder({ arch: 'x86_64' }).allowExit().defaultAction({ errno: 'ENOSYS' }).build(),
    ],
    ['default notify', () => new PolicyBuilder({ arch: 'x86_64' }).allowExit().defaultAction('notify').build()],
    ['150-rule random policy (seed 7)', () => randomPolicy(7, 150)],
    ['150-rule random policy (seed 8)', () => randomPolicy(8, 150)],
    ['60-rule random policy (seed 9)', () => randomPolicy(9, 60)],
    [
      'aarch64 dynamic startup',
      () => new PolicyBuilder({ arch: 'aarch64' }).allowDynamicStartup().allowNodeRuntime().build(),
    ],
    ['aarch64 random (seed 10)', () => randomPolicy(10, 150, 'aarch64')],
  ];
  for (const [name, make] of policies) {
    it(`agrees for ${name}`, () => {
      const policy = make();
      let total = 0;
      for (const o of OPTIONS) total += checkAgreement(policy, o, name.length);
      expect(total).toBeGreaterThan(10_000);
    });
  }
});
