/*
 * reaper.c: the sandbox's init when there is no pid namespace (SBX_OP_REAPER, Landlock isolation).
 *
 * Without a pid namespace nothing kills a sandbox's processes when its init dies: a double fork
 * plus setsid() is enough to outlive the target. So the child forks once more and its first
 * process stays as a child subreaper (PR_SET_CHILD_SUBREAPER): every orphan of the target's tree
 * is reparented to it, never to the host's init. It ends the tree when
 *   - the target ends (as a pid namespace dies with its init),
 *   - SIGTERM arrives: the forkserver's walltime and shutdown, Sandbox.kill(), and its own
 *     PDEATHSIG (the forkserver died).
 * Ending the tree: list every descendant (/proc/<pid>/task/<tid>/children, breadth first),
 * SIGKILL each through a pidfd after checking that its parent is still one of ours (a pid may
 * be reused), block in waitpid until one of them is reaped, and repeat until no child is left.
 * The killed processes' children are reparented here, so the next round sees them.
 *
 * This init is not in the Landlock domain (the target applies it after the split): the signal
 * scope keeps the target from signalling it, and Landlock keeps it from ptracing it. It runs no
 * sandboxee code, holds no fd but the setup socket, and is not dumpable. The rules of child.h
 * apply: no allocation, raw syscalls, fixed buffers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/comms.h>

#include "child.h"
#include "protocol.h"

/* Descendants handled per round; a larger tree takes more rounds. */
#define REAPER_MAX_PIDS 4096

struct tree {
  pid_t pid[REAPER_MAX_PIDS];
  pid_t parent[REAPER_MAX_PIDS];
  size_t n;
};

/* Reads a small file into buf (NUL-terminated); returns the length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = '\0';
  return n;
}

#define PROC_PATH_MAX 64

/* Appends s to buf (PROC_PATH_MAX bytes) at *pos, truncating; a number when s is NULL. */
static void put(char *buf, size_t *pos, const char *s, pid_t n) {
  char num[24];
  if (s == NULL) s = child_utoa(num, (unsigned long long)n, 10);
  while (*s != '\0' && *pos + 1 < PROC_PATH_MAX) buf[(*pos)++] = *s++;
  buf[*pos] = '\0';
}

/* Appends the children of every thread of `pid` to t. */
static void add_children(struct tree *t, pid_t pid) {
  char path[PROC_PATH_MAX];
  size_t pos = 0;
  put(path, &pos, "/proc/", 0), put(path, &pos, NULL, pid), put(path, &pos, "/task", 0);
  int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return; /* gone */
  char ents[2048];
  long n;
  while ((n = syscall(SYS_getdents64, dir, ents, sizeof ents)) > 0) {
    for (long off = 0; off < n;) {
      /* struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[] */
      unsigned short reclen;
      memcpy(&reclen, ents + off + 16, sizeof reclen);
      const char *name = ents + off + 19;
      off += reclen;
      pid_t tid = 0;
      for (const char *c = name; *c >= '0' && *c <= '9'; c++) tid = tid * 10 + (*c - '0');
      if (tid <= 0) continue;
      char cpath[PROC_PATH_MAX], list[4096];
      size_t cpos = 0;
      put(cpath, &cpos, path, 0), put(cpath, &cpos, "/", 0), put(cpath, &cpos, NULL, tid);
      put(cpath, &cpos, "/children", 0);
      if (read_small(cpath, list, sizeof list) < 0) continue;
      pid_t v = 0;
      for (const char *c = list;; c++) {
        if (*c >= '0' && *c <= '9') {
          v = v * 10 + (*c - '0');
        } else {
          if (v > 0 && t->n < REAPER_MAX_PIDS) {
            t->pid[t->n] = v;
            t->parent[t->n] = pid;
            t->n++;
          }
          v = 0;
          if (*c == '\0') break;
        }
      }
    }
  }
  close(dir);
}

/* The parent pid in /proc/<pid>/stat (after the last ')'), or -1. */
static pid_t parent_of(pid_t pid) {
  char path[PROC_PATH_MAX], stat[512];
  size_t pos = 0;
  put(path, &pos, "/proc/", 0), put(path, &pos, NULL, pid), put(path, &pos, "/stat", 0);
  if (read_small(path, stat, sizeof stat) < 0) return -1;
  char *close_paren = strrchr(stat, ')');
  if (close_paren == NULL || strnlen(close_paren, 4) < 4) return -1;
  const char *c = close_paren + 4; /* ") S " */
  pid_t v = 0;
  for (; *c >= '0' && *c <= '9'; c++) v = v * 10 + (*c - '0');
  return v;
}

/* SIGKILL through a pidfd, once the pid is known to still name our process: its parent is the
 * one it was listed under, or this init (it was reparented meanwhile). */
static void kill_checked(pid_t pid, pid_t parent, pid_t self) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return;
  pid_t p = parent_of(pid);
  if (p == parent || p == self) syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
  close(fd);
}

