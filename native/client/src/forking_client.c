/*
 * forking_client.c: the forkserver's loop of custom-fork mode (sbx/forking_client.h).
 *
 * Single-threaded by contract with its caller: the Node addon quiesces its other threads in the
 * prepare hook. The child's setup between fork() and the return of 0 uses only system calls and
 * no allocation (the parent may have been in malloc on another thread only if that thread was
 * parked, which the hook guarantees), and reports a failure to the parent over a pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <sbx/comms.h>

#include "sbx/forking_client.h"
#include "client_internal.h"
#include "le.h"
#include "trace.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self  446
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT           47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* Landlock's ABI, declared here: Debian 12's headers predate scopes (Linux 6.12). */
struct ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};
#define LL_CREATE_RULESET_VERSION     1u
#define LL_ACCESS_FS_MAKE_BLOCK       (1ull << 11)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET 1ull
#define LL_SCOPE_SIGNAL               2ull

/* How long the channel must be quiet before a spare is forked. */
#define SPARE_QUIET_MS 10

/* What the child reports over the sync pipe when its setup failed. */
enum child_step {
  STEP_FDS = 1,
  STEP_PDEATHSIG,
  STEP_SETSID,
  STEP_NO_NEW_PRIVS,
  STEP_CAPS,
  STEP_DUMPABLE,
  STEP_LANDLOCK
};
static const char *step_name(int step) {
  switch (step) {
    case STEP_FDS: return "placing the request's fds";
    case STEP_PDEATHSIG: return "prctl(PR_SET_PDEATHSIG)";
    case STEP_SETSID: return "setsid()";
    case STEP_NO_NEW_PRIVS: return "prctl(PR_SET_NO_NEW_PRIVS)";
    case STEP_CAPS: return "dropping capabilities";
    case STEP_DUMPABLE: return "prctl(PR_SET_DUMPABLE, 0)";
    case STEP_LANDLOCK: return "the child's Landlock domain";
    default: return "setup";
  }
}

struct child {
  pid_t pid;
  int pidfd;
  uint64_t id;
  int sock; /* a spare's end of its assignment socket (-1 once assigned, or on demand) */
};

/* A spare's assignment: u32 n | n x u32 target, with the n fds as SCM_RIGHTS. */
struct assignment {
  uint32_t n;
  uint32_t flags; /* SBX_FORK_REQUEST_TRACE */
  uint32_t targets[SBX_FORK_MAX_FDS];
};

struct sbx_forking_client {
  sbx_comms comms;
  struct child *children;
  unsigned nchildren, cap;
  struct pollfd *pfds; /* cap + 1 entries */
  unsigned want_spares, nspares;
  int spare_failed; /* the last spare could not be made: no retry before the next request */
  int prepared;     /* hooks->prepare returned 0 and hooks->parent has not run since */
};

/* The runtime's prepare hook: 0, or -errno with the reason in msg. */
static int prepare_runtime(sbx_forking_client *fc, const struct sbx_fork_hooks *hooks, char *msg,
                           size_t len) {
  if (hooks == NULL || hooks->prepare == NULL) return 0;
  int rc = hooks->prepare(hooks->arg, msg, len);
  fc->prepared = rc == 0;
  return rc;
}

