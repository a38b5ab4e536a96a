/**
 * allowCommandLine(): what ordinary command-line programs (interpreters, compilers, coreutils,
 * git, databases) need, as syscall families. `sbx run` uses it as its default; docs/policy-guide.md
 * "The command-line default" lists each family and where it differs from Docker's default seccomp
 * profile, the anchor it was drawn against. Names missing on an architecture are skipped.
 *
 * What keeps this safe is not the list: the always-on denials (denials.ts) still come first, the
 * sandbox has its own user, mount, pid, net, ipc and uts namespaces, and the file view is what
 * the policy binds. The families are chosen so that a syscall either acts on the caller itself or
 * on objects inside those namespaces, or needs a capability the sandboxee does not hold.
 */
import { ALLOW, ARG_32, ERRNO, JEQ, LABEL } from './bpf.js';
import type { BpfInsn } from './bpf.js';

const EPERM = 1;
const EAFNOSUPPORT = 97;

export const COMMAND_LINE_FAMILIES = {
  /** I/O on open fds: read/write in all forms, seeking, duplicating, fcntl, zero-copy, syncing, advisory locks. */
  io: [
    'read',
    'readv',
    'pread64',
    'preadv',
    'preadv2',
    'write',
    'writev',
    'pwrite64',
    'pwritev',
    'pwritev2',
    'lseek',
    'close',
    'close_range',
    'dup',
    'dup2',
    'dup3',
    'fcntl',
    'ioctl',
    'sendfile',
    'copy_file_range',
    'splice',
    'tee',
    'vmsplice',
    'readahead',
    'fadvise64',
    'fallocate',
    'ftruncate',
    'truncate',
    'fsync',
    'fdatasync',
    'sync',
    'syncfs',
    'sync_file_range',
    'flock',
  ],
  /** Paths in the file view: open, stat, list, create, rename, link, remove, permissions, owners, times, inotify. */
  files: [
    'open',
    'openat',
    'openat2',
    'creat',
    'stat',
    'fstat',
    'lstat',
    'newfstatat',
    'statx',
    'statfs',
    'fstatfs',
    'access',
    'faccessat',
    'faccessat2',
    'getdents',
    'getdents64',
    'getcwd',
    'chdir',
    'fchdir',
    'readlink',
    'readlinkat',
    'mkdir',
    'mkdirat',
    'rmdir',
    'unlink',
    'unlinkat',
    'rename',
    'renameat',
    'renameat2',
    'link',
    'linkat',
    'symlink',
    'symlinkat',
    'mknod',
    'mknodat',
    'chmod',
    'fchmod',
    'fchmodat',
    'fchmodat2',
    'chown',
    'fchown',
    'lchown',
    'fchownat',
    'umask',
    'utime',
    'utimes',
    'utimensat',
    'futimesat',
    'inotify_init',
    'inotify_init1',
    'inotify_add_watch',
    'inotify_rm_watch',
  ],
  /** Extended attributes (ls -l asks for ACLs and SELinux labels; cp -a copies them). */
  xattr: [
    'getxattr',
    'lgetxattr',
    'fgetxattr',
    'listxattr',
    'llistxattr',
    'flistxattr',
    'setxattr',
    'lsetxattr',
    'fsetxattr',
    'removexattr',
    'lremovexattr',
    'fremovexattr',
    'getxattrat',
    'setxattrat',
    'listxattrat',
    'removexattrat',
  ],
  /**
   * The caller's own memory: mappings, protections, locking (bounded by RLIMIT_MEMLOCK), NUMA
   * policy (ps and numa-aware runtimes ask), memory protection keys, shadow stacks.
   * memfd_create is here (anonymous files: JIT runtimes, multiprocessing, sbx's own Buffers);
   * each memfd is bounded by RLIMIT_FSIZE, which follows rlimitAs (limits.ts), and is charged to a
   * memory cgroup where one is delegated.
   */
  memory: [
    'brk',
    'mmap',
    'munmap',
    'mremap',
    'mprotect',
    'madvise',
    'msync',
    'mincore',
    'mlock',
    'mlock2',
    'munlock',
    'mlockall',
    'munlockall',
    'remap_file_pages',
    'get_mempolicy',
    'set_mempolicy',
    'mbind',
    'pkey_alloc',
    'pkey_free',
    'pkey_mprotect',
    'membarrier',
    'memfd_create',
    'map_shadow_stack',
    'cachestat',
  ],
  /**
   * Processes and threads of the sandbox's own pid namespace: fork, clone (the always-on rule
   * kills namespace flags), exec, wait, sessions and process groups, prctl and arch_prctl on
   * itself, pidfds, scheduling of its own threads.
   */
  processes: [
    'fork',
    'vfork',
    'clone',
    'execve',
    'execveat',
    'wait4',
    'waitid',
    'exit',
    'exit_group',
    'set_tid_address',
    'set_robust_list',
    'rseq',
    'getpid',
    'getppid',
    'gettid',
    'getpgid',
    'setpgid',
    'getpgrp',
    'getsid',
    'setsid',
    'prctl',
    'arch_prctl',
    'unshare',
    'pidfd_open',
    'pidfd_send_signal',
    'sched_yield',
    'sched_getaffinity',
    'sched_setaffinity',
    'sched_getparam',
    'sched_setparam',
    'sched_getscheduler',
    'sched_setscheduler',
    'sched_get_priority_max',
    'sched_get_priority_min',
    'sched_rr_get_interval',
    'sched_getattr',
    'sched_setattr',
    'getpriority',
    'setpriority',
    'ioprio_get',
    'ioprio_set',
    'getcpu',
  ],
  /** The caller's ids and capabilities: reading them, and changing them where the kernel lets an unprivileged process. */
  identity: [
    'getuid',
    'geteuid',
    'getgid',
    'getegid',
    'getresuid',
    'getresgid',
    'getgroups',
    'setuid',
    'setgid',
    'setreuid',
    'setregid',
    'setresuid',
    'setresgid',
    'setfsuid',
    'setfsgid',
    'setgroups',
    'capget',
    'capset',
  ],
  /** Signals within the sandbox's pid namespace (and Landlock's signal scope), handlers, waiting. */
  signals: [
    'rt_sigaction',
    'rt_sigprocmask',
    'rt_sigreturn',
    'rt_sigpending',
    'rt_sigsuspend',
    'rt_sigtimedwait',
    'rt_sigqueueinfo',
    'rt_tgsigqueueinfo',
    'sigaltstack',
    'signalfd',
    'signalfd4',
    'kill',
    'tkill',
    'tgkill',
    'pause',
    'restart_syscall',
  ],
  /** Clocks, sleeps, alarms, interval timers, POSIX timers, timerfds; reading (never setting) the system clock. */
  time: [
    'time',
    'gettimeofday',
    'clock_gettime',
    'clock_getres',
    'clock_nanosleep',
    'nanosleep',
    'alarm',
    'getitimer',
    'setitimer',
    'timer_create',
    'timer_settime',
    'timer_gettime',
    'timer_getoverrun',
    'timer_delete',
    'timerfd_create',
    'timerfd_settime',
    'timerfd_gettime',
    'times',
    'adjtimex',
    'clock_adjtime',
  ],
  /** The caller's own limits and usage, and what the system is (prlimit64 has its own rule: the caller only). */
  resources: ['getrlimit', 'setrlimit', 'getrusage', 'sysinfo', 'uname', 'getrandom'],
  /** Waiting for events: poll, select, epoll, eventfd, pipes, futexes, legacy AIO. (io_uring: always ENOSYS.) */
  events: [
    'poll',
    'ppoll',
    'select',
    'pselect6',
    'epoll_create',
    'epoll_create1',
    'epoll_ctl',
    'epoll_wait',
    'epoll_pwait',
    'epoll_pwait2',
    'eventfd',
    'eventfd2',
    'pipe',
    'pipe2',
    'futex',
    'futex_waitv',
    'futex_wake',
    'futex_wait',
    'futex_requeue',
    'io_setup',
    'io_destroy',
    'io_submit',
    'io_cancel',
    'io_getevents',
    'io_pgetevents',
  ],
  /** System V and POSIX IPC: the sandbox has its own IPC namespace, so these meet only its own processes. */
  ipc: [
    'shmget',
    'shmat',
    'shmdt',
    'shmctl',
    'semget',
    'semop',
    'semtimedop',
    'semctl',
    'msgget',
    'msgsnd',
    'msgrcv',
    'msgctl',
    'mq_open',
    'mq_unlink',
    'mq_timedsend',
    'mq_timedreceive',
    'mq_notify',
    'mq_getsetattr',
  ],
  /**
   * Sockets (socket() has its own rule: unix, IPv4, IPv6, netlink route). Where a connection goes
   * is the network mode's business: no network is a private net namespace with only its own lo;
   * under network rules the monitor decides every connect, bind, listen and addressed send.
   */
  sockets: [
    'socketpair',
    'bind',
    'listen',
    'accept',
    'accept4',
    'connect',
    'getsockname',
    'getpeername',
    'getsockopt',
    'setsockopt',
    'sendto',
    'recvfrom',
    'sendmsg',
    'recvmsg',
    'sendmmsg',
    'recvmmsg',
    'shutdown',
  ],
  /** A program restricting itself further: its own seccomp filters (never a listener), Landlock. */
  selfRestriction: ['seccomp', 'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self'],
} as const;

