/**
 * PolicyBuilder: Sandbox2's policy vocabulary in camelCase. Methods chain; problems (unknown
 * syscall names, bad errno names, bad paths, bad CIDRs) are collected and build() throws them
 * together as one PolicyError. Wrong argument types throw TypeError at once.
 *
 *   const policy = new PolicyBuilder()
 *     .allowDynamicStartup()
 *     .allowWrite()
 *     .allowExit()
 *     .addPolicyOnSyscall('ioctl', [ARG_32(1), JEQ(TCGETS, 'ok'), KILL, LABEL('ok'), ALLOW])
 *     .build();
 */
import { type Stats, statSync } from 'node:fs';
import { isAbsolute, posix } from 'node:path';
import { USER_NOTIF, checkRule } from './bpf.js';
import { argRule, type ArgAlternative } from './arg-rules.js';
import { NETWORK_SYSCALLS } from './compiler.js';
import type { BpfInsn } from './bpf.js';
import { ALWAYS_DENIED } from './denials.js';
import { ERRNO_TABLE } from './errnos.js';
import { type ResolvedLibraries, resolveLibraries } from './elf.js';
import { PolicyError } from './errors.js';
import {
  NETWORK_CLIENT_SYSCALLS,
  checkUnixSocketPath,
  dnsRule,
  parseNetworkRule,
  socketDomainRule,
} from './network.js';
import { Policy } from './policy.js';
import type { BindMount, DefaultAction, Mount, NetworkDenyAction, NetworkRule, SyscallRule } from './policy.js';
import * as P from './presets.js';
import * as CL from './command-line.js';
import { addStandardView, type StandardViewOptions } from '../view/standard-view.js';
import { SYSCALL_TABLES, errnoNumber, hostArch, suggestNames, syscallNumber } from './syscalls.js';
import type { Arch } from './syscalls.js';

export type SyscallRef = string | number;

export interface PolicyBuilderOptions {
  /** The architecture the policy is for (its syscall table). Default: the host's. */
  readonly arch?: Arch;
}

export interface BindOptions {
  /** Mount read-write (default read-only). */
  readonly writable?: boolean;
}

export interface TmpfsOptions {
  /** Size limit in bytes (0 or omitted: the kernel default, half of RAM). */
  readonly sizeBytes?: number;
}

export interface LibrariesOptions {
  /** Extra directories searched like LD_LIBRARY_PATH (after DT_RPATH, before DT_RUNPATH). */
  readonly ldLibraryPath?: readonly string[];
}

export interface NodeRuntimeOptions {
  /** Allow new threads (Worker threads, a growing threadpool). Default false. */
  readonly threads?: boolean;
  /** Allow opening files the mount view shows (readFile, stat, readdir). Default true. */
  readonly openFiles?: boolean;
}

/** Always-denied syscalls no allow rule can open (conditional ones, such as ioctl, stay allowable). */
const UNCONDITIONALLY_DENIED = new Set(ALWAYS_DENIED.filter((d) => !d.when).map((d) => d.name));

const ERRNO_NAMES = ERRNO_TABLE.map(([n]) => n);

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return 'an array';
  return v === null ? 'null' : typeof v === 'object' ? 'an object' : String(v);
}