/* The runtime's parent hook, once per successful prepare. */
static void release_runtime(sbx_forking_client *fc, const struct sbx_fork_hooks *hooks) {
  if (fc->prepared && hooks != NULL && hooks->parent != NULL) hooks->parent(hooks->arg);
  fc->prepared = 0;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

int sbx_forking_client_open(sbx_forking_client **out, int comms_fd, char *err, size_t errlen) {
  if (out == NULL) return fail(err, errlen, -EINVAL, "out is NULL");
  *out = NULL;
  int fd = comms_fd >= 0 ? comms_fd : sbx_comms_default_fd();
  if (fd < 0) return fail(err, errlen, -EBADF, "$SBX_COMMS_FD is not an fd number");
  struct stat st;
  if (fstat(fd, &st) < 0)
    return fail(err, errlen, -EBADF,
                "fd %d is not open: this program was not started by Executor.startForkServer()",
                fd);
  if (!S_ISSOCK(st.st_mode))
    return fail(err, errlen, -ENOTSOCK,
                "fd %d is not a socket: this program was not started by Executor.startForkServer()",
                fd);
  sbx_forking_client *fc = calloc(1, sizeof *fc);
  if (fc == NULL) return fail(err, errlen, -ENOMEM, "out of memory");
  fc->cap = 16;
  fc->children = calloc(fc->cap, sizeof *fc->children);
  fc->pfds = calloc(fc->cap + 1, sizeof *fc->pfds);
  if (fc->children == NULL || fc->pfds == NULL) {
    sbx_forking_client_free(fc);
    return fail(err, errlen, -ENOMEM, "out of memory");
  }
  sbx_comms_init(&fc->comms, fd);
  /* The forkserver's own handshake end: unused (it is not filtered), and no child may get it. */
  int hs = sbx_client_default_fd();
  if (hs >= 0 && hs != fd) close(hs);
  *out = fc;
  return 0;
}

unsigned sbx_forking_client_children(const sbx_forking_client *fc) {
  return fc ? fc->nchildren : 0;
}

void sbx_forking_client_free(sbx_forking_client *fc) {
  if (fc == NULL) return;
  if (fc->children != NULL) {
    for (unsigned i = 0; i < fc->nchildren; i++) {
      close(fc->children[i].pidfd);
      if (fc->children[i].sock >= 0) close(fc->children[i].sock);
    }
    free(fc->children);
  }
  free(fc->pfds);
  if (fc->comms.fd >= 0) close(fc->comms.fd);
  free(fc);
}

static int grow(sbx_forking_client *fc) {
  if (fc->nchildren < fc->cap) return 0;
  if (fc->cap >= SBX_FORK_MAX_CHILDREN) return -EAGAIN;
  unsigned cap = fc->cap * 2;
  struct child *c = realloc(fc->children, cap * sizeof *c);
  if (c == NULL) return -ENOMEM;
  fc->children = c;
  struct pollfd *p = realloc(fc->pfds, (cap + 1) * sizeof *p);
  if (p == NULL) return -ENOMEM;
  fc->pfds = p;
  fc->cap = cap;
  return 0;
}

/* FORKED with an error (the channel's own failure is returned). */
static int reply_error(sbx_forking_client *fc, uint64_t id, int e, const char *msg) {
  size_t mlen = strlen(msg);
  unsigned char buf[16 + 512];
  if (mlen > 512) mlen = 512;
  put_u64(buf, id);
  put_u32(buf + 8, (uint32_t)(int32_t)e);
  put_u32(buf + 12, 0);
  memcpy(buf + 16, msg, mlen);
  return sbx_comms_send_tlv(&fc->comms, SBX_FORK_TAG_FORKED, buf, 16 + mlen);
}

/* Reaps child i (it ended: its pidfd is readable) and reports it. */
static int reap(sbx_forking_client *fc, unsigned i) {
  struct child c = fc->children[i];
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  pid_t r;
  do r = wait4(c.pid, &status, WNOHANG, &ru);
  while (r < 0 && errno == EINTR);
  if (r == 0) return 0; /* not yet (a stopped child also makes the pidfd readable? no: only exit) */
  close(c.pidfd);
  fc->children[i] = fc->children[--fc->nchildren];
  if (c.sock >= 0) { /* a spare that died unassigned: nobody to tell */
    close(c.sock);
    fc->nspares--;
    return 0;
  }
  if (c.id == 0) return 0;    /* a spare that failed its assignment */
  if (r < 0) status = 0x7f00; /* lost: reported as "exit 127" rather than never */
  unsigned char buf[SBX_FORK_EXITED_SIZE];
  put_u64(buf, c.id);
  put_u32(buf + 8, (uint32_t)c.pid);
  put_u32(buf + 12, (uint32_t)status);
  put_u64(buf + 16, (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec);
  put_u64(buf + 24, (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec);
  put_u64(buf + 32, (uint64_t)ru.ru_maxrss);
  return sbx_comms_send_tlv(&fc->comms, SBX_FORK_TAG_EXITED, buf, sizeof buf);
}

/* In the child: a Landlock domain of its own (signals and abstract sockets scoped where the
 * kernel has ABI 6; a fresh domain anyway, which walls ptrace off from everything outside). */
static int child_landlock(void) {
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
  if (abi < 1) return 0; /* no Landlock here: the other walls only (docs/security.md) */
  struct ll_ruleset_attr attr = {.handled_access_fs = LL_ACCESS_FS_MAKE_BLOCK};
  size_t size = sizeof attr.handled_access_fs;
  if (abi >= 6) {
    attr.scoped = LL_SCOPE_SIGNAL | LL_SCOPE_ABSTRACT_UNIX_SOCKET;
    size = sizeof attr;
  }
  int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
  if (rs < 0) return -errno;
  int r = (int)syscall(SYS_landlock_restrict_self, rs, 0);
  int e = errno;
  close(rs);
  return r < 0 ? -e : 0;
}

/* In the child: off with what is the forkserver's, and the isolation. Returns 0 or
 * (step << 16 | errno). */
static int child_isolate(sbx_forking_client *fc, pid_t parent) {
  for (unsigned i = 0; i < fc->nchildren; i++) {
    close(fc->children[i].pidfd);
    if (fc->children[i].sock >= 0) close(fc->children[i].sock);
  }
  fc->nchildren = fc->nspares = 0;
  close(fc->comms
            .fd); /* the forkserver's channel is never a child's (a target may reuse the number) */
  fc->comms.fd = -1;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) return STEP_PDEATHSIG << 16 | errno;
  if (getppid() != parent) return STEP_PDEATHSIG << 16 | ESRCH; /* the forkserver already died */
  if (setsid() < 0) return STEP_SETSID << 16 | errno;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return STEP_NO_NEW_PRIVS << 16 | errno;
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &hdr, data) < 0) return STEP_CAPS << 16 | errno;
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return STEP_DUMPABLE << 16 | errno;
  int r = child_landlock();
  if (r < 0) return STEP_LANDLOCK << 16 | -r;
  return 0;
}

