/*
 * clone.h: the one clone sequence of the forkserver, for a request served on demand (spawn.c) and
 * for a spawn-pool slot (pool.c): the release pipe, clone3 (or clone) into the namespaces as the
 * owner of the new user namespace with SIGTERM blocked, then from outside the uid/gid maps, the
 * cgroup when the legacy clone could not start the child in it, and the release byte.
 */
#ifndef SBX_FORKSERVER_CLONE_H
#define SBX_FORKSERVER_CLONE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The owner of a new user namespace: ours (userns.h, userns_owner_for). */
#define SBX_OWNER_SELF UINT32_MAX

/* A failure of a forkserver step, as SBX_FS_SPAWNED reports it (protocol.h): the step, errno and
 * flags as data, and a message for people. */
struct fs_failure {
  uint32_t step;  /* enum sbx_step */
  int err;        /* positive errno */
  uint32_t flags; /* SBX_FAILURE_* */
  char msg[1024];
};

/* Records a failure (printf-style message); returns -err. */
int fs_fail(struct fs_failure *f, uint32_t step, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What to clone. */
struct fs_clone_spec {
  uint64_t namespaces;   /* CLONE_NEW* */
  int cgroup_fd;         /* the cgroup to start in, or -1 */
  uint32_t userns_owner; /* with CLONE_NEWUSER: the namespace's owner, or SBX_OWNER_SELF */
  uint32_t inside_uid, outside_uid, inside_gid, outside_gid; /* the maps, with CLONE_NEWUSER */
  bool may_setgroups;                                        /* userns.h */
};

/* A cloned child until it is released. */
struct fs_clone {
  pid_t pid;
  int pidfd;
  int release_fd; /* the child: the read end (child_ctx.release_fd); the parent: the write end */
  bool in_cgroup; /* the clone started it in spec->cgroup_fd */
};

/* Clones. Returns 0 in the child, the pid in the parent (the child then waits for
 * fs_clone_release), or -1 with *f filled (nothing is left over). */
pid_t fs_clone(const struct fs_clone_spec *spec, struct fs_clone *c, struct fs_failure *f);

/* Parent: writes the id maps, joins the cgroup if the clone could not, and releases the child.
 * 0, or -errno with *f filled (then fs_clone_abandon it). Closes the release pipe either way. */
int fs_clone_release(const struct fs_clone_spec *spec, struct fs_clone *c, struct fs_failure *f);

/* Kills and reaps a child that will not be reported, and closes its pidfd and release pipe. */
void fs_clone_abandon(struct fs_clone *c);

/* Kills and reaps the process of pidfd (not closed). */
void fs_kill_and_reap(int pidfd);

#endif
