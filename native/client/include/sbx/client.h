/*
 * sbx/client.h: the sandboxee side of sandbox-me-here mode (docs/architecture.md, "Sandbox-me-here (client) mode") for C programs.
 *
 * An executor started with `enableSandboxBeforeExec: false` runs the program inside its
 * namespaces and mounts but without a seccomp filter, and maps one end of a dedicated handshake
 * socket at fd SBX_CLIENT_FD (1020; $SBX_CLIENT_FD names another). The program initialises
 * (loads libraries, opens its files, starts its threads) and then calls
 * sbx_client_sandbox_me_here(), which
 *   1. sends HELLO (protocol version, thread count, flags, the fd number the listener will get),
 *   2. receives the compiled policy (struct sock_filter[]) or the executor's ERROR,
 *   3. sets PR_SET_NO_NEW_PRIVS and installs the policy on every thread with
 *      SECCOMP_FILTER_FLAG_TSYNC | NEW_LISTENER | TSYNC_ESRCH (one thread: NEW_LISTENER alone
 *      when the kernel lacks TSYNC_ESRCH),
 *   4. hands the listener to the executor's monitor (sendmsg on the handshake fd, which the
 *      policy allows for that fd only), closes its own copy (the policy allows close() of that
 *      number) and waits for GO.
 * From then on every syscall the policy does not allow is reported by the executor's monitor and
 * kills the sandbox. docs/wire-protocol.md describes the messages.
 *
 * Threads: existing threads get the filter wherever they are. One that pthread_create() has
 * just started may still be in libc's start-up (rseq, set_robust_list, sigaltstack...), which
 * then runs under the policy: let new threads run (e.g. wait until they signal) before the
 * call, or allow those calls. glibc's malloc is set up so that it opens no file later
 * (sbx_client_prepare()).
 *
 * Conventions (as libsbx_comms): functions return 0 or a negative errno from the documented set,
 * never abort and never print; a message for humans goes to the caller's buffer.
 */
#ifndef SBX_CLIENT_H
#define SBX_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SBX_CLIENT_BUILDING)
#define SBX_CLIENT_API __attribute__((visibility("default")))
#else
#define SBX_CLIENT_API
#endif

/* The handshake socket of a sandboxee unless $SBX_CLIENT_FD names another. */
#define SBX_CLIENT_FD               1020
#define SBX_CLIENT_FD_ENV           "SBX_CLIENT_FD"
#define SBX_CLIENT_PROTOCOL_VERSION 2u

/* Handshake tags: Comms user tags next to the forkserver's 0x5301..0x5304. */
#define SBX_CLIENT_TAG_HELLO  0x00005310u /* client -> executor: 4 x u32 (below) */
#define SBX_CLIENT_TAG_POLICY 0x00005311u /* executor -> client: struct sock_filter[] */
#define SBX_CLIENT_TAG_GO     0x00005312u /* executor -> client: empty; the monitor watches */
#define SBX_CLIENT_TAG_ERROR  0x00005313u /* executor -> client: UTF-8 reason; the end */
/* executor -> sandboxed spare, after GO: u32 n | n x u32 target fd, then n SBX_TAG_FD messages */
#define SBX_CLIENT_TAG_ASSIGN 0x00005316u
#define SBX_CLIENT_TAG_INSTALLED \
  0x00005314u /* client -> executor: u32 listener fd number, taken
                                                with pidfd_getfd() (the client keeps it until GO) */
/* After POLICY the client installs the filter and sends INSTALLED; the executor answers GO. */

/* HELLO payload: u32 version | u32 threads | u32 flags | u32 listener_fd, little-endian.
 * threads is counted only without TSYNC (it is then 1), else SBX_CLIENT_NO_FD; listener_fd is
 * the number the listener will most likely get (the lowest free fd), for the close() rule. */
#define SBX_CLIENT_HELLO_SIZE  16u
#define SBX_CLIENT_HELLO_TSYNC 0x1u        /* flags: the filter goes on all threads (TSYNC) */
#define SBX_CLIENT_NO_FD       0xffffffffu /* threads or listener_fd unknown */
/* Largest POLICY payload: BPF_MAXINSNS instructions of 8 bytes. */
#define SBX_CLIENT_MAX_POLICY_BYTES (4096u * 8u)

/* flags of sbx_client_sandbox_me_here_fd() */
#define SBX_CLIENT_ASSUME_NO_TSYNC 0x1u /* act as on a kernel without TSYNC_ESRCH (tests) */

/* bits of sbx_client_kernel_support() */
#define SBX_CLIENT_KERNEL_LISTENER       0x1u /* SECCOMP_FILTER_FLAG_NEW_LISTENER (Linux 5.0) */
#define SBX_CLIENT_KERNEL_TSYNC_LISTENER 0x2u /* TSYNC | NEW_LISTENER | TSYNC_ESRCH (Linux 5.7) */

