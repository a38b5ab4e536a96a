/*
 * child.h: the child side of clone(), from the release by the forkserver to execveat.
 *
 * Everything here runs in the freshly cloned child. Rules for this code: no allocation, no
 * stdio, raw syscalls for credentials (glibc's wrappers assume a thread list the child no longer
 * matches), fixed buffers, and every failure recorded with child_fail() so that the driver can
 * report "step: call(args): strerror" on the setup socket and _exit(127).
 *
 * The steps live in one file per kernel concern; child.c lists them in order.
 */
#ifndef SBX_FORKSERVER_CHILD_H
#define SBX_FORKSERVER_CHILD_H

#include <stdbool.h>
#include <stdint.h>

#include "request.h"
#include "trace.h"

#define SBX_CHILD_ERROR_MAX (2 * SBX_REQ_PATH_MAX + 64)

struct child_ctx {
  const struct sbx_request *req;
  const int *fds;       /* received fds, one per req->fd_ops entry (forkserver numbers) */
  int *scratch;         /* req->fd_count + 8 ints for the fd shuffle (allocated before clone) */
  int exec_fd;          /* O_PATH fd of the binary */
  int release_fd;       /* read end of the release pipe: one byte = maps written, go */
  int forkserver_pidfd; /* the forkserver's pidfd of itself: readable once it has died */
  int devnull_fd;       /* the forkserver's /dev/null, for stdio the request does not map */
  bool may_setgroups;   /* the gid_map was written without "deny": drop supplementary groups */
  int init_pid;         /* REAPER: the target's init (its parent), once split */

  /* state of the run */
  int setup_fd;          /* where the setup socket is now; -1 without one */
  int listener_fd;       /* the fd number seccomp's listener will get (lowest free one) */
  bool filter_installed; /* after this, only the magic execveat may report */
  uint32_t step;         /* the running step (enum sbx_step), for the report */
  uint32_t fail_flags;   /* SBX_FAILURE_* of the recorded failure */
  int fail_errno;        /* errno of the recorded failure */
  struct fs_trace trace; /* with req->trace: the end of each step so far (the forkserver's first) */
  char error[SBX_CHILD_ERROR_MAX];
};

/* Runs the steps in order and execs; never returns (exit status 127 on failure). */
__attribute__((noreturn)) void child_run(struct child_ctx *ctx);
/* The two halves of child_run. The frozen half (release, session, ids, mount tree, hostname,
 * network) depends only on what a pool slot is keyed by (pool.h); a slot runs it ahead of demand
 * and the request half (cwd, fds, rlimits, caps, Landlock, init, filter, exec) once its request
 * has come. child_run_request never returns. */
void child_run_frozen(struct child_ctx *ctx);
__attribute__((noreturn)) void child_run_request(struct child_ctx *ctx);
/* Sends the recorded failure (SBX_SETUP_FAILED) on the setup socket (if any) and _exit(127)s. */
__attribute__((noreturn)) void child_report_and_exit(struct child_ctx *ctx);

/* Records "call(arg1arg2...): strerror(err)" for the running step, with err and the step as data
 * for the report. The args are strings, ending with NULL. Returns -1 so that steps can
 * `return child_fail(...)`. child_fail_path: the same for a path the request names that cannot be
 * looked up (SBX_FAILURE_PATH: the request's problem, not the host refusing the step). */
int child_fail(struct child_ctx *ctx, const char *call, int err, ...);
int child_fail_path(struct child_ctx *ctx, const char *call, int err, ...);

/* The step's name in messages ("mount"); "setup" for an unknown one. */
const char *sbx_step_name(uint32_t step);

/* Decimal / octal text of v into buf (at least 24 bytes); returns buf. */
char *child_utoa(char *buf, unsigned long long v, unsigned base);

/* The steps, in the order child.c runs them. Each returns 0, or -1 after child_fail(). */
int mnt_setup_in_child(struct child_ctx *ctx);        /* mnt.c: mount tree + pivot_root */
int uts_set_hostname_in_child(struct child_ctx *ctx); /* uts.c */
int net_lo_up_in_child(struct child_ctx *ctx);        /* net.c: lo up in a new netns */
int userns_set_ids_in_child(struct child_ctx *ctx);   /* userns.c: setgroups/setresgid/setresuid */
int userns_limits_apply_in_child(struct child_ctx *ctx); /* userns_limits.c: /proc/sys/user/max_* */
int fds_arrange_in_child(struct child_ctx *ctx);   /* fds.c: mapped fds in place, rest closed */
int rlimits_apply_in_child(struct child_ctx *ctx); /* rlimits.c */
int caps_drop_in_child(struct child_ctx *ctx);     /* caps.c: no caps, NO_NEW_PRIVS */
int caps_drop_bounding_in_child(struct child_ctx *ctx); /* caps.c: bounding and ambient sets only */
int init_split_in_child(struct child_ctx *ctx); /* init.c: pid 1 stays as init, pid 2 goes on */
int reaper_split_in_child(
    struct child_ctx *ctx); /* reaper.c: a subreaper init, the target goes on */
int reaper_tie_target_in_child(
    struct child_ctx *ctx); /* reaper.c: target: PDEATHSIG on its init again */
/* init.c: the target sends its own pidfd on the setup socket (the listener is taken from it). */
int init_send_target_pidfd(struct child_ctx *ctx);
/* SBX_INIT_STATUS on the setup socket (if any): the target's raw wait status and the rusage of
 * every process the init reaped; sent once the whole tree is gone (init.c, reaper.c). */
void init_send_status(int setup, int status);
int landlock_apply_in_child(struct child_ctx *ctx);  /* landlock.c: ruleset + scopes */
int seccomp_install_in_child(struct child_ctx *ctx); /* seccomp.c: filter + listener number */

/* landlock.c, in the forkserver at start: the kernel's Landlock ABI (0: none). */
int landlock_probe(void);

/* probe.c: `sbx-forkserver --probe`, the isolation modes this host allows (for sbx doctor). */
int probe_main(void);

#endif
