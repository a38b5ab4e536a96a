/*
 * sbx/forking_client.h: the forkserver side of custom-fork mode (docs/architecture.md, "Custom-fork mode") for C
 * programs, and the core the Node ForkingClient uses.
 *
 * A forkserver is a program the executor started with Executor.startForkServer(): it runs in its
 * sandbox's namespaces and mounts, unfiltered, with its Comms channel at fd 1023. It loads and
 * initialises what its children share, then serves fork requests:
 *
 *     sbx_forking_client *fc;
 *     if (sbx_forking_client_open(&fc, -1, err, sizeof err) < 0) ...;
 *     for (;;) {
 *       pid_t pid = sbx_forking_client_wait_and_fork(fc, NULL, err, sizeof err);
 *       if (pid == 0) break;            // the child: its Comms is fd 1023 again
 *       if (pid < 0) exit(pid == -EPIPE ? 0 : 1);  // -EPIPE: the executor closed the channel
 *     }
 *     sbx_forking_client_free(fc);     // in the child: frees, closes nothing that is its own
 *     sbx_client_sandbox_me_here(...); // then the child's own work
 *
 * While it waits, the call reaps the children that ended and reports each one (its wait status
 * and rusage) to the executor. A child gets, before the call returns 0 in it: the fds of the
 * request at their target numbers (its Comms at 1023, its sandbox-me-here handshake at 1020, any
 * ipc mappings), nothing of the forkserver's channel or of its siblings' pidfds,
 * PR_SET_PDEATHSIG(SIGKILL), a session of its own, NO_NEW_PRIVS, no capabilities, not dumpable,
 * and a Landlock domain of its own that scopes signals and abstract unix sockets (Landlock ABI
 * 6; on older kernels only the ptrace wall of a fresh domain): siblings and the forkserver are
 * outside it, so it can neither signal, ptrace, read the memory of nor connect (abstract) to
 * them. docs/wire-protocol.md has the messages.
 *
 * Conventions (as libsbx_comms): 0 or -errno, never abort, never print.
 */
#ifndef SBX_FORKING_CLIENT_H
#define SBX_FORKING_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sbx/client.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fork protocol tags (Comms user tags, next to the handshake's 0x5310..0x5313). */
#define SBX_FORK_TAG_REQUEST 0x00005320u /* executor -> forkserver */
#define SBX_FORK_TAG_FORKED  0x00005321u /* forkserver -> executor, then an Fd (pidfd) on success */
#define SBX_FORK_TAG_EXITED  0x00005322u /* forkserver -> executor: a child was reaped */

/* REQUEST: u64 request_id | u32 nfds (low 16 bits) and flags (high 16) | nfds x u32 target fd;
 * then nfds SBX_TAG_FD messages. */
#define SBX_FORK_MAX_FDS 16u
/* REQUEST flag: trace this request (FORKED carries the forkserver's timestamps, the child sends
 * its own after GO; docs/wire-protocol.md). */
#define SBX_FORK_REQUEST_TRACE 0x10000u
/* REQUEST flag: a sandboxed spare. The child sandboxes itself (the handshake on its fd 1020)
 * before the call returns in it, then waits there for its assignment (sbx_client_await_assignment).
 * The forkserver only passes the flag on (sbx_forking_client_child_flags()). */
#define SBX_FORK_REQUEST_SANDBOXED 0x20000u
/* FORKED: u64 request_id | i32 err (0 or -errno) | u32 pid (forkserver's view) | UTF-8 message;
 * on success of a traced request, instead of the message: u32 count | u32 0 | count x
 * (u32 stage | u32 0 | u64 CLOCK_MONOTONIC ns). */
/* EXITED: u64 request_id | u32 pid | i32 wait_status | u64 utime_us | u64 stime_us | u64 maxrss_kib */
#define SBX_FORK_EXITED_SIZE 40u
/* Children alive at once; a request beyond that gets FORKED err = -EAGAIN. */
#define SBX_FORK_MAX_CHILDREN 4096u

