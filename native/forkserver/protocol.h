/*
 * protocol.h: the request/reply protocol between the executor (TS) and the global forkserver.
 * Mirrored in packages/executor/src/forkserver/protocol.ts; docs/wire-protocol.md explains it.
 *
 * Transport: Comms (sbx/comms.h) on fd SBX_FS_COMMS_FD of the forkserver process.
 *
 * Executor -> forkserver
 *   SBX_FS_SPAWN: payload = an op list (below), then one SBX_TAG_FD message for every op that
 *   consumes an fd (SBX_OP_FD, SBX_OP_SETUP_SOCKET), in op order.
 *   SBX_FS_POOL, SBX_FS_POOL_STATS: the spawn pool (tags below; pool.h).
 * Forkserver -> executor (asynchronous; matched by request id)
 *   SBX_FS_SPAWNED: u64 request_id | i32 err (0 or -errno) | u32 pid (host view) | u32 step |
 *     u32 failure flags | message bytes (UTF-8, may be empty). When err == 0 it is followed by one
 *     SBX_TAG_FD: the child's pidfd. When err != 0, step (enum sbx_step) and the flags
 *     (SBX_FAILURE_*) say which step failed and how; the message is for people only.
 *   SBX_FS_EXITED:  u64 request_id | u32 pid | i32 wait_status | u64 utime_us | u64 stime_us |
 *     u64 maxrss_kib | u32 flags (SBX_EXITED_*)   (sent when the forkserver reaps the sandboxee
 *     it started)
 *
 * Op list: a concatenation of TLVs in the Comms format (u32 op, u64 len, len bytes), all
 * integers little-endian, strings as raw bytes without NUL (a NUL inside is an error).
 * The forkserver rejects unknown ops, short or oversized payloads and missing required ops with
 * SBX_FS_SPAWNED err = -EINVAL and a message naming the op.
 *
 * Child -> executor, on the setup socket (SBX_OP_SETUP_SOCKET, kept at fd SBX_SETUP_FD_TARGET
 * until exec, CLOEXEC):
 *   SBX_SETUP_FAILED  u32 step (enum sbx_step) | i32 errno (positive) | u32 flags (SBX_FAILURE_*)
 *                     | "step: call(args): strerror" (for people): a setup step failed; the child
 *                     then _exit()s
 *   SBX_TAG_UINT32 n   the seccomp listener will be fd n in the child (sent just before the
 *                      filter goes on). The executor takes it with pidfd_getfd() while the child
 *                      is parked in its first, notified execveat (see SBX_EXEC_MAGIC). Until the
 *                      child's seccomp() has returned, pidfd_getfd(n) fails with EBADF: retry
 *                      (no other fd can take number n in between). A String after n means
 *                      seccomp() failed.
 *   SBX_TAG_FD         (with CLONE_NEWPID or SBX_OP_REAPER and a listener, before n) the target's own pidfd: the
 *                      target is pid 2 under a small init, and pidfd_getfd(n) must ask it
 *   SBX_INIT_STATUS    (with CLONE_NEWPID or SBX_OP_REAPER) i32 raw wait status of the target
 *                      then u64 utime_us, u64 stime_us, u64 maxrss_kib of all the init
 *                      reaped (the whole tree but the init), sent by the init when the target ends
 *                      (after every other process was reaped); the init then exits and the
 *                      namespace dies (REAPER: after it has killed and reaped every descendant)
 *   EOF: every holder of the setup socket is gone (exec'd or exited).
 */
#ifndef SBX_FORKSERVER_PROTOCOL_H
#define SBX_FORKSERVER_PROTOCOL_H

/* The forkserver's own comms fd (inherited from the executor). */
#define SBX_FS_COMMS_FD 3

