/**
 * compilePolicy(): Policy -> seccomp sock_filter program.
 *
 * Layout (docs/policy-guide.md has the long version):
 *   ld arch; jeq NATIVE else -> arch violation
 *   ld nr
 *   dispatch over nr: a balanced binary search (jge splits) over ranges of numbers that share a
 *   leaf; on x86_64 the range [0x40000000, 2^32) is the x32 arch violation
 *   leaves with arguments checks, each: [exec prologue] [always-on denial] [user rules in call
 *   order] [overridable helper rules] ret DEFAULT
 *   the shared ret instructions of argument-free leaves
 * A number whose verdict does not depend on arguments ends at a shared ret with no argument load
 * on its path, so the kernel's action cache can precompute it.
 */
import {
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_X86_64,
  AT_EMPTY_PATH,
  BPF_ABS,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_MAXINSNS,
  BPF_RET,
  BPF_W,
  SECCOMP_DATA_ARCH,
  SECCOMP_DATA_NR,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_LOG,
  SECCOMP_RET_TRACE,
  SECCOMP_RET_TRAP,
  SECCOMP_RET_USER_NOTIF,
  X32_SYSCALL_BIT,
  argHi,
  argLo,
  assemble,
  decodeProgram,
  encodeProgram,
  expandRule,
} from './bpf.js';
import type { AsmInsn, AsmItem, RuleAction, SockFilter } from './bpf.js';
import { ALWAYS_DENIED, SBX_EXEC_FD_TARGET, SBX_EXEC_MAGIC } from './denials.js';
import type { Denial } from './denials.js';
import { PolicyError } from './errors.js';
import type { DefaultAction, Policy, SyscallRule } from './policy.js';
import { stableStringify } from './policy.js';
import { syscallNumber } from './syscalls.js';
import type { Arch } from './syscalls.js';
import { monotonicMs } from '../clock.js';

export interface CompileOptions {
  /** A monitor holds the unotify listener: violations return USER_NOTIF instead of KILL_PROCESS. Default false. */
  readonly monitor?: boolean;
  /** Let the forkserver's magic execveat through (sandbox-before-exec). Default true. */
  readonly execPrologue?: boolean;
  /** The fd the forkserver execs from (SBX_EXEC_FD_TARGET). Default 1022. */
  readonly execFd?: number;
  /**
   * Sandbox-me-here mode: the client's handshake fd (1020). read() and sendto() without an address
   * (arg 4 NULL) on this fd (arg 0, low 32 bits) are allowed, so the client can say where its
   * listener is (the executor takes it with pidfd_getfd) and wait for the go-ahead under its own
   * filter. Neither call can carry a destination or an fd, so whatever socket sits at that number
   * later reaches only its connected peer. Checked after the always-on denials and before the
   * policy's rules; other fds keep the policy's verdict. Default -1 (no such rule).
   */
  readonly clientChannelFd?: number;
  /** Sandbox-me-here mode: the fd number the client's listener gets; close() of it is allowed. Default -1. */
  readonly clientListenerFd?: number;
  /** 'binary' (default): balanced search over ranges. 'linear': a jeq chain (for benchmarks). */
  readonly dispatch?: 'binary' | 'linear';
  /** Reuse an earlier compilation of an equal policy with equal options. Default true. */
  readonly cache?: boolean;
}

export type ResolvedCompileOptions = Required<CompileOptions>;

/**
 * Data values of the USER_NOTIF returns sbx emits, so the monitor can tell why it was notified by
 * re-running the program on the notification's seccomp_data (see classify()). The kernel does not
 * pass these 16 bits to the listener; they only exist in the program.
 */
export const NOTIFY_DATA = Object.freeze({
  /** A rule returned USER_NOTIF itself. */
  USER: 0,
  /** The forkserver's magic execveat. */
  EXEC: 1,
  /** A syscall the policy does not allow. */
  SYSCALL_VIOLATION: 2,
  /** A foreign architecture (i386, x32, other). */
  ARCH_VIOLATION: 3,
  /** defaultAction('notify'): learning mode. */
  DEFAULT: 4,
  /** Network rules: an allowed connect/sendto-with-address/sendmsg/sendmmsg/listen/bind; the monitor decides (networkSyscalls()). */
  NETWORK: 5,
});

export interface CompileStats {
  /** Ranges the dispatch searches over (after merging). */
  readonly segments: number;
  /** Compare instructions on the longest dispatch path. */
  readonly depth: number;
  /** Numbers whose leaf checks arguments. */
  readonly argLeaves: number;
  /** Compile time in milliseconds (0 on a cache hit). */
  readonly millis: number;
}

