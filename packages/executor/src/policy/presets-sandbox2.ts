/**
 * The rest of Sandbox2's Allow* helpers, as data: each preset names the syscalls it allows outright
 * and the ones it allows only for some arguments (a BPF rule that falls through to the policy's
 * other rules, then to the default action, when the arguments are not the checked ones).
 * PolicyBuilder applies them (one method each); docs/policy-guide.md maps every Sandbox2 helper to
 * its method. Names missing on an architecture (pipe, fork, select... on aarch64) are skipped.
 */
import { ALLOW, AND, ARG, ARG_32, JEQ, JNE, JSET, LABEL } from './bpf.js';
import type { BpfInsn } from './bpf.js';

export interface PresetSpec {
  /** The PolicyBuilder method (also the preset's name in Policy.presets). */
  readonly method: string;
  /** Allowed for every argument. */
  readonly allow: readonly string[];
  /** Allowed only when the rule says so. */
  readonly rules?: ReadonlyArray<readonly [syscall: string, rule: readonly BpfInsn[]]>;
}

const PROT_EXEC = 4;
const MADV_WIPEONFORK = 18;
const PR_SET_NAME = 15;
const PR_SET_VMA = 0x53564d41;
const PR_SET_VMA_ANON_NAME = 0;
const GRND_NONBLOCK = 1;
const TCGETS = 0x5401;
/** FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME: modifiers, not operations. */
const FUTEX_MODIFIERS = 128 | 256;

/** The futex operations by name (linux/futex.h). FUTEX_FD (2) is gone from the kernel. */
export const FUTEX_OPS: Readonly<Record<string, number>> = {
  FUTEX_WAIT: 0,
  FUTEX_WAKE: 1,
  FUTEX_REQUEUE: 3,
  FUTEX_CMP_REQUEUE: 4,
  FUTEX_WAKE_OP: 5,
  FUTEX_LOCK_PI: 6,
  FUTEX_UNLOCK_PI: 7,
  FUTEX_TRYLOCK_PI: 8,
  FUTEX_WAIT_BITSET: 9,
  FUTEX_WAKE_BITSET: 10,
  FUTEX_WAIT_REQUEUE_PI: 11,
  FUTEX_CMP_REQUEUE_PI: 12,
  FUTEX_LOCK_PI2: 13,
};

/** Allowed when the 32-bit argument `arg` is one of `values`. */
function argIn(arg: number, values: readonly number[]): BpfInsn[] {
  const last = values.length - 1;
  return [
    ARG_32(arg),
    ...values.map((v, i) => (i === last ? JEQ(v, 'ok', 'end') : JEQ(v, 'ok'))),
    LABEL('ok'),
    ALLOW,
    LABEL('end'),
  ];
}

/** Allowed when none of `mask`'s bits are set in the 32-bit argument `arg`. */
function argLacks(arg: number, mask: number): BpfInsn[] {
  return [ARG_32(arg), JSET(mask, 'end'), ALLOW, LABEL('end')];
}

/** futex(uaddr, op, ...) with op (less the PRIVATE and CLOCK_REALTIME modifiers) == `op`. */
export function futexOpRule(op: number): BpfInsn[] {
  return [ARG_32(1), AND(~FUTEX_MODIFIERS >>> 0), JEQ(op, 'ok', 'end'), LABEL('ok'), ALLOW, LABEL('end')];
}

/** prlimit64(pid, resource, new, old) on the caller itself (pid 0), reading or setting. */
function prlimitSelfRule(): BpfInsn[] {
  return argIn(0, [0]);
}

/** prlimit64 reading only (new_limit NULL, all 64 bits), any pid the sandbox can see. */
function prlimitReadRule(): BpfInsn[] {
  return [ARG(2), JEQ(0, 'ok', 'end'), LABEL('ok'), ALLOW, LABEL('end')];
}

/** prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, ...): naming anonymous mappings. */
function prctlSetVmaRule(): BpfInsn[] {
  return [ARG_32(0), JNE(PR_SET_VMA, 'end'), ARG_32(1), JNE(PR_SET_VMA_ANON_NAME, 'end'), ALLOW, LABEL('end')];
}

/** mmap with any flags, without PROT_EXEC (Sandbox2's check). */
const mmapNoExec = (): BpfInsn[] => argLacks(2, PROT_EXEC);

const spec = (method: string, allow: readonly string[], rules?: PresetSpec['rules']): PresetSpec => ({
  method,
  allow,
  ...(rules ? { rules } : {}),
});

// ---- files and fds (the calls only; which files exist is the mount view's business) ----
export const DUP = spec('allowDup', ['dup', 'dup2', 'dup3']);
export const PIPE = spec('allowPipe', ['pipe', 'pipe2']);
export const CHMOD = spec('allowChmod', ['chmod', 'fchmod', 'fchmodat', 'fchmodat2']);
export const CHOWN = spec('allowChown', ['chown', 'lchown', 'fchown', 'fchownat']);
export const READDIR = spec('allowReaddir', ['getdents', 'getdents64']);
export const READLINK = spec('allowReadlink', ['readlink', 'readlinkat']);
export const LINK = spec('allowLink', ['link', 'linkat']);
export const SYMLINK = spec('allowSymlink', ['symlink', 'symlinkat']);
export const MKDIR = spec('allowMkdir', ['mkdir', 'mkdirat']);
export const UTIME = spec('allowUtime', ['utime', 'utimes', 'futimesat', 'utimensat']);
export const UNLINK = spec('allowUnlink', ['rmdir', 'unlink', 'unlinkat']);
export const RENAME = spec('allowRename', ['rename', 'renameat', 'renameat2']);
/** ioctl(fd, TCGETS): isatty(). Every other ioctl request falls through. */
export const TCGETS_PRESET = spec('allowTCGETS', [], [['ioctl', argIn(1, [TCGETS])]]);

// ---- event waiting ----
export const EPOLL = spec('allowEpoll', ['epoll_create', 'epoll_create1', 'epoll_ctl']);
export const EPOLL_WAIT = spec('allowEpollWait', ['epoll_wait', 'epoll_pwait', 'epoll_pwait2']);
export const SELECT = spec('allowSelect', ['select', 'pselect6']);
export const POLL = spec('allowPoll', ['poll', 'ppoll']);
export const EVENTFD = spec('allowEventFd', ['eventfd', 'eventfd2']);
/** Sandbox2's AllowInotify allows close too (an inotify fd is closed like any other). */
export const INOTIFY = spec('allowInotify', [
  'inotify_init',
  'inotify_init1',
  'inotify_add_watch',
  'inotify_rm_watch',
  'close',
]);

// ---- processes and signals ----
/** clone with namespace flags stays a violation and clone3 ENOSYS (the always-on denials). */
export const FORK = spec('allowFork', ['fork', 'vfork', 'clone']);
export const WAIT = spec('allowWait', ['wait4', 'waitid']);
/**
 * kill, tgkill, tkill. No argument check is needed to keep signals inside: in namespaces mode the
 * sandbox's pid namespace holds only its own tree; in landlock mode Landlock's signal scope refuses
 * every process outside the sandbox's domain (EPERM).
 */
export const KILL_PRESET = spec('allowKill', ['kill', 'tgkill', 'tkill']);
export const HANDLE_SIGNALS = spec('allowHandleSignals', [
  'rt_sigaction',
  'rt_sigreturn',
  'rt_sigprocmask',
  'restart_syscall',
  'sigaltstack',
  'signal',
  'sigaction',
  'sigreturn',
  'sigprocmask',
]);
export const GET_PGIDS = spec('allowGetPGIDs', ['getpgid', 'getpgrp']);
/** getrlimit, and prlimit64 reading only (new_limit NULL). */
export const GET_RLIMIT = spec('allowGetRlimit', ['getrlimit', 'ugetrlimit'], [['prlimit64', prlimitReadRule()]]);
/**
 * setrlimit (always the caller), and prlimit64 on the caller only (pid 0, what glibc passes).
 * Raising a hard limit still needs CAP_SYS_RESOURCE in the initial user namespace, which no
 * sandboxee has: a sandboxee can only lower its limits or move soft ones up to the hard ones.
 */
