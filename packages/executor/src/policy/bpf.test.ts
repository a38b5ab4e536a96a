import { describe, expect, it } from 'vitest';
import {
  ALLOW,
  ARG,
  ARG_32,
  BPF_ABS,
  BPF_JA,
  BPF_JEQ,
  BPF_JMP,
  BPF_K,
  BPF_LD,
  BPF_RET,
  BPF_W,
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
  RAW,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_KILL_PROCESS,
  argHi,
  argLo,
  assemble,
  bpfJump,
  bpfStmt,
  decodeProgram,
  encodeProgram,
  expandRule,
} from './bpf.js';
import type { AsmItem, BpfInsn } from './bpf.js';
import { actionRet } from './compiler.js';
import { PolicyError } from './errors.js';
import { evaluate, validateProgram } from './evaluator.js';
import { interpretRule } from './model.js';

describe('sock_filter encoding', () => {
  it('writes u16 code, u8 jt, u8 jf, u32 k little-endian', () => {
    const bytes = encodeProgram([
      bpfJump(BPF_JMP | BPF_JEQ | BPF_K, 0xc000003e, 1, 2),
      bpfStmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    ]);
    expect([...bytes]).toEqual([0x15, 0, 1, 2, 0x3e, 0, 0, 0xc0, 0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]);
    expect(decodeProgram(bytes)).toEqual([
      { code: 0x15, jt: 1, jf: 2, k: 0xc000003e },
      { code: 6, jt: 0, jf: 0, k: 0x7fff0000 },
    ]);
    expect(() => decodeProgram(new Uint8Array(7))).toThrow(PolicyError);
  });

  it('places argument halves at 16 + 8i (+4 for the high half)', () => {
    expect([argLo(0), argHi(0), argLo(5), argHi(5)]).toEqual([16, 20, 56, 60]);
  });
});

describe('assemble()', () => {
  const ret = (k: number): AsmItem => ({ code: BPF_RET | BPF_K, k });

  it('resolves labels into forward offsets', () => {
    const out = assemble([
      { code: BPF_LD | BPF_W | BPF_ABS, k: 0 },
      { code: BPF_JMP | BPF_JEQ | BPF_K, k: 1, t: 'yes', f: 'no' },
      { label: 'no' },
      ret(0),
      { label: 'yes' },
      ret(SECCOMP_RET_ALLOW),
    ]);
    expect(out[1]).toEqual({ code: BPF_JMP | BPF_JEQ | BPF_K, jt: 1, jf: 0, k: 1 });
  });

  it('inserts ja trampolines for relaxable jumps beyond 255', () => {
    const filler: AsmItem[] = Array.from({ length: 300 }, () => ret(0));
    const items: AsmItem[] = [
      { code: BPF_JMP | BPF_JEQ | BPF_K, k: 7, t: 'far', f: null, relax: true },
      ...filler,
      { label: 'far' },
      ret(SECCOMP_RET_ALLOW),
    ];
    const out = assemble(items);
    expect(out).toHaveLength(303);
    expect(out[0]).toMatchObject({ jt: 0, jf: 1 });
    expect(out[1]).toMatchObject({ code: BPF_JMP | BPF_JA, k: 300 });
    expect(validateProgram(out)).toEqual([]);
    expect(evaluate(out, { nr: 0, arch: 0 }).ret).toBe(SECCOMP_RET_KILL_PROCESS & 0);
  });

  it('refuses a non-relaxable jump beyond 255 with a clear message', () => {
    const items: AsmItem[] = [
      { code: BPF_JMP | BPF_JEQ | BPF_K, k: 7, t: 'far', where: 'rule on write item 1' },
      ...Array.from({ length: 256 }, () => ret(0)),
      { label: 'far' },
      ret(0),
    ];
    expect(() => assemble(items)).toThrow(
      /rule on write item 1: the true branch to "far" spans 256 instructions; a cBPF conditional jump reaches at most 255/,
    );
  });

  it('refuses unknown, duplicate and backward labels', () => {
    expect(() => assemble([{ code: BPF_JMP | BPF_JA, k: 0, t: 'x' }, ret(0)])).toThrow(/unknown label "x"/);
    expect(() => assemble([{ label: 'a' }, { label: 'a' }, ret(0)])).toThrow(/duplicate label "a"/);
    expect(() => assemble([{ label: 'a' }, { code: BPF_JMP | BPF_JA, k: 0, t: 'a' }, ret(0)])).toThrow(/backwards/);
  });
});