export interface CompiledPolicy {
  readonly arch: Arch;
  readonly options: Readonly<ResolvedCompileOptions>;
  /** The program, one entry per instruction. */
  readonly insns: readonly SockFilter[];
  /** The program as struct sock_filter[] bytes (a fresh copy per compilePolicy call). */
  readonly program: Uint8Array;
  readonly length: number;
  readonly stats: CompileStats;
  /** The program came from the compile cache (no compile ran). */
  readonly cached: boolean;
}

const LD_ABS = BPF_LD | BPF_W | BPF_ABS;
const JEQ_K = BPF_JMP | BPF_JEQ | BPF_K;
const JGE_K = BPF_JMP | BPF_JGE | BPF_K;
const JGT_K = BPF_JMP | BPF_JGT | BPF_K;
const JSET_K = BPF_JMP | BPF_JSET | BPF_K;
const RET_K = BPF_RET | BPF_K;
const U32_END = 0x100000000;

export const NATIVE_AUDIT_ARCH: Readonly<Record<Arch, number>> = Object.freeze({
  x86_64: AUDIT_ARCH_X86_64,
  aarch64: AUDIT_ARCH_AARCH64,
});

export function resolveCompileOptions(options: CompileOptions = {}): ResolvedCompileOptions {
  if (options === null || typeof options !== 'object')
    throw new TypeError('compilePolicy(policy, options): options must be an object');
  const {
    monitor = false,
    execPrologue = true,
    execFd = SBX_EXEC_FD_TARGET,
    dispatch = 'binary',
    cache = true,
  } = options;
  const { clientChannelFd = -1, clientListenerFd = -1 } = options;
  if (typeof monitor !== 'boolean') throw new TypeError('options.monitor must be a boolean');
  if (typeof execPrologue !== 'boolean') throw new TypeError('options.execPrologue must be a boolean');
  if (!Number.isInteger(execFd) || execFd < 0 || execFd > 0x7fffffff)
    throw new TypeError('options.execFd must be a file descriptor number');
  if (dispatch !== 'binary' && dispatch !== 'linear')
    throw new TypeError(`options.dispatch must be 'binary' or 'linear', got ${String(dispatch)}`);
  if (typeof cache !== 'boolean') throw new TypeError('options.cache must be a boolean');
  for (const [name, fd] of [
    ['clientChannelFd', clientChannelFd],
    ['clientListenerFd', clientListenerFd],
  ] as const) {
    if (!Number.isInteger(fd) || fd < -1 || fd > 0x7fffffff)
      throw new TypeError(`options.${name} must be a file descriptor number or -1`);
  }
  return { monitor, execPrologue, execFd, dispatch, cache, clientChannelFd, clientListenerFd };
}

/** The return value of a symbolic action under the given options. */
export function actionRet(action: RuleAction, monitor: boolean): number {
  switch (action.type) {
    case 'allow':
      return SECCOMP_RET_ALLOW;
    case 'violation':
      return violationRet(monitor, NOTIFY_DATA.SYSCALL_VIOLATION);
    case 'errno':
      return (SECCOMP_RET_ERRNO | (action.errno & 0xfff)) >>> 0;
    case 'trap':
      return (SECCOMP_RET_TRAP | (action.data & 0xffff)) >>> 0;
    case 'user_notif':
      return SECCOMP_RET_USER_NOTIF;
    case 'log':
      return SECCOMP_RET_LOG;
    case 'trace':
      return (SECCOMP_RET_TRACE | (action.data & 0xffff)) >>> 0;
  }
}

export function violationRet(monitor: boolean, data: number): number {
  return monitor ? (SECCOMP_RET_USER_NOTIF | data) >>> 0 : SECCOMP_RET_KILL_PROCESS;
}

export function defaultRet(d: DefaultAction, monitor: boolean): number {
  if (d === 'kill') return violationRet(monitor, NOTIFY_DATA.SYSCALL_VIOLATION);
  if (d === 'allow') return SECCOMP_RET_ALLOW;
  if (d === 'log') return SECCOMP_RET_LOG;
  if (d === 'notify') return (SECCOMP_RET_USER_NOTIF | NOTIFY_DATA.DEFAULT) >>> 0;
  return (SECCOMP_RET_ERRNO | (d.errno & 0xfff)) >>> 0;
}

/** The exec prologue's verdict. */
export function execRet(monitor: boolean): number {
  return monitor ? (SECCOMP_RET_USER_NOTIF | NOTIFY_DATA.EXEC) >>> 0 : SECCOMP_RET_ALLOW;
}

// ---- per-number leaves ----

/** A step of a leaf: an unconditional return, or code that may return or fall through. */
type Step =
  | { readonly kind: 'ret'; readonly ret: number }
  | {
      readonly kind: 'code';
      readonly key: string;
      /** The code expects A = nr on entry (user rules). */
      readonly needsNr: boolean;
      readonly emit: (scope: string, fallthrough: string) => AsmItem[];
    };

