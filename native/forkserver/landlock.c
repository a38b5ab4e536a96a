/*
 * landlock.c: the request's Landlock ruleset (SBX_OP_LANDLOCK), a second filesystem wall under
 * the mount tree, plus the scopes that keep signals and abstract unix sockets inside the sandbox.
 *
 * Runs after pivot_root (the rule paths are opened inside the new root), after the ids and the
 * capability drop (NO_NEW_PRIVS is set there, which restrict_self needs), before the pid-namespace
 * init split (init is landlocked too) and the seccomp filter.
 *
 * The UAPI is defined here: distribution headers can stop at ABI 2 while the kernel offers more.
 * Every right is masked by the ABI the forkserver probed at start (unknown bits are EINVAL).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "protocol.h"

#define LL_SYS_CREATE_RULESET     444
#define LL_SYS_ADD_RULE           445
#define LL_SYS_RESTRICT_SELF      446
#define LL_CREATE_RULESET_VERSION 1u
#define LL_RULE_PATH_BENEATH      1

#define LL_FS_EXECUTE    (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE  (1ull << 2)
#define LL_FS_REFER      (1ull << 13) /* ABI 2 */
#define LL_FS_TRUNCATE   (1ull << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV  (1ull << 15) /* ABI 5 */
/* The rights that make sense on a file (the others are EINVAL on a non-directory). */
#define LL_FS_FILE_RIGHTS \
  (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

struct ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net; /* ABI 4 */
  uint64_t scoped;             /* ABI 6 */
};

struct ll_path_beneath_attr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));

static int g_abi = -1;

int landlock_probe(void) {
  long v = syscall(LL_SYS_CREATE_RULESET, NULL, 0, LL_CREATE_RULESET_VERSION);
  g_abi = v < 0 ? 0 : (int)v;
  return g_abi;
}

static uint64_t fs_mask(int abi) {
  uint64_t m = abi >= 1 ? (1ull << 13) - 1 : 0;
  if (abi >= 2) m |= LL_FS_REFER;
  if (abi >= 3) m |= LL_FS_TRUNCATE;
  if (abi >= 5) m |= LL_FS_IOCTL_DEV;
  return m;
}

static uint64_t net_mask(int abi) { return abi >= 4 ? 0x3 : 0; }
static uint64_t scope_mask(int abi) { return abi >= 6 ? 0x3 : 0; }

/* Adds one path-beneath rule for fd; a non-directory keeps only the file rights. 0 = nothing to
 * add (no right left), 1 = added, -errno on failure. */
static int add_fd_rule(int ruleset, int fd, uint64_t access, uint64_t handled) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  if (!S_ISDIR(st.st_mode)) access &= LL_FS_FILE_RIGHTS;
  access &= handled;
  if (access == 0) return 0;
  struct ll_path_beneath_attr a = {.allowed_access = access, .parent_fd = fd};
  if (syscall(LL_SYS_ADD_RULE, ruleset, LL_RULE_PATH_BENEATH, &a, 0) < 0) return -errno;
  return 1;
}

int landlock_apply_in_child(struct child_ctx *ctx) {
  const struct sbx_request *req = ctx->req;
  int abi = g_abi >= 0 ? g_abi : landlock_probe();
  if (abi < 1) return child_fail(ctx, "landlock_create_ruleset", EOPNOTSUPP, "VERSION", NULL);

  struct ll_ruleset_attr attr = {
      .handled_access_fs = req->landlock_fs & fs_mask(abi),
      .handled_access_net = req->landlock_net & net_mask(abi),
      .scoped = req->landlock_scoped & scope_mask(abi),
  };
  int ruleset = (int)syscall(LL_SYS_CREATE_RULESET, &attr, sizeof attr, 0);
  if (ruleset < 0) return child_fail(ctx, "landlock_create_ruleset", errno, NULL);

  for (size_t i = 0; i < req->nlandlock_paths; i++) {
    const struct sbx_landlock_path *rule = &req->landlock_paths[i];
    int fd = open(rule->path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT || err == EACCES || err == ENOTDIR || err == ELOOP) continue;
      close(ruleset);
      return child_fail_path(ctx, "open", err, rule->path, ", O_PATH", NULL);
    }
    int r = add_fd_rule(ruleset, fd, rule->access, attr.handled_access_fs);
    close(fd);
    if (r < 0) {
      close(ruleset);
      return child_fail(ctx, "landlock_add_rule", -r, rule->path, NULL);
    }
  }
  /* The binary itself: it may live outside every rule (it is exec'd from an fd). */
  int r = add_fd_rule(ruleset, SBX_EXEC_FD_TARGET, LL_FS_READ_FILE | LL_FS_EXECUTE,
                      attr.handled_access_fs);
  if (r < 0) {
    close(ruleset);
    return child_fail(ctx, "landlock_add_rule", -r, "the binary (exec fd)", NULL);
  }
  if (syscall(LL_SYS_RESTRICT_SELF, ruleset, 0) < 0) {
    int err = errno;
    close(ruleset);
    return child_fail(ctx, "landlock_restrict_self", err, NULL);
  }
  close(ruleset);
  return 0;
}
