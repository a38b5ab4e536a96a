/**
 * The always-on rules every sbx filter carries, as data. The compiler turns them into BPF; the
 * policy model (model.ts) interprets the same data directly, so the two can check each other.
 * The escape classes behind them: docs/policy-guide.md, "Always-on denials", and docs/security.md.
 */
import {
  CLONE_NEW_ANY,
  SECCOMP_FILTER_FLAG_NEW_LISTENER,
  TIOCCONS,
  TIOCEXCL,
  TIOCLINUX,
  TIOCSCTTY,
  TIOCSETD,
  TIOCSTI,
  TIOCVHANGUP,
} from './bpf.js';

/** The forkserver's exec: execveat(SBX_EXEC_FD_TARGET, "", argv, envp, AT_EMPTY_PATH, SBX_EXEC_MAGIC).
 *  Defined once, with the rest of the forkserver protocol. */
export { EXEC_MAGIC as SBX_EXEC_MAGIC, EXEC_FD_TARGET as SBX_EXEC_FD_TARGET } from '../forkserver/protocol.js';

/** A condition on the low 32 bits of one argument (all the checked arguments are C ints). */
export interface ArgCondition {
  readonly arg: number;
  /** 'any-bit': (arg & values[0]) != 0. 'one-of': arg equals one of values. */
  readonly test: 'any-bit' | 'one-of';
  readonly values: readonly number[];
}

export interface Denial {
  readonly name: string;
  /** A violation (KILL_PROCESS / USER_NOTIF), or a fixed errno (ENOSYS for the fall-back cases). */
  readonly verdict: 'violation' | { readonly errno: number };
  /** Only when the condition holds; otherwise the syscall goes on to the user's rules. */
  readonly when?: ArgCondition;
  /** With `when`: also when this one holds (either is enough). */
  readonly orWhen?: ArgCondition;
  /** Why, one line (shown by docs and explanations). */
  readonly why: string;
}

const ENOSYS = 38;
const EPERM = 1;
const ANY_VALUE = 0xffffffff;

/**
 * The terminal ioctls that are a violation on any fd (the caller's terminal may be the sandboxee's
 * stdio). Terminal modes (TCSETS*), window size and the like stay the policy's to allow.
 */
export const TTY_IOCTLS_DENIED: readonly number[] = Object.freeze([
  TIOCSTI,
  TIOCLINUX,
  TIOCSCTTY,
  TIOCSETD,
  TIOCVHANGUP,
  TIOCEXCL,
  TIOCCONS,
]);

const unconditional = (names: string[], why: string): Denial[] =>
  names.map((name) => ({ name, verdict: 'violation', why }));

/**
 * In order of the checks. A user blockSyscallWithErrno() on one of these names (as its first rule
 * for that syscall) replaces the verdict with that errno, as Sandbox2 allows for ptrace and bpf.
 */
export const ALWAYS_DENIED: readonly Denial[] = Object.freeze([
  ...unconditional(['ptrace'], 'tracing another process, historically a seccomp bypass'),
  ...unconditional(['bpf'], 'eBPF verifier bugs give kernel read/write'),
  {
    name: 'clone',
    verdict: 'violation',
    when: { arg: 0, test: 'any-bit', values: [CLONE_NEW_ANY] },
    why: 'a new namespace (user namespaces above all) enlarges the kernel surface and can undo mounts',
  },
  {
    name: 'unshare',
    verdict: 'violation',
    when: { arg: 0, test: 'any-bit', values: [CLONE_NEW_ANY] },
    why: 'a new namespace (user namespaces above all) enlarges the kernel surface and can undo mounts',
  },
  {
    name: 'clone3',
    verdict: { errno: ENOSYS },
    why: 'its flags are in memory a filter cannot read; ENOSYS makes libc fall back to clone',
  },
  {
    name: 'io_uring_setup',
    verdict: { errno: ENOSYS },
    why: 'io_uring performs I/O no seccomp rule sees; ENOSYS makes libuv fall back to epoll and threads',
  },
  { name: 'io_uring_enter', verdict: { errno: ENOSYS }, why: 'io_uring performs I/O no seccomp rule sees' },
  { name: 'io_uring_register', verdict: { errno: ENOSYS }, why: 'io_uring performs I/O no seccomp rule sees' },
  {
    name: 'seccomp',
    verdict: 'violation',
    when: { arg: 1, test: 'any-bit', values: [SECCOMP_FILTER_FLAG_NEW_LISTENER] },
    why: 'a second listener would let the sandboxee supervise itself',
  },
  ...unconditional(['keyctl', 'add_key', 'request_key'], 'kernel keyrings are not namespaced'),
  ...unconditional(['perf_event_open'], 'long local-privilege-escalation history'),
  ...unconditional(['userfaultfd'], 'used to win kernel races in exploits'),
  ...unconditional(['open_by_handle_at'], 'reopens host inodes by handle, past the mount view'),
  ...unconditional(['kexec_load', 'kexec_file_load'], 'loads a new kernel'),
  ...unconditional(['init_module', 'finit_module', 'delete_module'], 'kernel module loading'),
  ...unconditional(
    [
      'mount',
      'umount2',
      'pivot_root',
      'move_mount',
      'open_tree',
      'open_tree_attr',
      'fsopen',
      'fsmount',
      'fsconfig',
      'fspick',
      'mount_setattr',
    ],
    'the mount tree is final once the filter is on',
  ),
  {
    name: 'ioctl',
    verdict: 'violation',
    when: { arg: 1, test: 'one-of', values: [...TTY_IOCTLS_DENIED] },
    why:
      "pushes input into a terminal (TIOCSTI, TIOCLINUX), or takes, breaks or hangs up the caller's terminal " +
      '(TIOCSCTTY, TIOCSETD, TIOCVHANGUP, TIOCEXCL, TIOCCONS); cmd compared on its low 32 bits, as the kernel reads it',
  },
  {
    name: 'prlimit64',
    verdict: 'violation',
    when: { arg: 0, test: 'any-bit', values: [0xffffffff] },
    why: "another process's limits (pid != 0): the sandbox's init, the executor, a forkserver or a host process of the same uid",
  },
  // Scheduling: the caller only (pid/who 0). Where the host's pid namespace is shared (landlock
  // isolation) these reach every process of the sandboxee's uid, which Landlock's scopes do not
  // cover: a host process of a shared uid, or the monitor's acting thread (the sandbox's uid).
  {
    name: 'setpriority',
    verdict: { errno: EPERM },
    when: { arg: 0, test: 'one-of', values: [1, 2] }, // PRIO_PGRP, PRIO_USER
    orWhen: { arg: 1, test: 'any-bit', values: [ANY_VALUE] },
    why: "another process's, group's or user's priority (only PRIO_PROCESS with who 0, the caller, passes)",
  },
  {
    name: 'ioprio_set',
    verdict: { errno: EPERM },
    when: { arg: 0, test: 'one-of', values: [2, 3] }, // IOPRIO_WHO_PGRP, IOPRIO_WHO_USER
    orWhen: { arg: 1, test: 'any-bit', values: [ANY_VALUE] },
    why: "another process's, group's or user's I/O priority (only IOPRIO_WHO_PROCESS with who 0 passes)",
  },
  ...['sched_setaffinity', 'sched_setscheduler', 'sched_setparam', 'sched_setattr'].map(
    (name): Denial => ({
      name,
      verdict: { errno: EPERM },
      when: { arg: 0, test: 'any-bit', values: [ANY_VALUE] },
      why: "another process's scheduling (pid != 0)",
    }),
  ),
] satisfies Denial[]);