interface Leaf {
  readonly key: string;
  readonly steps: readonly Step[];
}

function denialStep(d: Denial, verdict: number): Step {
  const when = d.when;
  if (!when) return { kind: 'ret', ret: verdict };
  return {
    kind: 'code',
    key: `deny:${d.name}:${verdict}`,
    needsNr: false,
    emit: (scope, fallthrough) => {
      const hit = `${scope}:hit`;
      const items: AsmItem[] = [];
      // Each condition jumps to hit when it holds; the last one falls through otherwise.
      const conditions = d.orWhen ? [when, d.orWhen] : [when];
      conditions.forEach((c, ci) => {
        const miss = ci === conditions.length - 1 ? fallthrough : null;
        items.push({ code: LD_ABS, k: argLo(c.arg), where: `always-on ${d.name} rule` });
        if (c.test === 'any-bit') {
          items.push({ code: JSET_K, k: c.values[0]!, t: hit, f: miss, relax: true });
        } else {
          c.values.forEach((v, i) => {
            const last = i === c.values.length - 1;
            items.push({ code: JEQ_K, k: v, t: hit, f: last ? miss : null, relax: true });
          });
        }
      });
      items.push({ label: hit }, { code: RET_K, k: verdict });
      return items;
    },
  };
}

function execStep(execFd: number, ret: number): Step {
  return {
    kind: 'code',
    key: `exec:${execFd}:${ret}`,
    needsNr: false,
    emit: (_scope, fallthrough) => [
      { code: LD_ABS, k: argLo(0), where: 'exec prologue' },
      { code: JEQ_K, k: execFd, f: fallthrough, relax: true },
      { code: LD_ABS, k: argLo(4) },
      { code: JEQ_K, k: AT_EMPTY_PATH, f: fallthrough, relax: true },
      { code: LD_ABS, k: argLo(5) },
      { code: JEQ_K, k: SBX_EXEC_MAGIC, f: fallthrough, relax: true },
      { code: RET_K, k: ret },
    ],
  };
}

/**
 * Sandbox-me-here: the call is allowed when arg 0 (low 32 bits) is `fd` and, with `nullArg`, that
 * argument (64 bits) is 0; else it falls through.
 */
function clientFdStep(what: string, fd: number, nullArg?: number): Step {
  return {
    kind: 'code',
    key: `client:${what}:${fd}:${nullArg ?? ''}`,
    needsNr: false,
    emit: (_scope, fallthrough) => [
      { code: LD_ABS, k: argLo(0), where: `client ${what} rule` },
      { code: JEQ_K, k: fd, f: fallthrough, relax: true },
      ...(nullArg === undefined
        ? []
        : [
            { code: LD_ABS, k: argLo(nullArg) },
            { code: JEQ_K, k: 0, f: fallthrough, relax: true },
            { code: LD_ABS, k: argHi(nullArg) },
            { code: JEQ_K, k: 0, f: fallthrough, relax: true },
          ]),
      { code: RET_K, k: SECCOMP_RET_ALLOW },
    ],
  };
}

/** A client handshake step: the fd it allows, and the argument that must be NULL (sendto's address). */
export interface ClientStep {
  readonly what: string;
  readonly fd: number;
  readonly nullArg?: number;
}

/** The client handshake's steps by syscall number (see CompileOptions.clientChannelFd). */
export function clientSyscalls(
  arch: Arch,
  opt: Pick<ResolvedCompileOptions, 'clientChannelFd' | 'clientListenerFd'>,
): Map<number, ClientStep> {
  const out = new Map<number, ClientStep>();
  const add = (name: string, step: ClientStep): void => {
    const nr = syscallNumber(arch, name);
    if (step.fd >= 0 && nr !== undefined) out.set(nr, step);
  };
  add('sendto', { what: 'channel', fd: opt.clientChannelFd, nullArg: 4 });
  add('read', { what: 'channel', fd: opt.clientChannelFd });
  add('close', { what: 'listener', fd: opt.clientListenerFd });
  return out;
}

// ---- network rules (policy.network.mode 'rules'; docs/policy-guide.md "Network rules") ----

/** MSG_FASTOPEN: a send that connects (TCP Fast Open); refused under network rules. */
const MSG_FASTOPEN = 0x20000000;
const EOPNOTSUPP = 95;
const EACCES = 13;

/** A syscall the monitor decides under network rules; flagsArg/addrArg where the call has them. */
export interface NetworkSyscall {
  readonly name: 'connect' | 'sendto' | 'sendmsg' | 'sendmmsg' | 'listen' | 'bind';
  /** Bit in the monitor's table (network.ts NET_SYSCALL_BITS). */
  readonly bit: number;
  /** The argument holding MSG_* flags: MSG_FASTOPEN there is EOPNOTSUPP, before any other rule. */
  readonly flagsArg?: number;
  /** sendto: only calls with a non-NULL address (this argument, 64 bits) go to the monitor. */
  readonly addrArg?: number;
}

