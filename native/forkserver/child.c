/*
 * child.c: the ordered list of what the child of clone() does before it becomes the sandboxee,
 * plus the small steps that need no file of their own (release, session, cwd, signals, exec).
 */
#define _GNU_SOURCE
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sbx/comms.h>

#include "le.h"
#include "protocol.h"

char *child_utoa(char *buf, unsigned long long v, unsigned base) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % base);
    v /= base;
  } while (v != 0 && n < sizeof tmp);
  for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
  buf[n] = '\0';
  return buf;
}

/* Appends s to ctx->error at *pos, truncating. */
static void append(struct child_ctx *ctx, size_t *pos, const char *s) {
  while (*s != '\0' && *pos + 1 < sizeof ctx->error) ctx->error[(*pos)++] = *s++;
  ctx->error[*pos] = '\0';
}

const char *sbx_step_name(uint32_t step) {
  static const char *const names[SBX_STEP_MAX] = {
      [SBX_STEP_REQUEST] = "request",
      [SBX_STEP_OPEN_EXEC] = "open",
      [SBX_STEP_CGROUP] = "cgroup",
      [SBX_STEP_CLONE] = "clone",
      [SBX_STEP_ID_MAP] = "user namespace",
      [SBX_STEP_RELEASE] = "release",
      [SBX_STEP_SETSID] = "setsid",
      [SBX_STEP_IDS] = "ids",
      [SBX_STEP_PDEATHSIG] = "pdeathsig",
      [SBX_STEP_USER_LIMITS] = "user namespace limits",
      [SBX_STEP_MOUNT] = "mount",
      [SBX_STEP_HOSTNAME] = "hostname",
      [SBX_STEP_NETWORK] = "network",
      [SBX_STEP_CWD] = "cwd",
      [SBX_STEP_FDS] = "fds",
      [SBX_STEP_SIGNALS] = "signals",
      [SBX_STEP_INIT] = "init",
      [SBX_STEP_RLIMITS] = "rlimits",
      [SBX_STEP_CAPABILITIES] = "capabilities",
      [SBX_STEP_LANDLOCK] = "landlock",
      [SBX_STEP_SECCOMP] = "seccomp",
      [SBX_STEP_EXEC] = "exec",
      [SBX_STEP_POOL] = "pool",
  };
  return step < SBX_STEP_MAX && names[step] != NULL ? names[step] : "setup";
}

static int vfail(struct child_ctx *ctx, const char *call, int err, va_list ap) {
  size_t pos = 0;
  ctx->fail_errno = err;
  append(ctx, &pos, sbx_step_name(ctx->step));
  append(ctx, &pos, ": ");
  append(ctx, &pos, call);
  append(ctx, &pos, "(");
  for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *))
    append(ctx, &pos, s);
  append(ctx, &pos, "): ");
  /* strerrordesc_np returns a static string: no locale, no allocation */
  const char *desc = strerrordesc_np(err);
  if (desc != NULL) {
    append(ctx, &pos, desc);
  } else {
    char num[24];
    append(ctx, &pos, "errno ");
    append(ctx, &pos, child_utoa(num, (unsigned long long)err, 10));
  }
  return -1;
}

int child_fail(struct child_ctx *ctx, const char *call, int err, ...) {
  va_list ap;
  va_start(ap, err);
  vfail(ctx, call, err, ap);
  va_end(ap);
  return -1;
}

int child_fail_path(struct child_ctx *ctx, const char *call, int err, ...) {
  va_list ap;
  va_start(ap, err);
  vfail(ctx, call, err, ap);
  va_end(ap);
  ctx->fail_flags |= SBX_FAILURE_PATH;
  return -1;
}

/* Sends the recorded failure on the setup socket (if there is one) and exits:
 * SBX_SETUP_FAILED, u32 step | i32 errno | u32 flags | message (protocol.h). */
__attribute__((noreturn)) static void report_and_exit(struct child_ctx *ctx) {
  if (ctx->setup_fd >= 0 && !ctx->filter_installed) {
    uint8_t buf[SBX_SETUP_FAILED_HEADER + SBX_CHILD_ERROR_MAX];
    size_t n = strlen(ctx->error);
    put_u32(buf, ctx->step);
    put_u32(buf + 4, (uint32_t)ctx->fail_errno);
    put_u32(buf + 8, ctx->fail_flags);
    memcpy(buf + SBX_SETUP_FAILED_HEADER, ctx->error, n);
    sbx_comms c;
    sbx_comms_init(&c, ctx->setup_fd);
    (void)sbx_comms_send_tlv(&c, SBX_SETUP_FAILED, buf, SBX_SETUP_FAILED_HEADER + n);
  }
  _exit(127);
}

