/*
 * server.h: the forkserver's state, shared by the event loop (main.c) and the spawn path.
 */
#ifndef SBX_FORKSERVER_SERVER_H
#define SBX_FORKSERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sbx/comms.h>

#include "children.h"
#include "pool.h"

struct fs_server {
  sbx_comms comms;             /* to the executor, on SBX_FS_COMMS_FD */
  struct fs_children children; /* started and not yet reaped */
  int self_pidfd;              /* our own pidfd: children poll it to see that we died */
  int devnull_fd;              /* stdio for children whose request maps none */
  bool may_setgroups;          /* CAP_SETGID: gid maps without "deny" (see userns.h) */
  struct fs_pool pool;         /* slots prepared ahead of demand (pool.h) */
  pid_t executor_pid;          /* our parent: names the pool slots' cgroups */
};

/* clone3's argument (linux/sched.h, CLONE_ARGS_SIZE_VER2), spelled out: Debian's headers may
 * predate some fields and flags. */
struct fs_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

/* clone3, or the legacy clone where clone3 is refused (spawn.c). *in_cgroup: the child starts in
 * args->cgroup; *call: the syscall's name for messages. userns_owner: with CLONE_NEWUSER, the host
 * uid the new user namespace belongs to (userns.h: userns_clone_as_owner); SBX_OWNER_SELF: ours. */
#define SBX_OWNER_SELF UINT32_MAX
pid_t spawn_clone(const struct fs_clone_args *args, uint32_t userns_owner, bool *in_cgroup,
                  const char **call);

/* Handles one SBX_FS_SPAWN payload: parse, receive the announced fds, clone, reply SPAWNED.
 * Returns 0 when the request is answered (success or error reply), or a negative comms error
 * when the channel to the executor is broken. */
int spawn_handle(struct fs_server *srv, const uint8_t *buf, size_t len);

#endif
