/**
 * Classic BPF for seccomp: constants, the sock_filter encoding, the rule helpers users write
 * raw rules with (Sandbox2 style: ARG_32, ARG, JEQ, JNE, ..., ALLOW, KILL, ERRNO), and the
 * assembler that turns symbolic jumps into offsets.
 */
import { PolicyError } from './errors.js';

// ---- Opcodes (linux/filter.h, linux/bpf_common.h) ----
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_LEN = 0x80;
export const BPF_MSH = 0xa0;
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
export const BPF_K = 0x00;
export const BPF_X = 0x08;
export const BPF_A = 0x10;
export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;
/** The kernel refuses filters longer than this (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;
/** Scratch memory slots M[0..15]. */
export const BPF_MEMWORDS = 16;

// ---- seccomp return values (linux/seccomp.h) ----
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_KILL_THREAD = 0x00000000;
export const SECCOMP_RET_KILL = SECCOMP_RET_KILL_THREAD;
export const SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
export const SECCOMP_RET_TRACE = 0x7ff00000;
export const SECCOMP_RET_LOG = 0x7ffc0000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_ACTION_FULL = 0xffff0000;
export const SECCOMP_RET_DATA = 0x0000ffff;

// ---- Architectures (linux/audit.h) ----
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
export const AUDIT_ARCH_ARM = 0x40000028;
/** x32 syscalls arrive with AUDIT_ARCH_X86_64 and this bit set in nr. */
export const X32_SYSCALL_BIT = 0x40000000;

// ---- struct seccomp_data (little-endian hosts) ----
export const SECCOMP_DATA_NR = 0;
export const SECCOMP_DATA_ARCH = 4;
export const SECCOMP_DATA_IP_LO = 8;
export const SECCOMP_DATA_IP_HI = 12;
export const SECCOMP_DATA_SIZE = 64;
/** Offset of the low 32 bits of argument i (0..5). */
export function argLo(i: number): number {
  return 16 + 8 * i;
}
/** Offset of the high 32 bits of argument i (0..5). */
export function argHi(i: number): number {
  return 20 + 8 * i;
}

/** Syscall-specific constants used by the always-on rules. */
export const AT_EMPTY_PATH = 0x1000;
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;
/** Makes the tty the caller's controlling terminal (with arg 1: takes it from its session). */
export const TIOCSCTTY = 0x540e;
/** Exclusive mode: no further open() of the tty but by root. */
export const TIOCEXCL = 0x540c;
/** Redirects console output to the tty. */
export const TIOCCONS = 0x541d;
/** Sets the line discipline (N_NULL: the terminal stops working). */
export const TIOCSETD = 0x5423;
/** Hangs the tty up for everyone who has it open. */
export const TIOCVHANGUP = 0x5437;
export const SECCOMP_FILTER_FLAG_NEW_LISTENER = 8;
export const CLONE_NEWTIME = 0x80;
export const CLONE_NEWNS = 0x20000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
/** Every CLONE_NEW* flag. */
export const CLONE_NEW_ANY =
  CLONE_NEWTIME |
  CLONE_NEWNS |
  CLONE_NEWCGROUP |
  CLONE_NEWUTS |
  CLONE_NEWIPC |
  CLONE_NEWUSER |
  CLONE_NEWPID |
  CLONE_NEWNET;

// ---- struct sock_filter ----

/** One struct sock_filter: u16 code, u8 jt, u8 jf, u32 k. */
export interface SockFilter {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

export function bpfStmt(code: number, k: number): SockFilter {
  return { code, jt: 0, jf: 0, k: k >>> 0 };
}

export function bpfJump(code: number, k: number, jt: number, jf: number): SockFilter {
  return { code, jt, jf, k: k >>> 0 };
}

/** Encodes a program as the kernel's struct sock_filter array (8 bytes each, little-endian). */
export function encodeProgram(insns: readonly SockFilter[]): Uint8Array {
  const out = new Uint8Array(insns.length * 8);
  const view = new DataView(out.buffer);
  insns.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, true);
    view.setUint8(i * 8 + 2, insn.jt);
    view.setUint8(i * 8 + 3, insn.jf);
    view.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return out;
}

