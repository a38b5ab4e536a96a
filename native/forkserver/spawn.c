/*
 * spawn.c: one spawn request, forkserver side (outside the sandbox, with the executor's
 * privileges): parse, take the announced fds, open the binary, clone into the namespaces,
 * write the id maps, release the child, reply SPAWNED with its pidfd.
 *
 * An error reply means no child exists any more (one that was cloned is killed and reaped
 * here), so an SBX_FS_EXITED only ever follows a successful SBX_FS_SPAWNED. Every per-request
 * fd is closed before this returns; the pidfd stays in the children table until the reap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "protocol.h"
#include "request.h"
#include "server.h"
#include "userns.h"
#include "le.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* SBX_FS_SPAWNED: u64 request_id | i32 err | u32 pid | message; then the pidfd on success. */
static int reply(struct fs_server *srv, uint64_t id, int err, pid_t pid, const char *msg,
                 int pidfd) {
  size_t mlen = msg != NULL ? strlen(msg) : 0;
  uint8_t buf[16 + 1024];
  if (mlen > sizeof buf - 16) mlen = sizeof buf - 16;
  put_u64(buf, id);
  put_u32(buf + 8, (uint32_t)err);
  put_u32(buf + 12, (uint32_t)pid);
  if (mlen > 0) memcpy(buf + 16, msg, mlen);
  int r = sbx_comms_send_tlv(&srv->comms, SBX_FS_SPAWNED, buf, 16 + mlen);
  if (r == 0 && err == 0) r = sbx_comms_send_fd(&srv->comms, pidfd);
  return r;
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
static pid_t clone_now(const struct fs_clone_args *args, bool *in_cgroup, const char **call) {
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
static pid_t clone_blocking_term(const struct fs_clone_args *args, bool *in_cgroup,
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

pid_t spawn_clone(const struct fs_clone_args *args, uint32_t userns_owner, bool *in_cgroup,
                  const char **call) {
  if (!(args->flags & CLONE_NEWUSER) || userns_owner == SBX_OWNER_SELF)
    return clone_blocking_term(args, in_cgroup, call);
  int r = userns_owner_enter(userns_owner);
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

/* Moves a released-not-yet child into the cgroup (when clone could not start it there). */
static int join_cgroup(int cgroup_fd, pid_t pid, char *msg, size_t len) {
  int fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
  char num[24];
  int n = snprintf(num, sizeof num, "%d", (int)pid);
  if (fd < 0 || write(fd, num, (size_t)n) != n) {
    int e = errno;
    if (fd >= 0) close(fd);
    snprintf(msg, len, "cgroup: write(cgroup.procs, %d): %s", (int)pid, strerror(e));
    return -e;
  }
  close(fd);
  return 0;
}

/* Receives `count` fds and closes them: keeps the stream in step after an invalid request.
 * Returns 0 or a fatal comms error. */
static int drain_fds(struct fs_server *srv, size_t count) {
  for (size_t i = 0; i < count; i++) {
    int fd;
    int r = sbx_comms_recv_fd(&srv->comms, &fd);
    if (r == -EBADMSG) return 0; /* not an Fd: the executor announced none after all */
    if (r < 0) return r;
    close(fd);
  }
  return 0;
}

/* Kills and reaps a child that will not be reported (the spawn failed after clone). */
static void abandon_child(int pidfd) {
  pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
  siginfo_t si;
  while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR) {}
}

int spawn_handle(struct fs_server *srv, const uint8_t *buf, size_t len) {
  struct sbx_request req;
  char msg[1024];
  int r = sbx_request_parse(buf, len, &req, msg, sizeof msg);
  if (r < 0) {
    int d = drain_fds(srv, req.fd_count);
    if (d < 0) return d;
    char full[1100];
    snprintf(full, sizeof full, "%s%s", r == -EINVAL ? "invalid request: " : "", msg);
    return reply(srv, req.request_id, r, 0, full, -1); /* id 0 when none could be read */
  }

  int *fds = calloc(req.fd_count + 1, sizeof *fds);
  int *scratch = calloc(req.fd_count + 8, sizeof *scratch);
  int exec_fd = -1, cgroup_fd = -1, release[2] = {-1, -1}, pidfd = -1;
  size_t received = 0;
  int err = 0, fatal = 0;
  pid_t pid = 0;
  bool pooled = false;
  char *cgroup = NULL; /* the sandbox's cgroup, for the children table (its tree kill) */
  msg[0] = '\0';

  if (fds == NULL || scratch == NULL || children_reserve(&srv->children) < 0) {
    err = -ENOMEM;
    snprintf(msg, sizeof msg, "out of memory");
    fatal = drain_fds(srv, req.fd_count);
    goto out;
  }
  for (; received < req.fd_count; received++) {
    r = sbx_comms_recv_fd(&srv->comms, &fds[received]);
    if (r == -EBADMSG) {
      err = -EPROTO;
      snprintf(msg, sizeof msg, "fd %zu of %zu: expected an Fd message, got tag 0x%x (%s)",
               received + 1, req.fd_count, (unsigned)sbx_comms_last_tag(&srv->comms),
               sbx_comms_tag_name(sbx_comms_last_tag(&srv->comms)));
      goto out;
    }
    if (r < 0) {
      fatal = r;
      goto out;
    }
  }

  exec_fd = open(req.exec_path, O_PATH | O_CLOEXEC);
  if (exec_fd < 0) {
    err = -errno;
    snprintf(msg, sizeof msg, "open(%s): %s", req.exec_path, strerror(errno));
    goto out;
  }
  if (req.cgroup != NULL) {
    cgroup_fd = open(req.cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) {
      err = -errno;
      snprintf(msg, sizeof msg, "open(%s): %s", req.cgroup, strerror(errno));
      goto out;
    }
  }
  /* A slot prepared for exactly this layout: it gets the request and its fds, and execs. */
  struct fs_slot slot;
  if (pool_take(&srv->pool, buf, len, &req, &slot)) {
    if (pool_hand_over(&srv->pool, &slot, buf, len, fds, req.fd_count, exec_fd) == 0) {
      pid = slot.pid;
      pidfd = slot.pidfd;
      /* The slot has a host uid and runs in a cgroup of its own (pool.h): the executor takes
       * those. "uid=N" first, "cgroup=PATH" last (a path may hold spaces). */
      size_t m = 0;
      if (slot.uid != SBX_OWNER_SELF)
        m = (size_t)snprintf(msg, sizeof msg, "uid=%u", (unsigned)slot.uid);
      if (slot.cgroup != NULL && m < sizeof msg)
        snprintf(msg + m, sizeof msg - m, "%scgroup=%s", m ? " " : "", slot.cgroup);
      cgroup = slot.cgroup;
      pooled = true;
      goto out;
    } /* else on demand (a slot that died on the hand-over was killed and reaped) */
  }
  if (pipe2(release, O_CLOEXEC) < 0) {
    err = -errno;
    snprintf(msg, sizeof msg, "pipe2(O_CLOEXEC): %s", strerror(errno));
    goto out;
  }

  struct fs_clone_args args = {
      .flags = CLONE_PIDFD | req.namespaces | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
      .pidfd = (uint64_t)(uintptr_t)&pidfd,
      .exit_signal = SIGCHLD,
      .cgroup = cgroup_fd >= 0 ? (uint64_t)cgroup_fd : 0,
  };
  bool in_cgroup;
  const char *call;
  pid = spawn_clone(&args, userns_owner_for(&req), &in_cgroup, &call);
  if (pid == 0) {
    /* Child: from here on child.h's rules apply. The executor's channel is not ours to
     * touch (the fds step would close it too, but only after the mounts). */
    close(SBX_FS_COMMS_FD);
    close(release[1]);
    int setup_fd = sbx_request_setup_fd(&req, fds);
    struct child_ctx ctx = {
        .req = &req,
        .fds = fds,
        .scratch = scratch,
        .exec_fd = exec_fd,
        .release_fd = release[0],
        .forkserver_pidfd = srv->self_pidfd,
        .devnull_fd = srv->devnull_fd,
        .may_setgroups = srv->may_setgroups,
        .setup_fd = setup_fd,
        .listener_fd = -1,
    };
    child_run(&ctx);
  }
  if (pid < 0) {
    int e = errno;
    char flags[256];
    clone_flags_text(in_cgroup ? args.flags : args.flags & ~CLONE_INTO_CGROUP, flags, sizeof flags);
    err = -e;
    snprintf(msg, sizeof msg, "%s(%s): %s%s", call, flags, strerror(e), clone_hint(e, args.flags));
    pid = 0;
    goto out;
  }
  close(release[0]);
  release[0] = -1;

  if (req.namespaces & CLONE_NEWUSER) {
    r = userns_write_maps_from_parent(pid, &req, srv->may_setgroups, msg, sizeof msg);
    if (r < 0) {
      err = r;
      goto out;
    }
  }
  if (cgroup_fd >= 0 && !in_cgroup) {
    r = join_cgroup(cgroup_fd, pid, msg, sizeof msg);
    if (r < 0) {
      err = r;
      goto out;
    }
  }
  /* Go. A child that died already (killed from outside) shows up as EPIPE. */
  if (write(release[1], "g", 1) != 1) {
    err = -errno;
    snprintf(msg, sizeof msg, "release: write(release pipe): %s", strerror(errno));
    goto out;
  }

out:
  if (err != 0 && pidfd >= 0) {
    abandon_child(pidfd);
    close(pidfd);
    pidfd = -1;
  }
  if (release[0] >= 0) close(release[0]);
  if (release[1] >= 0) close(release[1]);
  if (cgroup_fd >= 0) close(cgroup_fd);
  if (exec_fd >= 0) close(exec_fd);
  for (size_t i = 0; i < received; i++) close(fds[i]);
  free(fds);
  free(scratch);
  uint64_t id = req.request_id, walltime_ms = req.walltime_ms; /* free() clears req */
  bool reaper = req.reaper;
  if (cgroup == NULL && req.cgroup != NULL && err == 0) cgroup = strdup(req.cgroup);
  sbx_request_free(&req);
  if (fatal < 0) {
    free(cgroup);
    if (pidfd >= 0) {
      abandon_child(pidfd);
      close(pidfd);
    }
    return fatal;
  }
  if (err != 0) {
    free(cgroup);
    return reply(srv, id, err, 0, msg, -1);
  }
  children_add(&srv->children, id, pid, pidfd, walltime_ms, reaper ? SIGTERM : SIGKILL, cgroup);
  free(cgroup);
  return reply(srv, id, 0, pid, pooled ? msg : "", pidfd);
}