export const SET_RLIMIT = spec('allowSetRlimit', ['setrlimit', 'usetrlimit'], [['prlimit64', prlimitSelfRule()]]);
export const PRCTL_SET_NAME = spec('allowPrctlSetName', [], [['prctl', argIn(0, [PR_SET_NAME])]]);
export const PRCTL_SET_VMA = spec('allowPrctlSetVma', [], [['prctl', prctlSetVmaRule()]]);

// ---- time ----
export const ALARM = spec('allowAlarm', ['alarm', 'setitimer', 'getitimer']);
export const POSIX_TIMERS = spec('allowPosixTimers', [
  'timer_create',
  'timer_delete',
  'timer_settime',
  'timer_gettime',
  'timer_getoverrun',
]);
/** getrandom with flags 0 or GRND_NONBLOCK (GRND_RANDOM and unknown flags fall through). */
export const GET_RANDOM = spec('allowGetRandom', [], [['getrandom', argIn(2, [0, GRND_NONBLOCK])]]);

// ---- memory ----
export const MPROTECT = spec('allowMprotect', ['mprotect', 'pkey_mprotect']);
/** mprotect and pkey_mprotect without PROT_EXEC: no page becomes executable after startup. */
export const MPROTECT_NO_EXEC = spec(
  'allowMprotectWithoutExec',
  [],
  [
    ['mprotect', argLacks(2, PROT_EXEC)],
    ['pkey_mprotect', argLacks(2, PROT_EXEC)],
  ],
);
/** mmap (mmap2 on 32-bit) without PROT_EXEC. */
export const MMAP_NO_EXEC = spec(
  'allowMmapWithoutExec',
  [],
  [
    ['mmap', mmapNoExec()],
    ['mmap2', mmapNoExec()],
  ],
);
export const MLOCK = spec('allowMlock', ['mlock', 'munlock', 'mlock2']);
/** madvise(MADV_WIPEONFORK), and advice -1 (how libraries probe for it: EINVAL). */
export const WIPE_ON_FORK = spec('allowWipeOnFork', [], [['madvise', argIn(2, [MADV_WIPEONFORK, 0xffffffff])]]);

/** membarrier commands that only touch the caller's own threads (QUERY and the PRIVATE_EXPEDITED family). */
const MEMBARRIER_PRIVATE = [0, 8, 16, 32, 64, 128, 256];

/**
 * Restartable sequences (tcmalloc, the rseq library): rseq, getcpu, membarrier (private commands;
 * MEMBARRIER_CMD_GLOBAL, which interrupts every CPU of the host, falls through), futex WAIT and
 * WAKE, naming anonymous mappings. slowFences: sched_getaffinity / sched_setaffinity too (the
 * fallback fence pins itself to each CPU in turn). The library reads /proc/self and
 * /sys/devices/system/cpu: mount them with the file view if it needs them.
 */
export function restartableSequences(slowFences: boolean): PresetSpec {
  return spec(
    `allowRestartableSequences${slowFences ? '(slowFences)' : ''}`,
    ['rseq', 'getcpu', ...(slowFences ? ['sched_getaffinity', 'sched_setaffinity'] : [])],
    [
      ['membarrier', argIn(0, MEMBARRIER_PRIVATE)],
      ['futex', futexOpRule(FUTEX_OPS.FUTEX_WAIT!)],
      ['futex', futexOpRule(FUTEX_OPS.FUTEX_WAKE!)],
      ['prctl', prctlSetVmaRule()],
    ],
  );
}