/* Message tags (user range). */
#define SBX_FS_SPAWN   0x00005301u
#define SBX_FS_SPAWNED 0x00005302u
#define SBX_FS_EXITED  0x00005303u
/* On the setup socket, from the sandbox's init (pid 1): i32 raw wait status of the target. */
#define SBX_INIT_STATUS 0x00005304u
/* Spawn pool (pool.h). Executor -> forkserver: u32 size (0 = off). */
#define SBX_FS_POOL 0x00005305u
/* Executor -> forkserver: empty. Forkserver -> executor, in order of the queries:
 *   u32 size | u32 ready | u32 preparing | u32 failures | u64 hits | u64 misses |
 *   u64 recycled | u64 prepared | last failure message (UTF-8, may be empty) */
#define SBX_FS_POOL_STATS 0x00005306u
/* Slot -> forkserver on the slot's own socket: empty, the frozen setup is done. */
#define SBX_FS_SLOT_READY 0x00005307u
/* Child -> executor on the setup socket (a slot: -> forkserver on its socket): a step failed. */
#define SBX_SETUP_FAILED        0x00005308u
#define SBX_SETUP_FAILED_HEADER 12u /* u32 step | i32 errno | u32 flags, then the message */
/* Child -> executor on the setup socket, with SBX_OP_TRACE, right before the seccomp step (or the
 * exec without a filter): n entries of u32 step (enum sbx_step) | u32 0 | u64 CLOCK_MONOTONIC ns
 * at the end of that step, in order. Forkserver steps before the clone (REQUEST, OPEN_EXEC, CGROUP)
 * are recorded by the forkserver and carried by the child; CLONE is the child's first moment, POOL
 * the moment a spawn-pool slot received its request. */
#define SBX_SETUP_TRACE      0x00005309u
#define SBX_TRACE_ENTRY_SIZE 16u
#define SBX_TRACE_MAX        32u

/* The steps from a request to execveat, as failure reports name them. Their kind is decided from
 * these numbers and the errno, never from the message text. Append only (the executor mirrors
 * them in forkserver/protocol.ts). */
enum sbx_step {
  SBX_STEP_NONE = 0,          /* not a step (out of memory, a broken request stream) */
  SBX_STEP_REQUEST = 1,       /* parsing the op list, receiving its fds */
  SBX_STEP_OPEN_EXEC = 2,     /* opening the binary O_PATH (forkserver) */
  SBX_STEP_CGROUP = 3,        /* opening or joining the sandbox's cgroup (forkserver) */
  SBX_STEP_CLONE = 4,         /* clone3 / clone into the namespaces (forkserver) */
  SBX_STEP_ID_MAP = 5,        /* writing the uid/gid maps from outside (forkserver) */
  SBX_STEP_RELEASE = 6,       /* the child waits for the maps (and a pool slot for its request) */
  SBX_STEP_SETSID = 7,        /* a new session */
  SBX_STEP_IDS = 8,           /* setgroups / setresgid / setresuid */
  SBX_STEP_PDEATHSIG = 9,     /* PDEATHSIG again after an id switch */
  SBX_STEP_USER_LIMITS = 10,  /* /proc/sys/user limits in the new user namespace */
  SBX_STEP_MOUNT = 11,        /* the mount tree and pivot_root */
  SBX_STEP_HOSTNAME = 12,     /* sethostname */
  SBX_STEP_NETWORK = 13,      /* lo up in the new network namespace */
  SBX_STEP_CWD = 14,          /* chdir */
  SBX_STEP_FDS = 15,          /* the mapped fds in place, every other one closed */
  SBX_STEP_SIGNALS = 16,      /* the signal mask */
  SBX_STEP_INIT = 17,         /* the sandbox's init forks the target */
  SBX_STEP_RLIMITS = 18,      /* setrlimit */
  SBX_STEP_CAPABILITIES = 19, /* every capability dropped, NO_NEW_PRIVS */
  SBX_STEP_LANDLOCK = 20,     /* the Landlock ruleset */
  SBX_STEP_SECCOMP = 21,      /* the seccomp filter (and its listener) */
  SBX_STEP_EXEC = 22,         /* execveat */
  SBX_STEP_POOL = 23,         /* handing the request to a spawn-pool slot (forkserver) */
  SBX_STEP_MAX
};

