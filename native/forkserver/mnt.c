/*
 * mnt.c: the sandbox's mount tree, built in the child's new mount namespace.
 *
 * 1. "/" becomes recursively private, so nothing we mount propagates to the host.
 * 2. A fresh tmpfs becomes the new root. It is attached on top of the old "/" (the process's
 *    root stays the old one until pivot_root, so host paths such as bind sources under /tmp
 *    still resolve as on the host).
 * 3. The mount ops run in request order through one switch (bubblewrap's SetupOp model).
 *    Paths inside the new root are resolved with openat2(RESOLVE_IN_ROOT): a symlink in the
 *    tree (ours, or one inside a bind-mounted host directory) cannot lead a mkdir or a mount
 *    out of the new root while the host is still visible.
 * 4. The new root (and the /dev tmpfs) become read-only, as Sandbox2's default root: the
 *    sandboxee writes only where a TMPFS op or an rw BIND says so.
 * 5. pivot_root(".", "."), then the old root is detached. /proc ops ran before this: in a user
 *    namespace the kernel lets proc be mounted only while a full proc is visible.
 *
 * The new mount API (open_tree/fsopen/fsmount/move_mount/mount_setattr) works on fds, which is
 * what makes the in-root resolution possible; Linux >= 5.12.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "protocol.h"

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* The device nodes a DEV op provides, bind-mounted from the host's /dev. */
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom"};
/* and these symlinks */
static const char *const dev_links[][2] = {
    {"fd", "/proc/self/fd"},
    {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"},
};

struct mnt_state {
  int root; /* the new root tmpfs (mount fd, attached) */
  int dev;  /* the DEV op's tmpfs, sealed read-only at the end; -1 if none */
};

/* An O_PATH fd of path, resolved as if root were "/" (symlinks cannot leave it). */
static int resolve_in_root(int root, const char *path, int extra_flags) {
  struct open_how how = {
      .flags = (uint64_t)(O_PATH | O_CLOEXEC | extra_flags),
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  return (int)syscall(SYS_openat2, root, path, &how, sizeof how);
}

/* Creates every missing directory along path (mode `mode` for the intermediate ones,
 * `last_mode` for the last component) and returns an O_PATH fd of the last directory. The
 * component-by-component walk resolves each prefix again from the root, so a symlink created
 * in between is followed inside the root only. */
static int make_dirs(struct child_ctx *ctx, int root, const char *path, mode_t last_mode) {
  char buf[SBX_REQ_PATH_MAX];
  size_t len = strlen(path);
  memcpy(buf, path, len + 1);
  int cur = -1; /* -1: the root itself */
  size_t i = 0;
  while (i < len) {
    while (i < len && buf[i] == '/') i++;
    if (i == len) break;
    size_t start = i;
    while (i < len && buf[i] != '/') i++;
    char saved = buf[i];
    size_t next = i;
    while (next < len && buf[next] == '/') next++;
    bool last = next == len; /* "/a/b/" ends with b */
    buf[i] = '\0';
    int fd = resolve_in_root(root, buf, O_DIRECTORY);
    if (fd < 0 && errno == ENOENT) {
      mode_t mode = last ? last_mode : 0755;
      if (mkdirat(cur >= 0 ? cur : root, buf + start, mode) < 0 && errno != EEXIST) {
        int err = errno;
        if (cur >= 0) close(cur);
        return child_fail(ctx, "mkdir", err, buf, NULL);
      }
      fd = resolve_in_root(root, buf, O_DIRECTORY);
    }
    if (fd < 0) {
      int err = errno;
      if (cur >= 0) close(cur);
      return child_fail_path(ctx, "openat2", err, buf, ", O_DIRECTORY, RESOLVE_IN_ROOT", NULL);
    }
    if (cur >= 0) close(cur);
    cur = fd;
    buf[i] = saved;
  }
  if (cur < 0) { /* path was "/" (the parser refuses it for ops, but be exact) */
    cur = resolve_in_root(root, "/", O_DIRECTORY);
    if (cur < 0) return child_fail_path(ctx, "openat2", errno, "/", NULL);
  }
  return cur;
}

/* Splits absolute path into its parent directory and its last component ("/a/b/" -> "/a", "b"). */
static void split_last(const char *path, char parent[SBX_REQ_PATH_MAX],
                       char name[SBX_REQ_PATH_MAX]) {
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/') len--;
  size_t slash = len;
  while (slash > 0 && path[slash - 1] != '/') slash--; /* path[slash..len) is the name */
  memcpy(name, path + slash, len - slash);
  name[len - slash] = '\0';
  memcpy(parent, path, slash);
  parent[slash] = '\0'; /* "/a/" or "/": make_dirs ignores the trailing slash */
}

/* An O_PATH fd of the mount target: a directory or, for a file source, a file; created (with
 * its missing parents) when absent. */
static int make_target(struct child_ctx *ctx, int root, const char *path, bool dir) {
  if (dir) return make_dirs(ctx, root, path, 0755);
  int fd = resolve_in_root(root, path, 0);
  if (fd >= 0) return fd;
  if (errno != ENOENT)
    return child_fail_path(ctx, "openat2", errno, path, ", RESOLVE_IN_ROOT", NULL);
  char parent[SBX_REQ_PATH_MAX], name[SBX_REQ_PATH_MAX];
  split_last(path, parent, name);
  int pfd = make_dirs(ctx, root, parent, 0755);
  if (pfd < 0) return -1;
  if (mknodat(pfd, name, S_IFREG | 0644, 0) < 0 && errno != EEXIST) {
    int err = errno;
    close(pfd);
    return child_fail(ctx, "mknod", err, path, NULL);
  }
  close(pfd);
  fd = resolve_in_root(root, path, 0);
  if (fd < 0) return child_fail_path(ctx, "openat2", errno, path, ", RESOLVE_IN_ROOT", NULL);
  return fd;
}

/* Attaches the detached mount `mnt` on the target fd; closes both. */
static int attach(struct child_ctx *ctx, int mnt, int target, const char *what, const char *dst) {
  int r = move_mount(mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  int err = errno;
  close(mnt);
  close(target);
  if (r < 0) return child_fail(ctx, "move_mount", err, what, " -> ", dst, NULL);
  return 0;
}

/* A new, detached tmpfs or proc mount (fsopen + fsconfig + fsmount). */
static int new_fs(struct child_ctx *ctx, const char *type, mode_t mode, uint64_t size,
                  unsigned attrs) {
  int fs = fsopen(type, FSOPEN_CLOEXEC);
  if (fs < 0) return child_fail(ctx, "fsopen", errno, type, NULL);
  char num[24];
  if (mode != 0 && fsconfig(fs, FSCONFIG_SET_STRING, "mode", child_utoa(num, mode, 8), 0) < 0) {
    int err = errno;
    close(fs);
    return child_fail(ctx, "fsconfig", err, type, ", mode=", num, NULL);
  }
  if (size != 0 && fsconfig(fs, FSCONFIG_SET_STRING, "size", child_utoa(num, size, 10), 0) < 0) {
    int err = errno;
    close(fs);
    return child_fail(ctx, "fsconfig", err, type, ", size=", num, NULL);
  }
  /* One inode per 4 KiB of a sized tmpfs (at least 256): without it a tiny tmpfs still allows
   * millions of empty files, each costing kernel memory outside the size limit. */
  uint64_t inodes = size / 4096 < 256 ? 256 : size / 4096;
  if (size != 0 &&
      fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", child_utoa(num, inodes, 10), 0) < 0) {
    int err = errno;
    close(fs);
    return child_fail(ctx, "fsconfig", err, type, ", nr_inodes=", num, NULL);
  }
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int err = errno;
    close(fs);
    return child_fail(ctx, "fsconfig", err, type, ", FSCONFIG_CMD_CREATE", NULL);
  }
  int mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
  int err = errno;
  close(fs);
  if (mnt < 0) return child_fail(ctx, "fsmount", err, type, NULL);
  return mnt;
}

static int op_bind(struct child_ctx *ctx, struct mnt_state *st, const struct sbx_mount_op *op) {
  int tree = open_tree(AT_FDCWD, op->src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) {
    if (errno == ENOENT && (op->flags & SBX_BIND_OPTIONAL)) return 0;
    return child_fail_path(ctx, "open_tree", errno, op->src, ", OPEN_TREE_CLONE | AT_RECURSIVE",
                           NULL);
  }
  struct stat sb;
  if (fstat(tree, &sb) < 0) {
    int err = errno;
    close(tree);
    return child_fail_path(ctx, "fstat", err, op->src, NULL);
  }
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID, .propagation = MS_PRIVATE};
  if (!(op->flags & SBX_BIND_RW)) attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (!(op->flags & SBX_BIND_DEV)) attr.attr_set |= MOUNT_ATTR_NODEV;
  if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
    int err = errno;
    close(tree);
    return child_fail(ctx, "mount_setattr", err, op->src, NULL);
  }
  int target = make_target(ctx, st->root, op->dst, S_ISDIR(sb.st_mode));
  if (target < 0) {
    close(tree);
    return -1;
  }
  return attach(ctx, tree, target, op->src, op->dst);
}