static void run(struct child_ctx *ctx, uint32_t step, int (*fn)(struct child_ctx *)) {
  ctx->step = step;
  if (fn(ctx) < 0) report_and_exit(ctx);
  if (ctx->req->trace) fs_trace_mark(&ctx->trace, step);
}

/* With SBX_OP_TRACE: the marks so far, on the setup socket, while writing to it is still sure to
 * be allowed (before the filter). A failure to send loses the trace, not the sandbox. */
static void send_trace(struct child_ctx *ctx) {
  if (!ctx->req->trace || ctx->setup_fd < 0) return;
  uint8_t buf[SBX_TRACE_MAX * SBX_TRACE_ENTRY_SIZE];
  for (uint32_t i = 0; i < ctx->trace.n; i++) {
    uint8_t *p = buf + i * SBX_TRACE_ENTRY_SIZE;
    put_u32(p, ctx->trace.e[i].step);
    put_u32(p + 4, 0);
    put_u64(p + 8, ctx->trace.e[i].ns);
  }
  sbx_comms c;
  sbx_comms_init(&c, ctx->setup_fd);
  (void)sbx_comms_send_tlv(&c, SBX_SETUP_TRACE, buf, ctx->trace.n * SBX_TRACE_ENTRY_SIZE);
}

/* The forkserver writes one byte once the uid/gid maps are written. PDEATHSIG goes on first, so
 * a forkserver that dies from here on takes the child with it; one that died before shows up as
 * EOF (the child closed its copy of the write end). */
static int wait_for_release(struct child_ctx *ctx) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    return child_fail(ctx, "prctl", errno, "PR_SET_PDEATHSIG, SIGKILL", NULL);
  char go;
  ssize_t n;
  do n = read(ctx->release_fd, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n < 0) return child_fail(ctx, "read", errno, "release pipe", NULL);
  if (n == 0) _exit(127); /* the forkserver gave up on this child: nobody to report to */
  close(ctx->release_fd);
  ctx->release_fd = -1;
  return 0;
}

/* A new session: no controlling terminal, so no TIOCSTI into the caller's tty. */
static int new_session(struct child_ctx *ctx) {
  if (setsid() < 0) return child_fail(ctx, "setsid", errno, NULL);
  return 0;
}

static int change_dir(struct child_ctx *ctx) {
  if (chdir(ctx->req->cwd) < 0) return child_fail(ctx, "chdir", errno, ctx->req->cwd, NULL);
  return 0;
}

/* A change of euid/egid clears PDEATHSIG (commit_creds): arm it again, then make sure the
 * forkserver did not die in between (getppid() is 0 in a new pid namespace, so ask its pidfd). */
static int watch_forkserver(struct child_ctx *ctx) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    return child_fail(ctx, "prctl", errno, "PR_SET_PDEATHSIG, SIGKILL", NULL);
  struct pollfd p = {.fd = ctx->forkserver_pidfd, .events = POLLIN};
  int r = poll(&p, 1, 0);
  if (r < 0) return child_fail(ctx, "poll", errno, "forkserver pidfd", NULL);
  if (r > 0) _exit(127); /* the forkserver is gone */
  return 0;
}

/* The forkserver blocks SIGCHLD and SIGPIPE, and SIGTERM across the clone (spawn.c); a blocked
 * mask survives execve. A pid namespace's init keeps SIGCHLD and SIGTERM blocked (init.c takes
 * them with sigwaitinfo; its target unblocks them): a SIGTERM that came during the setup is
 * still pending then, not lost to the signal protection of a namespace's init. */
static int reset_signal_mask(struct child_ctx *ctx) {
  sigset_t mask;
  sigemptyset(&mask);
  if (!ctx->req->reaper && (ctx->req->namespaces & CLONE_NEWPID)) {
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
  }
  if (sigprocmask(SIG_SETMASK, &mask, NULL) < 0)
    return child_fail(ctx, "sigprocmask", errno, "SIG_SETMASK", NULL);
  return 0;
}

/* execveat with the magic in its unused 6th argument (protocol.h). When the filter is on, a
 * failure can only be told to the monitor: a second magic execveat carries -errno in arg 3. */
__attribute__((noreturn)) static void exec_target(struct child_ctx *ctx) {
  ctx->step = SBX_STEP_EXEC;
  syscall(SYS_execveat, SBX_EXEC_FD_TARGET, "", ctx->req->argv, ctx->req->envp, AT_EMPTY_PATH,
          (long)SBX_EXEC_MAGIC);
  int err = errno;
  if (ctx->filter_installed) {
    syscall(SYS_execveat, SBX_EXEC_FD_TARGET, "", ctx->req->argv, (long)-err, AT_EMPTY_PATH,
            (long)SBX_EXEC_MAGIC);
    _exit(127);
  }
  child_fail(ctx, "execveat", err, ctx->req->exec_path, NULL);
  report_and_exit(ctx);
}