/* Failure flags. PATH: a path the request names could not be looked up or used (a bind source or
 * target, a Landlock path, the cwd): the request's problem, not the host refusing the step. */
#define SBX_FAILURE_PATH 1u
/* Executor -> forkserver: u64 request_id | u64 milliseconds. A running sandbox's walltime is
 * reset to that long from now (0: none); an unknown or already reaped request is ignored. */
#define SBX_FS_SET_WALLTIME 0x0000530Au

/* fd numbers used in the child between clone and exec (above any mapped fd but 1023). */
#define SBX_SETUP_FD_TARGET 1021
#define SBX_EXEC_FD_TARGET  1022

/* execveat(SBX_EXEC_FD_TARGET, "", argv, envp, AT_EMPTY_PATH) carries this in its unused 6th
 * argument. The filter prologue returns USER_NOTIF for it (ALLOW when there is no monitor); the
 * monitor lets exactly the first one through. A second one means the first failed: the child
 * passes -errno of that failure in arg 3 and the monitor reports SETUP_ERROR. */
#define SBX_EXEC_MAGIC 0x5b78ec00u

enum sbx_op {
  SBX_OP_INVALID = 0,
  SBX_OP_REQUEST_ID = 1, /* u64, required */
  SBX_OP_EXEC_PATH = 2,  /* string: host path of the binary, opened O_PATH before clone; required */
  SBX_OP_ARG = 3,        /* string, repeated, at least one: argv in order (argv[0] included) */
  SBX_OP_ENV = 4,        /* string "K=V", repeated: the whole environment */
  SBX_OP_CWD = 5,        /* string: directory inside the sandbox (default "/") */
  SBX_OP_NAMESPACES = 6, /* u32: CLONE_NEW* flags; 0 = none (landlock mode, later) */
  SBX_OP_HOSTNAME = 7,   /* string (only with CLONE_NEWUTS) */
  SBX_OP_ID_MAP = 8,     /* u32 inside_uid | u32 outside_uid | u32 inside_gid | u32 outside_gid */
  SBX_OP_BIND =
      9, /* u32 flags (SBX_BIND_*) | u32 src_len | src | dst   (src on host, dst inside) */
  SBX_OP_TMPFS = 10,   /* u64 size_bytes (0 = kernel default) | u32 mode | dst */
  SBX_OP_PROC = 11,    /* dst (usually "/proc"); mounted before the old root is detached */
  SBX_OP_DEV = 12,     /* dst, once: a tmpfs with null, zero, full, random, urandom (host binds),
                             fd/stdin/stdout/stderr symlinks; no tty, pts or shm */
  SBX_OP_MKDIR = 13,   /* u32 mode | path inside */
  SBX_OP_SYMLINK = 14, /* u32 target_len | target | linkpath inside */
  SBX_OP_RLIMIT = 15,  /* u32 resource (RLIMIT_*) | u64 soft | u64 hard (RLIM_INFINITY = ~0) */
  SBX_OP_SECCOMP = 16, /* struct sock_filter[] (8 bytes each), installed right before exec */
  SBX_OP_SECCOMP_FLAGS = 17, /* u32: SBX_SECCOMP_* */
  SBX_OP_FD = 18,            /* u32 target fd in the child; consumes the next fd */
  SBX_OP_SETUP_SOCKET = 19,  /* consumes the next fd: the setup socket (above) */
  SBX_OP_CGROUP = 20, /* string: a cgroup v2 directory to start the child in (CLONE_INTO_CGROUP) */
  SBX_OP_LANDLOCK = 21, /* repeated; u32 kind (SBX_LANDLOCK_*) | kind's payload (below) */
  SBX_OP_WALLTIME = 22, /* u64 milliseconds from the clone; the forkserver SIGKILLs the child then
                             (it keeps time even when the executor's event loop is busy); SIGTERM with
                             SBX_OP_REAPER (below) */
  SBX_OP_HOST_IDS = 23, /* u32 uid | u32 gid: without CLONE_NEWUSER, become these host ids (bounding
                             set, ambient set and supplementary groups dropped first). Landlock
                             isolation run by a root executor */
  SBX_OP_REAPER = 24,   /* empty; without CLONE_NEWPID: the sandbox's init (the forkserver's child)
                             forks the target and stays as a child subreaper outside the Landlock
                             domain; when the target ends, or on SIGTERM (walltime, kill, PDEATHSIG of
                             the forkserver), it SIGKILLs and reaps every descendant, sends
                             SBX_INIT_STATUS and exits. Tree kill without a pid namespace */
  SBX_OP_NO_POOL = 25,  /* empty; served on demand, and the spawn pool (pool.h) neither serves it
                             nor takes its layout as the template */
  SBX_OP_USER_LIMIT = 26, /* repeated, with CLONE_NEWUSER: u32 index (SBX_USER_LIMIT_*) | u64 value.
                             Written to /proc/sys/user/<name> inside the sandbox's user namespace
                             (userns_limits.c) before the mount tree: the per-user-namespace counters
                             (inotify, fanotify, namespaces) the sandbox may use at all */
  SBX_OP_TRACE = 27,      /* empty: record a CLOCK_MONOTONIC timestamp at the end of each step and
                             send them (SBX_SETUP_TRACE) before the filter goes on. Without it no
                             clock is read */
  SBX_OP_MAX
};

