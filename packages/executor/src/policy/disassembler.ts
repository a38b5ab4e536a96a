/**
 * Prints a seccomp program one instruction per line, naming seccomp_data fields, syscall numbers
 * compared against nr, architectures and return actions.
 */
import {
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_ARM,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  BPF_A,
  BPF_ABS,
  BPF_ALU,
  BPF_IMM,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JMP,
  BPF_JSET,
  BPF_LD,
  BPF_LDX,
  BPF_LEN,
  BPF_MEM,
  BPF_MISC,
  BPF_RET,
  BPF_ST,
  BPF_STX,
  BPF_TXA,
  BPF_W,
  BPF_X,
  decodeProgram,
} from './bpf.js';
import type { SockFilter } from './bpf.js';
import { NOTIFY_DATA } from './compiler.js';
import { decodeRet } from './evaluator.js';
import { errnoName, syscallName } from './syscalls.js';
import type { TableArch } from './syscalls.js';

const ARCH_NAMES = new Map<number, string>([
  [AUDIT_ARCH_X86_64, 'AUDIT_ARCH_X86_64'],
  [AUDIT_ARCH_I386, 'AUDIT_ARCH_I386'],
  [AUDIT_ARCH_AARCH64, 'AUDIT_ARCH_AARCH64'],
  [AUDIT_ARCH_ARM, 'AUDIT_ARCH_ARM'],
]);

const NOTIFY_NAMES = new Map<number, string>(Object.entries(NOTIFY_DATA).map(([k, v]) => [v, k]));

/** Names a return value: ALLOW, ERRNO(EPERM), USER_NOTIF(SYSCALL_VIOLATION), KILL_PROCESS... */
export function describeRet(ret: number): string {
  const v = decodeRet(ret);
  switch (v.action) {
    case 'ERRNO':
      return `ERRNO(${errnoName(v.data) ?? v.data})`;
    case 'TRAP':
    case 'TRACE':
      return v.data ? `${v.action}(${v.data})` : v.action;
    case 'USER_NOTIF':
      return v.data ? `USER_NOTIF(${NOTIFY_NAMES.get(v.data) ?? v.data})` : 'USER_NOTIF';
    case 'KILL_PROCESS':
      return ret >>> 0 === 0x80000000 ? 'KILL_PROCESS' : `KILL_PROCESS(0x${(ret >>> 0).toString(16)})`;
    default:
      return v.data ? `${v.action}(${v.data})` : v.action;
  }
}

function fieldName(k: number): string {
  if (k === 0) return 'nr';
  if (k === 4) return 'arch';
  if (k === 8) return 'ip_lo';
  if (k === 12) return 'ip_hi';
  if (k >= 16 && k < 64) return `args[${(k - 16) >> 3}]_${k & 4 ? 'hi' : 'lo'}`;
  return `data[${k}]`;
}

export interface DisassembleOptions {
  /** Which table names the numbers compared against nr. Default x86_64. */
  readonly arch?: TableArch;
}

/**
 * One line per instruction: `  12: jge #0x101 (openat), +3, +0    ; -> 16 / 13`.
 * A compare right after `ld nr` annotates the number with its syscall name.
 */
export function disassemble(program: Uint8Array | readonly SockFilter[], options: DisassembleOptions = {}): string {
  const insns = program instanceof Uint8Array ? decodeProgram(program) : program;
  const arch = options.arch ?? 'x86_64';
  const width = String(insns.length).length;
  // What the accumulator holds at each pc, when every path agrees ('nr', 'arch' or other).
  const holds: Array<string | undefined | null> = new Array(insns.length).fill(undefined);
  holds[0] = null;
  const merge = (pc: number, v: string | null): void => {
    if (pc >= insns.length) return;
    const cur = holds[pc];
    holds[pc] = cur === undefined || cur === v ? v : null;
  };
  insns.forEach((insn, pc) => {
    let a = holds[pc] ?? null;
    const cls = insn.code & 0x07;
    if (insn.code === (BPF_LD | BPF_W | BPF_ABS)) a = fieldName(insn.k);
    else if (cls === BPF_LD || cls === BPF_ALU || insn.code === (BPF_MISC | BPF_TXA)) a = null;
    if (cls === BPF_RET) return;
    if (cls === BPF_JMP) {
      if ((insn.code & 0xf0) === BPF_JA) merge(pc + 1 + insn.k, a);
      else {
        merge(pc + 1 + insn.jt, a);
        merge(pc + 1 + insn.jf, a);
      }
      return;
    }
    merge(pc + 1, a);
  });

  const lines: string[] = [];
  insns.forEach((insn, pc) => {
    const at = String(pc).padStart(width, ' ');
    const { code, k, jt, jf } = insn;
    const cls = code & 0x07;
    let text: string;
    const kHex = `0x${(k >>> 0).toString(16)}`;
    if (code === (BPF_LD | BPF_W | BPF_ABS)) text = `ld ${fieldName(k)}`;
    else if (code === (BPF_LD | BPF_W | BPF_LEN)) text = 'ld #len';
    else if (code === (BPF_LD | BPF_IMM)) text = `ld #${kHex}`;
    else if (code === (BPF_LD | BPF_MEM)) text = `ld M[${k}]`;
    else if (code === (BPF_LDX | BPF_W | BPF_LEN)) text = 'ldx #len';
    else if (code === (BPF_LDX | BPF_IMM)) text = `ldx #${kHex}`;
    else if (code === (BPF_LDX | BPF_MEM)) text = `ldx M[${k}]`;
    else if (cls === BPF_ST) text = `st M[${k}]`;
    else if (cls === BPF_STX) text = `stx M[${k}]`;
    else if (cls === BPF_ALU) {
      const ops = ['add', 'sub', 'mul', 'div', 'or', 'and', 'lsh', 'rsh', 'neg', 'mod', 'xor'];
      const op = ops[(code & 0xf0) >> 4] ?? `alu?${code}`;
      text = op === 'neg' ? 'neg' : `${op} ${code & BPF_X ? 'x' : `#${kHex}`}`;
    } else if (cls === BPF_JMP && (code & 0xf0) === BPF_JA) {
      text = `${`ja +${k}`.padEnd(34)}; -> ${pc + 1 + k}`;
    } else if (cls === BPF_JMP) {
      const op =
        { [BPF_JEQ]: 'jeq', [BPF_JGT]: 'jgt', [BPF_JGE]: 'jge', [BPF_JSET]: 'jset' }[code & 0xf0] ?? `jmp?${code}`;
      let operand = code & BPF_X ? 'x' : `#${kHex}`;
      const a = holds[pc];
      if (!(code & BPF_X) && a === 'nr' && (code & 0xf0) !== BPF_JSET) {
        const name = syscallName(arch, k);
        if (name) operand += ` (${name})`;
      } else if (!(code & BPF_X) && a === 'arch' && ARCH_NAMES.has(k >>> 0)) {
        operand += ` (${ARCH_NAMES.get(k >>> 0)})`;
      }
      text = `${`${op} ${operand}, +${jt}, +${jf}`.padEnd(34)}; -> ${pc + 1 + jt} / ${pc + 1 + jf}`;
    } else if (cls === BPF_RET) {
      text = code === (BPF_RET | BPF_A) ? 'ret a' : `ret ${describeRet(k)}`;
    } else if (code === (BPF_MISC | BPF_TXA)) text = 'txa';
    else if (code === (BPF_MISC | 0)) text = 'tax';
    else text = `.insn 0x${code.toString(16)}, ${jt}, ${jf}, ${kHex}`;
    lines.push(`${at}: ${text}`);
  });
  return `${lines.join('\n')}\n`;
}