/* In the child: the request's fds onto their targets (dup2 clears CLOEXEC). 0 or step|errno. */
static int child_place_fds(int *fds, const uint32_t *targets, unsigned n) {
  /* First off every target number another fd must take... */
  int r = sbx_client_fds_off_targets(fds, targets, n);
  if (r < 0) return STEP_FDS << 16 | -r;
  /* ...then onto the targets. */
  for (unsigned i = 0; i < n; i++) {
    if (fds[i] == (int)targets[i]) {
      if (fcntl(fds[i], F_SETFD, 0) < 0) return STEP_FDS << 16 | errno;
    } else {
      if (dup2(fds[i], (int)targets[i]) < 0) return STEP_FDS << 16 | errno;
      close(fds[i]);
    }
  }
  return 0;
}

static void close_fds(int *fds, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
}

static int read_full(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = read(fd, (char *)buf + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return (int)got;
    got += (size_t)r;
  }
  return (int)got;
}

static struct child *find_child(sbx_forking_client *fc, pid_t pid) {
  for (unsigned i = 0; i < fc->nchildren; i++)
    if (fc->children[i].pid == pid) return &fc->children[i];
  return NULL;
}

/* FORKED for child `pid` (in the table) and its pidfd. Returns pid or the channel's error. */
/* The forkserver's stages of a traced request (at most 5). */
struct fs_trace {
  unsigned n;
  uint32_t stage[5];
  uint64_t ns[5];
};

static void fs_mark_at(struct fs_trace *t, uint32_t stage, uint64_t ns) {
  if (t != NULL && t->n < 5) {
    t->stage[t->n] = stage;
    t->ns[t->n++] = ns;
  }
}

static void fs_mark(struct fs_trace *t, uint32_t stage) {
  if (t != NULL) fs_mark_at(t, stage, sbx_trace_now());
}