void child_run_frozen(struct child_ctx *ctx) {
  const struct sbx_request *req = ctx->req;
  uint32_t ns = req->namespaces;

  run(ctx, SBX_STEP_RELEASE, wait_for_release);
  run(ctx, SBX_STEP_SETSID, new_session);
  /* The inside ids first: every inode the mount step creates needs an owner mapped in the new
   * user namespace, and the forkserver's own uid is not (root maps inside 1000 to host nobody).
   * The capabilities held in the new namespace survive the switch: with a one-line map the
   * child never starts as the namespace's root unless the inside uid is 0 too, and only leaving
   * that root clears them. */
  if (req->has_id_map) {
    run(ctx, SBX_STEP_IDS, userns_set_ids_in_child);
    run(ctx, SBX_STEP_PDEATHSIG, watch_forkserver);
  }
  /* While the child still holds CAP_SYS_RESOURCE in its user namespace and sees a /proc. */
  if (req->user_limit_set != 0) run(ctx, SBX_STEP_USER_LIMITS, userns_limits_apply_in_child);
  if (ns & CLONE_NEWNS) run(ctx, SBX_STEP_MOUNT, mnt_setup_in_child);
  if (req->hostname != NULL) run(ctx, SBX_STEP_HOSTNAME, uts_set_hostname_in_child);
  if (ns & CLONE_NEWNET) run(ctx, SBX_STEP_NETWORK, net_lo_up_in_child);
}

void child_run_request(struct child_ctx *ctx) {
  const struct sbx_request *req = ctx->req;
  uint32_t ns = req->namespaces;

  run(ctx, SBX_STEP_CWD, change_dir);
  /* fds before rlimits: a low RLIMIT_NOFILE must not stop the moves to 1021/1022 */
  run(ctx, SBX_STEP_FDS, fds_arrange_in_child);
  if (req->reaper) {
    /* No pid namespace: a subreaper init (reaper.c) splits off first, so that it keeps the
     * forkserver's uid and limits (with CAP_KILL as its only capability when that is root): the
     * sandboxee's uid may neither prlimit, signal nor ptrace it. It stays outside the Landlock
     * domain, so that the signal scope keeps the target from signalling (or stopping) it. */
    run(ctx, SBX_STEP_SIGNALS, reset_signal_mask);
    run(ctx, SBX_STEP_INIT, reaper_split_in_child);
    /* The ids before the rlimits: a uid switch under a low RLIMIT_NPROC would make exec fail. */
    if (req->has_host_ids) run(ctx, SBX_STEP_IDS, userns_set_ids_in_child);
    run(ctx, SBX_STEP_RLIMITS, rlimits_apply_in_child);
    run(ctx, SBX_STEP_PDEATHSIG, reaper_tie_target_in_child); /* the id switch cleared it */
    run(ctx, SBX_STEP_CAPABILITIES, caps_drop_in_child);
    if (req->has_landlock) run(ctx, SBX_STEP_LANDLOCK, landlock_apply_in_child);
    send_trace(ctx);
    if (req->filter != NULL) run(ctx, SBX_STEP_SECCOMP, seccomp_install_in_child);
    exec_target(ctx);
  }
  if (req->has_host_ids) run(ctx, SBX_STEP_IDS, userns_set_ids_in_child);
  run(ctx, SBX_STEP_RLIMITS, rlimits_apply_in_child);
  run(ctx, SBX_STEP_SIGNALS, reset_signal_mask);
  run(ctx, SBX_STEP_CAPABILITIES, caps_drop_in_child);
  {
    /* After NO_NEW_PRIVS (caps) and pivot_root (mount); init is landlocked too. */
    if (req->has_landlock) run(ctx, SBX_STEP_LANDLOCK, landlock_apply_in_child);
    /* With a pid namespace the target must not be its init (init.c says why). */
    if (ns & CLONE_NEWPID) run(ctx, SBX_STEP_INIT, init_split_in_child);
  }
  send_trace(ctx);
  if (req->filter != NULL) run(ctx, SBX_STEP_SECCOMP, seccomp_install_in_child);
  exec_target(ctx);
}

void child_run(struct child_ctx *ctx) {
  child_run_frozen(ctx);
  child_run_request(ctx);
}

void child_report_and_exit(struct child_ctx *ctx) { report_and_exit(ctx); }
