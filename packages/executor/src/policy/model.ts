/**
 * The policy model: the verdict a policy means for one (arch, nr, args), computed from the Policy
 * data alone, never from the compiled program. Tests run every syscall number through both and
 * require equal verdicts; `sbx policy explain` can use it to say why.
 */
import {
  AT_EMPTY_PATH,
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
  BPF_RET,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_TXA,
  BPF_W,
  BPF_X,
  BPF_XOR,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_LOG,
  X32_SYSCALL_BIT,
} from './bpf.js';
import type { BpfInsn, JumpTarget } from './bpf.js';
import {
  NATIVE_AUDIT_ARCH,
  NOTIFY_DATA,
  actionRet,
  defaultRet,
  execRet,
  MSG_FASTOPEN,
  NETWORK_FASTOPEN_RET,
  networkRet,
  networkSyscalls,
  resolveCompileOptions,
  SOCKET_IOCTL_RANGES,
  SOCKET_IOCTL_RET,
  socketIoctlRefused,
  violationRet,
} from './compiler.js';
import type { CompileOptions } from './compiler.js';
import { ALWAYS_DENIED, SBX_EXEC_MAGIC } from './denials.js';
import type { ArgCondition, Denial } from './denials.js';
import { decodeRet } from './evaluator.js';
import type { SeccompData, Verdict } from './evaluator.js';
import type { Policy, SyscallRule } from './policy.js';
import { syscallNumber } from './syscalls.js';

export interface ModelVerdict extends Verdict {
  /** Which part of the policy decided: 'arch', 'x32', 'exec', 'denial', 'client' (the sandbox-me-here handshake), 'rule', 'overridable', 'default'. */
  readonly by: 'arch' | 'x32' | 'exec' | 'denial' | 'client' | 'rule' | 'overridable' | 'default' | 'network';
  /** The deciding rule, when by is 'rule' or 'overridable'. */
  readonly rule?: SyscallRule;
}

function arg64(data: SeccompData, i: number): bigint {
  return BigInt.asUintN(64, BigInt(data.args?.[i] ?? 0));
}
function arg32(data: SeccompData, i: number): number {
  return Number(arg64(data, i) & 0xffffffffn);
}
function word(data: SeccompData, off: number): number {
  if (off === 0) return data.nr >>> 0;
  if (off === 4) return data.arch >>> 0;
  const v = off < 16 ? BigInt.asUintN(64, BigInt(data.ip ?? 0)) : arg64(data, (off - 16) >> 3);
  return Number((off & 4 ? v >> 32n : v) & 0xffffffffn);
}

function holds(cond: ArgCondition, data: SeccompData): boolean {
  const v = arg32(data, cond.arg);
  return cond.test === 'any-bit' ? (v & cond.values[0]!) >>> 0 !== 0 : cond.values.includes(v);
}

/**
 * Interprets one raw rule directly on the data (64-bit compares on bigints, not on halves).
 * Returns the return value, or undefined when the rule falls through.
 */
