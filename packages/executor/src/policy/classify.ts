/**
 * classify(): why did the monitor get this notification? Re-runs the compiled program on the
 * notification's seccomp_data and reads the USER_NOTIF data the compiler put there (NOTIFY_DATA).
 */
import { AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT } from './bpf.js';
import type { SockFilter } from './bpf.js';
import { NOTIFY_DATA } from './compiler.js';
import { evaluate } from './evaluator.js';
import type { EvalResult, SeccompData } from './evaluator.js';
import { syscallName } from './syscalls.js';

export interface Classification {
  /**
   * 'exec': the forkserver's magic execveat. 'violation': report and kill. 'learn': the default
   * action of a learning policy. 'user': a rule returned USER_NOTIF itself. 'not-notified': the
   * program does not return USER_NOTIF for this data (a stale or foreign notification).
   * 'network': a call the monitor decides by the network rules.
   */
  readonly kind: 'exec' | 'violation' | 'learn' | 'user' | 'not-notified' | 'network';
  /** For violations: 'syscall' or 'arch' (Result.violation.kind). */
  readonly violation?: 'syscall' | 'arch';
  /** The syscall ABI: x86_64, i386, x32, aarch64 or unknown. */
  readonly abi: 'x86_64' | 'i386' | 'x32' | 'aarch64' | 'unknown';
  /** The syscall's name in that ABI's table, when known. */
  readonly syscall: string | null;
  readonly nr: number;
  readonly verdict: EvalResult;
}

/** The ABI a seccomp_data belongs to, and the syscall number within that ABI's table. */
export function abiOf(data: SeccompData): { abi: Classification['abi']; nr: number; name: string | null } {
  const arch = data.arch >>> 0;
  const nr = data.nr >>> 0;
  if (arch === AUDIT_ARCH_X86_64) {
    if (nr & X32_SYSCALL_BIT)
      return { abi: 'x32', nr, name: syscallName('x86_64', (nr & ~X32_SYSCALL_BIT) >>> 0) ?? null };
    return { abi: 'x86_64', nr, name: syscallName('x86_64', nr) ?? null };
  }
  if (arch === AUDIT_ARCH_I386) return { abi: 'i386', nr, name: syscallName('i386', nr) ?? null };
  if (arch === AUDIT_ARCH_AARCH64) return { abi: 'aarch64', nr, name: syscallName('aarch64', nr) ?? null };
  return { abi: 'unknown', nr, name: null };
}

/** Classifies a notification against the program that was installed. */
export function classify(program: Uint8Array | readonly SockFilter[], data: SeccompData): Classification {
  const verdict = evaluate(program, data);
  const { abi, nr, name } = abiOf(data);
  const base = { abi, syscall: name, nr, verdict };
  if (verdict.action !== 'USER_NOTIF') return { kind: 'not-notified', ...base };
  switch (verdict.data) {
    case NOTIFY_DATA.EXEC:
      return { kind: 'exec', ...base };
    case NOTIFY_DATA.SYSCALL_VIOLATION:
      return { kind: 'violation', violation: 'syscall', ...base };
    case NOTIFY_DATA.ARCH_VIOLATION:
      return { kind: 'violation', violation: 'arch', ...base };
    case NOTIFY_DATA.DEFAULT:
      return { kind: 'learn', ...base };
    case NOTIFY_DATA.NETWORK:
      return { kind: 'network', ...base };
    default:
      return { kind: 'user', ...base };
  }
}