/*
 * Receives the policy from the executor and installs it on every thread, then hands the
 * seccomp listener to the executor's monitor and waits for its go-ahead. Uses the fd named by
 * $SBX_CLIENT_FD, else SBX_CLIENT_FD. `err` (may be NULL when errlen is 0) receives a
 * NUL-terminated message on failure.
 *
 * Returns 0 when the process is sandboxed, else one of:
 *   -EBADF       the handshake fd is not open (or $SBX_CLIENT_FD is not an fd number): the
 *                process was not started by an sbx executor in sandbox-me-here mode
 *   -ENOTSOCK    the handshake fd is not a unix stream socket (same cause)
 *   -EALREADY    already called in this process (successfully, or it failed after the filter
 *                was installed), or another thread is calling it right now
 *   -EOPNOTSUPP  more than one thread, and the kernel cannot put a filter with a listener on
 *                all of them (TSYNC_ESRCH needs Linux 5.7): call it before starting threads
 *   -ESRCH       a thread could not be synchronised (it has a seccomp filter of its own)
 *   -ENOSYS      the kernel lacks seccomp user notification (Linux 5.0)
 *   -EPIPE, -ECONNRESET  the executor closed the channel (it died or gave up)
 *   -ECANCELED   the executor refused and said why (its ERROR message is in `err`)
 *   -EPROTO      the executor sent something the protocol does not allow
 *   -EINVAL      the kernel rejected the policy program
 *   -ENOMEM, -EACCES, -EPERM, -EFAULT: the failing system call's errno (named in `err`)
 * After a failure the filter may already be on (sbx_client_filter_installed() tells): then the
 * policy's allowlist holds, but without the monitor a forbidden call fails with ENOSYS instead of
 * being reported, so such a process should exit.
 */
SBX_CLIENT_API int sbx_client_sandbox_me_here(char *err, size_t errlen);

/* The same on handshake fd `fd` (borrowed), with SBX_CLIENT_* flags. */
SBX_CLIENT_API int sbx_client_sandbox_me_here_fd(int fd, unsigned flags, char *err, size_t errlen);

/* Does now what glibc would otherwise do by opening a file after the filter is on: malloc's trim
 * threshold (the first trim of a thread's heap opens /proc/sys/vm/overcommit_memory) and its arena
 * limit (counting the CPUs opens /sys/devices/system/cpu/online), set to what glibc would choose
 * unless MALLOC_ARENA_MAX or GLIBC_TUNABLES chose one. sbx_client_sandbox_me_here() calls it; call
 * it earlier, during initialisation, to keep it out of the call. Idempotent, never fails. */
SBX_CLIENT_API void sbx_client_prepare(void);

/* A sandboxed spare (custom-fork mode, sandboxed spares): after sandboxing, waits on handshake
 * fd `fd` for the request the executor assigns it (ASSIGN, then its fds), puts the fds on their
 * numbers and closes `fd`. 0, -EINVAL (not sandboxed), -EPIPE (the executor closed the channel),
 * -EPROTO, or the failing call's -errno (named in `err`). */
SBX_CLIENT_API int sbx_client_await_assignment(int fd, char *err, size_t errlen);

/* True once sbx_client_sandbox_me_here() succeeded in this process. Makes no system call. */
SBX_CLIENT_API bool sbx_client_is_sandboxed(void);

/* True once a call of this process installed the filter (even if the handshake failed after). */
SBX_CLIENT_API bool sbx_client_filter_installed(void);

/* The handshake fd: $SBX_CLIENT_FD, else SBX_CLIENT_FD; -EBADF when $SBX_CLIENT_FD is not a
 * decimal fd number. Does not check that the fd is open. */
SBX_CLIENT_API int sbx_client_default_fd(void);

/* Threads of this process (num_threads of /proc/self/stat), or -errno when /proc is not there. */
SBX_CLIENT_API int sbx_client_thread_count(void);

/* What the running kernel offers, as SBX_CLIENT_KERNEL_* bits (probed without side effects). */
SBX_CLIENT_API unsigned sbx_client_kernel_support(void);

/* A static description of an error code returned by sbx_client_sandbox_me_here(). */
SBX_CLIENT_API const char *sbx_client_strerror(int err);

/* Named fds (Sandbox2's Client::GetMappedFD / HasMappedFD): the executor maps a fd under a name
 * (ipc.mapFd(fd, 'name')) and passes the names in $SBX_FD_MAPPINGS, `name=fd` pairs joined by
 * commas. The fd mapped under `name`; -ENOENT when none is; -EINVAL when `name` is NULL or empty,
 * or the table is malformed. Reads the environment only (no system call); not thread-safe against
 * setenv. */
SBX_CLIENT_API int sbx_client_get_mapped_fd(const char *name);

/* True when a fd is mapped under `name` (sbx_client_get_mapped_fd() returns one). */
SBX_CLIENT_API bool sbx_client_has_mapped_fd(const char *name);

/* Log levels of sbx_client_log(), in wire order. */
enum { SBX_LOG_DEBUG = 0, SBX_LOG_INFO = 1, SBX_LOG_WARN = 2, SBX_LOG_ERROR = 3 };
/* Longest message sent, in bytes; longer ones are cut. */
#define SBX_LOG_MAX_MESSAGE 16384

/* Sends one log line to the executor's `logs` handler (Sandbox2's SendLogsToSupervisor), printf
 * style, over the channel the executor mapped as "sbx.log". Safe from several threads (one record
 * never interleaves with another). 0, or -ENOENT when the executor did not ask for logs, -EINVAL
 * for an unknown level or a NULL fmt, -EPIPE when the executor closed the channel, or the failing
 * send's -errno. */
SBX_CLIENT_API int sbx_client_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif /* SBX_CLIENT_H */