static pid_t reply_forked(sbx_forking_client *fc, uint64_t id, pid_t pid, const struct fs_trace *t,
                          char *err, size_t errlen) {
  struct child *c = find_child(fc, pid);
  unsigned char buf[16 + 8 + 5 * SBX_TRACE_RECORD_SIZE];
  size_t len = 16;
  put_u64(buf, id);
  put_u32(buf + 8, 0);
  put_u32(buf + 12, (uint32_t)pid);
  if (t != NULL) len += sbx_trace_encode(buf + 16, sizeof buf - 16, t->stage, t->ns, t->n);
  int rc;
  if ((rc = sbx_comms_send_tlv(&fc->comms, SBX_FORK_TAG_FORKED, buf, len)) < 0 ||
      (rc = sbx_comms_send_fd(&fc->comms, c->pidfd)) < 0)
    return fail(err, errlen, rc == -ECONNRESET ? -EPIPE : rc, "replying to fork request %llu: %s",
                (unsigned long long)id, sbx_comms_strerror(rc));
  return pid;
}

/* Hands the request's fds to a waiting spare. Returns its pid, or 0 when there is none (a
 * spare that cannot take them is killed and left to be reaped). */
static pid_t assign_spare(sbx_forking_client *fc, uint64_t id, const int *fds,
                          const uint32_t *targets, unsigned n, uint32_t flags) {
  for (unsigned i = 0; i < fc->nchildren; i++) {
    struct child *c = &fc->children[i];
    if (c->sock < 0) continue;
    struct assignment a = {.n = n, .flags = flags};
    memcpy(a.targets, targets, n * sizeof *targets);
    struct iovec iov = {.iov_base = &a, .iov_len = sizeof a};
    union {
      char buf[CMSG_SPACE(sizeof(int) * SBX_FORK_MAX_FDS)];
      struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > 0) {
      mh.msg_control = u.buf;
      mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
      struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
      memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
    }
    ssize_t w;
    do w = sendmsg(c->sock, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    close(c->sock);
    c->sock = -1;
    fc->nspares--;
    if (w != (ssize_t)sizeof a) {
      syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
      continue; /* id stays 0: reaped without a report */
    }
    c->id = id;
    return c->pid;
  }
  return 0;
}

/* In a child: its request's flags. */
static unsigned g_child_flags;

unsigned sbx_forking_client_child_flags(void) { return g_child_flags; }

/* A spare's stages done ahead of its request, kept for a traced assignment. */
static uint64_t g_spare_forked, g_spare_isolated, g_spare_runtime;

/* In a spare child: waits for its assignment and puts the fds in place. */
static void spare_wait(int sock) {
  struct assignment a;
  struct iovec iov = {.iov_base = &a, .iov_len = sizeof a};
  union {
    char buf[CMSG_SPACE(sizeof(int) * SBX_FORK_MAX_FDS)];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t r;
  do r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r != (ssize_t)sizeof a) _exit(0); /* the forkserver went away: nothing to do */
  g_child_flags = a.flags;
  if (a.flags & SBX_FORK_REQUEST_TRACE) {
    uint64_t now = sbx_trace_now();
    sbx_trace_start();
    sbx_trace_mark_at(SBX_TRACE_CHILD_FORKED, g_spare_forked);
    sbx_trace_mark_at(SBX_TRACE_CHILD_ISOLATED, g_spare_isolated);
    if (g_spare_runtime) sbx_trace_mark_at(SBX_TRACE_CHILD_RUNTIME, g_spare_runtime);
    sbx_trace_mark_at(SBX_TRACE_CHILD_ASSIGNED, now);
  }
  int fds[SBX_FORK_MAX_FDS];
  unsigned got = 0;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    unsigned k = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (unsigned j = 0; j < k && got < SBX_FORK_MAX_FDS; j++)
      memcpy(&fds[got++], CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
  }
  close(sock);
  if (got != a.n || (mh.msg_flags & MSG_CTRUNC) || child_place_fds(fds, a.targets, a.n) != 0)
    _exit(SBX_FORK_SETUP_FAILED);
  sbx_trace_mark(SBX_TRACE_CHILD_FDS);
}

/* Forks one spare. Returns 1 in the forkserver (made or not), 0 in the spare once assigned. */
static int fork_spare(sbx_forking_client *fc, const struct sbx_fork_hooks *hooks) {
  char msg[256];
  if (grow(fc) < 0) return fc->spare_failed = 1;
  if (prepare_runtime(fc, hooks, msg, sizeof msg) < 0) return fc->spare_failed = 1;
  int sync[2], sv[2];
  if (pipe2(sync, O_CLOEXEC) < 0) {
    release_runtime(fc, hooks);
    return fc->spare_failed = 1;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    release_runtime(fc, hooks);
    close(sync[0]);
    close(sync[1]);
    return fc->spare_failed = 1;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    fc->prepared = 0;
    g_spare_forked = sbx_trace_now();
    close(sync[0]);
    close(sv[0]);
    int code = child_isolate(fc, parent);
    g_spare_isolated = sbx_trace_now();
    ssize_t w = write(sync[1], &code, sizeof code);
    (void)w;
    if (code != 0) _exit(SBX_FORK_SETUP_FAILED);
    close(sync[1]);
    g_child_flags = SBX_FORK_CHILD_SPARE;
    if (hooks && hooks->child) {
      hooks->child(hooks->arg);
      g_spare_runtime = sbx_trace_now();
    }
    spare_wait(sv[1]);
    return 0;
  }
  release_runtime(fc, hooks);
  close(sync[1]);
  close(sv[1]);
  int code = -1;
  int got = pid > 0 ? read_full(sync[0], &code, sizeof code) : 0;
  close(sync[0]);
  int pidfd = got == (int)sizeof code && code == 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
  if (pidfd < 0) {
    close(sv[0]);
    if (pid > 0) {
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    }
    return fc->spare_failed = 1;
  }
  fc->children[fc->nchildren++] =
      (struct child){.pid = pid, .pidfd = pidfd, .id = 0, .sock = sv[0]};
  fc->nspares++;
  return 1;
}

int sbx_forking_client_recycle_spares(sbx_forking_client *fc) {
  if (fc == NULL) return -EINVAL;
  for (unsigned i = 0; i < fc->nchildren; i++) {
    struct child *c = &fc->children[i];
    if (c->sock < 0) continue;
    /* Killed unassigned: reaped later without a report (id 0, like a failed assignment). */
    syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
    close(c->sock);
    c->sock = -1;
    c->id = 0;
    fc->nspares--;
  }
  fc->spare_failed = 0;
  return 0;
}

int sbx_forking_client_set_spares(sbx_forking_client *fc, unsigned n) {
  if (fc == NULL || n > SBX_FORK_MAX_SPARES) return -EINVAL;
  fc->want_spares = n;
  fc->spare_failed = 0;
  return 0;
}

/* One request: returns the child's pid (parent), 0 (child), 1 (answered with an error), <0. */
static pid_t serve_request(sbx_forking_client *fc, const struct sbx_fork_hooks *hooks, char *err,
                           size_t errlen) {
  uint32_t tag;
  void *data = NULL;
  uint64_t len = 0;
  int rc = sbx_comms_recv_tlv(&fc->comms, &tag, &data, &len);
  if (rc < 0) {
    if (rc == -EPIPE || rc == -ECONNRESET)
      return fail(err, errlen, -EPIPE, "the executor closed the channel");
    return fail(err, errlen, rc, "receiving a fork request: %s", sbx_comms_strerror(rc));
  }
  const unsigned char *p = data;
  uint32_t word = len >= 12 ? get_u32(p + 8) : 0;
  uint32_t n = word & 0xffffu, flags = word & ~0xffffu;
  if (tag != SBX_FORK_TAG_REQUEST || len < 12 || n > SBX_FORK_MAX_FDS || len != 12 + 4ull * n ||
      (flags & ~(SBX_FORK_REQUEST_TRACE | SBX_FORK_REQUEST_SANDBOXED)) != 0) {
    free(data);
    return fail(err, errlen, -EPROTO, "expected a fork REQUEST, got %s of %llu bytes",
                sbx_comms_tag_name(tag), (unsigned long long)len);
  }
  uint64_t id = get_u64(p);
  uint32_t targets[SBX_FORK_MAX_FDS];
  int bad = 0;
  for (uint32_t i = 0; i < n; i++) {
    targets[i] = get_u32(p + 12 + 4 * i);
    if (targets[i] > 1023 || sbx_client_is_target(targets, i, (int)targets[i], i)) bad = 1;
  }
  free(data);
  int fds[SBX_FORK_MAX_FDS];
  for (uint32_t i = 0; i < n; i++) fds[i] = -1;
  for (uint32_t i = 0; i < n; i++) {
    rc = sbx_comms_recv_fd(&fc->comms, &fds[i]);
    if (rc < 0) {
      close_fds(fds, n);
      if (rc == -EPIPE || rc == -ECONNRESET)
        return fail(err, errlen, -EPIPE, "the executor closed the channel");
      return fail(err, errlen, -EPROTO, "fork request %llu: fd %u of %u: %s",
                  (unsigned long long)id, i + 1, n, sbx_comms_strerror(rc));
    }
  }
  struct fs_trace trace = {.n = 0}, *t = (flags & SBX_FORK_REQUEST_TRACE) ? &trace : NULL;
  fs_mark(t, SBX_TRACE_FS_REQUEST);
  if (bad) {
    close_fds(fds, n);
    rc = reply_error(fc, id, -EINVAL, "fork request: target fds must be distinct numbers 0..1023");
    return rc < 0 ? rc : 1;
  }
  if ((rc = grow(fc)) < 0) {
    close_fds(fds, n);
    rc = reply_error(
        fc, id, rc, rc == -EAGAIN ? "the forkserver has too many children alive" : "out of memory");
    return rc < 0 ? rc : 1;
  }

  /* Stamped as the request is handed over: the spare may run (and stamp) before we return. */
  uint64_t handing_over = t != NULL ? sbx_trace_now() : 0;
  pid_t spare = assign_spare(fc, id, fds, targets, n, flags);
  if (spare > 0) {
    fs_mark_at(t, SBX_TRACE_FS_ASSIGNED, handing_over);
    close_fds(fds, n);
    return reply_forked(fc, id, spare, t, err, errlen);
  }

  char msg[256] = "";
  if ((rc = prepare_runtime(fc, hooks, msg, sizeof msg)) < 0) {
    close_fds(fds, n);
    rc = reply_error(fc, id, rc, msg[0] ? msg : "the forkserver's runtime refused to fork");
    return rc < 0 ? rc : 1;
  }
  if (hooks && hooks->prepare) fs_mark(t, SBX_TRACE_FS_PREPARED);
  int sync[2];
  if (pipe2(sync, O_CLOEXEC) < 0) {
    int e = errno;
    release_runtime(fc, hooks);
    close_fds(fds, n);
    rc = reply_error(fc, id, -e, "pipe2() for the child's setup failed");
    return rc < 0 ? rc : 1;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    fc->prepared = 0;
    g_child_flags = flags;
    if (t != NULL) {
      sbx_trace_start();
      sbx_trace_mark(SBX_TRACE_CHILD_FORKED);
    }
    close(sync[0]);
    int code = child_isolate(fc, parent);
    if (code == 0) {
      sbx_trace_mark(SBX_TRACE_CHILD_ISOLATED);
      code = child_place_fds(fds, targets, n);
      /* Stamped before the report: the forkserver may stamp its receipt before we run again. */
      if (code == 0) sbx_trace_mark(SBX_TRACE_CHILD_FDS);
    }
    ssize_t w = write(sync[1], &code, sizeof code);
    (void)w;
    if (code != 0) _exit(SBX_FORK_SETUP_FAILED);
    close(sync[1]);
    if (hooks && hooks->child) {
      hooks->child(hooks->arg);
      sbx_trace_mark(SBX_TRACE_CHILD_RUNTIME);
    }
    return 0;
  }
  int fork_errno = errno;
  fs_mark(t, SBX_TRACE_FS_FORKED);
  release_runtime(fc, hooks);
  close(sync[1]);
  close_fds(fds, n);
  if (pid < 0) {
    close(sync[0]);
    rc = reply_error(fc, id, -fork_errno, "fork() failed");
    return rc < 0 ? rc : 1;
  }
  int code = -1;
  int got = read_full(sync[0], &code, sizeof code);
  close(sync[0]);
  fs_mark(t, SBX_TRACE_FS_CHILD_READY);
  int pidfd = -1;
  if (got == (int)sizeof code && code == 0) pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    int e = got != (int)sizeof code ? EIO : code != 0 ? (code & 0xffff) : errno;
    if (got != (int)sizeof code || code == 0) kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    snprintf(msg, sizeof msg, "the forked child's setup failed: %s: %s",
             got != (int)sizeof code ? "it died before reporting"
             : code != 0             ? step_name(code >> 16)
                                     : "pidfd_open()",
             strerror(e));
    rc = reply_error(fc, id, -e, msg);
    return rc < 0 ? rc : 1;
  }
  fc->children[fc->nchildren++] = (struct child){.pid = pid, .pidfd = pidfd, .id = id, .sock = -1};
  return reply_forked(fc, id, pid, t, err, errlen);
}

