/*
 * rlimits.c: the request's resource limits, applied in the child after its fds are in place
 * (a low RLIMIT_NOFILE leaves already open fds alone) and before exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/resource.h>

#include "child.h"

static const char *const rlimit_names[RLIMIT_NLIMITS] = {
    [RLIMIT_CPU] = "RLIMIT_CPU",           [RLIMIT_FSIZE] = "RLIMIT_FSIZE",
    [RLIMIT_DATA] = "RLIMIT_DATA",         [RLIMIT_STACK] = "RLIMIT_STACK",
    [RLIMIT_CORE] = "RLIMIT_CORE",         [RLIMIT_RSS] = "RLIMIT_RSS",
    [RLIMIT_NPROC] = "RLIMIT_NPROC",       [RLIMIT_NOFILE] = "RLIMIT_NOFILE",
    [RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK",   [RLIMIT_AS] = "RLIMIT_AS",
    [RLIMIT_LOCKS] = "RLIMIT_LOCKS",       [RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING",
    [RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE", [RLIMIT_NICE] = "RLIMIT_NICE",
    [RLIMIT_RTPRIO] = "RLIMIT_RTPRIO",     [RLIMIT_RTTIME] = "RLIMIT_RTTIME",
};

/* A limit above the current hard limit cannot be raised to (that needs CAP_SYS_RESOURCE in the
 * initial user namespace): it is clamped to the hard limit, which is stricter than asked, never
 * looser. Sandbox2 skips such a limit instead. */
static int apply(__rlimit_resource_t res, const struct sbx_rlimit_op *op) {
  struct rlimit rl = {.rlim_cur = op->soft, .rlim_max = op->hard};
  if (setrlimit(res, &rl) == 0) return 0;
  struct rlimit cur;
  if (errno != EPERM || getrlimit(res, &cur) < 0 || op->hard <= cur.rlim_max) return -1;
  rl.rlim_max = cur.rlim_max;
  if (rl.rlim_cur > rl.rlim_max) rl.rlim_cur = rl.rlim_max;
  return setrlimit(res, &rl);
}

int rlimits_apply_in_child(struct child_ctx *ctx) {
  for (size_t i = 0; i < ctx->req->nrlimits; i++) {
    const struct sbx_rlimit_op *op = &ctx->req->rlimits[i];
    if (apply((__rlimit_resource_t)op->resource, op) < 0) {
      char soft[24], hard[24];
      const char *name = rlimit_names[op->resource] != NULL ? rlimit_names[op->resource] : "?";
      return child_fail(ctx, "setrlimit", errno, name, ", ", child_utoa(soft, op->soft, 10), ", ",
                        child_utoa(hard, op->hard, 10), NULL);
    }
  }
  return 0;
}
