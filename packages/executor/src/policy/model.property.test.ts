// Property test: for random policies, the compiled BPF program and the policy model agree.
// model.test.ts checks 15 chosen policies (4 random ones) against one rule shape (one ARG/ARG_32
// load per check, JEQ/JNE/JGT/JGE/JSET on a fixed value list) and argument patterns drawn from the
// same list. What this adds, with its own seeded generator (a failure prints the seed):
//   - 150 random policies, each with a random default action, random presets (their overridable
//     rules mixed with user rules on the same syscalls), several rules per syscall (fall-through
//     chains), errno rules on always-denied syscalls, and random compile options;
//   - the rest of the rule language: JLT/JLE, 64-bit compares of every kind, loads of nr, arch,
//     the instruction pointer and single argument halves, BPF_LEN, ALU operations (AND, OR, ADD,
//     SUB, MUL, DIV, MOD, LSH, RSH, XOR, NEG), the X register (TAX/TXA, jumps on X) and scratch
//     memory (ST/LD M[]);
//   - argument values at the edges of each rule's constants (c-1, c, c+1, the other half changed,
//     the sign bit) in every argument position, and random instruction pointers;
//   - the kernel's own limits: every program passes validateProgram.
import { describe, expect, it } from 'vitest';
import {
  ALLOW,
  AND,
  ARG,
  ARG_32,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_DIV,
  BPF_IMM,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LEN,
  BPF_LSH,
  BPF_MEM,
  BPF_MISC,
  BPF_MOD,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_ST,
  BPF_SUB,
  BPF_TAX,
  BPF_TXA,
  BPF_W,
  BPF_X,
  BPF_XOR,
  ERRNO,
  JA,
  JEQ,
  JGE,
  JGT,
  JLE,
  JLT,
  JNE,
  JSET,
  KILL,
  LABEL,
  LOAD_ARCH,
  LOAD_SYSCALL_NR,
  LOG,
  RAW,
  TRAP,
  USER_NOTIF,
  X32_SYSCALL_BIT,
} from './bpf.js';
import type { BpfInsn } from './bpf.js';
import { compilePolicy } from './compiler.js';
import type { CompileOptions } from './compiler.js';
import { ALWAYS_DENIED, SBX_EXEC_MAGIC } from './denials.js';
import { evaluate, validateProgram } from './evaluator.js';
import { modelVerdict } from './model.js';
import type { Policy } from './policy.js';
import { PolicyBuilder } from './policy-builder.js';
import { SYSCALL_TABLES } from './syscalls.js';
import type { Arch } from './syscalls.js';
import { rng, type Rng } from '../../../../test/prng.js';

const M64 = 0xffffffffffffffffn;
const EDGES: bigint[] = [
  0n,
  1n,
  2n,
  0x7fn,
  0x80n,
  0xffn,
  0x1000n,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  0x100000001n,
  0x7fffffffffffffffn,
  0x8000000000000000n,
  M64,
];

/** A constant for a rule, 32 or 64 bits wide; it is remembered so that arguments can hit its edges. */
function constant(r: Rng, wide: boolean, seen: bigint[]): bigint {
  const k = r.next();
  let v = k < 0.4 ? r.pick(EDGES) : k < 0.6 && seen.length ? r.pick(seen) : wide ? r.u64() : BigInt(r.u32());
  if (k > 0.9) v = BigInt(r.int(64));
  if (!wide) v &= 0xffffffffn;
  seen.push(v);
  return v;
}

const ACTIONS = (r: Rng): BpfInsn => r.pick([ALLOW, ALLOW, KILL, ERRNO(1 + r.int(4000)), TRAP, LOG, USER_NOTIF]);

/** A random rule in the whole rule language. A 64-bit compare leaves A undefined, so every check
 *  starts with a load; RET A is never used (its value would be an argument). */
