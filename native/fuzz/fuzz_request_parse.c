/*
 * fuzz_request_parse: libFuzzer target for the forkserver's op-list parser (sbx_request_parse),
 * the forkserver's only input from outside. The input is the op list itself.
 *
 * Checked on every input (a failure aborts): the result is 0, -EINVAL or -ENOMEM; a failure
 * leaves no arena and a non-empty NUL-terminated message; a success gives
 * a request whose every string is NUL-terminated inside the arena (ASan checks the reads), whose
 * argv/envp end with NULL, whose counts match, and whose paths follow the protocol's rules
 * (absolute; inside paths not "/" and without a ".." component). Then it is freed (LeakSanitizer
 * checks nothing stays).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "request.h"

static void check(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "fuzz_request_parse: invariant broken: %s\n", what);
    abort();
  }
}

static void check_inside_path(const char *p) {
  check(p != NULL && p[0] == '/', "inside path absolute");
  check(strcmp(p, "/") != 0, "inside path is not /");
  for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2) {
    int starts = s[-1] == '/';
    int ends = s[2] == '/' || s[2] == '\0';
    check(!(starts && ends), "no .. component inside");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sbx_request req;
  char err[256];
  memset(&req, 0xa5, sizeof req); /* the parser must set what it promises, not rely on zeroes */
  memset(err, 'x', sizeof err);
  int rc = sbx_request_parse(data, size, &req, err, sizeof err);
  check(rc == 0 || rc == -EINVAL || rc == -ENOMEM, "documented result");
  if (rc != 0) {
    check(req.arena == NULL, "no arena on failure");
    check(memchr(err, '\0', sizeof err) != NULL, "error message terminated");
    check(err[0] != '\0', "an error message");
    sbx_request_free(&req);
    return 0;
  }
  check(req.arena != NULL, "arena on success");
  check(req.exec_path != NULL && req.exec_path[0] == '/', "exec path absolute");
  check(req.argc >= 1 && req.argv != NULL && req.argv[req.argc] == NULL, "argv");
  for (size_t i = 0; i < req.argc; i++) (void)strlen(req.argv[i]);
  check(req.envp != NULL && req.envp[req.envc] == NULL, "envp");
  for (size_t i = 0; i < req.envc; i++)
    check(strchr(req.envp[i], '=') != NULL && req.envp[i][0] != '=', "env K=V");
  check(req.cwd != NULL && req.cwd[0] == '/', "cwd absolute");
  if (req.hostname)
    check(strlen(req.hostname) >= 1 && strlen(req.hostname) <= SBX_REQ_HOSTNAME_MAX,
          "hostname length");
  for (size_t i = 0; i < req.nmounts; i++) {
    const struct sbx_mount_op *m = &req.mounts[i];
    check_inside_path(m->dst);
    if (m->op == SBX_OP_BIND) check(m->src != NULL && m->src[0] == '/', "bind source absolute");
    if (m->op == SBX_OP_SYMLINK) check(m->src != NULL && m->src[0] != '\0', "symlink target");
  }
  for (size_t i = 0; i < req.nrlimits; i++)
    check(req.rlimits[i].soft <= req.rlimits[i].hard, "rlimit soft <= hard");
  if (req.filter)
    check(req.filter_len >= 1 && req.filter_len <= SBX_REQ_FILTER_MAX, "filter length");
  else
    check(req.filter_len == 0, "no filter, no length");
  for (size_t i = 0; i < req.fd_count; i++) {
    int t = req.fd_ops[i].target;
    check(t == SBX_FD_OP_SETUP_SOCKET || (t >= 0 && t < SBX_REQ_FD_TARGET_MAX), "fd target range");
    for (size_t j = 0; j < i; j++)
      check(t == SBX_FD_OP_SETUP_SOCKET || req.fd_ops[j].target != t, "no duplicate fd target");
  }
  if (req.cgroup) check(req.cgroup[0] == '/', "cgroup absolute");
  check(req.has_request_id, "request id present");
  sbx_request_free(&req);
  return 0;
}