describe('rule helpers', () => {
  it('reject wrong argument types with TypeError', () => {
    expect(() => ARG(6)).toThrow(TypeError);
    expect(() => ARG_32(-1)).toThrow(TypeError);
    expect(() => JEQ(1.5, 'x')).toThrow(TypeError);
    expect(() => JEQ(1, -1)).toThrow(TypeError);
    expect(() => JEQ(2n ** 64n, 'x')).toThrow(TypeError);
    expect(() => ERRNO(5000)).toThrow(TypeError);
    expect(() => LABEL('')).toThrow(TypeError);
    expect(() => RAW(0x10000, 0)).toThrow(TypeError);
  });

  it('treat negative values as 64-bit two’s complement', () => {
    expect(JEQ(-1, 'x')).toMatchObject({ value: 0xffffffffffffffffn });
  });

  /** Expands a rule, assembles it alone and runs it, as the compiler does inside a leaf. */
  function runExpanded(rule: BpfInsn[], args: bigint[]): number {
    const items = expandRule(rule, { where: 'test', scope: 's', fallthrough: 'fall', ret: (a) => actionRet(a, false) });
    const prog = assemble([...items, { label: 'fall' }, { code: BPF_RET | BPF_K, k: 0x7ffc0000 }]);
    return evaluate(prog, { nr: 1, arch: 0, args }).ret;
  }

  const values = [
    0n,
    1n,
    2n,
    0xffffffffn,
    0x100000000n,
    0x100000001n,
    0x1ffffffffn,
    0xfffffffffffffffen,
    0xffffffffffffffffn,
    0x8000000000000000n,
  ];

  it('64-bit compares (ARG) agree with bigint semantics for every pair of interesting values', () => {
    for (const op of [JEQ, JNE, JGT, JGE, JLT, JLE, JSET]) {
      for (const k of values) {
        const rule = [ARG(2), op(k, 'yes', 'no'), LABEL('yes'), ALLOW, LABEL('no'), ERRNO(1)];
        for (const v of values) {
          const args = [0n, 0n, v];
          expect(runExpanded(rule, args), `${op.name} ${v} vs ${k}`).toBe(
            interpretRule(rule, { nr: 1, arch: 0, args }, false),
          );
        }
      }
    }
    // Spot-check the model itself.
    expect(
      interpretRule(
        [ARG(0), JGT(0xffffffffn, 'y'), ERRNO(1), LABEL('y'), ALLOW],
        { nr: 0, arch: 0, args: [0x100000000n] },
        false,
      ),
    ).toBe(SECCOMP_RET_ALLOW);
  });

  it('32-bit compares (ARG_32) ignore the high half, as the kernel does for int arguments', () => {
    const rule = [ARG_32(1), JEQ(0x5412, 'hit'), ALLOW, LABEL('hit'), KILL];
    expect(runExpanded(rule, [0n, 0x5412n])).toBe(SECCOMP_RET_KILL_PROCESS);
    expect(runExpanded(rule, [0n, 0xffffffff00005412n])).toBe(SECCOMP_RET_KILL_PROCESS);
    expect(runExpanded(rule, [0n, 0x5413n])).toBe(SECCOMP_RET_ALLOW);
  });

  it('count numeric jump targets in items and fall through at the end', () => {
    const rule = [ARG_32(0), JEQ(1, 1), ALLOW, ERRNO(5)];
    expect(runExpanded(rule, [1n])).toBe(0x50005);
    expect(runExpanded(rule, [2n])).toBe(SECCOMP_RET_ALLOW);
    expect(runExpanded([ARG_32(0), JEQ(1, 0, 1), ALLOW], [2n])).toBe(0x7ffc0000);
    expect(runExpanded([JA(1), ALLOW, RAW(BPF_RET | BPF_K, 0x50007)], [])).toBe(0x50007);
  });
});