function randomRule(r: Rng, seen: bigint[]): BpfInsn[] {
  const items: BpfInsn[] = [];
  const checks = 1 + r.int(4);
  for (let c = 0; c < checks; c++) {
    const hit = `hit${c}`;
    const next = `next${c}`;
    if (r.chance(0.35)) {
      // 64-bit: ARG(i) and one compare of any kind
      items.push(ARG(r.int(6)));
      const v = constant(r, true, seen);
      items.push(r.pick([JEQ, JNE, JGT, JGE, JLT, JLE, JSET])(v, hit));
    } else {
      // 32-bit: a load of any word of seccomp_data, maybe arithmetic, then a compare
      const load = r.int(6);
      if (load === 0) items.push(ARG_32(r.int(6)));
      else if (load === 1) items.push(LOAD_SYSCALL_NR);
      else if (load === 2) items.push(LOAD_ARCH);
      else if (load === 3)
        items.push(RAW(BPF_LD | BPF_W | BPF_ABS, r.pick([8, 12, 16 + 8 * r.int(6), 20 + 8 * r.int(6)]))); // ip halves, arg halves
      else if (load === 4) items.push(RAW(BPF_LD | BPF_W | BPF_LEN, 0));
      else items.push(ARG_32(r.int(6)));
      const alu = r.int(8);
      if (alu === 1) items.push(AND(Number(constant(r, false, seen))));
      else if (alu === 2) {
        const op = r.pick([BPF_ADD, BPF_SUB, BPF_MUL, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH, BPF_DIV, BPF_MOD]);
        const k =
          op === BPF_LSH || op === BPF_RSH ? r.int(32) : op === BPF_DIV || op === BPF_MOD ? 1 + r.int(1000) : r.u32();
        items.push(RAW(BPF_ALU | op | BPF_K, k));
      } else if (alu === 3) items.push(RAW(BPF_ALU | BPF_NEG, 0));
      else if (alu === 4) {
        // through the scratch memory and X, and back
        const slot = r.int(16);
        items.push(
          RAW(BPF_ST, slot),
          RAW(BPF_MISC | BPF_TAX, 0),
          RAW(BPF_LD | BPF_IMM, r.u32()),
          RAW(BPF_LD | BPF_MEM, slot),
        );
        if (r.chance(0.5)) items.push(RAW(BPF_MISC | BPF_TXA, 0));
      } else if (alu === 5) {
        // an ALU op with X as the operand
        items.push(
          RAW(BPF_LDX | BPF_IMM, r.u32()),
          RAW(BPF_ALU | r.pick([BPF_ADD, BPF_OR, BPF_XOR, BPF_SUB]) | BPF_X, 0),
        );
      }
      const v = constant(r, false, seen);
      const how = r.int(4);
      if (how === 0) {
        // a raw jump on K or on X
        const op = r.pick([BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET]);
        if (r.chance(0.5)) items.push(RAW(BPF_JMP | op | BPF_K, Number(v), hit, 0));
        else items.push(RAW(BPF_LDX | BPF_IMM, Number(v)), RAW(BPF_JMP | op | BPF_X, 0, hit, 0));
      } else {
        items.push(r.pick([JEQ, JNE, JGT, JGE, JLT, JLE, JSET])(v, hit));
      }
    }
    items.push(JA(next), LABEL(hit), ACTIONS(r), LABEL(next));
  }
  if (r.chance(0.25)) items.push(ACTIONS(r));
  return items;
}

const UNCONDITIONAL = new Set(ALWAYS_DENIED.filter((d) => !d.when).map((d) => d.name));
const CONDITIONAL = ALWAYS_DENIED.filter((d) => d.when).map((d) => d.name);

interface Generated {
  policy: Policy;
  options: CompileOptions;
  /** Syscall numbers whose verdict can depend on the arguments or the ip. */
  argDependent: Set<number>;
  constants: bigint[];
}

function randomPolicy(seed: number): Generated {
  const r = rng(seed);
  const arch: Arch = r.chance(0.8) ? 'x86_64' : 'aarch64';
  const names = [...SYSCALL_TABLES[arch].byName.keys()];
  const b = new PolicyBuilder({ arch });
  if (r.chance(0.4)) b.allowDynamicStartup();
  if (r.chance(0.3)) b.allowSystemMalloc();
  if (r.chance(0.2)) b.allowStaticStartup();
  if (r.chance(0.2)) b.allowNodeRuntime({ threads: r.chance(0.5) });
  const constants: bigint[] = [];
  const argDependent = new Set<number>();
  const table = SYSCALL_TABLES[arch].byName;
  // A few syscalls get several rules each (fall-through chains), the rest one.
  const hot = Array.from({ length: 1 + r.int(4) }, () =>
    r.pick([...names, ...CONDITIONAL.filter((n) => table.has(n))]),
  );
  const count = 3 + r.int(40);
  for (let i = 0; i < count; i++) {
    const name = r.chance(0.4) ? r.pick(hot) : r.pick(names);
    const nr = table.get(name)!;
    if (UNCONDITIONAL.has(name)) {
      b.blockSyscallWithErrno(name, 1 + r.int(4000));
      continue;
    }
    const k = r.next();
    if (k < 0.3) b.allowSyscall(name);
    else if (k < 0.45) b.blockSyscallWithErrno(name, 1 + r.int(4000));
    else {
      b.addPolicyOnSyscall(name, randomRule(r, constants));
      argDependent.add(nr);
    }
  }
  const d = r.int(6);
  b.defaultAction(
    d === 0 ? 'allow' : d === 1 ? 'log' : d === 2 ? 'notify' : d === 3 ? { errno: 1 + r.int(4000) } : 'kill',
  );
  const policy = b.build();
  for (const rule of [...policy.rules, ...policy.overridable]) if (rule.kind === 'bpf') argDependent.add(rule.nr);
  for (const name of CONDITIONAL) {
    const nr = table.get(name);
    if (nr !== undefined) argDependent.add(nr);
  }
  const execveat = table.get('execveat');
  if (execveat !== undefined) argDependent.add(execveat);
  const options: CompileOptions = {
    monitor: r.chance(0.5),
    execPrologue: r.chance(0.7),
    execFd: r.chance(0.8) ? 1022 : r.int(2000),
    dispatch: r.chance(0.8) ? 'binary' : 'linear',
    cache: false,
    ...(r.chance(0.2) ? { clientChannelFd: 1020, clientListenerFd: r.int(20) } : {}),
  };
  return { policy, options, argDependent, constants };
}