export const NETWORK_SYSCALLS: readonly NetworkSyscall[] = Object.freeze([
  { name: 'connect', bit: 1 },
  { name: 'sendto', bit: 2, flagsArg: 3, addrArg: 4 },
  { name: 'sendmsg', bit: 4, flagsArg: 2 },
  { name: 'sendmmsg', bit: 8, flagsArg: 3 },
  { name: 'listen', bit: 16 },
  // bind: the monitor binds the sandbox's own sockets itself and refuses the host's.
  { name: 'bind', bit: 32 },
]);

/** The network syscalls by number, for a policy with network rules (empty otherwise). */
export function networkSyscalls(policy: Policy): Map<number, NetworkSyscall> {
  const out = new Map<number, NetworkSyscall>();
  if (policy.network.mode !== 'rules') return out;
  for (const n of NETWORK_SYSCALLS) {
    const nr = syscallNumber(policy.arch, n.name);
    if (nr !== undefined) out.set(nr, n);
  }
  return out;
}

/** The return of a call the monitor decides (without a monitor nothing can decide: EACCES). */
export function networkRet(monitor: boolean): number {
  return monitor ? (SECCOMP_RET_USER_NOTIF | NOTIFY_DATA.NETWORK) >>> 0 : (SECCOMP_RET_ERRNO | EACCES) >>> 0;
}

/** The fixed answer of a network call with MSG_FASTOPEN in its flags. */
export const NETWORK_FASTOPEN_RET = (SECCOMP_RET_ERRNO | EOPNOTSUPP) >>> 0;
export { MSG_FASTOPEN };

/** True when a verdict lets the call run (ALLOW, or LOG which also runs it). */
function runsCall(ret: number): boolean {
  return ret === SECCOMP_RET_ALLOW || ret === SECCOMP_RET_LOG;
}

/**
 * A network syscall's leaf: where the policy's own verdict would run the call, the monitor decides
 * instead (sendto: only with an address); a violation or an errno stays as it is. The policy must
 * decide these calls as a whole: an argument rule cannot be combined with the monitor's decision.
 */
function networkLeafSteps(net: NetworkSyscall, steps: Step[], dflt: number, monitor: boolean): Step[] {
  const first = steps[0];
  const verdict = first === undefined ? dflt : first.kind === 'ret' ? first.ret : undefined;
  if (verdict === undefined) {
    throw new PolicyError(
      'INVALID_POLICY',
      `${net.name}: under network rules (allowIPv4/allowIPv6/denyIPv4/allowDns/allowUnixSocket) the policy must allow or deny ${net.name} as a whole; ` +
        `an argument rule on it cannot be combined with the monitor's decision`,
    );
  }
  if (!runsCall(verdict)) return steps;
  const notify = networkRet(monitor);
  if (net.addrArg === undefined) return [{ kind: 'ret', ret: notify }];
  const arg = net.addrArg;
  return [
    {
      kind: 'code',
      key: `net:addr:${arg}:${notify}`,
      needsNr: false,
      emit: (scope, fallthrough) => {
        const hit = `${scope}:hit`;
        return [
          { code: LD_ABS, k: argLo(arg), where: `network rule: ${net.name} with an address` },
          { code: JEQ_K, k: 0, f: hit, relax: true },
          { code: LD_ABS, k: argHi(arg) },
          { code: JEQ_K, k: 0, t: fallthrough, f: hit, relax: true },
          { label: hit },
          { code: RET_K, k: notify },
        ];
      },
    },
    { kind: 'ret', ret: verdict },
  ];
}

/**
 * Under network rules, socket device ioctls (SIOCGIFCONF, SIOCGIFADDR, SIOCETHTOOL, wireless
 * extensions...) fail with EPERM whatever the fd: on a socket of the host the monitor put in the
 * sandboxee's hands they would describe (or, with a capability, change) the host's interfaces,
 * and a filter cannot tell that socket from the sandbox's own. Inclusive ranges of the cmd (low
 * 32 bits, as the kernel reads it); the per-socket ones below 0x8910 (SIOCGSTAMP, FIOSETOWN...) stay.
 */
export const SOCKET_IOCTL_RANGES: readonly (readonly [number, number])[] = Object.freeze([
  [0x8910, 0x89ff],
  [0x8b00, 0x8bff],
] as const);
export const SOCKET_IOCTL_RET = (SECCOMP_RET_ERRNO | 1) >>> 0; // EPERM

/** Whether the socket-ioctl refusal applies to syscall nr of this policy. */
export function socketIoctlRefused(policy: Policy, nr: number): boolean {
  return policy.network.mode === 'rules' && syscallNumber(policy.arch, 'ioctl') === nr;
}

