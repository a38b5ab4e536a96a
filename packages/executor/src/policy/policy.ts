/**
 * Policy: the immutable result of PolicyBuilder.build(). It is data: syscall rules in call order,
 * the default action, the filesystem view and the network rules. compilePolicy() turns the
 * syscall part into a seccomp program; the executor sends the rest to the forkserver.
 */
import type { BpfInsn, JumpTarget, RuleAction } from './bpf.js';
import { PolicyError } from './errors.js';
import type { Arch } from './syscalls.js';
import { parseNetworkPolicy, type NetworkPolicy } from './network.js';

/** What happens to a syscall that no rule decides. */
export type DefaultAction =
  | 'kill' // a violation: KILL_PROCESS, or USER_NOTIF under a monitor (the default)
  | 'allow' // allow everything not otherwise ruled (Sandbox2's DefaultAction(AllowAllSyscalls))
  | 'log' // SECCOMP_RET_LOG: allowed and logged by the kernel (audit)
  | 'notify' // USER_NOTIF for learning: the monitor decides (ENOSYS without a monitor)
  | { readonly errno: number };

/** One rule on one syscall number. Rules for a number run in call order; the first verdict wins. */
export type SyscallRule =
  | { readonly kind: 'allow'; readonly nr: number; readonly name: string | null }
  | { readonly kind: 'errno'; readonly nr: number; readonly name: string | null; readonly errno: number }
  | { readonly kind: 'bpf'; readonly nr: number; readonly name: string | null; readonly rule: readonly BpfInsn[] };

/** A bind mount of a host file or directory, read-only unless writable. */
export interface BindMount {
  readonly kind: 'file' | 'dir';
  readonly outside: string;
  readonly inside: string;
  readonly writable: boolean;
}
/** A tmpfs mounted inside (sizeBytes 0 = the kernel's default). */
export interface TmpfsMount {
  readonly kind: 'tmpfs';
  readonly inside: string;
  readonly sizeBytes: number;
}
export type Mount = BindMount | TmpfsMount;

export type { NetworkRule, NetworkDenyAction, NetworkPolicy } from './network.js';

/** The data a Policy is made of (what toJSON() returns, with bigints as strings). */
export interface PolicyData {
  readonly arch: Arch;
  readonly rules: readonly SyscallRule[];
  /** Helper rules that apply only when no user rule for the same number decided first. */
  readonly overridable: readonly SyscallRule[];
  readonly defaultAction: DefaultAction;
  readonly mounts: readonly Mount[];
  readonly network: NetworkPolicy;
  /** Names of the presets applied (allowDynamicStartup, allowNodeRuntime...), for explanations. */
  readonly presets: readonly string[];
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** A stable serialization: object keys sorted, bigints as "123n". Used as the compile cache key. */
export function stableStringify(value: unknown): string {
  if (typeof value === 'bigint') return JSON.stringify(`${value}n`);
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(obj[k])}`).join(',')}}`;
}

/** Stable keys, computed on first use (the Policy itself is frozen). */
const keys = new WeakMap<Policy, string>();

/** An immutable, built policy. Create one with PolicyBuilder, or from JSON with Policy.fromJSON. */
export class Policy implements PolicyData {
  readonly arch: Arch;
  readonly rules: readonly SyscallRule[];
  readonly overridable: readonly SyscallRule[];
  readonly defaultAction: DefaultAction;
  readonly mounts: readonly Mount[];
  readonly network: NetworkPolicy;
  readonly presets: readonly string[];

  /** @internal Use PolicyBuilder.build() or Policy.fromJSON(). The data is frozen, not copied. */
  constructor(data: PolicyData) {
    this.arch = data.arch;
    this.rules = deepFreeze(data.rules);
    this.overridable = deepFreeze(data.overridable);
    this.defaultAction = deepFreeze(data.defaultAction);
    this.mounts = deepFreeze(data.mounts);
    this.network = deepFreeze(data.network);
    this.presets = deepFreeze(data.presets);
    Object.freeze(this);
  }

