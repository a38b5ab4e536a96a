/**
 * The syscall groups behind PolicyBuilder's allow* helpers, as data. Names missing on an
 * architecture (open, stat... on aarch64) are skipped by the helpers, never reported.
 * docs/policy-guide.md lists them for users; keep the two in step.
 */
import { ALLOW, ARG, ARG_32, AT_EMPTY_PATH, ERRNO, JEQ, JNE, JSET, LABEL } from './bpf.js';
import type { BpfInsn } from './bpf.js';

export const READ = ['read', 'readv', 'pread64', 'preadv', 'preadv2'] as const;
export const WRITE = ['write', 'writev', 'pwrite64', 'pwritev', 'pwritev2'] as const;
export const OPEN = ['open', 'openat', 'openat2', 'creat'] as const;
export const STAT = ['stat', 'fstat', 'lstat', 'newfstatat', 'statx', 'statfs', 'fstatfs'] as const;
export const ACCESS = ['access', 'faccessat', 'faccessat2'] as const;
export const EXIT = ['exit', 'exit_group'] as const;
export const TIME = ['time', 'gettimeofday', 'clock_gettime', 'clock_getres'] as const;
export const SLEEP = ['nanosleep', 'clock_nanosleep'] as const;
export const GET_IDS = ['getuid', 'geteuid', 'getresuid', 'getgid', 'getegid', 'getresgid', 'getgroups'] as const;
export const GET_PIDS = ['getpid', 'getppid', 'gettid'] as const;
export const FUTEX = ['futex'] as const;
export const MMAP = ['mmap'] as const;
/** glibc malloc: heap (brk), large blocks (mmap/munmap/mremap), trimming (madvise), arena locks (futex). */
export const SYSTEM_MALLOC = ['brk', 'mmap', 'munmap', 'mremap', 'madvise', 'futex'] as const;

/** fcntl commands AllowSafeFcntl permits: DUPFD, GETFD, SETFD, GETFL, SETFL, GETLK, SETLK, SETLKW, DUPFD_CLOEXEC. */
export const SAFE_FCNTL_CMDS = [0, 1, 2, 3, 4, 5, 6, 7, 1030] as const;

/** fcntl(fd, cmd) with cmd (an int: low 32 bits) in SAFE_FCNTL_CMDS. */
export function safeFcntlRule(): BpfInsn[] {
  const last = SAFE_FCNTL_CMDS.length - 1;
  return [
    ARG_32(1),
    ...SAFE_FCNTL_CMDS.map((c, i) => (i === last ? JEQ(c, 'allow', 'end') : JEQ(c, 'allow'))),
    LABEL('allow'),
    ALLOW,
    LABEL('end'),
  ];
}

/**
 * What a statically linked glibc program does before main: TLS setup, robust futex list, rseq,
 * signal setup, stack limit query, malloc's random seed.
 */
export const STATIC_STARTUP = [
  'brk',
  'set_tid_address',
  'set_robust_list',
  'rseq',
  'futex',
  'rt_sigaction',
  'rt_sigprocmask',
  'sigaltstack',
  'uname',
  'getrlimit',
  'mprotect',
  'getrandom',
] as const;

const PR_SET_NAME = 15;
const ARCH_SET_FS = 0x1002;

/** prlimit64(pid, resource, new_limit, old_limit): reading only (new_limit == NULL, 64-bit). */
export function prlimitGetOnlyRule(): BpfInsn[] {
  return [ARG(2), JEQ(0, 'ok', 'end'), LABEL('ok'), ALLOW, LABEL('end')];
}

/** arch_prctl(ARCH_SET_FS, addr): glibc's TLS setup on x86_64. */
export function archPrctlSetFsRule(): BpfInsn[] {
  return [ARG_32(0), JNE(ARCH_SET_FS, 'end'), ALLOW, LABEL('end')];
}

/** prctl(PR_SET_NAME, name): thread naming (V8 and libuv name their threads). */
export function prctlSetNameRule(): BpfInsn[] {
  return [ARG_32(0), JNE(PR_SET_NAME, 'end'), ALLOW, LABEL('end')];
}

/** Overridable fall-backs of the startup helpers: what glibc copes with when it fails. */
export const STARTUP_OVERRIDABLE: ReadonlyArray<readonly [name: string, rule: BpfInsn[]]> = [
  // Static binaries look up their own path; ENOENT makes them skip it.
  ['readlink', [ERRNO(2)]],
  ['readlinkat', [ERRNO(2)]],
  // Other arch_prctl codes (CET/shadow-stack status queries) fail as on a kernel without them.
  ['arch_prctl', [ERRNO(22)]],
];