/**
 * Administration calls that need a capability the sandboxee never holds: they fail with EPERM,
 * as they would for any unprivileged process (a program that probes them goes on), instead of
 * ending the sandbox. Reading another process's memory (process_vm_*), comparing its kernel
 * objects (kcmp) and taking its fds (pidfd_getfd) are here too: ptrace-class powers.
 */
export const COMMAND_LINE_EPERM = [
  'chroot',
  'setns',
  'sethostname',
  'setdomainname',
  'settimeofday',
  'clock_settime',
  'acct',
  'swapon',
  'swapoff',
  'reboot',
  'quotactl',
  'quotactl_fd',
  'vhangup',
  'syslog',
  'iopl',
  'ioperm',
  'fanotify_init',
  'fanotify_mark',
  'name_to_handle_at',
  'lookup_dcookie',
  'process_vm_readv',
  'process_vm_writev',
  'process_madvise',
  'kcmp',
  'pidfd_getfd',
] as const;

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const NETLINK_ROUTE = 0;

/**
 * socket(domain, type, protocol): unix, IPv4, IPv6, and netlink with NETLINK_ROUTE only (glibc's
 * getaddrinfo and if_nameindex read the interface list through it; in the private net namespace
 * that list is the sandbox's own lo). Every other family fails with EAFNOSUPPORT.
 */
