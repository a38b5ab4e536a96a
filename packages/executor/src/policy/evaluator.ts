/**
 * A classic-BPF interpreter with seccomp's rules: runs a sock_filter program on a seccomp_data
 * and returns the action. Tests use it to check compiled programs; the monitor uses it to
 * classify notifications (re-running the program on the notification's data).
 */
import {
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
  BPF_MAXINSNS,
  BPF_MEM,
  BPF_MEMWORDS,
  BPF_MISC,
  BPF_MOD,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RET,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_TXA,
  BPF_W,
  BPF_X,
  BPF_XOR,
  SECCOMP_DATA_SIZE,
  SECCOMP_RET_ACTION_FULL,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_DATA,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_KILL_THREAD,
  SECCOMP_RET_LOG,
  SECCOMP_RET_TRACE,
  SECCOMP_RET_TRAP,
  SECCOMP_RET_USER_NOTIF,
  decodeProgram,
  isKnownOpcode,
} from './bpf.js';
import type { SockFilter } from './bpf.js';
import { PolicyError } from './errors.js';

/** struct seccomp_data. args are the six 64-bit argument registers (missing ones are 0). */
export interface SeccompData {
  readonly nr: number;
  readonly arch: number;
  readonly ip?: bigint | number;
  readonly args?: ReadonlyArray<bigint | number>;
}

export type SeccompAction =
  | 'KILL_PROCESS'
  | 'KILL_THREAD'
  | 'TRAP'
  | 'ERRNO'
  | 'USER_NOTIF'
  | 'TRACE'
  | 'LOG'
  | 'ALLOW';

export interface Verdict {
  /** The raw 32-bit return value. */
  readonly ret: number;
  readonly action: SeccompAction;
  /** The 16 data bits (the errno for ERRNO). */
  readonly data: number;
}

export interface EvalResult extends Verdict {
  /** Instructions executed. */
  readonly steps: number;
  /** Did the run read an argument or the instruction pointer? (false: the kernel can cache it) */
  readonly readArgs: boolean;
}

/** Splits a return value into action and data as the kernel does (unknown actions kill the process). */
export function decodeRet(ret: number): Verdict {
  const r = ret >>> 0;
  const full = (r & SECCOMP_RET_ACTION_FULL) >>> 0;
  const data = r & SECCOMP_RET_DATA;
  let action: SeccompAction;
  switch (full) {
    case SECCOMP_RET_KILL_PROCESS:
      action = 'KILL_PROCESS';
      break;
    case SECCOMP_RET_KILL_THREAD:
      action = 'KILL_THREAD';
      break;
    case SECCOMP_RET_TRAP:
      action = 'TRAP';
      break;
    case SECCOMP_RET_ERRNO:
      action = 'ERRNO';
      break;
    case SECCOMP_RET_USER_NOTIF:
      action = 'USER_NOTIF';
      break;
    case SECCOMP_RET_TRACE:
      action = 'TRACE';
      break;
    case SECCOMP_RET_LOG:
      action = 'LOG';
      break;
    case SECCOMP_RET_ALLOW:
      action = 'ALLOW';
      break;
    default:
      action = 'KILL_PROCESS';
  }
  return { ret: r, action, data };
}

/** The checks the kernel makes before it accepts a filter (bpf_check_classic + seccomp_check_filter). */
export function validateProgram(insns: readonly SockFilter[]): string[] {
  const problems: string[] = [];
  if (insns.length === 0) problems.push('the program is empty');
  if (insns.length > BPF_MAXINSNS)
    problems.push(`the program has ${insns.length} instructions; the limit is ${BPF_MAXINSNS}`);
  insns.forEach((insn, pc) => {
    if (!isKnownOpcode(insn.code)) {
      problems.push(`insn ${pc}: opcode 0x${insn.code.toString(16)} is not allowed in seccomp filters`);
      return;
    }
    const cls = insn.code & 0x07;
    if (insn.code === (BPF_LD | BPF_W | BPF_ABS) && (insn.k % 4 !== 0 || insn.k >= SECCOMP_DATA_SIZE)) {
      problems.push(`insn ${pc}: load of seccomp_data offset ${insn.k} (must be 4-aligned and below 64)`);
    }
    if (
      (insn.code === (BPF_LD | BPF_MEM) || insn.code === (BPF_LDX | BPF_MEM) || cls === BPF_ST || cls === BPF_STX) &&
      insn.k >= BPF_MEMWORDS
    ) {
      problems.push(`insn ${pc}: scratch slot ${insn.k} out of range`);
    }
    if (
      cls === BPF_ALU &&
      (insn.code & 0x08) === 0 &&
      ((insn.code & 0xf0) === BPF_DIV || (insn.code & 0xf0) === BPF_MOD) &&
      insn.k === 0
    ) {
      problems.push(`insn ${pc}: division by the constant 0`);
    }
    if (cls === BPF_JMP) {
      if ((insn.code & 0xf0) === BPF_JA) {
        if (pc + 1 + insn.k >= insns.length) problems.push(`insn ${pc}: ja +${insn.k} jumps past the end`);
      } else if (pc + 1 + Math.max(insn.jt, insn.jf) >= insns.length) {
        problems.push(`insn ${pc}: jump past the end (jt ${insn.jt}, jf ${insn.jf})`);
      }
    }
  });
  const last = insns[insns.length - 1];
  if (last && (last.code & 0x07) !== BPF_RET) problems.push('the last instruction is not a ret');
  return problems;
}

function toProgram(program: Uint8Array | readonly SockFilter[]): readonly SockFilter[] {
  return program instanceof Uint8Array ? decodeProgram(program) : program;
}

