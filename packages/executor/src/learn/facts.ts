/**
 * What a learning run watches (docs/policy-guide.md "Learning a policy").
 *
 * BASE_SET: syscalls so frequent that notifying each call would cost more than it tells, and
 * harmless enough to allow in every learned policy: plain I/O on fds the program already has,
 * closing them, heap growth and unmapping, futex, time, its own ids, yielding, signal return and
 * exit. They are allowed during learning without notification and always written to the policy.
 *
 * ARG_FACTS: the syscalls whose arguments a learned policy narrows, and which register arguments
 * (low 32 bits; never memory) the monitor records for them.
 */

export const BASE_SET: readonly string[] = Object.freeze([
  'read',
  'write',
  'readv',
  'writev',
  'pread64',
  'pwrite64',
  'lseek',
  'close',
  'brk',
  'munmap',
  'futex',
  'clock_gettime',
  'gettimeofday',
  'getpid',
  'gettid',
  'sched_yield',
  'rt_sigreturn',
  'restart_syscall',
  'exit',
  'exit_group',
]);

/**
 * Under network rules the monitor decides these calls (connects from the executor's namespace);
 * learning lets the monitor do so, so they are allowed while learning and in the learned policy.
 */
export const NETWORK_DECIDED: readonly string[] = Object.freeze(['connect', 'sendto', 'sendmsg', 'sendmmsg']);

export interface ArgFactSpec {
  /** Arguments recorded (indexes). */
  readonly args: readonly number[];
  /**
   * 'values': the policy allows exactly the recorded combinations (enumerations: commands,
   * families, protections, clone flag sets). 'flags': the policy allows any value with no bit
   * outside the union of what was seen (open flags vary by call site; a new bit is new power).
   */
  readonly form: 'values' | 'flags';
}

export const ARG_FACTS: Readonly<Record<string, ArgFactSpec>> = Object.freeze({
  socket: { args: [0, 1], form: 'values' }, // family, type (with SOCK_CLOEXEC / SOCK_NONBLOCK)
  socketpair: { args: [0, 1], form: 'values' },
  ioctl: { args: [1], form: 'values' }, // command
  mmap: { args: [2], form: 'values' }, // protection
  mprotect: { args: [2], form: 'values' },
  pkey_mprotect: { args: [2], form: 'values' },
  clone: { args: [0], form: 'values' }, // flags (namespace flags are always denied anyway)
  fcntl: { args: [1], form: 'values' }, // command
  prctl: { args: [0], form: 'values' }, // option
  open: { args: [1], form: 'flags' }, // O_* flags
  openat: { args: [2], form: 'flags' },
});

/** Distinct (syscall, recorded arguments) facts one sandbox may produce before it is stopped. */
export const MAX_FACTS = 4096;