struct reaper {
  pid_t self, target;
  int status;
  int have_status;
};

static void reaped(struct reaper *r, pid_t p, int status) {
  if (p == r->target && !r->have_status) {
    r->status = status;
    r->have_status = 1;
  }
}

/* Kills and reaps every descendant. */
static void kill_tree(struct reaper *r) {
  static struct tree t; /* static: 32 KiB is too much for a forked stack frame */
  for (;;) {
    t.n = 0;
    add_children(&t, r->self);
    for (size_t i = 0; i < t.n; i++) add_children(&t, t.pid[i]); /* t.n grows: breadth first */
    for (size_t i = 0; i < t.n; i++) kill_checked(t.pid[i], t.parent[i], r->self);
    int status;
    pid_t p = waitpid(-1, &status, __WALL);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) return; /* ECHILD: nothing left */
    reaped(r, p, status);
    while ((p = waitpid(-1, &status, __WALL | WNOHANG)) > 0) reaped(r, p, status);
  }
}

/* The init keeps the forkserver's uid. When that is root it keeps CAP_KILL alone (to SIGKILL the
 * tree, which runs as another uid): no bounding set, NO_NEW_PRIVS, nothing to regain. An
 * unprivileged forkserver has no capability to drop. */
static int keep_only_cap_kill(void) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0) return -1;
  bool had_kill = (data[CAP_TO_INDEX(CAP_KILL)].permitted & CAP_TO_MASK(CAP_KILL)) != 0;
  if (data[CAP_TO_INDEX(CAP_SETPCAP)].effective & CAP_TO_MASK(CAP_SETPCAP))
    for (unsigned long cap = 0; cap < 64; cap++)
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL) break;
  (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  memset(data, 0, sizeof data);
  if (had_kill) {
    data[CAP_TO_INDEX(CAP_KILL)].permitted = CAP_TO_MASK(CAP_KILL);
    data[CAP_TO_INDEX(CAP_KILL)].effective = CAP_TO_MASK(CAP_KILL);
  }
  if (syscall(SYS_capset, &hdr, data) < 0) return -1;
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

__attribute__((noreturn)) static void run_reaper(struct child_ctx *ctx, pid_t target,
                                                 pid_t forkserver) {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) _exit(127);
  if (keep_only_cap_kill() < 0) {
    kill(target, SIGKILL); /* no init with more power than it needs: the sandbox ends here */
    _exit(127);
  }
  (void)prctl(PR_SET_NAME, "sbx-init", 0, 0, 0);
  int setup = ctx->setup_fd;
  if (setup > 0) syscall(SYS_close_range, 0, (unsigned)setup - 1, 0);
  syscall(SYS_close_range, (unsigned)setup + 1, ~0U, 0);

  struct reaper r = {.self = getpid(), .target = target};
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  /* The forkserver's death now means SIGTERM (handled below), not SIGKILL (which would leave
   * the tree to itself). A forkserver that died before this shows as a new parent. */
  int stop = prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 || getppid() != forkserver;
  while (!stop) {
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, __WALL | WNOHANG)) > 0) {
      reaped(&r, p, status);
      if (p == target) stop = 1;
    }
    if (stop) break;
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    if (sig == SIGTERM) stop = 1;
  }
  kill_tree(&r);
  if (r.have_status) init_send_status(setup, r.status);
  if (!r.have_status) _exit(128 + SIGKILL);
  _exit(WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + WTERMSIG(r.status));
}

int reaper_split_in_child(struct child_ctx *ctx) {
  pid_t forkserver = getppid();
  /* Blocked before the fork, so that no SIGTERM or SIGCHLD is lost before sigwaitinfo. */
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, &old) < 0)
    return child_fail(ctx, "sigprocmask", errno, "SIG_BLOCK, {SIGTERM, SIGCHLD}", NULL);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    return child_fail(ctx, "prctl", errno, "PR_SET_CHILD_SUBREAPER, 1", NULL);
  pid_t init = getpid();
  pid_t target = fork();
  if (target < 0) return child_fail(ctx, "fork", errno, "init and target", NULL);
  if (target > 0) run_reaper(ctx, target, forkserver);
  /* The target: not a subreaper (fork does not inherit it), its mask as before, tied to init. */
  ctx->init_pid = init;
  if (sigprocmask(SIG_SETMASK, &old, NULL) < 0)
    return child_fail(ctx, "sigprocmask", errno, "SIG_SETMASK", NULL);
  if (reaper_tie_target_in_child(ctx) < 0) return -1;
  if (ctx->setup_fd >= 0) return init_send_target_pidfd(ctx);
  return 0;
}

int reaper_tie_target_in_child(struct child_ctx *ctx) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    return child_fail(ctx, "prctl", errno, "PR_SET_PDEATHSIG, SIGKILL", NULL);
  if (getppid() != ctx->init_pid) _exit(127); /* init is already gone */
  return 0;
}