/** Decodes a struct sock_filter array. */
export function decodeProgram(bytes: Uint8Array): SockFilter[] {
  if (bytes.length % 8 !== 0) {
    throw new PolicyError('INVALID_PROGRAM', `a sock_filter program is a multiple of 8 bytes, got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: SockFilter[] = [];
  for (let off = 0; off < bytes.length; off += 8) {
    out.push({
      code: view.getUint16(off, true),
      jt: view.getUint8(off + 2),
      jf: view.getUint8(off + 3),
      k: view.getUint32(off + 4, true),
    });
  }
  return out;
}

// ---- Rule language (what addPolicyOnSyscall takes) ----

/**
 * Where a jump goes: a label name (see LABEL), or a number of rule items to skip (0 = the next
 * item, as in raw BPF when every item is one instruction). Jumps only go forward.
 */
export type JumpTarget = number | string;

/** What a rule returns. 'violation' is KILL: KILL_PROCESS, or USER_NOTIF under a monitor. */
export type RuleAction =
  | { readonly type: 'allow' }
  | { readonly type: 'violation' }
  | { readonly type: 'errno'; readonly errno: number }
  | { readonly type: 'trap'; readonly data: number }
  | { readonly type: 'user_notif' }
  | { readonly type: 'log' }
  | { readonly type: 'trace'; readonly data: number };

/**
 * One item of a raw rule. Build them with the helpers below (ARG_32, JEQ, ALLOW, ...).
 * On entry to a rule the accumulator holds the syscall number. A rule that does not return
 * falls through to the next rule for the same syscall, and finally to the default action.
 */
export type BpfInsn =
  | { readonly kind: 'load'; readonly field: 'nr' | 'arch' | 'arg'; readonly index: number; readonly width: 32 | 64 }
  | {
      readonly kind: 'cmp';
      readonly op: 'jeq' | 'jgt' | 'jge' | 'jset';
      readonly value: bigint;
      readonly jt: JumpTarget;
      readonly jf: JumpTarget;
    }
  | { readonly kind: 'ja'; readonly target: JumpTarget }
  | { readonly kind: 'label'; readonly name: string }
  | { readonly kind: 'ret'; readonly action: RuleAction }
  | {
      readonly kind: 'raw';
      readonly code: number;
      readonly k: number;
      readonly jt: JumpTarget;
      readonly jf: JumpTarget;
    };

function checkArgIndex(i: unknown, fn: string): number {
  if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i > 5) {
    throw new TypeError(`${fn}(index): index must be an integer 0..5, got ${String(i)}`);
  }
  return i;
}

function checkTarget(t: unknown, fn: string): JumpTarget {
  if (typeof t === 'string' && t.length > 0) return t;
  if (typeof t === 'number' && Number.isInteger(t) && t >= 0) return t;
  throw new TypeError(`${fn}: a jump target is a label name or a non-negative item count, got ${String(t)}`);
}

function toValue(v: unknown, fn: string): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
  else throw new TypeError(`${fn}: the value must be an integer or a bigint, got ${String(v)}`);
  // Negative numbers compare as the kernel sees them: two's complement in 64 bits.
  if (b < 0n) {
    if (b < -(1n << 63n)) throw new TypeError(`${fn}: ${b} does not fit in 64 bits`);
    b = BigInt.asUintN(64, b);
  }
  if (b >= 1n << 64n) throw new TypeError(`${fn}: ${b} does not fit in 64 bits`);
  return b;
}

/** Loads the low 32 bits of argument i; following compares are 32-bit (kernel int arguments). */
export function ARG_32(i: number): BpfInsn {
  return { kind: 'load', field: 'arg', index: checkArgIndex(i, 'ARG_32'), width: 32 };
}
/** Selects all 64 bits of argument i; following compares check both halves (each loads what it needs). */
export function ARG(i: number): BpfInsn {
  return { kind: 'load', field: 'arg', index: checkArgIndex(i, 'ARG'), width: 64 };
}
/** Loads the syscall number (32-bit). */
export const LOAD_SYSCALL_NR: BpfInsn = Object.freeze({ kind: 'load', field: 'nr', index: 0, width: 32 });
/** Loads the audit arch (32-bit). */
export const LOAD_ARCH: BpfInsn = Object.freeze({ kind: 'load', field: 'arch', index: 0, width: 32 });

function cmp(op: 'jeq' | 'jgt' | 'jge' | 'jset', fn: string, value: unknown, jt: unknown, jf: unknown): BpfInsn {
  return { kind: 'cmp', op, value: toValue(value, fn), jt: checkTarget(jt, fn), jf: checkTarget(jf, fn) };
}
/** if (value == v) goto jt else goto jf. */
export function JEQ(v: number | bigint, jt: JumpTarget, jf: JumpTarget = 0): BpfInsn {
  return cmp('jeq', 'JEQ', v, jt, jf);
}
/** if (value != v) goto jt else goto jf. */
export function JNE(v: number | bigint, jt: JumpTarget, jf: JumpTarget = 0): BpfInsn {
  return cmp('jeq', 'JNE', v, jf, jt);
}
/** if (value > v) goto jt else goto jf (unsigned). */
export function JGT(v: number | bigint, jt: JumpTarget, jf: JumpTarget = 0): BpfInsn {
  return cmp('jgt', 'JGT', v, jt, jf);
}
/** if (value >= v) goto jt else goto jf (unsigned). */
export function JGE(v: number | bigint, jt: JumpTarget, jf: JumpTarget = 0): BpfInsn {
  return cmp('jge', 'JGE', v, jt, jf);
}
/** if (value < v) goto jt else goto jf (unsigned). */
export function JLT(v: number | bigint, jt: JumpTarget, jf: JumpTarget = 0): BpfInsn {
  return cmp('jge', 'JLT', v, jf, jt);
}
/** if (value <= v) goto jt else goto jf (unsigned). */
export function JLE(v: number | bigint, jt: JumpTarget, jf: JumpTarget = 0): BpfInsn {
  return cmp('jgt', 'JLE', v, jf, jt);
}
/** if (value & mask) goto jt else goto jf. */
export function JSET(mask: number | bigint, jt: JumpTarget, jf: JumpTarget = 0): BpfInsn {
  return cmp('jset', 'JSET', mask, jt, jf);
}
/** Unconditional jump (32-bit offset: reaches anywhere in the rule). */
export function JA(target: JumpTarget): BpfInsn {
  return { kind: 'ja', target: checkTarget(target, 'JA') };
}
/** Alias of JA, as in Sandbox2. */
export const JUMP = JA;
/** Marks a jump target. Labels are local to one rule. */
export function LABEL(name: string): BpfInsn {
  if (typeof name !== 'string' || name.length === 0)
    throw new TypeError('LABEL(name): name must be a non-empty string');
  return { kind: 'label', name };
}
/** A raw instruction; jt/jf follow JumpTarget rules for jumps and are ignored otherwise. */
export function RAW(code: number, k: number, jt: JumpTarget = 0, jf: JumpTarget = 0): BpfInsn {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new TypeError(`RAW: code must be a u16, got ${code}`);
  if (!Number.isInteger(k) || k < -0x80000000 || k > 0xffffffff) throw new TypeError(`RAW: k must be a u32, got ${k}`);
  return { kind: 'raw', code, k: k >>> 0, jt: checkTarget(jt, 'RAW'), jf: checkTarget(jf, 'RAW') };
}
/** A &= mask (32-bit; use after ARG_32). */
export function AND(mask: number): BpfInsn {
  return RAW(BPF_ALU | BPF_AND | BPF_K, mask);
}

export const ALLOW: BpfInsn = Object.freeze({ kind: 'ret', action: Object.freeze({ type: 'allow' }) });
/** A policy violation: KILL_PROCESS, or USER_NOTIF when a monitor is attached. */
export const KILL: BpfInsn = Object.freeze({ kind: 'ret', action: Object.freeze({ type: 'violation' }) });
export const USER_NOTIF: BpfInsn = Object.freeze({ kind: 'ret', action: Object.freeze({ type: 'user_notif' }) });
export const LOG: BpfInsn = Object.freeze({ kind: 'ret', action: Object.freeze({ type: 'log' }) });
export const TRAP: BpfInsn = Object.freeze({ kind: 'ret', action: Object.freeze({ type: 'trap', data: 0 }) });
/** Fails the syscall with -e (an errno value 1..4095). */
export function ERRNO(e: number): BpfInsn {
  if (!Number.isInteger(e) || e < 0 || e > 4095)
    throw new TypeError(`ERRNO(e): e must be an integer 0..4095, got ${e}`);
  return { kind: 'ret', action: { type: 'errno', errno: e } };
}
/** SECCOMP_RET_TRACE with 16 bits of data (only useful under ptrace). */
export function TRACE(data: number): BpfInsn {
  if (!Number.isInteger(data) || data < 0 || data > 0xffff) throw new TypeError(`TRACE(data): data must be a u16`);
  return { kind: 'ret', action: { type: 'trace', data } };
}

// ---- Assembler ----

/** An instruction whose jumps name labels; null/undefined targets mean "the next instruction". */
export interface AsmInsn {
  readonly code: number;
  readonly k: number;
  readonly t?: string | null | undefined;
  readonly f?: string | null | undefined;
  /** May the assembler insert `ja` trampolines when a conditional target is out of reach? */
  readonly relax?: boolean;
  /** Where the instruction comes from, for error messages. */
  readonly where?: string;
}
export type AsmItem = AsmInsn | { readonly label: string };

function isLabel(item: AsmItem): item is { readonly label: string } {
  return 'label' in item;
}

function isCondJump(code: number): boolean {
  return (code & 0x07) === BPF_JMP && (code & 0xf0) !== BPF_JA;
}

/**
 * Resolves labels into offsets. A conditional jump reaches at most 255 instructions ahead; where
 * a relaxable one does not, a `ja` trampoline is inserted right after it (repeated until every
 * jump fits). A non-relaxable one (user code) that does not fit is a JUMP_OUT_OF_RANGE error.
 */
export function assemble(items: readonly AsmItem[]): SockFilter[] {
  const labels = new Map<string, number>(); // label -> item index
  items.forEach((it, i) => {
    if (isLabel(it)) {
      if (labels.has(it.label)) throw new PolicyError('INVALID_RULE', `duplicate label "${it.label}"`);
      labels.set(it.label, i);
    }
  });
  const n = items.length;
  const tramp = new Uint8Array(n); // bit 1: jt needs a trampoline, bit 2: jf needs one
  const pos = new Int32Array(n + 1);
  const slots = (b: number): number => (b & 1) + ((b >> 1) & 1);

  const targetPos = (name: string, from: number, where: string | undefined): number => {
    const idx = labels.get(name);
    if (idx === undefined)
      throw new PolicyError('INVALID_RULE', `${where ?? 'program'}: jump to unknown label "${name}"`);
    if (idx <= from)
      throw new PolicyError(
        'INVALID_RULE',
        `${where ?? 'program'}: jump backwards to label "${name}" (cBPF jumps only go forward)`,
      );
    return pos[idx]!;
  };

  for (;;) {
    let p = 0;
    for (let i = 0; i < n; i++) {
      pos[i] = p;
      const it = items[i]!;
      if (!isLabel(it)) p += 1 + slots(tramp[i]!);
    }
    pos[n] = p;
    let changed = false;
    for (let i = 0; i < n; i++) {
      const it = items[i]!;
      if (isLabel(it) || !isCondJump(it.code)) continue;
      const base = pos[i]! + 1;
      const check = (target: string | null | undefined, bit: number, which: string): void => {
        if (target == null || tramp[i]! & bit) return;
        const off = targetPos(target, i, it.where) - base;
        if (off > 255) {
          if (!it.relax) {
            throw new PolicyError(
              'JUMP_OUT_OF_RANGE',
              `${it.where ?? 'program'}: the ${which} branch to "${target}" spans ${off} instructions; ` +
                `a cBPF conditional jump reaches at most 255 (jump to a JA item placed closer, or split the rule)`,
            );
          }
          tramp[i]! |= bit;
          changed = true;
        }
      };
      check(it.t, 1, 'true');
      check(it.f, 2, 'false');
    }
    if (!changed) break;
  }

  const out: SockFilter[] = [];
  for (let i = 0; i < n; i++) {
    const it = items[i]!;
    if (isLabel(it)) continue;
    const here = pos[i]!;
    const bits = tramp[i]!;
    const next = here + 1 + slots(bits);
    if ((it.code & 0x07) === BPF_JMP && (it.code & 0xf0) === BPF_JA) {
      const to = it.t == null ? here + 1 : targetPos(it.t, i, it.where);
      out.push({ code: it.code, jt: 0, jf: 0, k: to - here - 1 });
      continue;
    }
    if (!isCondJump(it.code)) {
      out.push({ code: it.code, jt: 0, jf: 0, k: it.k >>> 0 });
      continue;
    }
    const tPos = it.t == null ? next : targetPos(it.t, i, it.where);
    const fPos = it.f == null ? next : targetPos(it.f, i, it.where);
    const jt = bits & 1 ? 0 : tPos - here - 1;
    const jf = bits & 2 ? (bits & 1 ? 1 : 0) : fPos - here - 1;
    out.push({ code: it.code, jt, jf, k: it.k >>> 0 });
    let slot = here + 1;
    if (bits & 1) {
      out.push({ code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k: tPos - slot - 1 });
      slot++;
    }
    if (bits & 2) out.push({ code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k: fPos - slot - 1 });
  }
  return out;
}

// ---- Expansion of user rules into assembler items ----

/** Describes the rule being expanded, for messages: e.g. 'addPolicyOnSyscall(write) rule'. */
export interface ExpandContext {
  readonly where: string;
  /** Unique label prefix for this rule instance. */
  readonly scope: string;
  /** Label the rule falls through to when it does not return. */
  readonly fallthrough: string;
  /** The return value for a symbolic action. */
  readonly ret: (action: RuleAction) => number;
}

/** Validates a rule's items and labels without expanding it; returns the problems found. */
export function checkRule(items: readonly BpfInsn[]): string[] {
  const problems: string[] = [];
  const labelAt = new Map<string, number>();
  items.forEach((it, i) => {
    if (it.kind === 'label') {
      if (labelAt.has(it.name)) problems.push(`label "${it.name}" is defined twice`);
      else labelAt.set(it.name, i);
    }
  });
  let width: 32 | 64 = 32;
  items.forEach((it, i) => {
    const targets: JumpTarget[] =
      it.kind === 'cmp' || it.kind === 'raw' ? [it.jt, it.jf] : it.kind === 'ja' ? [it.target] : [];
    if (it.kind === 'raw' && !((it.code & 0x07) === BPF_JMP)) targets.length = 0;
    if (it.kind === 'raw' && (it.code & 0x07) === BPF_JMP && (it.code & 0xf0) === BPF_JA) targets.splice(0, 2, it.k);
    for (const t of targets) {
      if (typeof t === 'number') {
        if (i + 1 + t > items.length)
          problems.push(`item ${i} jumps ${t} items ahead, past the end of the rule (${items.length} items)`);
      } else {
        const at = labelAt.get(t);
        if (at === undefined) problems.push(`item ${i} jumps to unknown label "${t}"`);
        else if (at <= i) problems.push(`item ${i} jumps backwards to label "${t}" (cBPF jumps only go forward)`);
      }
    }
    if (it.kind === 'load') width = it.width;
    if (it.kind === 'cmp' && width === 32 && it.value > 0xffffffffn) {
      problems.push(
        `item ${i} compares a 32-bit value with ${it.value}, which needs 64 bits (use ARG(i) instead of ARG_32(i))`,
      );
    }
    if (it.kind === 'raw' && !isKnownOpcode(it.code))
      problems.push(`item ${i} has an opcode seccomp does not accept (0x${it.code.toString(16)})`);
    if (it.kind === 'raw' && it.code === (BPF_LD | BPF_W | BPF_ABS) && (it.k % 4 !== 0 || it.k >= SECCOMP_DATA_SIZE)) {
      problems.push(`item ${i} loads seccomp_data offset ${it.k}, which is not an aligned offset below 64`);
    }
    if (
      it.kind === 'raw' &&
      (it.code === (BPF_LD | BPF_MEM) ||
        it.code === (BPF_LDX | BPF_MEM) ||
        it.code === BPF_ST ||
        it.code === BPF_STX) &&
      it.k >= BPF_MEMWORDS
    ) {
      problems.push(`item ${i} uses scratch slot M[${it.k}]; there are 16`);
    }
  });
  return problems;
}

/** Opcodes the kernel's seccomp filter checker accepts. */
export function isKnownOpcode(code: number): boolean {
  switch (code) {
    case BPF_LD | BPF_W | BPF_ABS:
    case BPF_LD | BPF_W | BPF_LEN:
    case BPF_LDX | BPF_W | BPF_LEN:
    case BPF_LD | BPF_IMM:
    case BPF_LDX | BPF_IMM:
    case BPF_LD | BPF_MEM:
    case BPF_LDX | BPF_MEM:
    case BPF_ST:
    case BPF_STX:
    case BPF_MISC | BPF_TAX:
    case BPF_MISC | BPF_TXA:
    case BPF_RET | BPF_K:
    case BPF_RET | BPF_A:
    case BPF_JMP | BPF_JA:
      return true;
    default:
      break;
  }
  const cls = code & 0x07;
  const op = code & 0xf0;
  const src = code & 0x08;
  if (code & ~0xff) return false;
  if (cls === BPF_ALU) {
    if (op === BPF_NEG) return src === 0;
    return [BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_MOD, BPF_XOR].includes(op);
  }
  if (cls === BPF_JMP) return [BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET].includes(op);
  return false;
}

const LD_ABS = BPF_LD | BPF_W | BPF_ABS;

/**
 * Turns a user rule into assembler items. Jumps inside user rules are never relaxed: a user jump
 * that cannot be encoded is an error, as in the kernel.
 */
export function expandRule(items: readonly BpfInsn[], ctx: ExpandContext): AsmItem[] {
  const problems = checkRule(items);
  if (problems.length)
    throw new PolicyError(
      'INVALID_RULE',
      problems.map((p) => `${ctx.where}: ${p}`),
    );
  const itemLabel = (i: number): string => (i >= items.length ? ctx.fallthrough : `${ctx.scope}#${i}`);
  const resolve = (t: JumpTarget, i: number): string =>
    typeof t === 'number' ? itemLabel(i + 1 + t) : `${ctx.scope}:${t}`;
  const out: AsmItem[] = [];
  let load: { field: 'nr' | 'arch' | 'arg'; index: number; width: 32 | 64 } = { field: 'nr', index: 0, width: 32 };
  const where = (i: number): string => `${ctx.where} item ${i}`;
  items.forEach((it, i) => {
    out.push({ label: itemLabel(i) });
    const w = where(i);
    switch (it.kind) {
      case 'label':
        out.push({ label: `${ctx.scope}:${it.name}` });
        break;
      case 'load':
        load = { field: it.field, index: it.index, width: it.width };
        if (it.width === 32) {
          const off = it.field === 'nr' ? SECCOMP_DATA_NR : it.field === 'arch' ? SECCOMP_DATA_ARCH : argLo(it.index);
          out.push({ code: LD_ABS, k: off, where: w });
        }
        break;
      case 'ret':
        out.push({ code: BPF_RET | BPF_K, k: ctx.ret(it.action), where: w });
        break;
      case 'ja':
        out.push({ code: BPF_JMP | BPF_JA, k: 0, t: resolve(it.target, i), where: w });
        break;
      case 'raw': {
        const jump = (it.code & 0x07) === BPF_JMP;
        if (jump && (it.code & 0xf0) === BPF_JA) {
          // A raw JA keeps its numeric offset in k, counted in items like other targets.
          out.push({ code: it.code, k: 0, t: itemLabel(i + 1 + it.k), where: w });
        } else if (jump) {
          out.push({ code: it.code, k: it.k, t: resolve(it.jt, i), f: resolve(it.jf, i), where: w });
        } else {
          out.push({ code: it.code, k: it.k, where: w });
        }
        break;
      }
      case 'cmp': {
        const T = resolve(it.jt, i);
        const F = resolve(it.jf, i);
        const code =
          BPF_JMP |
          BPF_K |
          (it.op === 'jeq' ? BPF_JEQ : it.op === 'jgt' ? BPF_JGT : it.op === 'jge' ? BPF_JGE : BPF_JSET);
        if (load.width === 32) {
          out.push({ code, k: Number(it.value), t: T, f: F, where: w });
          break;
        }
        const lo = Number(it.value & 0xffffffffn);
        const hi = Number(it.value >> 32n);
        const ldLo = { code: LD_ABS, k: argLo(load.index), where: w };
        const ldHi = { code: LD_ABS, k: argHi(load.index), where: w };
        const J = (op: number, k: number, t: string | null, f: string | null): AsmInsn => ({
          code: BPF_JMP | BPF_K | op,
          k,
          t,
          f,
          where: w,
        });
        if (it.op === 'jeq') {
          out.push(ldHi, J(BPF_JEQ, hi, null, F), ldLo, J(BPF_JEQ, lo, T, F));
        } else if (it.op === 'jgt' || it.op === 'jge') {
          out.push(
            ldHi,
            J(BPF_JGT, hi, T, null),
            J(BPF_JEQ, hi, null, F),
            ldLo,
            J(it.op === 'jgt' ? BPF_JGT : BPF_JGE, lo, T, F),
          );
        } else if (hi === 0) {
          out.push(ldLo, J(BPF_JSET, lo, T, F));
        } else if (lo === 0) {
          out.push(ldHi, J(BPF_JSET, hi, T, F));
        } else {
          out.push(ldHi, J(BPF_JSET, hi, T, null), ldLo, J(BPF_JSET, lo, T, F));
        }
        break;
      }
    }
  });
  return out;
}
