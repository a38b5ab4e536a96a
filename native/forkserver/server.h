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
#include "clone.h"
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

/* Handles one SBX_FS_SPAWN payload: parse, receive the announced fds, clone, reply SPAWNED.
 * Returns 0 when the request is answered (success or error reply), or a negative comms error
 * when the channel to the executor is broken. */
int spawn_handle(struct fs_server *srv, const uint8_t *buf, size_t len);

#endif