static int op_tmpfs(struct child_ctx *ctx, struct mnt_state *st, const struct sbx_mount_op *op) {
  /* mode 0 would make an unusable tmpfs: treat it as "kernel default" like size 0 */
  int mnt = new_fs(ctx, "tmpfs", op->flags, op->size, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
  if (mnt < 0) return -1;
  int target = make_dirs(ctx, st->root, op->dst, 0755);
  if (target < 0) {
    close(mnt);
    return -1;
  }
  return attach(ctx, mnt, target, "tmpfs", op->dst);
}

static int op_proc(struct child_ctx *ctx, struct mnt_state *st, const struct sbx_mount_op *op) {
  int mnt = new_fs(ctx, "proc", 0, 0, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (mnt < 0) return -1;
  int target = make_dirs(ctx, st->root, op->dst, 0755);
  if (target < 0) {
    close(mnt);
    return -1;
  }
  return attach(ctx, mnt, target, "proc", op->dst);
}

/* A small tmpfs with the host's harmless device nodes bind-mounted in. */
static int op_dev(struct child_ctx *ctx, struct mnt_state *st, const struct sbx_mount_op *op) {
  /* nodev on the tmpfs is fine: a device is checked against the mount it is found on, and the
   * nodes are separate bind mounts of the host's (which keep their own flags) */
  int mnt = new_fs(ctx, "tmpfs", 0755, 64 * 1024,
                   MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (mnt < 0) return -1;
  int target = make_dirs(ctx, st->root, op->dst, 0755);
  if (target < 0) {
    close(mnt);
    return -1;
  }
  /* attach first: the node binds below need an attached mount to land on */
  int r = move_mount(mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
  int err = errno;
  close(target);
  if (r < 0) {
    close(mnt);
    return child_fail(ctx, "move_mount", err, "tmpfs -> ", op->dst, NULL);
  }
  st->dev = mnt; /* still refers to the (now attached) mount: used below and for sealing */
  for (size_t i = 0; i < sizeof dev_nodes / sizeof dev_nodes[0]; i++) {
    char host[32] = "/dev/";
    strcat(host, dev_nodes[i]);
    if (mknodat(mnt, dev_nodes[i], S_IFREG | 0666, 0) < 0)
      return child_fail(ctx, "mknod", errno, op->dst, "/", dev_nodes[i], NULL);
    int tree = open_tree(AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) return child_fail_path(ctx, "open_tree", errno, host, ", OPEN_TREE_CLONE", NULL);
    r = move_mount(tree, "", mnt, dev_nodes[i], MOVE_MOUNT_F_EMPTY_PATH);
    err = errno;
    close(tree);
    if (r < 0)
      return child_fail(ctx, "move_mount", err, host, " -> ", op->dst, "/", dev_nodes[i], NULL);
  }
  for (size_t i = 0; i < sizeof dev_links / sizeof dev_links[0]; i++)
    if (symlinkat(dev_links[i][1], mnt, dev_links[i][0]) < 0)
      return child_fail(ctx, "symlink", errno, dev_links[i][1], " -> ", op->dst, "/",
                        dev_links[i][0], NULL);
  return 0;
}

static int op_mkdir(struct child_ctx *ctx, struct mnt_state *st, const struct sbx_mount_op *op) {
  int fd = make_dirs(ctx, st->root, op->dst, op->flags);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

static int op_symlink(struct child_ctx *ctx, struct mnt_state *st, const struct sbx_mount_op *op) {
  char parent[SBX_REQ_PATH_MAX], name[SBX_REQ_PATH_MAX];
  split_last(op->dst, parent, name);
  int pfd = make_dirs(ctx, st->root, parent, 0755);
  if (pfd < 0) return -1;
  int r = symlinkat(op->src, pfd, name);
  int err = errno;
  close(pfd);
  if (r < 0) return child_fail(ctx, "symlink", err, op->src, " -> ", op->dst, NULL);
  return 0;
}

/* Read-only from now on; submounts keep their own flags. */
static int seal(struct child_ctx *ctx, int mnt, const char *what) {
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
  if (mount_setattr(mnt, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return child_fail(ctx, "mount_setattr", errno, what, ", MOUNT_ATTR_RDONLY", NULL);
  return 0;
}

static int build_tree(struct child_ctx *ctx, struct mnt_state *st) {
  const struct sbx_request *req = ctx->req;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return child_fail(ctx, "mount", errno, "/, MS_REC | MS_PRIVATE", NULL);

  st->root = new_fs(ctx, "tmpfs", 0755, 0, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
  if (st->root < 0) return -1;
  if (move_mount(st->root, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return child_fail(ctx, "move_mount", errno, "tmpfs -> / (new root)", NULL);

  for (size_t i = 0; i < req->nmounts; i++) {
    const struct sbx_mount_op *op = &req->mounts[i];
    int r;
    switch (op->op) {
      case SBX_OP_BIND: r = op_bind(ctx, st, op); break;
      case SBX_OP_TMPFS: r = op_tmpfs(ctx, st, op); break;
      case SBX_OP_PROC: r = op_proc(ctx, st, op); break;
      case SBX_OP_DEV: r = op_dev(ctx, st, op); break;
      case SBX_OP_MKDIR: r = op_mkdir(ctx, st, op); break;
      case SBX_OP_SYMLINK: r = op_symlink(ctx, st, op); break;
      default: r = child_fail(ctx, "mount op", EINVAL, NULL); break; /* the parser prevents it */
    }
    if (r < 0) return -1;
  }

  if (st->dev >= 0 && seal(ctx, st->dev, "/dev tmpfs") < 0) return -1;
  if (seal(ctx, st->root, "new root tmpfs") < 0) return -1;

  /* pivot_root(".", "."): the old root ends up stacked on the new one and is detached at once;
   * no directory for it is needed in the (read-only) new root. */
  if (fchdir(st->root) < 0) return child_fail(ctx, "fchdir", errno, "new root", NULL);
  if (syscall(SYS_pivot_root, ".", ".") < 0)
    return child_fail(ctx, "pivot_root", errno, ".", ", .", NULL);
  if (umount2(".", MNT_DETACH) < 0)
    return child_fail(ctx, "umount2", errno, "old root, MNT_DETACH", NULL);
  if (chdir("/") < 0) return child_fail(ctx, "chdir", errno, "/", NULL);
  return 0;
}

int mnt_setup_in_child(struct child_ctx *ctx) {
  struct mnt_state st = {.root = -1, .dev = -1};
  /* exact modes for what we create; the executor's umask is back before exec */
  mode_t old_umask = umask(0);
  int r = build_tree(ctx, &st);
  umask(old_umask);
  if (st.root >= 0) close(st.root);
  if (st.dev >= 0) close(st.dev);
  return r;
}