/** Argument vectors at the edges of the policy's constants, in every position. */
function argVectors(r: Rng, constants: readonly bigint[], count: number): bigint[][] {
  const around = (c: bigint): bigint[] => [
    (c - 1n) & M64,
    c,
    (c + 1n) & M64,
    c ^ (1n << 32n),
    (c & 0xffffffffn) | (BigInt(r.u32()) << 32n),
    c ^ (1n << 63n),
    c & 0xffffffffn,
  ];
  const pool = [...EDGES, ...constants.flatMap(around)];
  const out: bigint[][] = [[0n, 0n, 0n, 0n, 0n, 0n]];
  for (let n = 0; n < count; n++) out.push(Array.from({ length: 6 }, () => (r.chance(0.8) ? r.pick(pool) : r.u64())));
  // the forkserver's exec, and near misses of it
  out.push(
    [1022n, 0n, 0n, 0n, 0x1000n, BigInt(SBX_EXEC_MAGIC)],
    [1022n, 0n, 0n, 0n, 0x1000n, BigInt(SBX_EXEC_MAGIC) + 1n],
    [1020n, 0n, 0n, 0n, 0n, 0n],
  );
  return out;
}

describe('policy model vs compiled program, random policies (property)', () => {
  const SEEDS = 150;
  it(`agrees on ${SEEDS} random policies with random options, at the edges of every constant`, () => {
    let checked = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const { policy, options, argDependent, constants } = randomPolicy(seed);
      const compiled = compilePolicy(policy, options);
      expect(validateProgram(compiled.insns), `seed ${seed}`).toEqual([]);
      const r = rng(seed ^ 0x5eed);
      const vectors = argVectors(r, constants, 40);
      const native = policy.arch === 'x86_64' ? AUDIT_ARCH_X86_64 : 0xc00000b7;
      const check = (arch: number, nr: number, args: bigint[], ip: bigint): void => {
        const data = { arch, nr, args, ip };
        const got = evaluate(compiled.insns, data);
        const want = modelVerdict(policy, data, options);
        if (got.ret !== want.ret) {
          throw new Error(
            `seed ${seed}: disagreement for arch 0x${arch.toString(16)} nr ${nr} ip 0x${ip.toString(16)} args [${args.map((a) => `0x${a.toString(16)}`).join(', ')}] ` +
              `options ${JSON.stringify(options)}: program ${got.action}(${got.data}) model ${want.action}(${want.data}) by ${want.by}`,
          );
        }
        checked++;
      };
      for (let nr = 0; nr <= 470; nr++) {
        const dependent = argDependent.has(nr);
        for (const args of dependent ? vectors : vectors.slice(0, 2))
          check(native, nr, args, dependent && r.chance(0.5) ? r.u64() : 0n);
      }
      for (const nr of [X32_SYSCALL_BIT, X32_SYSCALL_BIT + 39, 0x7fffffff, 0xffffffff, 1000 + r.int(100000)])
        check(native, nr, vectors[0]!, 0n);
      for (const nr of [0, 20, 59, 101]) check(AUDIT_ARCH_I386, nr, vectors[0]!, 0n);
    }
    expect(checked).toBeGreaterThan(100_000);
  });
});