export function interpretRule(rule: readonly BpfInsn[], data: SeccompData, monitor: boolean): number | undefined {
  const labels = new Map<string, number>();
  rule.forEach((it, i) => {
    if (it.kind === 'label') labels.set(it.name, i);
  });
  const go = (t: JumpTarget, i: number): number => (typeof t === 'number' ? i + 1 + t : labels.get(t)!);
  let A: number | undefined = data.nr >>> 0;
  let X = 0;
  const M = new Array<number>(16).fill(0);
  let sel: { index: number; width: 32 | 64; field: string } = { index: 0, width: 32, field: 'nr' };
  let i = 0;
  const needA = (): number => {
    if (A === undefined)
      throw new Error('model: the rule reads the accumulator after a 64-bit compare, which has no defined value');
    return A;
  };
  while (i < rule.length) {
    const it = rule[i]!;
    switch (it.kind) {
      case 'label':
        i++;
        break;
      case 'load':
        sel = { index: it.index, width: it.width, field: it.field };
        if (it.width === 32)
          A = it.field === 'nr' ? data.nr >>> 0 : it.field === 'arch' ? data.arch >>> 0 : arg32(data, it.index);
        i++;
        break;
      case 'ret':
        return actionRet(it.action, monitor);
      case 'ja':
        i = go(it.target, i);
        break;
      case 'cmp': {
        let c: boolean;
        if (sel.width === 64) {
          const v = arg64(data, sel.index);
          c =
            it.op === 'jeq'
              ? v === it.value
              : it.op === 'jgt'
                ? v > it.value
                : it.op === 'jge'
                  ? v >= it.value
                  : (v & it.value) !== 0n;
          A = undefined;
        } else {
          const a = needA();
          const k = Number(it.value);
          c = it.op === 'jeq' ? a === k : it.op === 'jgt' ? a > k : it.op === 'jge' ? a >= k : (a & k) >>> 0 !== 0;
        }
        i = go(c ? it.jt : it.jf, i);
        break;
      }
      case 'raw': {
        const { code, k } = it;
        const cls = code & 0x07;
        if (cls === BPF_RET) return code === (BPF_RET | BPF_A) ? needA() : k >>> 0;
        if (cls === BPF_JMP) {
          if ((code & 0xf0) === BPF_JA) {
            i = i + 1 + k;
            break;
          }
          const a = needA();
          const src = code & BPF_X ? X : k >>> 0;
          const op = code & 0xf0;
          const c =
            op === BPF_JEQ
              ? a === src
              : op === BPF_JGT
                ? a > src
                : op === BPF_JGE
                  ? a >= src
                  : op === BPF_JSET
                    ? (a & src) >>> 0 !== 0
                    : false;
          i = go(c ? it.jt : it.jf, i);
          break;
        }
        if (code === (BPF_LD | BPF_W | BPF_ABS)) A = word(data, k);
        else if (code === (BPF_LD | BPF_W | BPF_LEN)) A = 64;
        else if (code === (BPF_LD | BPF_IMM)) A = k >>> 0;
        else if (code === (BPF_LD | BPF_MEM)) A = M[k]!;
        else if (code === (BPF_LDX | BPF_W | BPF_LEN)) X = 64;
        else if (code === (BPF_LDX | BPF_IMM)) X = k >>> 0;
        else if (code === (BPF_LDX | BPF_MEM)) X = M[k]!;
        else if (cls === BPF_ST) M[k] = needA();
        else if (cls === BPF_STX) M[k] = X;
        else if (code === (BPF_MISC | BPF_TXA)) A = X;
        else if (code === BPF_MISC) X = needA();
        else if (cls === BPF_ALU) {
          const a = needA();
          const s = code & BPF_X ? X : k >>> 0;
          const op = code & 0xf0;
          if ((op === BPF_DIV || op === BPF_MOD) && s === 0) return 0;
          A =
            op === BPF_ADD
              ? (a + s) >>> 0
              : op === BPF_SUB
                ? (a - s) >>> 0
                : op === BPF_MUL
                  ? Math.imul(a, s) >>> 0
                  : op === BPF_DIV
                    ? Math.floor(a / s) >>> 0
                    : op === BPF_MOD
                      ? (a % s) >>> 0
                      : op === BPF_OR
                        ? (a | s) >>> 0
                        : op === BPF_AND
                          ? (a & s) >>> 0
                          : op === BPF_XOR
                            ? (a ^ s) >>> 0
                            : op === BPF_LSH
                              ? s >= 32
                                ? 0
                                : (a << s) >>> 0
                              : op === BPF_RSH
                                ? s >= 32
                                  ? 0
                                  : a >>> s
                                : op === BPF_NEG
                                  ? -a >>> 0
                                  : a;
        }
        i++;
        break;
      }
    }
  }
  return undefined;
}

function verdict(ret: number, by: ModelVerdict['by'], rule?: SyscallRule): ModelVerdict {
  return rule ? { ...decodeRet(ret), by, rule } : { ...decodeRet(ret), by };
}