  /** A stable string identifying the syscall part of this policy (equal policies, equal keys). */
  get key(): string {
    let k = keys.get(this);
    if (k === undefined) {
      k = stableStringify({
        arch: this.arch,
        rules: this.rules,
        overridable: this.overridable,
        defaultAction: this.defaultAction,
      });
      keys.set(this, k);
    }
    return k;
  }

  /** Plain JSON data (bigint compare values become strings "0x..."). */
  toJSON(): unknown {
    return JSON.parse(
      JSON.stringify(
        {
          arch: this.arch,
          rules: this.rules,
          overridable: this.overridable,
          defaultAction: this.defaultAction,
          mounts: this.mounts,
          network: this.network,
          presets: this.presets,
        },
        (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v),
      ),
    );
  }

  /** Rebuilds a Policy from toJSON() output; throws PolicyError('INVALID_POLICY') listing what is wrong. */
  static fromJSON(json: unknown): Policy {
    const problems: string[] = [];
    const o = json as Record<string, unknown> | null;
    if (!o || typeof o !== 'object') throw new PolicyError('INVALID_POLICY', 'a policy is a JSON object');
    const arch = o['arch'];
    if (arch !== 'x86_64' && arch !== 'aarch64')
      problems.push(`arch must be "x86_64" or "aarch64", got ${JSON.stringify(arch)}`);
    const rules = parseRules(o['rules'], 'rules', problems);
    const overridable = parseRules(o['overridable'] ?? [], 'overridable', problems);
    const da = o['defaultAction'];
    let defaultAction: DefaultAction = 'kill';
    if (da === 'kill' || da === 'allow' || da === 'log' || da === 'notify') defaultAction = da;
    else if (da && typeof da === 'object' && isErrno((da as { errno?: unknown }).errno))
      defaultAction = { errno: (da as { errno: number }).errno };
    else problems.push(`defaultAction must be kill, allow, log, notify or {errno}, got ${JSON.stringify(da)}`);
    let mounts: Mount[] = [];
    if (Array.isArray(o['mounts'])) mounts = o['mounts'] as Mount[];
    else problems.push('mounts must be an array');
    const network = parseNetworkPolicy(o['network'], problems);
    const presets = Array.isArray(o['presets']) ? (o['presets'] as string[]) : [];
    if (problems.length) throw new PolicyError('INVALID_POLICY', problems);
    return new Policy({ arch: arch as Arch, rules, overridable, defaultAction, mounts, network, presets });
  }
}

function isErrno(e: unknown): e is number {
  return typeof e === 'number' && Number.isInteger(e) && e >= 0 && e <= 4095;
}

function parseRules(v: unknown, what: string, problems: string[]): SyscallRule[] {
  if (!Array.isArray(v)) {
    problems.push(`${what} must be an array`);
    return [];
  }
  const out: SyscallRule[] = [];
  v.forEach((r: Record<string, unknown>, i) => {
    const nr = r?.['nr'];
    const name = typeof r?.['name'] === 'string' ? (r['name'] as string) : null;
    if (typeof nr !== 'number' || !Number.isInteger(nr) || nr < 0) {
      problems.push(`${what}[${i}].nr must be a syscall number`);
      return;
    }
    if (r['kind'] === 'allow') out.push({ kind: 'allow', nr, name });
    else if (r['kind'] === 'errno' && isErrno(r['errno'])) out.push({ kind: 'errno', nr, name, errno: r['errno'] });
    else if (r['kind'] === 'bpf' && Array.isArray(r['rule'])) {
      out.push({ kind: 'bpf', nr, name, rule: (r['rule'] as Record<string, unknown>[]).map((x) => reviveInsn(x)) });
    } else problems.push(`${what}[${i}] is not an allow, errno or bpf rule`);
  });
  return out;
}

function reviveInsn(x: Record<string, unknown>): BpfInsn {
  if (x['kind'] === 'cmp') {
    return {
      kind: 'cmp',
      op: x['op'] as 'jeq',
      value: BigInt(x['value'] as string),
      jt: x['jt'] as JumpTarget,
      jf: x['jf'] as JumpTarget,
    };
  }
  if (x['kind'] === 'ret') return { kind: 'ret', action: x['action'] as RuleAction };
  return x as unknown as BpfInsn;
}