/* Prepares the runtime while the forkserver has nothing else to do: no request waits and no
 * spare would serve the next one. The request then finds the runtime ready (the hook's second
 * call only checks that it still is). Best effort: a refusal is retried when a request comes. */
static void prepare_ahead(sbx_forking_client *fc, const struct sbx_fork_hooks *hooks) {
  if (fc->prepared || fc->nspares > 0 || hooks == NULL || hooks->prepare == NULL) return;
  struct pollfd p = {.fd = fc->comms.fd, .events = POLLIN};
  if (poll(&p, 1, 0) != 0) return;
  char msg[256];
  (void)prepare_runtime(fc, hooks, msg, sizeof msg);
}

static pid_t wait_and_fork(sbx_forking_client *fc, const struct sbx_fork_hooks *hooks, char *err,
                           size_t errlen);

pid_t sbx_forking_client_wait_and_fork(sbx_forking_client *fc, const struct sbx_fork_hooks *hooks,
                                       char *err, size_t errlen) {
  if (fc == NULL || fc->comms.fd < 0)
    return fail(err, errlen, -EINVAL, "not an open forking client");
  pid_t pid = wait_and_fork(fc, hooks, err, errlen);
  /* The caller's runtime runs again: whatever was prepared ahead is let go. */
  if (pid != 0) release_runtime(fc, hooks);
  return pid;
}

