/*
 * userns_limits.c: the per-user-namespace limits of /proc/sys/user, lowered inside the sandbox's
 * own user namespace (SBX_OP_USER_LIMIT).
 *
 * Inotify instances and watches, fanotify groups and marks, and namespaces are counted per user
 * and per user namespace, and every count is charged up the chain of user namespaces to the
 * uid that owns each one (kernel/ucount.c). A sandbox left at the host's defaults could use up the
 * whole allowance of the uid its namespace belongs to: host processes of that uid then get EMFILE
 * from inotify_init1. These files are per namespace: a write here changes only the sandbox's
 * namespace, and needs CAP_SYS_RESOURCE in it, which the child holds until the caps step. Any
 * procfs shows the writer's own namespace's values, so the host's /proc (still visible before
 * the mount step) serves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "protocol.h"

static const char *const names[SBX_USER_LIMIT_MAX] = {
    [SBX_USER_LIMIT_USER_NAMESPACES] = "max_user_namespaces",
    [SBX_USER_LIMIT_PID_NAMESPACES] = "max_pid_namespaces",
    [SBX_USER_LIMIT_UTS_NAMESPACES] = "max_uts_namespaces",
    [SBX_USER_LIMIT_IPC_NAMESPACES] = "max_ipc_namespaces",
    [SBX_USER_LIMIT_NET_NAMESPACES] = "max_net_namespaces",
    [SBX_USER_LIMIT_MNT_NAMESPACES] = "max_mnt_namespaces",
    [SBX_USER_LIMIT_CGROUP_NAMESPACES] = "max_cgroup_namespaces",
    [SBX_USER_LIMIT_TIME_NAMESPACES] = "max_time_namespaces",
    [SBX_USER_LIMIT_INOTIFY_INSTANCES] = "max_inotify_instances",
    [SBX_USER_LIMIT_INOTIFY_WATCHES] = "max_inotify_watches",
    [SBX_USER_LIMIT_FANOTIFY_GROUPS] = "max_fanotify_groups",
    [SBX_USER_LIMIT_FANOTIFY_MARKS] = "max_fanotify_marks",
};

int userns_limits_apply_in_child(struct child_ctx *ctx) {
  const struct sbx_request *req = ctx->req;
  for (unsigned i = 0; i < SBX_USER_LIMIT_MAX; i++) {
    if (!(req->user_limit_set & (1u << i))) continue;
    char path[64] = "/proc/sys/user/", num[24];
    strcat(path, names[i]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    /* A kernel without this counter (fanotify, time namespaces are newer) has nothing to bound. */
    if (fd < 0 && errno == ENOENT) continue;
    if (fd < 0) return child_fail(ctx, "open", errno, path, NULL);
    child_utoa(num, req->user_limits[i], 10);
    ssize_t n = write(fd, num, strlen(num));
    int e = errno;
    close(fd);
    if (n != (ssize_t)strlen(num))
      return child_fail(ctx, "write", n < 0 ? e : EIO, path, ", ", num, NULL);
  }
  return 0;
}