/* Status a child _exit()s with when its own setup (fds, isolation) failed before the call
 * returned in it; the parent then replies FORKED with the error instead. */
#define SBX_FORK_SETUP_FAILED 125

typedef struct sbx_forking_client sbx_forking_client;

/* What a runtime needs around fork() (the Node addon uses them; C programs pass NULL). */
struct sbx_fork_hooks {
  /* Right before fork(): 0, or -errno to refuse this request (FORKED carries the error and the
   * message written to err). Also called ahead, while the loop waits with no request pending and
   * no spare left; the call right before fork() may then come without a parent() in between, and
   * should only check that what it prepared still holds. */
  int (*prepare)(void *arg, char *err, size_t errlen);
  /* In the forkserver right after fork() (also when it failed), and before the call returns,
   * whenever prepare returned 0: once per successful prepare, however many calls it took. */
  void (*parent)(void *arg);
  /* In the child, after its fds and isolation are in place, before the call returns 0. */
  void (*child)(void *arg);
  void *arg;
};

/* Takes the Comms channel `comms_fd` (-1: $SBX_COMMS_FD, else 1023) and closes this process's
 * sandbox-me-here handshake fd (the forkserver itself is not sandboxed that way; each child gets
 * its own). Fails with -EBADF / -ENOTSOCK when the fd is no socket (not started by
 * Executor.startForkServer), -ENOMEM. */
int sbx_forking_client_open(sbx_forking_client **out, int comms_fd, char *err, size_t errlen);

/*
 * Serves until one fork request has been handled: reaps and reports ended children meanwhile.
 * Returns the child's pid in the forkserver, 0 in the child, or
 *   -EPIPE    the executor closed the channel (the forkserver should exit; its children die
 *             with it)
 *   -EPROTO   the executor sent something the protocol does not allow (named in err)
 *   -ENOMEM, -EIO, other -errno of the channel
 * A request that cannot be served (fork failed, the hook refused, the child's setup failed) is
 * answered with FORKED err < 0 and the call goes on waiting.
 */
pid_t sbx_forking_client_wait_and_fork(sbx_forking_client *fc, const struct sbx_fork_hooks *hooks,
                                       char *err, size_t errlen);

/*
 * Spares: children forked ahead of requests (0 by default, at most SBX_FORK_MAX_SPARES). A spare
 * is forked while no request waits, gets its isolation (and the child hook) at once, then waits
 * for a request's fds; a request then costs a message instead of a fork(). Each spare shares the
 * forkserver's state as it was when the spare was made. Returns 0 or -EINVAL.
 */
#define SBX_FORK_MAX_SPARES 64u
int sbx_forking_client_set_spares(sbx_forking_client *fc, unsigned n);

/* Kills the spares that wait for a request (they are a snapshot of this process from before):
 * call it after the forkserver's state changed (a module loaded, a config reloaded) and new
 * spares are forked from the state as it is now, at the next quiet moment of the wait loop.
 * 0 or -EINVAL. */
int sbx_forking_client_recycle_spares(sbx_forking_client *fc);

/* In a child: its request's SBX_FORK_REQUEST_* flags (0 in the forkserver); in a spare's child
 * hook, before its request came, SBX_FORK_CHILD_SPARE. */
#define SBX_FORK_CHILD_SPARE 0x80000000u
unsigned sbx_forking_client_child_flags(void);

/* Children alive (forked, not yet reaped; spares included). */
unsigned sbx_forking_client_children(const sbx_forking_client *fc);

/* Frees fc. In the forkserver this closes the channel and the children's pidfds (children still
 * running stay; they die with the forkserver, PR_SET_PDEATHSIG). In a child it only frees. */
void sbx_forking_client_free(sbx_forking_client *fc);

#ifdef __cplusplus
}
#endif
#endif /* SBX_FORKING_CLIENT_H */