function dataWord(data: SeccompData, off: number): number {
  if (off === 0) return data.nr >>> 0;
  if (off === 4) return data.arch >>> 0;
  let v: bigint;
  if (off < 16) v = BigInt(data.ip ?? 0);
  else v = BigInt(data.args?.[(off - 16) >> 3] ?? 0);
  v = BigInt.asUintN(64, v);
  return Number((off & 4 ? v >> 32n : v) & 0xffffffffn);
}

/**
 * Runs a program on one seccomp_data. Throws PolicyError('INVALID_PROGRAM') for a program the
 * kernel would refuse (checked on the path taken: bad opcode, jump out of range, fall off the end).
 */
export function evaluate(program: Uint8Array | readonly SockFilter[], data: SeccompData): EvalResult {
  const insns = toProgram(program);
  let A = 0;
  let X = 0;
  const M = new Uint32Array(BPF_MEMWORDS);
  let pc = 0;
  let steps = 0;
  let readArgs = false;
  const bad = (msg: string): never => {
    throw new PolicyError('INVALID_PROGRAM', `insn ${pc}: ${msg}`);
  };
  for (;;) {
    const insn = insns[pc];
    if (!insn) bad('ran off the end of the program');
    const { code, k } = insn!;
    steps++;
    pc++;
    switch (code & 0x07) {
      case BPF_LD:
        if (code === (BPF_LD | BPF_W | BPF_ABS)) {
          if (k % 4 !== 0 || k >= SECCOMP_DATA_SIZE) bad(`load of offset ${k}`);
          if (k >= 8) readArgs = true;
          A = dataWord(data, k);
        } else if (code === (BPF_LD | BPF_W | BPF_LEN)) A = SECCOMP_DATA_SIZE;
        else if (code === (BPF_LD | BPF_IMM)) A = k >>> 0;
        else if (code === (BPF_LD | BPF_MEM)) A = M[k] ?? bad(`scratch slot ${k}`);
        else bad(`opcode 0x${code.toString(16)}`);
        break;
      case BPF_LDX:
        if (code === (BPF_LDX | BPF_W | BPF_LEN)) X = SECCOMP_DATA_SIZE;
        else if (code === (BPF_LDX | BPF_IMM)) X = k >>> 0;
        else if (code === (BPF_LDX | BPF_MEM)) X = M[k] ?? bad(`scratch slot ${k}`);
        else bad(`opcode 0x${code.toString(16)}`);
        break;
      case BPF_ST:
        if (k >= BPF_MEMWORDS) bad(`scratch slot ${k}`);
        M[k] = A;
        break;
      case BPF_STX:
        if (k >= BPF_MEMWORDS) bad(`scratch slot ${k}`);
        M[k] = X;
        break;
      case BPF_ALU: {
        const src = code & BPF_X ? X : k >>> 0;
        switch (code & 0xf0) {
          case BPF_ADD:
            A = (A + src) >>> 0;
            break;
          case BPF_SUB:
            A = (A - src) >>> 0;
            break;
          case BPF_MUL:
            A = Math.imul(A, src) >>> 0;
            break;
          case BPF_DIV:
            if (src === 0) return { ...decodeRet(0), steps, readArgs }; // the kernel returns 0 on x/0
            A = Math.floor(A / src) >>> 0;
            break;
          case BPF_MOD:
            if (src === 0) return { ...decodeRet(0), steps, readArgs };
            A = (A % src) >>> 0;
            break;
          case BPF_OR:
            A = (A | src) >>> 0;
            break;
          case BPF_AND:
            A = (A & src) >>> 0;
            break;
          case BPF_XOR:
            A = (A ^ src) >>> 0;
            break;
          case BPF_LSH:
            A = src >= 32 ? 0 : (A << src) >>> 0;
            break;
          case BPF_RSH:
            A = src >= 32 ? 0 : A >>> src;
            break;
          case BPF_NEG:
            A = -A >>> 0;
            break;
          default:
            bad(`opcode 0x${code.toString(16)}`);
        }
        break;
      }
      case BPF_JMP: {
        const op = code & 0xf0;
        if (op === BPF_JA) {
          pc += k >>> 0;
          break;
        }
        const src = code & BPF_X ? X : k >>> 0;
        let cond: boolean;
        if (op === BPF_JEQ) cond = A === src;
        else if (op === BPF_JGT) cond = A > src;
        else if (op === BPF_JGE) cond = A >= src;
        else if (op === BPF_JSET) cond = (A & src) !== 0;
        else cond = bad(`opcode 0x${code.toString(16)}`);
        pc += cond ? insn!.jt : insn!.jf;
        break;
      }
      case BPF_RET:
        if (code === (BPF_RET | BPF_A)) return { ...decodeRet(A), steps, readArgs };
        if (code === (BPF_RET | BPF_K)) return { ...decodeRet(k), steps, readArgs };
        return bad(`opcode 0x${code.toString(16)}`);
      case BPF_MISC:
        if (code === (BPF_MISC | BPF_TXA)) A = X;
        else if (code === (BPF_MISC | 0)) X = A;
        else bad(`opcode 0x${code.toString(16)}`);
        break;
      default:
        bad(`opcode 0x${code.toString(16)}`);
    }
  }
}

/**
 * Does this program ALLOW (arch, nr) for every argument value without reading arguments? This is
 * the kernel action-cache question (seccomp_is_const_allow): the path must not load args or ip.
 */
export function isConstAllow(program: Uint8Array | readonly SockFilter[], arch: number, nr: number): boolean {
  const r = evaluate(program, { nr, arch });
  return r.action === 'ALLOW' && !r.readArgs;
}