function socketIoctlStep(): Step {
  return {
    kind: 'code',
    key: 'net:socket-ioctl',
    needsNr: false,
    emit: (scope, fallthrough) => {
      const hit = `${scope}:hit`;
      const items: AsmItem[] = [{ code: LD_ABS, k: argLo(1), where: 'network rule: socket device ioctls' }];
      SOCKET_IOCTL_RANGES.forEach(([lo, hi], i) => {
        const next = i === SOCKET_IOCTL_RANGES.length - 1 ? fallthrough : `${scope}:r${i + 1}`;
        if (i > 0) items.push({ label: `${scope}:r${i}` });
        items.push({ code: JGE_K, k: lo, f: next, relax: true }, { code: JGT_K, k: hi, t: next, f: hit, relax: true });
      });
      items.push({ label: hit }, { code: RET_K, k: SOCKET_IOCTL_RET });
      return items;
    },
  };
}

function fastopenStep(net: NetworkSyscall, arg: number): Step {
  return {
    kind: 'code',
    key: `net:fastopen:${arg}`,
    needsNr: false,
    emit: (scope, fallthrough) => {
      const hit = `${scope}:hit`;
      return [
        { code: LD_ABS, k: argLo(arg), where: `network rule: ${net.name} with MSG_FASTOPEN` },
        { code: JSET_K, k: MSG_FASTOPEN, t: hit, f: fallthrough, relax: true },
        { label: hit },
        { code: RET_K, k: NETWORK_FASTOPEN_RET },
      ];
    },
  };
}

/**
 * NET_SYSCALL_BITS of the network syscalls the monitor decides for this policy (the policy runs
 * them); the others (a violation, an errno) the monitor reports or never sees.
 */
export function networkDecidedBits(policy: Policy): number {
  let bits = 0;
  const dflt = defaultRet(policy.defaultAction, true);
  /** The policy's own verdict on a number: a return value, or undefined when it depends on arguments. */
  const verdictOf = (nr: number): number | undefined => {
    const steps = [
      ...ruleSteps(
        policy.rules.filter((r) => r.nr === nr),
        true,
      ),
      ...ruleSteps(
        policy.overridable.filter((r) => r.nr === nr),
        true,
      ),
    ];
    const first = steps[0];
    return first === undefined ? dflt : first.kind === 'ret' ? first.ret : undefined;
  };
  for (const [nr, net] of networkSyscalls(policy)) {
    const verdict = verdictOf(nr);
    if (verdict !== undefined && runsCall(verdict)) bits |= net.bit;
  }
  // Whether the sandboxee may exec (then the close-on-exec flag of a replaced fd matters).
  for (const name of ['execve', 'execveat']) {
    const nr = syscallNumber(policy.arch, name);
    if (nr === undefined) continue;
    const verdict = verdictOf(nr);
    if (verdict === undefined || runsCall(verdict)) bits = (bits | 0x80000000) >>> 0;
  }
  return bits;
}

function ruleSteps(rules: readonly SyscallRule[], monitor: boolean): Step[] {
  return rules.map((r): Step => {
    if (r.kind === 'allow') return { kind: 'ret', ret: SECCOMP_RET_ALLOW };
    if (r.kind === 'errno') return { kind: 'ret', ret: (SECCOMP_RET_ERRNO | (r.errno & 0xfff)) >>> 0 };
    const first = r.rule.find((it) => it.kind !== 'label');
    // A rule that returns at once is an unconditional verdict (and keeps the number cacheable).
    if (first?.kind === 'ret') return { kind: 'ret', ret: actionRet(first.action, monitor) };
    const where = `rule on ${r.name ?? `syscall ${r.nr}`}`;
    return {
      kind: 'code',
      key: `user:${stableStringify(r.rule)}`,
      // Only a rule that compares before it loads anything reads the syscall number from A.
      needsNr: first?.kind !== 'load',
      emit: (scope, fallthrough) =>
        expandRule(r.rule, { where, scope, fallthrough, ret: (a) => actionRet(a, monitor) }),
    };
  });
}

