/*
 * caps.c: the child gives up every capability it holds in its user namespace, and the right to
 * gain new privileges through exec (NO_NEW_PRIVS, also what lets an unprivileged process
 * install a seccomp filter).
 *
 * Order matters: PR_CAPBSET_DROP needs CAP_SETPCAP, so the bounding set goes first. An empty
 * bounding set is what keeps an inside uid 0 from getting its capabilities back at execve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"

int caps_drop_bounding_in_child(struct child_ctx *ctx) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0) return child_fail(ctx, "capget", errno, NULL);

  /* Without CAP_SETPCAP (no user namespace, unprivileged forkserver) the bounding set cannot be
   * changed, and need not be: such a process cannot gain capabilities under NO_NEW_PRIVS. */
  if (data[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP)) {
    for (unsigned long cap = 0; cap < 64; cap++) {
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
      if (errno == EINVAL) break; /* past the kernel's last capability */
      char num[24];
      return child_fail(ctx, "prctl", errno, "PR_CAPBSET_DROP, ", child_utoa(num, cap, 10), NULL);
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
    return child_fail(ctx, "prctl", errno, "PR_CAP_AMBIENT_CLEAR_ALL", NULL);
  return 0;
}

int caps_drop_in_child(struct child_ctx *ctx) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  if (caps_drop_bounding_in_child(ctx) < 0) return -1;
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &hdr, data) < 0)
    return child_fail(ctx, "capset", errno, "all zero", NULL);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return child_fail(ctx, "prctl", errno, "PR_SET_NO_NEW_PRIVS, 1", NULL);
  return 0;
}
