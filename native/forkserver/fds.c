/*
 * fds.c: the child's fd table as the request describes it, and nothing else.
 *
 * The received fds carry forkserver numbers that may collide with the targets (fd 5 goes to 7
 * while fd 7 goes to 5). So every source is first copied above a watermark higher than any
 * target, then each copy is dup3()ed onto its target; only then is everything else closed.
 * Kept: the mapped targets (without CLOEXEC: they are the sandboxee's), 0-2 (the forkserver's
 * /dev/null where the request maps nothing, so that a later open() cannot become stdout), the
 * setup socket at SBX_SETUP_FD_TARGET and the exec fd at SBX_EXEC_FD_TARGET (both CLOEXEC).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "child.h"
#include "protocol.h"

static int dup_high(struct child_ctx *ctx, int fd, int watermark) {
  int high = fcntl(fd, F_DUPFD_CLOEXEC, watermark);
  if (high < 0) {
    char a[24], b[24];
    return child_fail(ctx, "fcntl", errno, child_utoa(a, (unsigned)fd, 10), ", F_DUPFD_CLOEXEC, ",
                      child_utoa(b, (unsigned)watermark, 10), NULL);
  }
  return high;
}

static int place(struct child_ctx *ctx, int high, int target, int flags) {
  if (dup3(high, target, flags) < 0) {
    char a[24], b[24];
    return child_fail(ctx, "dup3", errno, child_utoa(a, (unsigned)high, 10), ", ",
                      child_utoa(b, (unsigned)target, 10), NULL);
  }
  return 0;
}

static bool is_target(const struct sbx_request *req, int fd) {
  for (size_t i = 0; i < req->fd_count; i++)
    if (req->fd_ops[i].target == fd) return true;
  return false;
}

int fds_arrange_in_child(struct child_ctx *ctx) {
  const struct sbx_request *req = ctx->req;
  int *high = ctx->scratch; /* req->fd_count + 8 entries */

  int watermark = SBX_EXEC_FD_TARGET;
  for (size_t i = 0; i < req->fd_count; i++)
    if (req->fd_ops[i].target > watermark) watermark = req->fd_ops[i].target;
  watermark++;

  for (size_t i = 0; i < req->fd_count; i++)
    if ((high[i] = dup_high(ctx, ctx->fds[i], watermark)) < 0) return -1;
  int exec_high = dup_high(ctx, ctx->exec_fd, watermark);
  if (exec_high < 0) return -1;
  int null_high = dup_high(ctx, ctx->devnull_fd, watermark);
  if (null_high < 0) return -1;

  for (size_t i = 0; i < req->fd_count; i++) {
    bool setup = req->fd_ops[i].target == SBX_FD_OP_SETUP_SOCKET;
    int target = setup ? SBX_SETUP_FD_TARGET : req->fd_ops[i].target;
    if (place(ctx, high[i], target, setup ? O_CLOEXEC : 0) < 0) return -1;
    if (setup) ctx->setup_fd = SBX_SETUP_FD_TARGET;
  }
  if (place(ctx, exec_high, SBX_EXEC_FD_TARGET, O_CLOEXEC) < 0) return -1;
  ctx->exec_fd = SBX_EXEC_FD_TARGET;
  for (int fd = 0; fd <= 2; fd++)
    if (!is_target(req, fd) && place(ctx, null_high, fd, 0) < 0) return -1;

  /* The kept set, sorted (insertion sort: at most ~1k entries, no allocation). */
  int *kept = ctx->scratch;
  size_t n = 0;
  for (size_t i = 0; i < req->fd_count; i++)
    kept[n++] = req->fd_ops[i].target == SBX_FD_OP_SETUP_SOCKET ? SBX_SETUP_FD_TARGET
                                                                : req->fd_ops[i].target;
  for (int fd = 0; fd <= 2; fd++)
    if (!is_target(req, fd)) kept[n++] = fd;
  kept[n++] = SBX_EXEC_FD_TARGET;
  for (size_t i = 1; i < n; i++) {
    int v = kept[i];
    size_t j = i;
    for (; j > 0 && kept[j - 1] > v; j--) kept[j] = kept[j - 1];
    kept[j] = v;
  }

  /* Close the gaps between kept fds, then everything above the last one. */
  unsigned next = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned k = (unsigned)kept[i];
    if (k > next && close_range(next, k - 1, 0) < 0)
      return child_fail(ctx, "close_range", errno, NULL);
    next = k + 1;
  }
  if (close_range(next, ~0U, 0) < 0) return child_fail(ctx, "close_range", errno, NULL);

  /* The lowest free number: what seccomp(NEW_LISTENER) will return in this single-threaded
   * child (nothing opens an fd between here and there). */
  int lowest = 0;
  for (size_t i = 0; i < n && kept[i] <= lowest; i++)
    if (kept[i] == lowest) lowest++;
  ctx->listener_fd = lowest;
  ctx->forkserver_pidfd = ctx->devnull_fd = ctx->release_fd = -1; /* closed above */
  return 0;
}