/** Builds the leaf of every number that has any rule. */
function buildLeaves(policy: Policy, opt: ResolvedCompileOptions): Map<number, Leaf> {
  const arch = policy.arch;
  const userByNr = new Map<number, SyscallRule[]>();
  for (const r of policy.rules) {
    let l = userByNr.get(r.nr);
    if (!l) userByNr.set(r.nr, (l = []));
    l.push(r);
  }
  const overByNr = new Map<number, SyscallRule[]>();
  for (const r of policy.overridable) {
    let l = overByNr.get(r.nr);
    if (!l) overByNr.set(r.nr, (l = []));
    l.push(r);
  }
  const deniedByNr = new Map<number, Denial>();
  for (const d of ALWAYS_DENIED) {
    const nr = syscallNumber(arch, d.name);
    if (nr !== undefined && !deniedByNr.has(nr)) deniedByNr.set(nr, d);
  }
  const execNr = opt.execPrologue ? syscallNumber(arch, 'execveat') : undefined;
  const clientByNr = clientSyscalls(arch, opt);
  const netByNr = networkSyscalls(policy);
  const nrs = new Set<number>([
    ...userByNr.keys(),
    ...overByNr.keys(),
    ...deniedByNr.keys(),
    ...clientByNr.keys(),
    ...netByNr.keys(),
  ]);
  if (execNr !== undefined) nrs.add(execNr);

  const dflt = defaultRet(policy.defaultAction, opt.monitor);
  // A conditional step whose verdict equals what follows it anyway is dropped: the number stays
  // argument-free (e.g. the ioctl TIOCSTI check when ioctl is not allowed at all).
  const redundant = (verdict: number, rest: readonly Step[]): boolean => {
    const next = rest[0];
    return next ? next.kind === 'ret' && next.ret === verdict : verdict === dflt;
  };
  const leaves = new Map<number, Leaf>();
  for (const nr of nrs) {
    const user = userByNr.get(nr) ?? [];
    let steps: Step[] = [...ruleSteps(user, opt.monitor), ...ruleSteps(overByNr.get(nr) ?? [], opt.monitor)];
    // Network rules: the monitor decides the calls the policy would run (before the client step).
    const net = netByNr.get(nr);
    if (net) steps = networkLeafSteps(net, steps, dflt, opt.monitor);
    if (socketIoctlRefused(policy, nr) && !redundant(SOCKET_IOCTL_RET, steps)) steps.unshift(socketIoctlStep());
    // The client's handshake rule goes before the policy's rules and after any denial.
    const client = clientByNr.get(nr);
    if (client && !redundant(SECCOMP_RET_ALLOW, steps))
      steps.unshift(clientFdStep(client.what, client.fd, client.nullArg));
    // MSG_FASTOPEN would connect without connect(): refused first, whatever the fd.
    if (net?.flagsArg !== undefined && !redundant(NETWORK_FASTOPEN_RET, steps))
      steps.unshift(fastopenStep(net, net.flagsArg));
    const denial = deniedByNr.get(nr);
    if (denial) {
      const first = user[0];
      const verdict =
        first?.kind === 'errno'
          ? (SECCOMP_RET_ERRNO | first.errno) >>> 0
          : denial.verdict === 'violation'
            ? violationRet(opt.monitor, NOTIFY_DATA.SYSCALL_VIOLATION)
            : (SECCOMP_RET_ERRNO | denial.verdict.errno) >>> 0;
      if (!denial.when) steps = [{ kind: 'ret', ret: verdict }];
      else if (!redundant(verdict, steps)) steps.unshift(denialStep(denial, verdict));
    }
    if (nr === execNr && !redundant(execRet(opt.monitor), steps))
      steps.unshift(execStep(opt.execFd, execRet(opt.monitor)));
    // Everything after the first unconditional return is dead.
    const cut = steps.findIndex((s) => s.kind === 'ret');
    if (cut >= 0) steps.length = cut + 1;
    const key = steps.map((s) => (s.kind === 'ret' ? `ret:${s.ret}` : s.key)).join('|');
    leaves.set(nr, { key, steps });
  }
  return leaves;
}

interface Segment {
  lo: number;
  hi: number;
  /** 'ret:<value>' for argument-free leaves, else the leaf key. */
  key: string;
  leaf: Leaf | null;
}

function leafRet(leaf: Leaf, dflt: number): number | undefined {
  const first = leaf.steps[0];
  if (!first) return dflt;
  return first.kind === 'ret' ? first.ret : undefined;
}

function buildSegments(leaves: Map<number, Leaf>, dflt: number, x32Ret: number | undefined): Segment[] {
  const nrs = [...leaves.keys()].filter((n) => x32Ret === undefined || n < X32_SYSCALL_BIT).sort((a, b) => a - b);
  const segs: Segment[] = [];
  const push = (lo: number, hi: number, key: string, leaf: Leaf | null): void => {
    const last = segs[segs.length - 1];
    if (last && last.key === key && last.hi + 1 === lo) last.hi = hi;
    else segs.push({ lo, hi, key, leaf });
  };
  const dkey = `ret:${dflt}`;
  let next = 0;
  const end = x32Ret === undefined ? U32_END : X32_SYSCALL_BIT;
  for (const nr of nrs) {
    if (nr > next) push(next, nr - 1, dkey, null);
    const leaf = leaves.get(nr)!;
    const r = leafRet(leaf, dflt);
    push(nr, nr, r !== undefined ? `ret:${r}` : leaf.key, r !== undefined ? null : leaf);
    next = nr + 1;
  }
  if (next < end) push(next, end - 1, dkey, null);
  if (x32Ret !== undefined) push(X32_SYSCALL_BIT, U32_END - 1, `ret:${x32Ret}`, null);
  return segs;
}

