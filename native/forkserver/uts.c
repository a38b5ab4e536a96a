/*
 * uts.c: the hostname, in the child's new UTS namespace (the parser requires CLONE_NEWUTS).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "child.h"

int uts_set_hostname_in_child(struct child_ctx *ctx) {
  const char *name = ctx->req->hostname;
  if (sethostname(name, strlen(name)) < 0) return child_fail(ctx, "sethostname", errno, name, NULL);
  return 0;
}