export function commandLineSocketRule(): BpfInsn[] {
  return [
    ARG_32(0),
    JEQ(AF_UNIX, 'ok'),
    JEQ(AF_INET, 'ok'),
    JEQ(AF_INET6, 'ok'),
    JEQ(AF_NETLINK, 'netlink', 'refuse'),
    LABEL('netlink'),
    ARG_32(2),
    JEQ(NETLINK_ROUTE, 'ok', 'refuse'),
    LABEL('refuse'),
    ERRNO(EAFNOSUPPORT),
    LABEL('ok'),
    ALLOW,
  ];
}

/** personality(): the Linux personality, the 32-bit and UNAME26 variants, and the query (0xffffffff). Others EPERM. */
export const PERSONALITY_ALLOWED = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff] as const;

export function personalityRule(): BpfInsn[] {
  const last = PERSONALITY_ALLOWED.length - 1;
  return [
    ARG_32(0),
    ...PERSONALITY_ALLOWED.map((p, i) => (i === last ? JEQ(p, 'ok', 'refuse') : JEQ(p, 'ok'))),
    LABEL('refuse'),
    ERRNO(EPERM),
    LABEL('ok'),
    ALLOW,
  ];
}

/** prlimit64(pid, ...): the caller's own limits (pid 0); another process's fail with EPERM. */
export function prlimitSelfRule(): BpfInsn[] {
  return [ARG_32(0), JEQ(0, 'ok', 'refuse'), LABEL('refuse'), ERRNO(EPERM), LABEL('ok'), ALLOW];
}

/**
 * The scheduling calls that name a process, restricted to the caller itself (landlock isolation,
 * where the host's pid namespace is shared and the sandboxee's uid may be shared with processes
 * outside: Landlock's scopes cover signals and ptrace, not these). Another process: EPERM.
 * setpriority(which, who, prio) and ioprio_set(which, who, ioprio): PRIO_PROCESS (0) /
 * IOPRIO_WHO_PROCESS (1) with who 0; sched_set*(pid, ...): pid 0.
 */
export function schedulingSelfRules(): Array<[string, BpfInsn[]]> {
  const pidZero = (): BpfInsn[] => [
    ARG_32(0),
    JEQ(0, 'ok', 'refuse'),
    LABEL('refuse'),
    ERRNO(EPERM),
    LABEL('ok'),
    ALLOW,
  ];
  const whichWho = (which: number): BpfInsn[] => [
    ARG_32(0),
    JEQ(which, 'who', 'refuse'),
    LABEL('who'),
    ARG_32(1),
    JEQ(0, 'ok', 'refuse'),
    LABEL('refuse'),
    ERRNO(EPERM),
    LABEL('ok'),
    ALLOW,
  ];
  return [
    ['setpriority', whichWho(0)],
    ['ioprio_set', whichWho(1)],
    ['sched_setaffinity', pidZero()],
    ['sched_setscheduler', pidZero()],
    ['sched_setparam', pidZero()],
    ['sched_setattr', pidZero()],
  ];
}
