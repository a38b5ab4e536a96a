/*
 * children.h: the sandboxees this forkserver started, until it has reaped them.
 *
 * Ending a tree never depends on the sandbox's init alone. A subreaper init (SBX_OP_REAPER) gets
 * SIGTERM and SBX_KILL_GRACE_MS to kill and reap its tree; if it has not exited by then (stopped,
 * starved of fds, hung), it gets SIGKILL and the sandbox's cgroup, if it has one, cgroup.kill. Its
 * orphans are then reparented to the forkserver (a child subreaper too): every child of the
 * forkserver that is neither a tracked sandbox nor a pool slot is such a leftover and is SIGKILLed
 * (children_sweep), until none is left.
 */
#ifndef SBX_FORKSERVER_CHILDREN_H
#define SBX_FORKSERVER_CHILDREN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sbx/comms.h>

struct fs_child {
  uint64_t request_id;
  pid_t pid;
  int pidfd;            /* owned; closed when the child is reaped */
  uint64_t deadline_ms; /* CLOCK_MONOTONIC ms of its walltime; 0: none (or already killed) */
  bool timed_out;       /* killed at its walltime */
  int kill_signal; /* SIGKILL, or SIGTERM for a subreaper init (SBX_OP_REAPER): it kills the tree */
  uint64_t
      escalate_ms; /* SIGTERM was sent: SIGKILL (and cgroup.kill) at this time; 0: none pending */
  char *cgroup;    /* owned: the sandbox's cgroup directory, or NULL */
};

/* How long a subreaper init has to end its tree after SIGTERM. */
#define SBX_KILL_GRACE_MS 1000

struct fs_children {
  struct fs_child *v;
  size_t n, cap;
};

/* Makes room for one more entry, so that adding after clone() cannot fail. 0 or -ENOMEM. */
int children_reserve(struct fs_children *c);
/* Adds an entry (room reserved before). Takes ownership of pidfd. walltime_ms 0: no limit.
 * kill_signal: what ends it with its tree (walltime, shutdown). */
void children_add(struct fs_children *c, uint64_t request_id, pid_t pid, int pidfd,
                  uint64_t walltime_ms, int kill_signal, const char *cgroup);
/* Ends the children whose walltime has passed (their kill_signal), escalates to SIGKILL where the
 * grace has passed; returns the poll() timeout (ms) until the next deadline, or -1 when none. */
int children_enforce_walltime(struct fs_children *c);
/* SBX_FS_SET_WALLTIME: the child of request_id gets a deadline walltime_ms from now (0: none).
 * Nothing changes for a child already killed at its walltime, or none of that request. */
void children_set_walltime(struct fs_children *c, uint64_t request_id, uint64_t walltime_ms);
/* Reaps every child that has exited (WNOHANG) and sends SBX_FS_EXITED for each one we started;
 * pool_reaped() is told of every reaped pid. *sweep is set when what was reaped may have left
 * orphans (a subreaper init, or an orphan). Returns 0 or the negative comms error of a failed send. */
struct fs_pool;
int children_reap(struct fs_children *c, sbx_comms *comms, struct fs_pool *pool, bool *sweep);
/* SIGKILLs every child of the forkserver that is neither in c nor a slot of pool: leftovers of a
 * tree whose init died (their own children come here in turn, and the next sweep gets them). */
void children_sweep(const struct fs_children *c, const struct fs_pool *pool);
/* Ends every child through its pidfd (kill_signal, then SIGKILL and cgroup.kill after the grace),
 * and every leftover, and reaps them all (no EXITED messages). */
void children_kill_all(struct fs_children *c, const struct fs_pool *pool);
/* Releases the table (closes nothing: kill_all does). */
void children_free(struct fs_children *c);

#endif
