/*
 * userns.h: the parent side of the user namespace (the child side is in child.h).
 */
#ifndef SBX_FORKSERVER_USERNS_H
#define SBX_FORKSERVER_USERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "request.h"

/* True when this process may write a gid_map without first denying setgroups (CAP_SETGID):
 * then the child can, and must, drop its inherited supplementary groups. */
bool userns_parent_may_setgroups(void);

/* Writes /proc/<pid>/{setgroups,uid_map,gid_map} for a child cloned with CLONE_NEWUSER:
 * "deny" first unless may_setgroups, then "inside outside 1" for both maps.
 * Returns 0, or -errno with a message in err. */
int userns_write_maps_from_parent(pid_t pid, const struct sbx_request *req, bool may_setgroups,
                                  char *err, size_t errlen);
/* The same with the ids given (a pool slot maps to an id of its own, pool.h). */
int userns_write_maps(pid_t pid, uint32_t inside_uid, uint32_t outside_uid, uint32_t inside_gid,
                      uint32_t outside_gid, bool may_setgroups, char *err, size_t errlen);

/* The owner of a sandbox's user namespace. The kernel charges what is counted per user (pending
 * signals, message queue bytes, locked memory, inotify and fanotify, namespaces) up the chain of
 * user namespaces to each one's owner: the euid of the process that created it. A root forkserver
 * creating them all as root would charge every sandbox to host root, shared by all sandboxes and
 * the host's own root processes. So the clone runs with the sandbox's host uid as euid (fsuid
 * kept 0 for CLONE_INTO_CGROUP's permission check); the parent's euid is 0 again right after.
 * userns_owner_for: that uid for a request, or SBX_OWNER_SELF when we are not root or it would be
 * root itself. enter: 0 or -errno; leave cannot fail for a process whose saved uid is 0 (it
 * aborts otherwise: a forkserver stuck without root would be worse). */
uint32_t userns_owner_for(const struct sbx_request *req);
int userns_owner_enter(uint32_t uid);
void userns_owner_leave(void);

#endif
