/*
 * clone.c: the one clone sequence (clone.h), shared by spawn.c and pool.c.
 */
#define _GNU_SOURCE
#include "clone.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "protocol.h"
#include "userns.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* clone3's argument (linux/sched.h, CLONE_ARGS_SIZE_VER2), spelled out: Debian's headers may
 * predate some fields and flags. */
struct clone_args_v2 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

int fs_fail(struct fs_failure *f, uint32_t step, int err, const char *fmt, ...) {
  f->step = step;
  f->err = err;
  f->flags = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->msg, sizeof f->msg, fmt, ap);
  va_end(ap);
  return -err;
}

/* "CLONE_NEWUSER|CLONE_NEWNS|..." for messages. */
static void clone_flags_text(uint64_t flags, char *buf, size_t len) {
  static const struct {
    uint64_t flag;
    const char *name;
  } names[] = {
      {CLONE_PIDFD, "CLONE_PIDFD"},
      {CLONE_NEWUSER, "CLONE_NEWUSER"},
      {CLONE_NEWNS, "CLONE_NEWNS"},
      {CLONE_NEWPID, "CLONE_NEWPID"},
      {CLONE_NEWNET, "CLONE_NEWNET"},
      {CLONE_NEWIPC, "CLONE_NEWIPC"},
      {CLONE_NEWUTS, "CLONE_NEWUTS"},
      {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
      {CLONE_INTO_CGROUP, "CLONE_INTO_CGROUP"},
  };
  size_t pos = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!(flags & names[i].flag)) continue;
    int n = snprintf(buf + pos, len - pos, "%s%s", pos ? "|" : "", names[i].name);
    if (n < 0 || (size_t)n >= len - pos) break;
    pos += (size_t)n;
  }
}

static const char *clone_hint(int err, uint64_t flags) {
  if (!(flags & CLONE_NEWUSER)) return "";
  if (err == EPERM || err == EACCES)
    return " (Hint: the host refuses user namespaces to this process: check sysctl "
           "kernel.unprivileged_userns_clone, AppArmor's restrict_unprivileged_userns, or a "
           "container seccomp profile)";
  if (err == ENOSPC)
    return " (Hint: a namespace limit is reached: sysctl user.max_user_namespaces)";
  return "";
}

/* clone3, or where it is missing the legacy clone. ENOSYS comes from kernels before 5.3 and from
 * container seccomp profiles, which refuse clone3 (its flags sit in memory a filter cannot read)
 * so that callers fall back. The legacy call takes the same flags but CLONE_INTO_CGROUP and puts
 * the pidfd at parent_tid (its third argument on every architecture); *in_cgroup says whether
 * the child already starts in the cgroup. */
static bool g_no_clone3;
static pid_t clone_now(const struct clone_args_v2 *args, bool *in_cgroup, const char **call) {
  *in_cgroup = (args->flags & CLONE_INTO_CGROUP) != 0;
  *call = "clone3";
  if (!g_no_clone3) {
    long pid = syscall(SYS_clone3, args, sizeof *args);
    if (pid >= 0 || errno != ENOSYS) return (pid_t)pid;
    g_no_clone3 = true;
  }
  *in_cgroup = false;
  *call = "clone";
  unsigned long flags =
      (unsigned long)(args->flags & ~CLONE_INTO_CGROUP) | (unsigned long)args->exit_signal;
  return (pid_t)syscall(SYS_clone, flags, 0UL, (unsigned long)args->pidfd, 0UL, 0UL);
}

/* The child starts with SIGTERM blocked (init.c: a pid namespace's init would otherwise drop one
 * that comes before it waits for it); the forkserver's own mask is restored right after. */
static pid_t clone_blocking_term(const struct clone_args_v2 *args, bool *in_cgroup,
                                 const char **call) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &term, &old) < 0) return -1;
  pid_t pid = clone_now(args, in_cgroup, call);
  if (pid != 0) {
    int e = errno;
    (void)sigprocmask(SIG_SETMASK, &old, NULL);
    errno = e;
  }
  return pid;
}