export class PolicyBuilder {
  readonly #arch: Arch;
  readonly #rules: SyscallRule[] = [];
  readonly #overridable: SyscallRule[] = [];
  /** Numbers that already have an allow or errno rule (first one wins, as in Sandbox2). */
  readonly #decided = new Set<number>();
  readonly #overridableDecided = new Set<number>();
  readonly #problems: string[] = [];
  readonly #presets = new Set<string>();
  readonly #mounts = new Map<string, Mount>();
  #defaultAction: DefaultAction = 'kill';
  #network: {
    mode: 'none' | 'unrestricted' | 'rules';
    rules: NetworkRule[];
    unixSockets: string[];
    onDeny?: NetworkDenyAction;
  } = { mode: 'none', rules: [], unixSockets: [] };
  #built = false;

  constructor(options: PolicyBuilderOptions = {}) {
    if (options === null || typeof options !== 'object')
      throw new TypeError('new PolicyBuilder(options): options must be an object');
    const arch = options.arch ?? hostArch();
    if (arch !== 'x86_64' && arch !== 'aarch64') {
      throw new TypeError(
        `new PolicyBuilder({ arch }): arch must be 'x86_64' or 'aarch64'${options.arch === undefined ? ` (the host is ${process.arch})` : `, got ${describe(arch)}`}`,
      );
    }
    this.#arch = arch;
  }

  /** The architecture whose syscall table names resolve against. */
  get arch(): Arch {
    return this.#arch;
  }

  // ---- syscall resolution ----

  /** Resolves a name or number; records a problem and returns undefined when it is unknown. */
  #resolve(ref: SyscallRef, method: string): { nr: number; name: string | null } | undefined {
    if (typeof ref === 'number') {
      if (!Number.isInteger(ref) || ref < 0)
        throw new TypeError(`${method}: a syscall number must be a non-negative integer, got ${ref}`);
      if (ref >= 0x40000000) {
        this.#problems.push(
          `${method}(${ref}): syscall numbers are below 0x40000000 (x32 and larger numbers are always arch violations)`,
        );
        return undefined;
      }
      return { nr: ref, name: SYSCALL_TABLES[this.#arch].byNumber.get(ref) ?? null };
    }
    if (typeof ref !== 'string')
      throw new TypeError(`${method}: a syscall is a name or a number, got ${describe(ref)}`);
    const nr = syscallNumber(this.#arch, ref);
    if (nr !== undefined) return { nr, name: ref };
    const other = (['x86_64', 'aarch64'] as const).find((a) => a !== this.#arch && syscallNumber(a, ref) !== undefined);
    if (other) {
      this.#problems.push(`${method}: syscall "${ref}" does not exist on ${this.#arch} (it is a ${other} syscall)`);
    } else {
      const near = suggestNames(ref, SYSCALL_TABLES[this.#arch].byName.keys());
      this.#problems.push(
        `${method}: unknown syscall "${ref}" on ${this.#arch}${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}`,
      );
    }
    return undefined;
  }

  #list(refs: unknown, method: string): SyscallRef[] {
    if (!Array.isArray(refs))
      throw new TypeError(`${method}: expected an array of syscall names or numbers, got ${describe(refs)}`);
    // An empty list adds nothing: harmless, so that lists built from configuration need no guard.
    return refs as SyscallRef[];
  }

  #errno(e: unknown, method: string): number | undefined {
    if (typeof e === 'number') {
      if (!Number.isInteger(e) || e < 1 || e > 4095) {
        this.#problems.push(`${method}: errno must be 1..4095, got ${e}`);
        return undefined;
      }
      return e;
    }
    if (typeof e !== 'string')
      throw new TypeError(`${method}: errno is a number or a name such as 'EPERM', got ${describe(e)}`);
    const v = errnoNumber(e);
    if (v === undefined) {
      const near = suggestNames(e.toUpperCase(), ERRNO_NAMES);
      this.#problems.push(
        `${method}: unknown errno name "${e}"${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}`,
      );
    }
    return v;
  }

  #addAllow(ref: SyscallRef, method: string, optional = false): void {
    if (optional && typeof ref === 'string' && syscallNumber(this.#arch, ref) === undefined) return;
    const r = this.#resolve(ref, method);
    if (!r) return;
    if (r.name && UNCONDITIONALLY_DENIED.has(r.name)) {
      this.#problems.push(
        `${method}: ${r.name} is always denied; blockSyscallWithErrno('${r.name}', ...) is the only way to change its outcome`,
      );
      return;
    }
    if (this.#decided.has(r.nr)) return;
    this.#decided.add(r.nr);
    this.#rules.push({ kind: 'allow', nr: r.nr, name: r.name });
  }

  #addRule(ref: SyscallRef, rule: readonly BpfInsn[], method: string, optional = false): void {
    if (optional && typeof ref === 'string' && syscallNumber(this.#arch, ref) === undefined) return;
    const r = this.#resolve(ref, method);
    if (!r) return;
    if (r.name && UNCONDITIONALLY_DENIED.has(r.name)) {
      this.#problems.push(
        `${method}: cannot add a rule for ${r.name}: it is always denied (blockSyscallWithErrno can turn it into an errno)`,
      );
      return;
    }
    this.#rules.push({ kind: 'bpf', nr: r.nr, name: r.name, rule });
  }

  #addOverridable(name: string, rule: readonly BpfInsn[]): void {
    const nr = syscallNumber(this.#arch, name);
    if (nr === undefined) return;
    this.#overridable.push({ kind: 'bpf', nr, name, rule });
    this.#overridableDecided.add(nr);
  }

  #checkRule(rule: unknown, method: string): readonly BpfInsn[] | undefined {
    if (!Array.isArray(rule))
      throw new TypeError(
        `${method}: the rule is an array of BPF items (ARG_32, JEQ, ALLOW, ...), got ${describe(rule)}`,
      );
    rule.forEach((it, i) => {
      if (!it || typeof it !== 'object' || typeof (it as { kind?: unknown }).kind !== 'string') {
        throw new TypeError(
          `${method}: rule item ${i} is not a BPF item (build items with ARG_32, JEQ, ALLOW, ...), got ${describe(it)}`,
        );
      }
    });
    const problems = checkRule(rule as BpfInsn[]);
    if (problems.length) {
      for (const p of problems) this.#problems.push(`${method}: ${p}`);
      return undefined;
    }
    return Object.freeze([...(rule as BpfInsn[])]);
  }

  #preset(name: string): boolean {
    if (this.#presets.has(name)) return false;
    this.#presets.add(name);
    return true;
  }

  #allowGroup(name: string, names: readonly string[]): this {
    if (this.#preset(name)) for (const n of names) this.#addAllow(n, name, true);
    return this;
  }

  // ---- raw syscall control ----

  /** Allows a syscall unconditionally (a later rule for the same number never runs). */
  allowSyscall(syscall: SyscallRef): this {
    this.#addAllow(syscall, 'allowSyscall');
    return this;
  }

  /** Allows each syscall unconditionally. */
  allowSyscalls(syscalls: readonly SyscallRef[]): this {
    for (const s of this.#list(syscalls, 'allowSyscalls')) this.#addAllow(s, 'allowSyscalls');
    return this;
  }

  /**
   * Fails a syscall with -errno (a number or a name: 'EPERM'). On an always-denied syscall
   * (ptrace, bpf, ...) it replaces the violation with this errno. First rule wins, as for allow.
   */
  blockSyscallWithErrno(syscall: SyscallRef, errno: number | string): this {
    const e = this.#errno(errno, 'blockSyscallWithErrno');
    const r = this.#resolve(syscall, 'blockSyscallWithErrno');
    if (!r || e === undefined || this.#decided.has(r.nr)) return this;
    this.#decided.add(r.nr);
    this.#rules.push({ kind: 'errno', nr: r.nr, name: r.name, errno: e });
    return this;
  }

  /** blockSyscallWithErrno for each syscall. */
  blockSyscallsWithErrno(syscalls: readonly SyscallRef[], errno: number | string): this {
    for (const s of this.#list(syscalls, 'blockSyscallsWithErrno')) this.blockSyscallWithErrno(s, errno);
    return this;
  }

  /**
   * Adds a raw BPF rule on a syscall (see ARG_32, ARG, JEQ, JNE, JGT, JGE, JSET, JA, LABEL,
   * ALLOW, KILL, ERRNO, TRAP, USER_NOTIF). On entry A holds the syscall number; a rule that does
   * not return falls through to the next rule for that syscall, then to the default action.
   */
  addPolicyOnSyscall(syscall: SyscallRef, rule: readonly BpfInsn[]): this {
    const r = this.#checkRule(rule, `addPolicyOnSyscall(${describe(syscall)})`);
    if (r) this.#addRule(syscall, r, 'addPolicyOnSyscall');
    else this.#resolve(syscall, 'addPolicyOnSyscall');
    return this;
  }

  /**
   * Sends a syscall to the Sandbox's notify handler (`new Sandbox(executor, policy, { onSyscall })`,
   * Sandbox2's Notify::EventSyscallTrace): the calling thread waits in the kernel while the
   * handler answers 'allow' (the kernel runs the call), { errno } or 'kill'. `when`: argument
   * alternatives as in policy files' allowWhen (arg0..arg5, low 32 bits); only matching calls go
   * to the handler, the others fall through to the syscall's later rules, then the default.
   * Call it before the rules that allow the same syscall: the first rule on a syscall wins.
   * Pointer arguments must not be decided on (the sandboxee can change the memory they point to
   * after the handler looked: TOCTOU); docs/policy-guide.md "Notify hooks".
   */
  notifySyscall(syscall: SyscallRef, when?: readonly ArgAlternative[]): this {
    const method = `notifySyscall(${describe(syscall)})`;
    const r = this.#resolve(syscall, method);
    if (!r) return this;
    if (r.name && NETWORK_SYSCALLS.some((n) => n.name === r.name)) {
      this.#problems.push(
        `${method}: ${r.name} cannot be hooked: network calls are decided by the network rules (allowIPv4, allowUnixSocket, ...)`,
      );
      return this;
    }
    if (this.#decided.has(r.nr)) {
      this.#problems.push(
        `${method}: an earlier rule already allows or blocks ${r.name ?? r.nr}, so the hook would never run: call notifySyscall before it`,
      );
      return this;
    }
    if (when === undefined) {
      this.#addRule(syscall, [USER_NOTIF], method);
      return this;
    }
    const rule = argRule(when, method, USER_NOTIF);
    if ('problems' in rule) this.#problems.push(...rule.problems);
    else this.#addRule(syscall, rule.rule, method);
    return this;
  }

  /** The same rule on each syscall. */
  addPolicyOnSyscalls(syscalls: readonly SyscallRef[], rule: readonly BpfInsn[]): this {
    const list = this.#list(syscalls, 'addPolicyOnSyscalls');
    const r = this.#checkRule(rule, 'addPolicyOnSyscalls');
    for (const s of list) {
      if (r) this.#addRule(s, r, 'addPolicyOnSyscalls');
      else this.#resolve(s, 'addPolicyOnSyscalls');
    }
    return this;
  }

  /**
   * What happens to syscalls no rule decides: 'kill' (default; a violation), 'allow', 'log'
   * (SECCOMP_RET_LOG), 'notify' (USER_NOTIF, for learning under a monitor) or { errno }.
   */
  defaultAction(action: 'kill' | 'allow' | 'log' | 'notify' | { readonly errno: number | string }): this {
    if (action === 'kill' || action === 'allow' || action === 'log' || action === 'notify') {
      this.#defaultAction = action;
    } else if (action && typeof action === 'object' && 'errno' in action) {
      const e = this.#errno(action.errno, 'defaultAction');
      if (e !== undefined) this.#defaultAction = { errno: e };
    } else {
      throw new TypeError(
        `defaultAction(action): action must be 'kill', 'allow', 'log', 'notify' or { errno }, got ${describe(action)}`,
      );
    }
    return this;
  }

  // ---- presets (syscall groups: presets.ts) ----

  /** read, readv, pread64, preadv, preadv2. */
  allowRead(): this {
    return this.#allowGroup('allowRead', P.READ);
  }
  /** write, writev, pwrite64, pwritev, pwritev2. */
  allowWrite(): this {
    return this.#allowGroup('allowWrite', P.WRITE);
  }
  /** open, openat, openat2, creat (which files exist is the mount view's business). */
  allowOpen(): this {
    return this.#allowGroup('allowOpen', P.OPEN);
  }
  /** stat, fstat, lstat, newfstatat, statx, statfs, fstatfs. */
  allowStat(): this {
    return this.#allowGroup('allowStat', P.STAT);
  }
  /** access, faccessat, faccessat2. */
  allowAccess(): this {
    return this.#allowGroup('allowAccess', P.ACCESS);
  }
  /** exit, exit_group. */
  allowExit(): this {
    return this.#allowGroup('allowExit', P.EXIT);
  }
  /** time, gettimeofday, clock_gettime, clock_getres. */
  allowTime(): this {
    return this.#allowGroup('allowTime', P.TIME);
  }
  /** nanosleep, clock_nanosleep. */
  allowSleep(): this {
    return this.#allowGroup('allowSleep', P.SLEEP);
  }
  /** getuid, geteuid, getresuid, getgid, getegid, getresgid, getgroups. */
  allowGetIds(): this {
    return this.#allowGroup('allowGetIds', P.GET_IDS);
  }
  /** getpid, getppid, gettid. */
  allowGetPid(): this {
    return this.#allowGroup('allowGetPid', P.GET_PIDS);
  }
  /** Sandbox2's name for allowGetPid. */
  allowGetPids(): this {
    return this.allowGetPid();
  }
  /** futex (every operation). */
  allowFutex(): this {
    return this.#allowGroup('allowFutex', P.FUTEX);
  }
  /** mmap with any protection (PROT_EXEC included, as Sandbox2's AllowMmap(MapExec)). */
  allowMmap(): this {
    return this.#allowGroup('allowMmap', P.MMAP);
  }
  /** glibc malloc: brk, mmap, munmap, mremap, madvise, futex. */
  allowSystemMalloc(): this {
    return this.#allowGroup('allowSystemMalloc', P.SYSTEM_MALLOC);
  }
  /** fcntl with cmd in DUPFD, GETFD, SETFD, GETFL, SETFL, GETLK, SETLK, SETLKW, DUPFD_CLOEXEC. */
  allowSafeFcntl(): this {
    if (this.#preset('allowSafeFcntl')) this.#addRule('fcntl', P.safeFcntlRule(), 'allowSafeFcntl', true);
    return this;
  }

  /**
   * What a static glibc binary does before main: brk, set_tid_address, set_robust_list, rseq,
   * futex, rt_sigaction, rt_sigprocmask, sigaltstack, uname, getrlimit, mprotect, getrandom,
   * prlimit64 reading only (new_limit NULL), arch_prctl(ARCH_SET_FS) on x86_64. Overridable:
   * readlink/readlinkat fail with ENOENT, other arch_prctl codes with EINVAL.
   */
  allowStaticStartup(): this {
    if (!this.#preset('allowStaticStartup')) return this;
    for (const n of P.STATIC_STARTUP) this.#addAllow(n, 'allowStaticStartup', true);
    this.#addRule('prlimit64', P.prlimitGetOnlyRule(), 'allowStaticStartup', true);
    this.#addRule('arch_prctl', P.archPrctlSetFsRule(), 'allowStaticStartup', true);
    for (const [name, rule] of P.STARTUP_OVERRIDABLE)
      if (!this.#overridableDecided.has(syscallNumber(this.#arch, name) ?? -1)) this.#addOverridable(name, rule);
    return this;
  }

  /**
   * What the dynamic loader needs to map a program and its libraries: allowStaticStartup plus
   * allowOpen, allowRead, allowStat, allowAccess, lseek, close, mmap, munmap, mprotect.
   * (PROT_EXEC mappings are allowed, as Sandbox2's AllowDynamicStartup(MapExec).)
   */
  allowDynamicStartup(): this {
    if (!this.#preset('allowDynamicStartup')) return this;
    this.allowStaticStartup().allowOpen().allowRead().allowStat().allowAccess();
    for (const n of P.DYNAMIC_STARTUP_EXTRA) this.#addAllow(n, 'allowDynamicStartup', true);
    return this;
  }

  /**
   * What a Node process needs after its initialisation (sandbox-me-here, custom fork): I/O on open
   * fds, memory (V8 heap, JIT, GC), futex, the epoll event loop, signals, time, getrandom, file
   * opens (unless openFiles: false), process info, messages on connected sockets, exit; fcntl with
   * safe commands. threads: true adds clone (no namespaces), set_robust_list, rseq, prctl(PR_SET_NAME).
   * Groups and reasons: presets.ts NODE_RUNTIME and docs/policy-guide.md.
   */
  allowNodeRuntime(options: NodeRuntimeOptions = {}): this {
    if (options === null || typeof options !== 'object')
      throw new TypeError('allowNodeRuntime(options): options must be an object');
    const { threads = false, openFiles = true } = options;
    const key = `allowNodeRuntime${threads ? '+threads' : ''}${openFiles ? '' : '-files'}`;
    if (!this.#preset(key)) return this;
    for (const [group, names] of Object.entries(P.NODE_RUNTIME)) {
      if (group === 'files' && !openFiles) continue;
      for (const n of names) this.#addAllow(n, 'allowNodeRuntime', true);
    }
    if (!openFiles && !this.#overridableDecided.has(syscallNumber(this.#arch, 'statx') ?? -1)) {
      this.#addOverridable('statx', P.statxEmptyPathEnosysRule()); // fstat of open fds: see presets.ts
    }
    this.allowSafeFcntl();
    if (threads) {
      for (const n of P.NODE_THREADS) this.#addAllow(n, 'allowNodeRuntime', true);
      this.#addRule('prctl', P.prctlSetNameRule(), 'allowNodeRuntime', true);
      // A Worker of Node 24 reads its resource limits (getrlimit(RLIMIT_AS) for its heap): reading only.
      this.#addRule('prlimit64', P.prlimitGetOnlyRule(), 'allowNodeRuntime', true);
    }
    return this;
  }

  /**
   * What `sbx run` allows by default: what ordinary command-line programs (interpreters,
   * compilers, shells, coreutils, git, databases) need, by syscall family: I/O, files and their
   * extended attributes, the caller's memory, processes and threads (no new namespaces), ids,
   * signals, time and timers, resources, event waiting, IPC of the sandbox's own namespace,
   * sockets (unix, IPv4, IPv6, netlink route; where they may connect is the network mode's
   * business), self-restriction (seccomp, Landlock). Administration calls that need a capability
   * fail with EPERM. The always-on denials still come first. Families and how they differ from
   * Docker's default seccomp profile: policy/command-line.ts and docs/policy-guide.md.
   */
  allowCommandLine(): this {
    if (!this.#preset('allowCommandLine')) return this;
    this.allowDynamicStartup().allowSystemMalloc();
    for (const names of Object.values(CL.COMMAND_LINE_FAMILIES))
      for (const n of names) this.#addAllow(n, 'allowCommandLine', true);
    this.#addRule('socket', CL.commandLineSocketRule(), 'allowCommandLine', true);
    this.#addRule('personality', CL.personalityRule(), 'allowCommandLine', true);
    this.#addRule('prlimit64', CL.prlimitSelfRule(), 'allowCommandLine', true);
    for (const n of CL.COMMAND_LINE_EPERM) {
      const nr = syscallNumber(this.#arch, n);
      if (nr !== undefined && !this.#decided.has(nr)) this.blockSyscallWithErrno(n, 'EPERM');
    }
    return this;
  }

  // ---- filesystem view (data for the executor) ----

  #path(p: unknown, method: string, what: string): string | undefined {
    if (typeof p !== 'string') throw new TypeError(`${method}: ${what} must be a string, got ${describe(p)}`);
    if (p.includes('\0')) {
      this.#problems.push(`${method}: ${what} ${JSON.stringify(p)} contains a NUL byte`);
      return undefined;
    }
    if (!isAbsolute(p)) {
      this.#problems.push(`${method}: ${what} "${p}" must be absolute`);
      return undefined;
    }
    const canon = posix.normalize(p).replace(/(.)\/$/, '$1');
    if (canon !== p) {
      this.#problems.push(`${method}: ${what} "${p}" is not canonical (write "${canon}")`);
      return undefined;
    }
    return p;
  }

  #bind(
    method: string,
    outside: unknown,
    inside: unknown,
    kind: 'file' | 'dir',
    opts: unknown,
    quietIfPresent = false,
  ): this {
    if (opts !== undefined && (opts === null || typeof opts !== 'object'))
      throw new TypeError(`${method}: options must be an object`);
    const writable = (opts as BindOptions | undefined)?.writable ?? false;
    if (typeof writable !== 'boolean') throw new TypeError(`${method}: options.writable must be a boolean`);
    const same = outside === inside;
    const out = this.#path(outside, method, same ? 'the path' : 'the outside path');
    const ins = same ? out : this.#path(inside, method, 'the inside path');
    if (!out || !ins) return this;
    if (out === '/proc/self' || out.startsWith('/proc/self/') || /^\/proc\/thread-self(\/|$)/.test(out)) {
      this.#problems.push(`${method}: "${out}" names the executor's own process; mount the whole /proc inside instead`);
      return this;
    }
    let st: Stats;
    try {
      st = statSync(out);
    } catch (e) {
      this.#problems.push(`${method}: stat("${out}"): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return this;
    }
    if (kind === 'file' && st.isDirectory()) {
      this.#problems.push(`${method}: "${out}" is a directory (use addDirectory)`);
      return this;
    }
    if (kind === 'dir' && !st.isDirectory()) {
      this.#problems.push(`${method}: "${out}" is not a directory (use addFile)`);
      return this;
    }
    const mount: BindMount = { kind, outside: out, inside: ins, writable };
    const prev = this.#mounts.get(ins);
    if (prev) {
      if (prev.kind === kind && prev.outside === out) {
        if (writable && !prev.writable) this.#mounts.set(ins, mount);
        return this;
      }
      if (!quietIfPresent) {
        this.#problems.push(
          `${method}: "${ins}" is already mounted (${prev.kind === 'tmpfs' ? 'a tmpfs' : `from "${prev.outside}"`})`,
        );
      }
      return this;
    }
    this.#mounts.set(ins, mount);
    return this;
  }

  /** Makes a host file visible at the same path, read-only unless { writable: true }. */
  addFile(path: string, options?: BindOptions): this {
    return this.#bind('addFile', path, path, 'file', options);
  }
  /** Makes the host file `outside` visible at `inside`. */
  addFileAt(outside: string, inside: string, options?: BindOptions): this {
    return this.#bind('addFileAt', outside, inside, 'file', options);
  }
  /** Makes a host directory visible at the same path, read-only unless { writable: true }. */
  addDirectory(path: string, options?: BindOptions): this {
    return this.#bind('addDirectory', path, path, 'dir', options);
  }
  /** Makes the host directory `outside` visible at `inside`. */
  addDirectoryAt(outside: string, inside: string, options?: BindOptions): this {
    return this.#bind('addDirectoryAt', outside, inside, 'dir', options);
  }
  /** Mounts an empty tmpfs at `inside`. */
  addTmpfs(inside: string, options: TmpfsOptions = {}): this {
    if (options === null || typeof options !== 'object')
      throw new TypeError('addTmpfs(inside, options): options must be an object');
    const size = options.sizeBytes ?? 0;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new TypeError(`addTmpfs: options.sizeBytes must be a non-negative integer, got ${describe(size)}`);
    }
    const ins = this.#path(inside, 'addTmpfs', 'the inside path');
    if (!ins) return this;
    const prev = this.#mounts.get(ins);
    if (prev) {
      this.#problems.push(`addTmpfs: "${ins}" is already mounted`);
      return this;
    }
    this.#mounts.set(ins, { kind: 'tmpfs', inside: ins, sizeBytes: size });
    return this;
  }

  /**
   * The file view `sbx run` gives a program: /usr, /bin, /sbin, /lib* read-only; the /etc files
   * programs read (loader cache, time zone, resolver and service tables, CA certificates,
   * alternatives) but never the whole /etc; a generated /etc/passwd and /etc/group that name the
   * sandbox's user "sandbox" (uid/gid 1000 inside, home /tmp) and a files-only nsswitch.conf, so
   * name lookups never leave the sandbox; a minimal /dev with a tmpfs /dev/shm; the sandbox's own
   * /proc; a 64 MiB tmpfs /tmp. Pair it with standardEnvironment() for HOME, USER and PATH.
   * Options: view/standard-view.ts StandardViewOptions (tmp: false leaves /tmp to the caller).
   */
  addStandardView(options: StandardViewOptions = {}): this {
    if (!this.#preset('addStandardView')) return this;
    addStandardView(this, options);
    return this;
  }

  /**
   * Makes a dynamically linked binary's interpreter and libraries visible (read-only, at their
   * host paths): PT_INTERP and DT_NEEDED, recursively, resolved as ld.so does (DT_RPATH,
   * ldLibraryPath, DT_RUNPATH, /etc/ld.so.conf, default directories; $ORIGIN expanded). Symlinks
   * are followed: both the link and its target are added. The binary itself is not added.
   */
  addLibrariesForBinary(path: string, options: LibrariesOptions = {}): this {
    const p = this.#path(path, 'addLibrariesForBinary', 'the binary path');
    if (!p) return this;
    if (options === null || typeof options !== 'object')
      throw new TypeError('addLibrariesForBinary(path, options): options must be an object');
    const ld = options.ldLibraryPath ?? [];
    if (!Array.isArray(ld) || ld.some((d) => typeof d !== 'string'))
      throw new TypeError('addLibrariesForBinary: options.ldLibraryPath must be an array of strings');
    let res: ResolvedLibraries;
    try {
      res = resolveLibraries(p, { ldLibraryPath: ld });
    } catch (e) {
      this.#problems.push(`addLibrariesForBinary: ${(e as Error).message}`);
      return this;
    }
    for (const m of res.missing) this.#problems.push(`addLibrariesForBinary("${p}"): library ${m} not found`);
    for (const f of res.files) this.#bind('addLibrariesForBinary', f, f, 'file', undefined, true);
    this.#presets.add(`addLibrariesForBinary(${p})`);
    return this;
  }

  // ---- network (rules as data; the monitor enforces them: docs/policy-guide.md "Network rules") ----

  /**
   * Shares the host network (no network namespace): everything the host reaches, the sandboxee
   * reaches. Not recommended; prefer rules. Excludes every rule method below.
   */
  allowUnrestrictedNetworking(): this {
    if (this.#network.mode === 'rules')
      this.#problems.push(
        'allowUnrestrictedNetworking: network rules (allowIPv4/allowIPv6/denyIPv4/denyIPv6/allowDns/allowUnixSocket) were added; use one or the other',
      );
    this.#network = { mode: 'unrestricted', rules: [], unixSockets: [] };
    return this;
  }

  /** Switches to 'rules' mode; false (and a problem) after allowUnrestrictedNetworking(). */
  #rulesMode(method: string): boolean {
    if (this.#network.mode === 'unrestricted') {
      this.#problems.push(`${method}: allowUnrestrictedNetworking() was called; rules would have no effect`);
      return false;
    }
    this.#network.mode = 'rules';
    return true;
  }

  #addNetRule(r: NetworkRule): void {
    const same = (x: NetworkRule): boolean =>
      x.family === r.family &&
      x.address === r.address &&
      x.prefix === r.prefix &&
      x.port === r.port &&
      x.action === r.action;
    if (!this.#network.rules.some(same)) this.#network.rules.push(r);
  }

  #ipRule(family: 4 | 6, cidr: unknown, port: unknown, deny: boolean): this {
    const method = `${deny ? 'deny' : 'allow'}IPv${family}`;
    if (typeof cidr !== 'string')
      throw new TypeError(`${method}(cidr, port): cidr must be a string such as "10.0.0.0/8", got ${describe(cidr)}`);
    if (port !== undefined && typeof port !== 'number')
      throw new TypeError(`${method}(cidr, port): port must be a number, got ${describe(port)}`);
    if (!this.#rulesMode(method)) return this;
    const r = parseNetworkRule(family, cidr, port ?? 0, deny ? 'deny' : undefined);
    if (typeof r === 'string') {
      this.#problems.push(r);
      return this;
    }
    this.#addNetRule(r);
    return this;
  }

  /**
   * Allows connect() (and sends with an address) to an IPv4 network ("10.0.0.0/8" or an address)
   * and port (0/omitted = any), TCP and UDP. The monitor connects from the executor's network
   * namespace: 127.0.0.1 here is the host's loopback, not the sandbox's own lo.
   */
  allowIPv4(cidr: string, port?: number): this {
    return this.#ipRule(4, cidr, port, false);
  }
  /** allowIPv4 for IPv6 ("2001:db8::/32", "::1"). IPv4-mapped destinations (::ffff:a.b.c.d) are decided by the IPv4 rules. */
  allowIPv6(cidr: string, port?: number): this {
    return this.#ipRule(6, cidr, port, false);
  }
  /** Denies an IPv4 network (and port, 0/omitted = any): a deny wins over every allow, e.g. allowIPv4('0.0.0.0/0', 443).denyIPv4('10.0.0.0/8'). */
  denyIPv4(cidr: string, port?: number): this {
    return this.#ipRule(4, cidr, port, true);
  }
  /** denyIPv4 for IPv6. */
  denyIPv6(cidr: string, port?: number): this {
    return this.#ipRule(6, cidr, port, true);
  }

  /**
   * The DNS exception: port 53 (UDP and TCP) to each named resolver (IPv4 or IPv6 addresses),
   * even inside denied networks (a resolver on 127.0.0.53 or 10.0.0.2 under a "no local nets"
   * deny). The sandboxee still needs an /etc/resolv.conf that names them (`sbx run --net dns=IP`
   * binds a generated one).
   */
  allowDns(resolvers: readonly string[]): this {
    if (!Array.isArray(resolvers))
      throw new TypeError(
        `allowDns(resolvers): resolvers must be an array of IP addresses, got ${describe(resolvers)}`,
      );
    if (resolvers.length === 0) this.#problems.push('allowDns: the list of resolvers is empty');
    if (!this.#rulesMode('allowDns')) return this;
    for (const ip of resolvers) {
      const r = dnsRule(ip);
      if (typeof r === 'string') this.#problems.push(r);
      else this.#addNetRule(r);
    }
    return this;
  }

  /**
   * Under network rules, connect() (and datagram sends) to this unix socket path are allowed; every
   * other unix socket path, and every abstract name, is denied. The path is resolved inside the
   * sandbox's mount view; the monitor connects with the executor's credentials (the server's
   * SO_PEERCRED sees the executor). Without network rules unix sockets are governed by the mounts.
   */
  allowUnixSocket(path: string): this {
    if (typeof path !== 'string')
      throw new TypeError(`allowUnixSocket(path): path must be a string, got ${describe(path)}`);
    const bad = checkUnixSocketPath(path);
    if (bad) {
      this.#problems.push(bad);
      return this;
    }
    if (!this.#rulesMode('allowUnixSocket')) return this;
    if (!this.#network.unixSockets.includes(path)) this.#network.unixSockets.push(path);
    return this;
  }

  /**
   * What a denied destination gets: 'violation' (default: the sandbox is killed and the Result
   * names the address), or { errno } (a number or a name such as 'ECONNREFUSED' or 'EACCES'): the
   * call fails with it and the program goes on.
   */
  networkDenyAction(action: 'violation' | { readonly errno: number | string }): this {
    if (action === 'violation') {
      this.#network.onDeny = undefined;
    } else if (action && typeof action === 'object' && 'errno' in action) {
      const e = this.#errno(action.errno, 'networkDenyAction');
      if (e !== undefined) this.#network.onDeny = { errno: e };
    } else {
      throw new TypeError(
        `networkDenyAction(action): action must be 'violation' or { errno }, got ${describe(action)}`,
      );
    }
    return this;
  }

  /**
   * What a network client needs besides its runtime: socket() for AF_UNIX, AF_INET and AF_INET6
   * (other families fail with EAFNOSUPPORT), connect, get/setsockopt, get{sock,peer}name,
   * send/recv calls, shutdown, poll/select. It allows the calls; where they may go is the network
   * mode's business (none: the sandbox's own lo; rules: the monitor decides).
   */
  allowNetworkClient(): this {
    if (!this.#preset('allowNetworkClient')) return this;
    this.#addRule('socket', socketDomainRule(), 'allowNetworkClient', true);
    for (const n of NETWORK_CLIENT_SYSCALLS) this.#addAllow(n, 'allowNetworkClient', true);
    return this;
  }

  // ---- build ----

  /** Problems recorded so far (build() throws them). */
  get problems(): readonly string[] {
    return [...this.#problems];
  }

  /**
   * Returns the immutable Policy, or throws PolicyError('INVALID_POLICY') listing every problem.
   * A builder builds once (PolicyError 'ALREADY_BUILT' after that).
   */
  build(): Policy {
    if (this.#built)
      throw new PolicyError('ALREADY_BUILT', 'build(): this PolicyBuilder was already built; make a new one');
    if (this.#problems.length) throw new PolicyError('INVALID_POLICY', this.#problems);
    this.#built = true;
    const mounts = [...this.#mounts.values()].sort((a, b) => (a.inside < b.inside ? -1 : a.inside > b.inside ? 1 : 0));
    return new Policy({
      arch: this.#arch,
      rules: [...this.#rules],
      overridable: [...this.#overridable],
      defaultAction: this.#defaultAction,
      mounts,
      network: {
        mode: this.#network.mode,
        rules: [...this.#network.rules],
        ...(this.#network.unixSockets.length ? { unixSockets: [...this.#network.unixSockets] } : {}),
        ...(this.#network.onDeny ? { onDeny: this.#network.onDeny } : {}),
      },
      presets: [...this.#presets],
    });
  }
}
