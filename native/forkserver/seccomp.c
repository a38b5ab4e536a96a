/*
 * seccomp.c: the request's filter, installed last before execveat. With SBX_SECCOMP_LISTENER
 * the fd number of the listener goes to the executor first (on the setup socket, while writing
 * is still allowed); the executor then takes the listener with pidfd_getfd() while the child is
 * parked in its first, notified execveat.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sbx/comms.h>

#include "child.h"
#include "protocol.h"

int seccomp_install_in_child(struct child_ctx *ctx) {
  const struct sbx_request *req = ctx->req;
  struct sock_fprog prog = {.len = (unsigned short)req->filter_len, .filter = req->filter};
  unsigned long flags = 0;
  bool listener = (req->seccomp_flags & SBX_SECCOMP_LISTENER) != 0;
  if (listener) {
    sbx_comms c;
    sbx_comms_init(&c, ctx->setup_fd);
    int r = sbx_comms_send_uint32(&c, (uint32_t)ctx->listener_fd);
    if (r < 0) return child_fail(ctx, "send", -r, "setup socket, listener fd number", NULL);
    flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  }
  long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (fd < 0)
    return child_fail(ctx, "seccomp", errno,
                      listener ? "SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER"
                               : "SECCOMP_SET_MODE_FILTER",
                      NULL);
  ctx->filter_installed = true;
  /* A single-threaded child gets the lowest free fd; anything else would hand the executor the
   * wrong fd, so stop here (through the magic execveat: nothing else may be allowed now). */
  if (listener && fd != ctx->listener_fd) {
    syscall(SYS_execveat, SBX_EXEC_FD_TARGET, "", req->argv, (long)-EBADFD, AT_EMPTY_PATH,
            (long)SBX_EXEC_MAGIC);
    _exit(127);
  }
  return 0;
}