/* SBX_OP_USER_LIMIT indexes: the files of /proc/sys/user (userns_limits.c names them). */
enum sbx_user_limit {
  SBX_USER_LIMIT_USER_NAMESPACES = 0,
  SBX_USER_LIMIT_PID_NAMESPACES,
  SBX_USER_LIMIT_UTS_NAMESPACES,
  SBX_USER_LIMIT_IPC_NAMESPACES,
  SBX_USER_LIMIT_NET_NAMESPACES,
  SBX_USER_LIMIT_MNT_NAMESPACES,
  SBX_USER_LIMIT_CGROUP_NAMESPACES,
  SBX_USER_LIMIT_TIME_NAMESPACES,
  SBX_USER_LIMIT_INOTIFY_INSTANCES,
  SBX_USER_LIMIT_INOTIFY_WATCHES,
  SBX_USER_LIMIT_FANOTIFY_GROUPS,
  SBX_USER_LIMIT_FANOTIFY_MARKS,
  SBX_USER_LIMIT_MAX
};

#define SBX_BIND_RW       1u /* default is read-only */
#define SBX_BIND_DEV      2u /* allow device nodes (default nodev) */
#define SBX_BIND_OPTIONAL 4u /* a missing source is skipped instead of failing */

/* SBX_OP_LANDLOCK kinds. A Landlock ruleset, applied after the mount tree, ids and caps (NO_NEW_PRIVS),
 * before the seccomp filter. The child masks every right by the ABI the kernel offers.
 *   SBX_LANDLOCK_CONFIG (exactly once when any LANDLOCK op is present):
 *     u64 handled_access_fs (bits < 1<<16) | u64 handled_access_net (bits < 1<<2) |
 *     u64 scoped (bits < 1<<2)
 *   SBX_LANDLOCK_PATH (0..SBX_REQ_LANDLOCK_PATHS_MAX times):
 *     u64 allowed_access (non-zero, a subset of handled_access_fs) | path inside the new root
 *     (absolute, "/" allowed, no ".."). Opened O_PATH after pivot_root (symlinks followed inside):
 *     a path that does not exist or cannot be reached (ENOENT, EACCES, ENOTDIR, ELOOP) is skipped;
 *     a non-directory gets only the file rights of allowed_access.
 *   The binary (the exec fd) always gets READ_FILE | EXECUTE. */
#define SBX_LANDLOCK_CONFIG 1u
#define SBX_LANDLOCK_PATH   2u

#define SBX_SECCOMP_LISTENER 1u /* install with SECCOMP_FILTER_FLAG_NEW_LISTENER */

#define SBX_EXITED_WALLTIME 1u /* EXITED flags: the forkserver killed it at its walltime */

#endif