/**
 * allowDynamicStartup: the loader (ld.so) maps the interpreter's libraries: open, read, stat,
 * access, lseek, close, mmap, munmap, mprotect, pread64, plus everything of allowStaticStartup.
 */
export const DYNAMIC_STARTUP_EXTRA = ['lseek', 'close', 'mmap', 'munmap', 'mprotect'] as const;

/**
 * allowNodeRuntime groups: what a Node process needs after its initialisation (research Q3 found
 * 25 syscalls; the rest cover paths those runs did not hit). Each group is documented in
 * docs/policy-guide.md.
 */
export const NODE_RUNTIME = {
  /** I/O on fds that are already open: files, pipes, the comms socket, stdio. dup: Node 22
   *  duplicates stderr on its way out (a violation at exit otherwise). */
  io: ['read', 'write', 'pread64', 'pwrite64', 'readv', 'writev', 'close', 'fstat', 'lseek', 'ioctl', 'dup'],
  /** V8 heap and JIT code pages, GC, glibc malloc. */
  memory: ['mmap', 'munmap', 'mprotect', 'madvise', 'brk', 'mremap'],
  /** Platform worker threads and the libuv threadpool synchronize with futexes. V8 13 (Node 24)
   *  locks with absl::Mutex, which reads a waiting thread's scheduling priority
   *  (pthread_getschedparam: sched_getscheduler, sched_getparam; read-only, pid-namespaced). */
  sync: ['futex', 'sched_yield', 'getpid', 'gettid', 'sched_getscheduler', 'sched_getparam'],
  /** The libuv event loop (epoll; io_uring is always ENOSYS, so libuv uses epoll and its threadpool). */
  eventLoop: ['epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_ctl'],
  /** Signal masks around thread work, handlers for natural exit, return from handlers. */
  signals: ['rt_sigprocmask', 'rt_sigaction', 'rt_sigreturn', 'restart_syscall', 'sigaltstack'],
  /** Timers, performance.now(), Date, setTimeout sleeps. */
  time: ['clock_gettime', 'clock_getres', 'gettimeofday', 'time', 'nanosleep', 'clock_nanosleep'],
  /** crypto.randomBytes and V8's hash seeds. */
  random: ['getrandom'],
  /** Opening and inspecting files that the mount view shows (readFile, stat, readdir, realpath). */
  files: [
    'openat',
    'newfstatat',
    'statx',
    'getdents64',
    'readlinkat',
    'readlink',
    'faccessat',
    'faccessat2',
    'access',
    'stat',
    'lstat',
    'getcwd',
  ],
  /** process.* and os.* queries that ask the kernel. */
  processInfo: ['getuid', 'geteuid', 'getgid', 'getegid', 'getrusage', 'uname', 'sched_getaffinity'],
  /** Messages on sockets that are already connected (the comms channel); no socket(), no connect(). */
  comms: ['sendmsg', 'recvmsg', 'sendto', 'recvfrom'],
  /** process.exit() and natural exit, from any thread. */
  exit: ['exit', 'exit_group'],
} as const;

/**
 * allowNodeRuntime({ openFiles: false }): statx with AT_EMPTY_PATH fails with ENOSYS (overridable).
 * libuv stats an fd as statx(fd, "", AT_EMPTY_PATH) and, on ENOSYS, switches for good to
 * fstat(fd), which the io group allows: fs.fstat, fs.fstatSync and fs.readFile(fd) work. Allowing
 * the call instead would be a hole: BPF cannot read the path, and with a non-empty path
 * AT_EMPTY_PATH changes nothing, so statx(AT_FDCWD, "/any/path", AT_EMPTY_PATH) would stat every
 * path in the sandbox's view; a monitor that checked the path and let the call continue would
 * race the sandboxee's other threads (Node always has some) rewriting it. Without the flag,
 * statx is a path lookup, reported as a violation as before.
 */
export function statxEmptyPathEnosysRule(): BpfInsn[] {
  return [ARG_32(2), JSET(AT_EMPTY_PATH, 'fd', 'end'), LABEL('fd'), ERRNO(38), LABEL('end')];
}

/**
 * allowNodeRuntime({ threads: true }): new threads (Workers). clone with namespace flags stays
 * denied; clone3 is ENOSYS so glibc falls back to clone. A Worker also builds its own event loop
 * (epoll_create1, eventfd2, pipe2) and checks its privileges (capget) at start; on Node 24 it
 * reads its resource limits (prlimit64 reading only, policy-builder.ts) and names itself (prctl
 * PR_SET_NAME).
 */
export const NODE_THREADS = [
  'clone',
  'set_robust_list',
  'rseq',
  'sched_getaffinity',
  'epoll_create1',
  'eventfd2',
  'pipe2',
  'capget',
] as const;
