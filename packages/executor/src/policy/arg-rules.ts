/**
 * Argument rules as data (the policy file's "allowWhen", and what `sbx learn` writes): a syscall
 * is allowed when one of its alternatives matches; an alternative names arguments (arg0..arg5,
 * compared on their low 32 bits, as the kernel reads C ints and flags) with the values allowed,
 * or { onlyFlags: MASK } (no bit outside MASK may be set). When none matches, the rule falls
 * through to the syscall's other rules, then to the default action.
 */
import { ALLOW, ARG_32, JEQ, JSET, LABEL } from './bpf.js';
import type { BpfInsn } from './bpf.js';

/** A 32-bit value: a number, or a string in hex ("0x5401") or decimal. */
export type ArgValue = number | string;
export type ArgTest = ArgValue[] | { onlyFlags: ArgValue };
export type ArgIndex = 'arg0' | 'arg1' | 'arg2' | 'arg3' | 'arg4' | 'arg5';
export type ArgAlternative = Partial<Record<ArgIndex, ArgTest>>;

export const ARG_KEYS: readonly ArgIndex[] = ['arg0', 'arg1', 'arg2', 'arg3', 'arg4', 'arg5'];

/** The value as an unsigned 32-bit number, or undefined when it is not one. */
export function parseArgValue(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^0x[0-9a-f]{1,8}$/i.test(v)) n = parseInt(v.slice(2), 16);
  else if (typeof v === 'string' && /^[0-9]{1,10}$/.test(v)) n = Number(v);
  else return undefined;
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0xffffffff) return undefined;
  return n >>> 0;
}

/** "0x" + hex, the form `sbx learn` writes flags and ioctl commands in. */
export function hex(v: number): string {
  return `0x${(v >>> 0).toString(16)}`;
}

/**
 * The BPF rule for a list of alternatives (PolicyBuilder.addPolicyOnSyscall), or the problems
 * that make it invalid, each prefixed with `where`. A matching call gets `action` (ALLOW; the
 * notify hooks' USER_NOTIF).
 */
export function argRule(
  alternatives: readonly ArgAlternative[],
  where: string,
  action: BpfInsn = ALLOW,
): { rule: BpfInsn[] } | { problems: string[] } {
  const problems: string[] = [];
  const out: BpfInsn[] = [];
  if (!Array.isArray(alternatives) || alternatives.length === 0)
    return { problems: [`${where}: needs at least one alternative`] };
  alternatives.forEach((alt, j) => {
    const next = j === alternatives.length - 1 ? 'end' : `alt${j + 1}`;
    if (j > 0) out.push(LABEL(`alt${j}`));
    const keys = ARG_KEYS.filter((k) => alt[k] !== undefined);
    const unknown = Object.keys(alt).filter((k) => !(ARG_KEYS as readonly string[]).includes(k));
    for (const k of unknown) problems.push(`${where}[${j}]: unknown key "${k}" (arguments are arg0..arg5)`);
    if (keys.length === 0 && unknown.length === 0)
      problems.push(`${where}[${j}]: an alternative names at least one argument`);
    for (const k of keys) {
      const i = Number(k.slice(3));
      const test = alt[k]!;
      out.push(ARG_32(i));
      if (Array.isArray(test)) {
        if (test.length === 0) problems.push(`${where}[${j}].${k}: the list of values is empty`);
        const values = test.map((v) => {
          const n = parseArgValue(v);
          if (n === undefined)
            problems.push(
              `${where}[${j}].${k}: ${JSON.stringify(v)} is not a 32-bit value (a number, "0x..." or decimal)`,
            );
          return n ?? 0;
        });
        const ok = `ok${j}.${i}`;
        values.forEach((v, n) => {
          out.push(n === values.length - 1 ? JEQ(v, ok, next) : JEQ(v, ok));
        });
        out.push(LABEL(ok));
      } else {
        const mask = parseArgValue(test.onlyFlags);
        if (mask === undefined)
          problems.push(`${where}[${j}].${k}.onlyFlags: ${JSON.stringify(test.onlyFlags)} is not a 32-bit value`);
        const outside = ~(mask ?? 0) >>> 0;
        if (outside !== 0) out.push(JSET(outside, next));
      }
    }
    out.push(action);
  });
  out.push(LABEL('end'));
  return problems.length ? { problems } : { rule: out };
}