// ---- emission ----

function compileUncached(
  policy: Policy,
  opt: ResolvedCompileOptions,
): { insns: SockFilter[]; stats: Omit<CompileStats, 'millis'> } {
  const arch = policy.arch;
  const dflt = defaultRet(policy.defaultAction, opt.monitor);
  const archViolation = violationRet(opt.monitor, NOTIFY_DATA.ARCH_VIOLATION);
  const x32Ret = arch === 'x86_64' ? archViolation : undefined;
  const leaves = buildLeaves(policy, opt);
  const segs = buildSegments(leaves, dflt, x32Ret);

  const items: AsmItem[] = [];
  const rets = new Set<number>();
  const retLabel = (r: number): string => {
    rets.add(r);
    return `ret:${r >>> 0}`;
  };
  const codeLeaves = new Map<string, Leaf>();
  const target = (s: Segment): string => {
    if (!s.leaf) return retLabel(Number(s.key.slice(4)));
    codeLeaves.set(s.key, s.leaf);
    return `leaf:${s.key}`;
  };

  // Arch check.
  items.push({ code: LD_ABS, k: SECCOMP_DATA_ARCH });
  items.push({ code: JEQ_K, k: NATIVE_AUDIT_ARCH[arch], f: retLabel(archViolation), relax: true });
  items.push({ code: LD_ABS, k: SECCOMP_DATA_NR });

  let depth = 0;
  if (opt.dispatch === 'linear') {
    if (x32Ret !== undefined) {
      items.push({ code: JGE_K, k: X32_SYSCALL_BIT, t: retLabel(x32Ret), relax: true });
      depth++;
    }
    const dkey = `ret:${dflt}`;
    for (const s of segs) {
      if (s.key === dkey || s.lo >= X32_SYSCALL_BIT) continue;
      for (let nr = s.lo; nr <= s.hi; nr++) {
        items.push({ code: JEQ_K, k: nr, t: target(s), relax: true });
        depth++;
      }
    }
    items.push({ code: BPF_JMP, k: 0, t: retLabel(dflt) });
  } else {
    let counter = 0;
    const emitNode = (lo: number, hi: number, label: string | null, level: number): void => {
      if (label) items.push({ label });
      if (level > depth) depth = level;
      // [x..y: A] [n: B] [z..w: A] -> one jeq instead of two jge (an isolated number).
      const m = segs[lo + 1]!;
      if (hi - lo === 2 && m.lo === m.hi && segs[lo]!.key === segs[hi]!.key) {
        items.push({ code: JEQ_K, k: m.lo, t: target(m), f: target(segs[lo]!), relax: true });
        return;
      }
      const mid = (lo + hi + 1) >> 1;
      const left = mid - 1 === lo ? target(segs[lo]!) : `node:${counter++}`;
      const right = hi === mid ? target(segs[mid]!) : `node:${counter++}`;
      items.push({ code: JGE_K, k: segs[mid]!.lo, t: right, f: left, relax: true });
      if (mid - 1 !== lo) emitNode(lo, mid - 1, left, level + 1);
      if (hi !== mid) emitNode(mid, hi, right, level + 1);
    };
    if (segs.length === 1) items.push({ code: BPF_JMP, k: 0, t: target(segs[0]!) });
    else emitNode(0, segs.length - 1, null, 1);
  }

  // Leaves that check arguments.
  let argLeaves = 0;
  let leafNo = 0;
  for (const [key, leaf] of codeLeaves) {
    argLeaves++;
    items.push({ label: `leaf:${key}` });
    let aIsNr = true;
    let done = false;
    leaf.steps.forEach((step, i) => {
      if (done) return;
      if (step.kind === 'ret') {
        items.push({ code: RET_K, k: step.ret });
        done = true;
        return;
      }
      if (step.needsNr && !aIsNr) items.push({ code: LD_ABS, k: SECCOMP_DATA_NR });
      const scope = `L${leafNo}.${i}`;
      const fall = `${scope}/fall`;
      items.push(...step.emit(scope, fall), { label: fall });
      aIsNr = false;
    });
    if (!done) items.push({ code: RET_K, k: dflt });
    leafNo++;
  }

  // Shared returns.
  for (const r of rets) items.push({ label: `ret:${r >>> 0}` }, { code: RET_K, k: r });

  const insns = assemble(dropJumpsToNext(items));
  if (insns.length > BPF_MAXINSNS) {
    throw new PolicyError(
      'PROGRAM_TOO_LONG',
      `the compiled filter has ${insns.length} instructions; the kernel accepts at most ${BPF_MAXINSNS} (BPF_MAXINSNS). ` +
        `Allow whole syscalls instead of argument rules where you can, or merge rules (${argLeaves} syscalls have argument rules)`,
    );
  }
  return { insns, stats: { segments: segs.length, depth, argLeaves } };
}

