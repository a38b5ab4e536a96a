import { describe, expect, it } from 'vitest';
import {
  AUDIT_ARCH_X86_64,
  BPF_A,
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_AND,
  BPF_DIV,
  BPF_IMM,
  BPF_JA,
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
  BPF_RET,
  BPF_RSH,
  BPF_ST,
  BPF_TXA,
  BPF_W,
  BPF_X,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  bpfJump as J,
  bpfStmt as S,
  encodeProgram,
} from './bpf.js';
import { PolicyError } from './errors.js';
import { decodeRet, evaluate, isConstAllow, validateProgram } from './evaluator.js';

const LD = (k: number) => S(BPF_LD | BPF_W | BPF_ABS, k);
const RET = (k: number) => S(BPF_RET | BPF_K, k);

describe('evaluate()', () => {
  it('runs a hand-written allowlist', () => {
    const prog = [
      LD(4),
      J(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      RET(SECCOMP_RET_KILL_PROCESS),
      LD(0),
      J(BPF_JMP | BPF_JEQ | BPF_K, 1, 2, 0), // write
      J(BPF_JMP | BPF_JGE | BPF_K, 300, 0, 2),
      RET(SECCOMP_RET_ERRNO | 1),
      RET(SECCOMP_RET_ALLOW),
      RET(SECCOMP_RET_KILL_PROCESS),
    ];
    expect(validateProgram(prog)).toEqual([]);
    const e = (nr: number, arch = AUDIT_ARCH_X86_64) => evaluate(prog, { nr, arch });
    expect(e(1)).toMatchObject({ action: 'ALLOW', steps: 5 });
    expect(e(300)).toMatchObject({ action: 'ERRNO', data: 1 });
    expect(e(2).action).toBe('KILL_PROCESS');
    expect(e(1, 0x40000003)).toMatchObject({ action: 'KILL_PROCESS', steps: 3 });
    expect(evaluate(encodeProgram(prog), { nr: 1, arch: AUDIT_ARCH_X86_64 }).action).toBe('ALLOW');
  });

  it('reads 64-bit arguments as two little-endian halves and the instruction pointer', () => {
    const prog = [
      LD(20),
      J(BPF_JMP | BPF_JEQ | BPF_K, 0x12345678, 0, 3),
      LD(16),
      J(BPF_JMP | BPF_JEQ | BPF_K, 0x9abcdef0, 0, 1),
      RET(SECCOMP_RET_ALLOW),
      LD(12),
      S(BPF_RET | BPF_A, 0),
    ];
    expect(evaluate(prog, { nr: 0, arch: 0, args: [0x123456789abcdef0n] })).toMatchObject({
      action: 'ALLOW',
      readArgs: true,
    });
    expect(evaluate(prog, { nr: 0, arch: 0, args: [0x9abcdef0n], ip: 0x7fff000000000000n }).ret).toBe(0x7fff0000);
    expect(evaluate(prog, { nr: 0, arch: 0, args: [-1n] }).ret).toBe(0);
  });

  it('does arithmetic, scratch memory, X and RET A', () => {
    const prog = [
      S(BPF_LD | BPF_IMM, 6),
      S(BPF_ALU | BPF_ADD | BPF_K, 4), // 10
      S(BPF_ST, 3),
      S(BPF_LDX | BPF_IMM, 2),
      S(BPF_ALU | BPF_LSH | BPF_X, 0), // 40
      S(BPF_ALU | BPF_RSH | BPF_K, 1), // 20
      S(BPF_MISC | 0, 0), // X = 20
      S(BPF_LD | BPF_MEM, 3), // A = 10
      S(BPF_ALU | BPF_ADD | BPF_X, 0), // 30
      S(BPF_ALU | BPF_AND | BPF_K, 0xff),
      J(BPF_JMP | BPF_JSET | BPF_K, 0x2, 1, 0),
      RET(0),
      J(BPF_JMP | BPF_JGT | BPF_X, 0, 0, 1), // 30 > 20
      S(BPF_JMP | BPF_JA, 1),
      RET(0),
      S(BPF_LDX | BPF_W | BPF_LEN, 0),
      S(BPF_MISC | BPF_TXA, 0),
      S(BPF_ALU | BPF_ADD | BPF_K, SECCOMP_RET_ERRNO),
      S(BPF_RET | BPF_A, 0),
    ];
    expect(validateProgram(prog)).toEqual([]);
    expect(evaluate(prog, { nr: 0, arch: 0 })).toMatchObject({ action: 'ERRNO', data: 64 });
  });

  it('returns 0 (kill) on division by a zero X, as the kernel does', () => {
    const prog = [
      S(BPF_LD | BPF_IMM, 6),
      S(BPF_LDX | BPF_IMM, 0),
      S(BPF_ALU | BPF_DIV | BPF_X, 0),
      RET(SECCOMP_RET_ALLOW),
    ];
    expect(evaluate(prog, { nr: 0, arch: 0 }).action).toBe('KILL_THREAD');
  });

  it('throws PolicyError on programs the kernel would refuse', () => {
    expect(() => evaluate([LD(0)], { nr: 0, arch: 0 })).toThrow(PolicyError);
    expect(() => evaluate([LD(2), RET(0)], { nr: 0, arch: 0 })).toThrow(/offset 2/);
    expect(() => evaluate([S(0x07 | 0x20, 0), RET(0)], { nr: 0, arch: 0 })).toThrow(/opcode/);
  });
});

describe('validateProgram()', () => {
  it('lists what the kernel would refuse', () => {
    expect(validateProgram([])).toEqual(['the program is empty']);
    expect(
      validateProgram([
        LD(64),
        S(BPF_ALU | BPF_DIV | BPF_K, 0),
        J(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0),
        S(BPF_ST, 16),
        LD(0),
      ]),
    ).toEqual([
      'insn 0: load of seccomp_data offset 64 (must be 4-aligned and below 64)',
      'insn 1: division by the constant 0',
      'insn 2: jump past the end (jt 5, jf 0)',
      'insn 3: scratch slot 16 out of range',
      'the last instruction is not a ret',
    ]);
    expect(validateProgram([S(BPF_LD | BPF_MEM | 0x08, 0), RET(0)])[0]).toMatch(/not allowed in seccomp filters/);
  });
});

describe('decodeRet()', () => {
  it('names actions and data like the kernel (unknown actions kill the process)', () => {
    expect(decodeRet(0x7fff0000)).toEqual({ ret: 0x7fff0000, action: 'ALLOW', data: 0 });
    expect(decodeRet(0x00050001)).toEqual({ ret: 0x50001, action: 'ERRNO', data: 1 });
    expect(decodeRet(0x7fc00002).action).toBe('USER_NOTIF');
    expect(decodeRet(0x7ffc0000).action).toBe('LOG');
    expect(decodeRet(0x7ff00005)).toMatchObject({ action: 'TRACE', data: 5 });
    expect(decodeRet(0x00030000).action).toBe('TRAP');
    expect(decodeRet(0).action).toBe('KILL_THREAD');
    expect(decodeRet(0x80000000).action).toBe('KILL_PROCESS');
    expect(decodeRet(0x12340000).action).toBe('KILL_PROCESS');
  });
});

describe('isConstAllow()', () => {
  it('is true only when ALLOW is reached without reading arguments', () => {
    const prog = [
      LD(0),
      J(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1),
      RET(SECCOMP_RET_ALLOW),
      LD(16),
      J(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
      RET(SECCOMP_RET_ALLOW),
      RET(0),
    ];
    expect(isConstAllow(prog, 0, 1)).toBe(true);
    expect(isConstAllow(prog, 0, 2)).toBe(false);
  });
});

// The constant is imported to keep the table of opcodes honest.
void BPF_LEN;
void BPF_JA;
