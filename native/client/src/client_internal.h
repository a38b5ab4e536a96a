/* client_internal.h: helpers shared by the files of libsbx_client (not installed). */
#ifndef SBX_CLIENT_INTERNAL_H
#define SBX_CLIENT_INTERNAL_H

#include <stdint.h>

#include <linux/seccomp.h>

/* Debian 12's headers predate these flags (Linux 5.0 and 5.7). */
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif

/* The lowest free fd number (what the next new fd gets), or -errno. `any_open_fd` is borrowed. */
int sbx_client_lowest_free_fd(int any_open_fd);

/* fd_targets.c: 1 when `fd` is the target of an entry of targets[0..n) other than `except`. */
int sbx_client_is_target(const uint32_t *targets, unsigned n, int fd, unsigned except);
/* Moves each fds[i] (owned) off every number another entry must take, with F_DUPFD_CLOEXEC.
 * 0 or -errno. */
int sbx_client_fds_off_targets(int *fds, const uint32_t *targets, unsigned n);

#endif /* SBX_CLIENT_INTERNAL_H */
