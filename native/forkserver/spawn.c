/*
 * spawn.c: one spawn request, forkserver side (outside the sandbox, with the executor's
 * privileges): parse, take the announced fds, open the binary, hand the request to a pool slot
 * or clone into the namespaces (clone.c: id maps, release), reply SPAWNED with its pidfd.
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
#include "clone.h"
#include "protocol.h"
#include "request.h"
#include "server.h"
#include "userns.h"
#include "le.h"

/* SBX_FS_SPAWNED: u64 request_id | i32 err | u32 pid | u32 step | u32 flags | message; then the
 * pidfd on success. */
static int reply(struct fs_server *srv, uint64_t id, int err, pid_t pid, const struct fs_failure *f,
                 const char *msg, int pidfd) {
  size_t mlen = msg != NULL ? strlen(msg) : 0;
  uint8_t buf[24 + 1024];
  if (mlen > sizeof buf - 24) mlen = sizeof buf - 24;
  put_u64(buf, id);
  put_u32(buf + 8, (uint32_t)err);
  put_u32(buf + 12, (uint32_t)pid);
  put_u32(buf + 16, f != NULL ? f->step : SBX_STEP_NONE);
  put_u32(buf + 20, f != NULL ? f->flags : 0);
  if (mlen > 0) memcpy(buf + 24, msg, mlen);
  int r = sbx_comms_send_tlv(&srv->comms, SBX_FS_SPAWNED, buf, 24 + mlen);
  if (r == 0 && err == 0) r = sbx_comms_send_fd(&srv->comms, pidfd);
  return r;
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

int spawn_handle(struct fs_server *srv, const uint8_t *buf, size_t len) {
  struct sbx_request req;
  struct fs_failure f = {.step = SBX_STEP_NONE};
  int r = sbx_request_parse(buf, len, &req, f.msg, sizeof f.msg);
  if (r < 0) {
    int d = drain_fds(srv, req.fd_count);
    if (d < 0) return d;
    char full[1100];
    snprintf(full, sizeof full, "%s%s", r == -EINVAL ? "invalid request: " : "", f.msg);
    f.step = SBX_STEP_REQUEST;
    return reply(srv, req.request_id, r, 0, &f, full, -1); /* id 0 when none could be read */
  }

  int *fds = calloc(req.fd_count + 1, sizeof *fds);
  int *scratch = calloc(req.fd_count + 8, sizeof *scratch);
  int exec_fd = -1, cgroup_fd = -1;
  struct fs_clone child = {.pidfd = -1, .release_fd = -1};
  size_t received = 0;
  int err = 0, fatal = 0;
  bool pooled = false;
  char *cgroup = NULL; /* the sandbox's cgroup, for the children table (its tree kill) */
  char pooled_msg[1024] = "";
  struct fs_trace trace = {
      .n = 0}; /* with req.trace: the forkserver's steps, carried by the child */

  if (fds == NULL || scratch == NULL || children_reserve(&srv->children) < 0) {
    err = fs_fail(&f, SBX_STEP_NONE, ENOMEM, "out of memory");
    fatal = drain_fds(srv, req.fd_count);
    goto out;
  }
  for (; received < req.fd_count; received++) {
    r = sbx_comms_recv_fd(&srv->comms, &fds[received]);
    if (r == -EBADMSG) {
      err = fs_fail(&f, SBX_STEP_REQUEST, EPROTO,
                    "fd %zu of %zu: expected an Fd message, got tag 0x%x (%s)", received + 1,
                    req.fd_count, (unsigned)sbx_comms_last_tag(&srv->comms),
                    sbx_comms_tag_name(sbx_comms_last_tag(&srv->comms)));
      goto out;
    }
    if (r < 0) {
      fatal = r;
      goto out;
    }
  }
  if (req.trace) fs_trace_mark(&trace, SBX_STEP_REQUEST);

  exec_fd = open(req.exec_path, O_PATH | O_CLOEXEC);
  if (exec_fd < 0) {
    err = fs_fail(&f, SBX_STEP_OPEN_EXEC, errno, "open(%s): %s", req.exec_path, strerror(errno));
    f.flags |= SBX_FAILURE_PATH;
    goto out;
  }
  if (req.trace) fs_trace_mark(&trace, SBX_STEP_OPEN_EXEC);
  if (req.cgroup != NULL) {
    cgroup_fd = open(req.cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) {
      err = fs_fail(&f, SBX_STEP_CGROUP, errno, "open(%s): %s", req.cgroup, strerror(errno));
      goto out;
    }
  }
  if (req.trace && req.cgroup != NULL) fs_trace_mark(&trace, SBX_STEP_CGROUP);
  /* A slot prepared for exactly this layout: it gets the request and its fds, and execs. */
  struct fs_slot slot;
  if (pool_take(&srv->pool, buf, len, &req, &slot)) {
    if (pool_hand_over(&srv->pool, &slot, buf, len, fds, req.fd_count, exec_fd) == 0) {
      child.pid = slot.pid;
      child.pidfd = slot.pidfd;
      /* The slot has a host uid and runs in a cgroup of its own (pool.h): the executor takes
       * those. "uid=N" first, "cgroup=PATH" last (a path may hold spaces). */
      size_t m = 0;
      if (slot.uid != SBX_OWNER_SELF)
        m = (size_t)snprintf(pooled_msg, sizeof pooled_msg, "uid=%u", (unsigned)slot.uid);
      if (slot.cgroup != NULL && m < sizeof pooled_msg)
        snprintf(pooled_msg + m, sizeof pooled_msg - m, "%scgroup=%s", m ? " " : "", slot.cgroup);
      cgroup = slot.cgroup;
      pooled = true;
      goto out;
    } /* else on demand (a slot that died on the hand-over was killed and reaped) */
  }

  struct fs_clone_spec spec = {
      .namespaces = req.namespaces,
      .cgroup_fd = cgroup_fd,
      .userns_owner = userns_owner_for(&req),
      .inside_uid = req.inside_uid,
      .outside_uid = req.outside_uid,
      .inside_gid = req.inside_gid,
      .outside_gid = req.outside_gid,
      .may_setgroups = srv->may_setgroups,
  };
  pid_t pid = fs_clone(&spec, &child, &f);
  if (pid == 0) {
    /* Child: from here on child.h's rules apply. The executor's channel is not ours to
     * touch (the fds step would close it too, but only after the mounts). */
    close(SBX_FS_COMMS_FD);
    int setup_fd = sbx_request_setup_fd(&req, fds);
    struct child_ctx ctx = {
        .req = &req,
        .fds = fds,
        .scratch = scratch,
        .exec_fd = exec_fd,
        .release_fd = child.release_fd,
        .forkserver_pidfd = srv->self_pidfd,
        .devnull_fd = srv->devnull_fd,
        .may_setgroups = srv->may_setgroups,
        .setup_fd = setup_fd,
        .listener_fd = -1,
    };
    if (req.trace) {
      ctx.trace = trace;
      fs_trace_mark(&ctx.trace, SBX_STEP_CLONE);
    }
    child_run(&ctx);
  }
  if (pid < 0) {
    err = -f.err;
    goto out;
  }
  err = fs_clone_release(&spec, &child, &f);

out:
  if (err != 0) fs_clone_abandon(&child);
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
    if (err == 0) fs_clone_abandon(&child);
    return fatal;
  }
  if (err != 0) {
    free(cgroup);
    return reply(srv, id, err, 0, &f, f.msg, -1);
  }
  children_add(&srv->children, id, child.pid, child.pidfd, walltime_ms, reaper ? SIGTERM : SIGKILL,
               cgroup);
  free(cgroup);
  return reply(srv, id, 0, child.pid, NULL, pooled ? pooled_msg : "", child.pidfd);
}