/** Removes `ja` instructions that jump to the very next instruction. */
function dropJumpsToNext(items: AsmItem[]): AsmItem[] {
  const out: AsmItem[] = [];
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    if (!('label' in it) && it.code === (BPF_JMP | 0) && it.t) {
      let j = i + 1;
      let reached = false;
      while (j < items.length && 'label' in items[j]!) {
        if ((items[j] as { label: string }).label === it.t) reached = true;
        j++;
      }
      if (reached) continue;
    }
    out.push(it);
  }
  return out;
}

interface CacheEntry {
  insns: readonly SockFilter[];
  bytes: Uint8Array;
  stats: CompileStats;
}
const cache = new Map<string, CacheEntry>();
const CACHE_MAX = 256;
/** Programs compiled ahead of time for one Policy object, by options key (attachCompiled). */
const attached = new WeakMap<Policy, Map<string, CacheEntry>>();

function optionsKey(opt: ResolvedCompileOptions, policy: Policy): string {
  return `${opt.monitor ? 1 : 0}${opt.execPrologue ? 1 : 0}${opt.dispatch[0]}${opt.execFd}/${opt.clientChannelFd}/${opt.clientListenerFd}${policy.network.mode === 'rules' ? 'N' : ''}`;
}

/**
 * @internal Gives `policy` (this object, not equal ones) a program compiled ahead of time for
 * `options`, so compilePolicy() neither computes the policy's key nor compiles. The caller vouches
 * that `bytes` is what compilePolicy() would make: `sbx run`'s precompiled default policy is built
 * at build time by this compiler, and a test checks the two agree.
 */
export function attachCompiled(
  policy: Policy,
  options: CompileOptions,
  bytes: Uint8Array,
  stats: Omit<CompileStats, 'millis'>,
): void {
  const opt = resolveCompileOptions(options);
  const insns = decodeProgram(bytes);
  Object.freeze(insns);
  for (const i of insns) Object.freeze(i);
  let byOptions = attached.get(policy);
  if (!byOptions) attached.set(policy, (byOptions = new Map()));
  byOptions.set(optionsKey(opt, policy), {
    insns,
    bytes: bytes.slice(),
    stats: Object.freeze({ ...stats, millis: 0 }),
  });
}

/**
 * Compiles a policy into a seccomp program. Results are cached by the policy's stable key and the
 * options, so compiling the same policy for every spawn costs a map lookup.
 * Throws PolicyError: PROGRAM_TOO_LONG, INVALID_RULE, JUMP_OUT_OF_RANGE.
 */
export function compilePolicy(policy: Policy, options: CompileOptions = {}): CompiledPolicy {
  if (
    !policy ||
    typeof policy !== 'object' ||
    !Array.isArray((policy as Policy).rules) ||
    !('key' in policy) // not .key: the getter would compute the key, which attached programs skip
  ) {
    throw new TypeError('compilePolicy(policy, options): policy must be a Policy (from PolicyBuilder.build())');
  }
  const opt = resolveCompileOptions(options);
  const ahead = opt.cache ? attached.get(policy)?.get(optionsKey(opt, policy)) : undefined;
  if (ahead) return compiled(policy, opt, ahead, true);
  const key = `${optionsKey(opt, policy)}:${policy.key}`;
  let hit = opt.cache ? cache.get(key) : undefined;
  const cached = hit !== undefined;
  if (!hit) {
    const t0 = monotonicMs();
    const { insns, stats } = compileUncached(policy, opt);
    Object.freeze(insns);
    for (const i of insns) Object.freeze(i);
    const millis = monotonicMs() - t0;
    hit = { insns, bytes: encodeProgram(insns), stats: Object.freeze({ ...stats, millis }) };
    if (opt.cache) {
      if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
      cache.set(key, hit);
    }
  } else {
    // Refresh recency.
    cache.delete(key);
    cache.set(key, hit);
  }
  return compiled(policy, opt, hit, cached);
}

function compiled(policy: Policy, opt: ResolvedCompileOptions, hit: CacheEntry, cached: boolean): CompiledPolicy {
  return Object.freeze({
    arch: policy.arch,
    options: Object.freeze({ ...opt }),
    insns: hit.insns,
    program: hit.bytes.slice(),
    length: hit.insns.length,
    stats: hit.stats,
    cached,
  });
}

/** Empties the compile cache (tests and benchmarks). */
export function clearCompileCache(): void {
  cache.clear();
}

export type { AsmInsn };