/* As the owner of the new user namespace (userns.h), when it is not us. */
static pid_t clone_as_owner(const struct clone_args_v2 *args, uint32_t owner, bool *in_cgroup,
                            const char **call) {
  if (!(args->flags & CLONE_NEWUSER) || owner == SBX_OWNER_SELF)
    return clone_blocking_term(args, in_cgroup, call);
  int r = userns_owner_enter(owner);
  if (r < 0) {
    *in_cgroup = false;
    *call = "setresuid (owner of the new user namespace)";
    errno = -r;
    return -1;
  }
  pid_t pid = clone_blocking_term(args, in_cgroup, call);
  if (pid == 0) return 0; /* the child keeps the owner's euid (its ids are set after the release) */
  int e = errno;
  userns_owner_leave();
  errno = e;
  return pid;
}

pid_t fs_clone(const struct fs_clone_spec *spec, struct fs_clone *c, struct fs_failure *f) {
  int release[2];
  c->pid = 0;
  c->pidfd = -1;
  c->release_fd = -1;
  c->in_cgroup = false;
  if (pipe2(release, O_CLOEXEC) < 0)
    return fs_fail(f, SBX_STEP_CLONE, errno, "pipe2(O_CLOEXEC): %s", strerror(errno)), -1;
  struct clone_args_v2 args = {
      .flags = CLONE_PIDFD | spec->namespaces | (spec->cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
      .pidfd = (uint64_t)(uintptr_t)&c->pidfd,
      .exit_signal = SIGCHLD,
      .cgroup = spec->cgroup_fd >= 0 ? (uint64_t)spec->cgroup_fd : 0,
  };
  const char *call;
  pid_t pid = clone_as_owner(&args, spec->userns_owner, &c->in_cgroup, &call);
  if (pid == 0) {
    close(release[1]);
    c->release_fd = release[0];
    return 0;
  }
  close(release[0]);
  if (pid < 0) {
    int e = errno;
    char flags[256];
    close(release[1]);
    clone_flags_text(c->in_cgroup ? args.flags : args.flags & ~CLONE_INTO_CGROUP, flags,
                     sizeof flags);
    fs_fail(f, SBX_STEP_CLONE, e, "%s(%s): %s%s", call, flags, strerror(e),
            clone_hint(e, args.flags));
    c->pidfd = -1;
    return -1;
  }
  c->pid = pid;
  c->release_fd = release[1];
  return pid;
}

/* Moves a released-not-yet child into the cgroup (when clone could not start it there). */
static int join_cgroup(int cgroup_fd, pid_t pid, struct fs_failure *f) {
  int fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
  char num[24];
  int n = snprintf(num, sizeof num, "%d", (int)pid);
  if (fd < 0 || write(fd, num, (size_t)n) != n) {
    int e = errno;
    if (fd >= 0) close(fd);
    return fs_fail(f, SBX_STEP_CGROUP, e, "cgroup: write(cgroup.procs, %d): %s", (int)pid,
                   strerror(e));
  }
  close(fd);
  return 0;
}

int fs_clone_release(const struct fs_clone_spec *spec, struct fs_clone *c, struct fs_failure *f) {
  int r = 0;
  if (spec->namespaces & CLONE_NEWUSER) {
    r = userns_write_maps(c->pid, spec->inside_uid, spec->outside_uid, spec->inside_gid,
                          spec->outside_gid, spec->may_setgroups, f->msg, sizeof f->msg);
    if (r < 0) {
      f->step = SBX_STEP_ID_MAP;
      f->err = -r;
      f->flags = 0;
    }
  }
  if (r == 0 && spec->cgroup_fd >= 0 && !c->in_cgroup) r = join_cgroup(spec->cgroup_fd, c->pid, f);
  /* Go. A child that died already (killed from outside) shows up as EPIPE. */
  if (r == 0 && write(c->release_fd, "g", 1) != 1)
    r = fs_fail(f, SBX_STEP_RELEASE, errno, "release: write(release pipe): %s", strerror(errno));
  close(c->release_fd);
  c->release_fd = -1;
  return r;
}

void fs_kill_and_reap(int pidfd) {
  pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
  /* Reaped here, or by children_reap (wait4(-1) skips pids it does not know) if that was first. */
  siginfo_t si;
  while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR) {}
}

void fs_clone_abandon(struct fs_clone *c) {
  if (c->release_fd >= 0) close(c->release_fd);
  c->release_fd = -1;
  if (c->pidfd >= 0) {
    fs_kill_and_reap(c->pidfd);
    close(c->pidfd);
  }
  c->pidfd = -1;
}
