/*
 * userns.c: uid/gid maps (written by the forkserver, outside) and the switch to the inside
 * ids (in the child).
 *
 * The parent writes the maps because only it can map an id other than its own (the root case
 * maps inside 1000 to host nobody, so the sandboxee holds no host-root power). The child waits
 * on the release pipe until they are written.
 */
#define _GNU_SOURCE
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"

bool userns_parent_may_setgroups(void) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0) return false;
  return (data[CAP_TO_INDEX(CAP_SETGID)].effective & CAP_TO_MASK(CAP_SETGID)) != 0;
}

uint32_t userns_owner_for(const struct sbx_request *req) {
  if (!req->has_id_map || req->outside_uid == 0 || geteuid() != 0) return UINT32_MAX;
  return req->outside_uid;
}

int userns_owner_enter(uint32_t uid) {
  /* The forkserver is single-threaded: glibc's wrappers are fine here (unlike in the child). */
  if (setresuid((uid_t)-1, (uid_t)uid, (uid_t)-1) < 0) return -errno;
  (void)setfsuid(0);
  return 0;
}

void userns_owner_leave(void) {
  if (setresuid((uid_t)-1, 0, (uid_t)-1) < 0) abort();
  (void)setfsuid(0);
}

/* Parent, outside the sandbox. */
static int write_proc_file(pid_t pid, const char *name, const char *text, char *err,
                           size_t errlen) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "user namespace: open(%s): %s", path, strerror(e));
    return -e;
  }
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  int e = n < 0 ? errno : EIO;
  close(fd);
  if (n != (ssize_t)len) {
    char shown[64];
    snprintf(shown, sizeof shown, "%.*s", (int)strcspn(text, "\n"), text);
    snprintf(err, errlen, "user namespace: write(%s, \"%s\"): %s", path, shown, strerror(e));
    return -e;
  }
  return 0;
}

int userns_write_maps(pid_t pid, uint32_t inside_uid, uint32_t outside_uid, uint32_t inside_gid,
                      uint32_t outside_gid, bool may_setgroups, char *err, size_t errlen) {
  char line[64];
  int r;
  if (!may_setgroups && (r = write_proc_file(pid, "setgroups", "deny", err, errlen)) < 0) return r;
  snprintf(line, sizeof line, "%u %u 1\n", inside_uid, outside_uid);
  if ((r = write_proc_file(pid, "uid_map", line, err, errlen)) < 0) return r;
  snprintf(line, sizeof line, "%u %u 1\n", inside_gid, outside_gid);
  if ((r = write_proc_file(pid, "gid_map", line, err, errlen)) < 0) return r;
  return 0;
}

int userns_write_maps_from_parent(pid_t pid, const struct sbx_request *req, bool may_setgroups,
                                  char *err, size_t errlen) {
  return userns_write_maps(pid, req->inside_uid, req->outside_uid, req->inside_gid,
                           req->outside_gid, may_setgroups, err, errlen);
}

/* Child: become the inside ids. Raw syscalls: glibc's set*id wrappers broadcast to a thread
 * list that describes the forkserver, not this child. */
int userns_set_ids_in_child(struct child_ctx *ctx) {
  const struct sbx_request *req = ctx->req;
  char num[24];
  unsigned long gid, uid;
  if (req->has_id_map) {
    if (ctx->may_setgroups && syscall(SYS_setgroups, 0, NULL) < 0)
      return child_fail(ctx, "setgroups", errno, "0, NULL", NULL);
    gid = req->inside_gid;
    uid = req->inside_uid;
  } else if (req->has_host_ids) {
    /* No user namespace (Landlock isolation run by root): the bounding set goes first, while
     * CAP_SETPCAP is still held (the uid change clears the other sets, never this one). */
    if (caps_drop_bounding_in_child(ctx) < 0) return -1;
    if (syscall(SYS_setgroups, 0, NULL) < 0)
      return child_fail(ctx, "setgroups", errno, "0, NULL", NULL);
    gid = req->host_gid;
    uid = req->host_uid;
  } else {
    return 0; /* the forkserver's ids stay */
  }
  if (syscall(SYS_setresgid, gid, gid, gid) < 0)
    return child_fail(ctx, "setresgid", errno, child_utoa(num, gid, 10), NULL);
  if (syscall(SYS_setresuid, uid, uid, uid) < 0)
    return child_fail(ctx, "setresuid", errno, child_utoa(num, uid, 10), NULL);
  return 0;
}
