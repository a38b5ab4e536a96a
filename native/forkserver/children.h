/*
 * children.h: the sandboxees this forkserver started, until it has reaped them.
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
  int kill_signal;      /* SIGKILL, or SIGTERM for a subreaper init (SBX_OP_REAPER): it kills the tree */
  uint64_t escalate_ms; /* CLOCK_MONOTONIC ms to follow a walltime SIGTERM with SIGKILL; 0: none */
};

struct fs_children {
  struct fs_child *v;
  size_t n, cap;
};

/* Makes room for one more entry, so that adding after clone() cannot fail. 0 or -ENOMEM. */
int children_reserve(struct fs_children *c);
/* Adds an entry (room reserved before). Takes ownership of pidfd. walltime_ms 0: no limit.
 * kill_signal: what ends it with its tree (walltime, shutdown). */
void children_add(struct fs_children *c, uint64_t request_id, pid_t pid, int pidfd, uint64_t walltime_ms,
                  int kill_signal);
/* Ends the children whose walltime has passed (their kill_signal); returns the poll() timeout (ms) until the
 * next deadline, or -1 when none is armed. */
int children_enforce_walltime(struct fs_children *c);
/* Reaps every child that has exited (WNOHANG) and sends SBX_FS_EXITED for each one we started.
 * Returns 0 or the negative comms error of a failed send. */
int children_reap(struct fs_children *c, sbx_comms *comms);
/* Ends every child through its pidfd (kill_signal) and reaps them all (no EXITED messages). */
void children_kill_all(struct fs_children *c);
/* Releases the table (closes nothing: kill_all does). */
void children_free(struct fs_children *c);

#endif