/** The verdict the policy means for this seccomp_data under these compile options. */
export function modelVerdict(policy: Policy, data: SeccompData, options: CompileOptions = {}): ModelVerdict {
  const opt = resolveCompileOptions(options);
  const nr = data.nr >>> 0;
  if (data.arch >>> 0 !== NATIVE_AUDIT_ARCH[policy.arch])
    return verdict(violationRet(opt.monitor, NOTIFY_DATA.ARCH_VIOLATION), 'arch');
  if (policy.arch === 'x86_64' && nr >= X32_SYSCALL_BIT)
    return verdict(violationRet(opt.monitor, NOTIFY_DATA.ARCH_VIOLATION), 'x32');

  if (
    opt.execPrologue &&
    nr === syscallNumber(policy.arch, 'execveat') &&
    arg32(data, 0) === opt.execFd &&
    arg32(data, 4) === AT_EMPTY_PATH &&
    arg32(data, 5) === SBX_EXEC_MAGIC
  ) {
    return verdict(execRet(opt.monitor), 'exec');
  }

  const user = policy.rules.filter((r) => r.nr === nr);
  let denial: Denial | undefined;
  for (const d of ALWAYS_DENIED) {
    if (syscallNumber(policy.arch, d.name) === nr) {
      denial = d;
      break;
    }
  }
  if (denial && (!denial.when || holds(denial.when, data) || (denial.orWhen && holds(denial.orWhen, data)))) {
    const first = user[0];
    if (first?.kind === 'errno') return verdict((SECCOMP_RET_ERRNO | first.errno) >>> 0, 'denial');
    const ret =
      denial.verdict === 'violation'
        ? violationRet(opt.monitor, NOTIFY_DATA.SYSCALL_VIOLATION)
        : (SECCOMP_RET_ERRNO | denial.verdict.errno) >>> 0;
    return verdict(ret, 'denial');
  }

  // Network rules: socket device ioctls fail with EPERM whatever the fd (compiler.ts SOCKET_IOCTL_RANGES).
  if (socketIoctlRefused(policy, nr)) {
    const cmd = arg32(data, 1);
    if (SOCKET_IOCTL_RANGES.some(([lo, hi]) => cmd >= lo && cmd <= hi)) return verdict(SOCKET_IOCTL_RET, 'network');
  }

  // Network rules: MSG_FASTOPEN on a send is refused before anything else.
  const net = networkSyscalls(policy).get(nr);
  if (net?.flagsArg !== undefined && (arg32(data, net.flagsArg) & MSG_FASTOPEN) !== 0)
    return verdict(NETWORK_FASTOPEN_RET, 'network');

  // Sandbox-me-here: the handshake fd may carry read and sendto without an address, the listener's number close().
  const isCall = (name: string): boolean => syscallNumber(policy.arch, name) === nr;
  const fd0 = arg32(data, 0);
  if (
    opt.clientChannelFd >= 0 &&
    fd0 === opt.clientChannelFd &&
    (isCall('read') || (isCall('sendto') && arg64(data, 4) === 0n))
  )
    return verdict(SECCOMP_RET_ALLOW, 'client');
  if (opt.clientListenerFd >= 0 && fd0 === opt.clientListenerFd && isCall('close'))
    return verdict(SECCOMP_RET_ALLOW, 'client');

  const run = (rules: readonly SyscallRule[], by: 'rule' | 'overridable'): ModelVerdict | undefined => {
    for (const r of rules) {
      if (r.kind === 'allow') return verdict(SECCOMP_RET_ALLOW, by, r);
      if (r.kind === 'errno') return verdict((SECCOMP_RET_ERRNO | r.errno) >>> 0, by, r);
      const ret = interpretRule(r.rule, data, opt.monitor);
      if (ret !== undefined) return verdict(ret, by, r);
    }
    return undefined;
  };
  const v =
    run(user, 'rule') ??
    run(
      policy.overridable.filter((r) => r.nr === nr),
      'overridable',
    ) ??
    verdict(defaultRet(policy.defaultAction, opt.monitor), 'default');
  // Network rules: a call the policy runs goes to the monitor (sendto only with an address).
  if (
    net &&
    (v.ret === SECCOMP_RET_ALLOW || v.ret === SECCOMP_RET_LOG) &&
    (net.addrArg === undefined || arg64(data, net.addrArg) !== 0n)
  ) {
    return verdict(networkRet(opt.monitor), 'network');
  }
  return v;
}