static pid_t wait_and_fork(sbx_forking_client *fc, const struct sbx_fork_hooks *hooks, char *err,
                           size_t errlen) {
  for (;;) {
    /* Spares are made once the channel has been quiet for a moment: a request is served first,
     * and the child just handed out is not slowed down by the next fork on a small machine. With
     * no spare left, one is made as soon as no request waits: under steady calls the channel is
     * never quiet that long, and every request would otherwise pay for a fork of its own. */
    while (fc->nspares < fc->want_spares && !fc->spare_failed) {
      struct pollfd p = {.fd = fc->comms.fd, .events = POLLIN};
      if (poll(&p, 1, fc->nspares > 0 ? SPARE_QUIET_MS : 0) != 0) break;
      if (fork_spare(fc, hooks) == 0) return 0;
    }
    fc->pfds[0] = (struct pollfd){.fd = fc->comms.fd, .events = POLLIN};
    for (unsigned i = 0; i < fc->nchildren; i++)
      fc->pfds[i + 1] = (struct pollfd){.fd = fc->children[i].pidfd, .events = POLLIN};
    unsigned npfds = fc->nchildren + 1;
    prepare_ahead(fc, hooks);
    if (poll(fc->pfds, npfds, -1) < 0) {
      if (errno == EINTR) continue;
      return fail(err, errlen, -errno, "poll(): %s", strerror(errno));
    }
    /* Reap first (from the end: reap() moves the last child into the freed slot). */
    for (unsigned i = npfds - 1; i >= 1; i--) {
      if (fc->pfds[i].revents == 0) continue;
      int rc = reap(fc, i - 1);
      if (rc < 0)
        return fail(err, errlen, rc == -ECONNRESET ? -EPIPE : rc, "reporting an ended child: %s",
                    sbx_comms_strerror(rc));
    }
    if (fc->pfds[0].revents == 0) continue;
    pid_t pid = serve_request(fc, hooks, err, errlen);
    fc->spare_failed = 0;
    if (pid != 1) return pid;
  }
}
