/*
 * mount_watch.h: which host mount-table changes concern the spawn pool's slots. A slot's binds
 * were made from the host tree as it was when the slot was prepared; a mount or unmount at, above
 * or under one of the bound sources can change what a fresh bind would show, any other cannot.
 * So the pool keeps the mountinfo lines of the mounts related to its bind sources and recycles
 * its slots only when that set of lines changes (a runc container's mounts under /run come and go
 * without touching a slot bound from /usr).
 */
#ifndef SBX_FORKSERVER_MOUNT_WATCH_H
#define SBX_FORKSERVER_MOUNT_WATCH_H

#include <stddef.h>

/* The lines of /proc/self/mountinfo whose mount point is at, above or under one of `paths`
 * (absolute host paths), in the file's order, as one malloc'd buffer (*len bytes; a mount point
 * that mountinfo had to escape counts as related). NULL on error (errno set). */
char *mount_watch_snapshot(const char *const *paths, size_t npaths, size_t *len);

#endif
