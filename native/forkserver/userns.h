/*
 * userns.h: the parent side of the user namespace (the child side is in child.h).
 */
#ifndef SBX_FORKSERVER_USERNS_H
#define SBX_FORKSERVER_USERNS_H

#include <stdbool.h>
#include <stddef.h>
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

#endif
