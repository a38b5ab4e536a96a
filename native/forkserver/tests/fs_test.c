/*
 * fs_test.c: drives a real sbx-forkserver over its comms socket and checks what the sandboxees
 * really see and do. Usage: fs_test FORKSERVER PROBE
 *
 * Runs as root (the id map sends inside 1000 to host nobody) and as an ordinary user (ctest
 * runs it a second time under setpriv; the map then sends inside 1000 to our own uid).
 * Prints one TAP line per case.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sbx/comms.h>

#include "oplist.h"
#include "protocol.h"
#include "request.h"

#define ALL_NAMESPACES                                                                       \
  (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | \
   CLONE_NEWCGROUP)
#define TIMEOUT_MS 10000

static const char *g_forkserver, *g_probe;
static uint32_t g_outside_uid, g_outside_gid;
static uint64_t g_next_id = 1;

#define CHECK(cond, ...)                                                           \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "#   %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                \
      fputc('\n', stderr);                                                         \
      return -1;                                                                   \
    }                                                                              \
  } while (0)

/* ---- the forkserver process ---- */

struct fs {
  pid_t pid;
  sbx_comms c;
};

static int fs_start(struct fs *fs) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (dup2(sv[1], SBX_FS_COMMS_FD) < 0) _exit(126);
    execl(g_forkserver, g_forkserver, (char *)NULL);
    _exit(126);
  }
  close(sv[1]);
  fs->pid = pid;
  sbx_comms_init(&fs->c, sv[0]);
  return 0;
}

/* Closes comms (EOF for the forkserver) and waits up to 5 s for it to exit. */
static int fs_stop(struct fs *fs, int *status) {
  sbx_comms_close(&fs->c);
  for (int i = 0; i < 500; i++) {
    pid_t r = waitpid(fs->pid, status, WNOHANG);
    if (r == fs->pid) return 0;
    usleep(10000);
  }
  kill(fs->pid, SIGKILL);
  waitpid(fs->pid, status, 0);
  return -1;
}

static bool wait_readable(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, ms) == 1;
}

static uint32_t rd_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd_u64(const uint8_t *p) { return rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32; }

struct reply {
  uint32_t tag;
  uint64_t id;
  int32_t err;
  uint32_t pid;
  uint32_t step, fail_flags; /* SPAWNED errors: enum sbx_step, SBX_FAILURE_* */
  char msg[2048];
  int status;
  uint64_t utime_us, stime_us, maxrss_kib;
  uint32_t flags; /* EXITED: SBX_EXITED_* */
  int pidfd;
};

static int fs_recv(struct fs *fs, struct reply *r) {
  memset(r, 0, sizeof *r);
  r->pidfd = -1;
  if (!wait_readable(fs->c.fd, TIMEOUT_MS)) {
    fprintf(stderr, "#   no message from the forkserver in %d ms\n", TIMEOUT_MS);
    return -1;
  }
  void *data;
  uint64_t len;
  int e = sbx_comms_recv_tlv(&fs->c, &r->tag, &data, &len);
  if (e < 0) {
    fprintf(stderr, "#   recv: %s\n", sbx_comms_strerror(e));
    return -1;
  }
  const uint8_t *d = data;
  if (r->tag == SBX_FS_SPAWNED && len >= 24) {
    r->id = rd_u64(d);
    r->err = (int32_t)rd_u32(d + 8);
    r->pid = rd_u32(d + 12);
    r->step = rd_u32(d + 16);
    r->fail_flags = rd_u32(d + 20);
    size_t n = len - 24 < sizeof r->msg - 1 ? (size_t)len - 24 : sizeof r->msg - 1;
    memcpy(r->msg, d + 24, n);
    r->msg[n] = '\0';
    if (r->err == 0 && (e = sbx_comms_recv_fd(&fs->c, &r->pidfd)) < 0) {
      fprintf(stderr, "#   recv pidfd: %s\n", sbx_comms_strerror(e));
      free(data);
      return -1;
    }
  } else if (r->tag == SBX_FS_EXITED && len == 44) {
    r->id = rd_u64(d);
    r->pid = rd_u32(d + 8);
    r->status = (int)rd_u32(d + 12);
    r->utime_us = rd_u64(d + 16);
    r->stime_us = rd_u64(d + 24);
    r->maxrss_kib = rd_u64(d + 32);
    r->flags = rd_u32(d + 40);
  } else {
    fprintf(stderr, "#   unexpected message tag 0x%x, %llu bytes\n", (unsigned)r->tag,
            (unsigned long long)len);
    free(data);
    return -1;
  }
  free(data);
  return 0;
}

/* ---- one sandboxee ---- */

enum {
  JOB_NO_LIB64 = 1, /* leave out the /lib64 symlink: the ELF interpreter is missing */
  JOB_BARE = 2,     /* no namespaces, no mounts */
  JOB_NO_SETUP = 4, /* no setup socket */
  JOB_NO_PIDNS = 8, /* all namespaces but the pid namespace (host pids are visible) */
};

struct job {
  const char *path;
  const char *argv[12];
  unsigned flags;
  struct oplist *extra; /* ops appended after the standard ones (before the fd ops) */
  const int *extra_fds; /* fds for the FD ops in `extra`, in order */
  size_t nextra_fds;
};

struct run {
  uint64_t id;
  uint32_t exited_flags;
  struct reply spawned;
  int out_fd;   /* read end of the sandboxee's stdout */
  int setup_fd; /* our end of the setup socket */
  char out[4096];
  char setup_msg[2048];
  uint32_t setup_step, setup_flags; /* SBX_SETUP_FAILED: enum sbx_step, SBX_FAILURE_* */
  int setup_errno;
  uint32_t trace_n; /* SBX_SETUP_TRACE entries (0: none came) */
  uint32_t trace_step[SBX_TRACE_MAX];
  uint64_t trace_ns[SBX_TRACE_MAX];
  bool got_setup_uint32;
  uint32_t setup_uint32;
  int status;
};

static void standard_ops(struct oplist *o, const struct job *job, uint64_t id) {
  ol_u64(o, SBX_OP_REQUEST_ID, id);
  ol_str(o, SBX_OP_EXEC_PATH, job->path);
  for (size_t i = 0; job->argv[i] != NULL; i++) ol_str(o, SBX_OP_ARG, job->argv[i]);
  ol_str(o, SBX_OP_ENV, "PATH=/usr/bin:/bin");
  ol_str(o, SBX_OP_ENV, "LC_ALL=C");
  if (job->flags & JOB_BARE) return;
  ol_u32(o, SBX_OP_NAMESPACES,
         (job->flags & JOB_NO_PIDNS) ? ALL_NAMESPACES & ~CLONE_NEWPID : ALL_NAMESPACES);
  ol_str(o, SBX_OP_HOSTNAME, "sbx-test");
  ol_id_map(o, 1000, g_outside_uid, 1000, g_outside_gid);
  ol_bind(o, 0, "/usr", "/usr");
  ol_symlink(o, "usr/bin", "/bin");
  ol_symlink(o, "usr/lib", "/lib");
  if (!(job->flags & JOB_NO_LIB64)) ol_symlink(o, "usr/lib64", "/lib64");
  ol_symlink(o, "usr/sbin", "/sbin");
  /* proc can be mounted only for a pid namespace of our user namespace */
  if (!(job->flags & JOB_NO_PIDNS)) ol_str(o, SBX_OP_PROC, "/proc");
  ol_str(o, SBX_OP_DEV, "/dev");
  ol_tmpfs(o, 1 << 20, 01777, "/tmp");
}

/* Sends the request and its fds, waits for SPAWNED. */
static int run_start(struct fs *fs, const struct job *job, struct run *run) {
  memset(run, 0, sizeof *run);
  run->out_fd = run->setup_fd = -1;
  run->id = g_next_id++;
  int out[2], setup[2];
  if (pipe2(out, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, setup) < 0)
    return -1;

  struct oplist o;
  ol_init(&o);
  standard_ops(&o, job, run->id);
  if (job->extra != NULL) { /* the extra ops' bytes, as they are */
    size_t need = o.len + job->extra->len;
    if (need > o.cap) {
      uint8_t *b = realloc(o.buf, need);
      if (b == NULL) abort();
      o.buf = b;
      o.cap = need;
    }
    memcpy(o.buf + o.len, job->extra->buf, job->extra->len);
    o.len = need;
  }
  ol_u32(&o, SBX_OP_FD, 1);
  ol_u32(&o, SBX_OP_FD, 2);
  if (!(job->flags & JOB_NO_SETUP)) ol_raw(&o, SBX_OP_SETUP_SOCKET, NULL, 0);

  int e = sbx_comms_send_tlv(&fs->c, SBX_FS_SPAWN, o.buf, o.len);
  ol_free(&o);
  for (size_t i = 0; e == 0 && i < job->nextra_fds; i++)
    e = sbx_comms_send_fd(&fs->c, job->extra_fds[i]);
  if (e == 0) e = sbx_comms_send_fd(&fs->c, out[1]);
  if (e == 0) e = sbx_comms_send_fd(&fs->c, 2);
  if (e == 0 && !(job->flags & JOB_NO_SETUP)) e = sbx_comms_send_fd(&fs->c, setup[1]);
  close(out[1]);
  close(setup[1]);
  run->out_fd = out[0];
  run->setup_fd = setup[0];
  CHECK(e == 0, "send: %s", sbx_comms_strerror(e));
  CHECK(fs_recv(fs, &run->spawned) == 0, "no reply");
  CHECK(run->spawned.tag == SBX_FS_SPAWNED, "tag 0x%x", (unsigned)run->spawned.tag);
  CHECK(run->spawned.id == run->id, "request id %llu, sent %llu",
        (unsigned long long)run->spawned.id, (unsigned long long)run->id);
  return 0;
}

/* Reads stdout and the setup socket to EOF, then waits for EXITED. */
static int run_finish(struct fs *fs, struct run *run) {
  size_t n = 0;
  while (wait_readable(run->out_fd, TIMEOUT_MS)) {
    ssize_t r = read(run->out_fd, run->out + n, sizeof run->out - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  run->out[n] = '\0';
  if (n > 0 && run->out[n - 1] == '\n') run->out[n - 1] = '\0';
  sbx_comms sc;
  sbx_comms_init(&sc, run->setup_fd);
  while (wait_readable(run->setup_fd, TIMEOUT_MS)) {
    uint32_t tag;
    void *data;
    uint64_t len;
    int fd = -1;
    /* The target's own pidfd comes first (an Fd message); the test has no use for it. */
    if (sbx_comms_recv_any(&sc, &tag, &data, &len, &fd) < 0) break;
    if (fd >= 0) close(fd);
    if (tag == SBX_SETUP_FAILED && len >= SBX_SETUP_FAILED_HEADER) {
      size_t text = (size_t)len - SBX_SETUP_FAILED_HEADER;
      size_t m = text < sizeof run->setup_msg - 1 ? text : sizeof run->setup_msg - 1;
      memcpy(run->setup_msg, (const uint8_t *)data + SBX_SETUP_FAILED_HEADER, m);
      run->setup_msg[m] = '\0';
      run->setup_step = rd_u32(data);
      run->setup_errno = (int)rd_u32((const uint8_t *)data + 4);
      run->setup_flags = rd_u32((const uint8_t *)data + 8);
    } else if (tag == SBX_SETUP_TRACE && len % SBX_TRACE_ENTRY_SIZE == 0) {
      for (uint64_t off = 0; off < len && run->trace_n < SBX_TRACE_MAX;
           off += SBX_TRACE_ENTRY_SIZE) {
        run->trace_step[run->trace_n] = rd_u32((const uint8_t *)data + off);
        run->trace_ns[run->trace_n++] = rd_u64((const uint8_t *)data + off + 8);
      }
    } else if (tag == SBX_TAG_UINT32 && len == 4) {
      run->got_setup_uint32 = true;
      run->setup_uint32 = rd_u32(data);
    }
    free(data);
  }
  close(run->out_fd);
  close(run->setup_fd);
  run->out_fd = run->setup_fd = -1;
  struct reply ex;
  CHECK(fs_recv(fs, &ex) == 0, "no EXITED");
  CHECK(ex.tag == SBX_FS_EXITED && ex.id == run->id, "tag 0x%x id %llu", (unsigned)ex.tag,
        (unsigned long long)ex.id);
  CHECK(ex.pid == run->spawned.pid, "EXITED pid %u, SPAWNED pid %u", ex.pid, run->spawned.pid);
  run->status = ex.status;
  run->exited_flags = ex.flags;
  if (run->spawned.pidfd >= 0) close(run->spawned.pidfd);
  return 0;
}

/* Runs a job to completion; the spawn must succeed. */
static int run_job(struct fs *fs, const struct job *job, struct run *run) {
  if (run_start(fs, job, run) < 0) return -1;
  CHECK(run->spawned.err == 0, "spawn failed: %d %s", run->spawned.err, run->spawned.msg);
  if (run_finish(fs, run) < 0) return -1;
  if (run->setup_msg[0] != '\0') fprintf(stderr, "#   setup: %s\n", run->setup_msg);
  return 0;
}

static bool exited_with(int status, int code) {
  return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

/* The probe's one-line answer for `probe ARGS...`. */
static int probe(struct fs *fs, struct run *run, const char *a1, const char *a2) {
  struct job job = {.path = g_probe, .argv = {"fs_probe", a1, a2, NULL}};
  if (run_job(fs, &job, run) < 0) return -1;
  CHECK(exited_with(run->status, 0), "probe %s %s: status 0x%x, setup \"%s\"", a1, a2 ? a2 : "",
        run->status, run->setup_msg);
  return 0;
}

/* ---- the cases ---- */

static int t_true_exits_0(struct fs *fs) {
  struct job job = {.path = "/usr/bin/true", .argv = {"true", NULL}};
  struct run run;
  if (run_job(fs, &job, &run) < 0) return -1;
  CHECK(exited_with(run.status, 0), "status 0x%x", run.status);
  CHECK(run.setup_msg[0] == '\0', "setup message \"%s\"", run.setup_msg);
  CHECK(run.spawned.pid > 0, "pid %u", run.spawned.pid);
  return 0;
}

/* The forkserver keeps the walltime itself: it ends the sandbox's init, and says so. The init
 * (SIGTERM) kills and reaps its tree, then exits with 128 + SIGKILL; a SIGKILL follows after a
 * grace period should it still be there. */
static int t_walltime(struct fs *fs) {
  struct oplist extra;
  ol_init(&extra);
  ol_u64(&extra, SBX_OP_WALLTIME, 200);
  struct job job = {
      .path = "/bin/sh", .argv = {"sh", "-c", "sleep 20 & sleep 21", NULL}, .extra = &extra};
  struct run run;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int r = run_job(fs, &job, &run);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ol_free(&extra);
  if (r < 0) return -1;
  long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  CHECK((WIFEXITED(run.status) && WEXITSTATUS(run.status) == 128 + SIGKILL) ||
            (WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGKILL),
        "status 0x%x", run.status);
  CHECK(run.exited_flags & SBX_EXITED_WALLTIME, "flags 0x%x", run.exited_flags);
  CHECK(ms >= 150 && ms < 5000, "took %ld ms", ms);
  return 0;
}

static void put_u64_le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* SBX_FS_SET_WALLTIME gives a running sandbox without a walltime a deadline from now; a
 * malformed one, or one for an unknown request, changes nothing. */
static int t_set_walltime(struct fs *fs) {
  struct job job = {.path = "/bin/sh", .argv = {"sh", "-c", "sleep 20", NULL}};
  struct run run;
  if (run_start(fs, &job, &run) < 0) return -1;
  CHECK(run.spawned.err == 0, "spawn failed: %d %s", run.spawned.err, run.spawned.msg);
  uint8_t msg[16];
  put_u64_le(msg, run.id + 1000); /* no such request */
  put_u64_le(msg + 8, 1);
  CHECK(sbx_comms_send_tlv(&fs->c, SBX_FS_SET_WALLTIME, msg, sizeof msg) == 0, "send");
  CHECK(sbx_comms_send_tlv(&fs->c, SBX_FS_SET_WALLTIME, msg, 15) == 0, "send short");
  put_u64_le(msg, run.id);
  put_u64_le(msg + 8, 100);
  CHECK(sbx_comms_send_tlv(&fs->c, SBX_FS_SET_WALLTIME, msg, sizeof msg) == 0, "send");
  if (run_finish(fs, &run) < 0) return -1;
  CHECK(run.exited_flags & SBX_EXITED_WALLTIME, "flags 0x%x", run.exited_flags);
  CHECK((WIFEXITED(run.status) && WEXITSTATUS(run.status) == 128 + SIGKILL) ||
            (WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGKILL),
        "status 0x%x", run.status);
  return 0;
}

static int t_false_exits_1(struct fs *fs) {
  struct job job = {.path = "/usr/bin/false", .argv = {"false", NULL}};
  struct run run;
  if (run_job(fs, &job, &run) < 0) return -1;
  CHECK(exited_with(run.status, 1), "status 0x%x", run.status);
  return 0;
}

static int t_ids_are_mapped(struct fs *fs) {
  struct job job = {.path = "/usr/bin/id", .argv = {"id", "-u", NULL}};
  struct run run;
  if (run_job(fs, &job, &run) < 0) return -1;
  CHECK(exited_with(run.status, 0) && strcmp(run.out, "1000") == 0, "id -u: \"%s\" status 0x%x",
        run.out, run.status);
  job.argv[1] = "-g";
  if (run_job(fs, &job, &run) < 0) return -1;
  CHECK(exited_with(run.status, 0) && strcmp(run.out, "1000") == 0, "id -g: \"%s\"", run.out);
  if (probe(fs, &run, "ids", NULL) < 0) return -1;
  if (getuid() == 0) /* root: the child dropped root's supplementary groups */
    CHECK(strcmp(run.out, "1000 1000 0") == 0, "ids \"%s\"", run.out);
  else
    CHECK(strncmp(run.out, "1000 1000 ", 10) == 0, "ids \"%s\"", run.out);
  return 0;
}

static int t_hostname(struct fs *fs) {
  struct job job = {.path = "/usr/bin/uname", .argv = {"uname", "-n", NULL}};
  struct run run;
  if (run_job(fs, &job, &run) < 0) return -1;
  CHECK(strcmp(run.out, "sbx-test") == 0, "uname -n: \"%s\"", run.out);
  return 0;
}

static int t_only_lo_and_up(struct fs *fs) {
  struct run run;
  if (probe(fs, &run, "net", NULL) < 0) return -1;
  CHECK(strcmp(run.out, "lo UP") == 0, "interfaces \"%s\"", run.out);
  return 0;
}

/* The target is pid 2; pid 1 is the sandbox's own init (init.c), not a host process. */
static int t_pid_1(struct fs *fs) {
  struct job job = {.path = "/bin/sh", .argv = {"sh", "-c", "echo $$ $(cat /proc/1/comm)", NULL}};
  struct run run;
  if (run_job(fs, &job, &run) < 0) return -1;
  CHECK(strcmp(run.out, "2 sbx-init") == 0, "pid and init: \"%s\"", run.out);
  return 0;
}

static int t_outside_invisible(struct fs *fs) {
  struct run run;
  if (probe(fs, &run, "stat", "/etc/passwd") < 0) return -1;
  CHECK(strcmp(run.out, "ENOENT") == 0, "/etc/passwd: \"%s\"", run.out);
  if (probe(fs, &run, "stat", g_forkserver) < 0) return -1;
  CHECK(strcmp(run.out, "ENOENT") == 0, "%s: \"%s\"", g_forkserver, run.out);
  if (probe(fs, &run, "stat", "/usr/bin/true") < 0) return -1;
  CHECK(strcmp(run.out, "ok") == 0, "/usr/bin/true: \"%s\"", run.out);
  return 0;
}

static int t_ro_bind_refuses_writes(struct fs *fs) {
  struct run run;
  if (probe(fs, &run, "write", "/usr/sbx-fs-test") < 0) return -1;
  CHECK(strcmp(run.out, "EROFS") == 0, "write /usr/...: \"%s\"", run.out);
  if (probe(fs, &run, "write", "/sbx-fs-test") < 0) return -1;
  CHECK(strcmp(run.out, "EROFS") == 0, "write to the root: \"%s\"", run.out);
  if (probe(fs, &run, "write", "/dev/null") < 0) return -1;
  CHECK(strcmp(run.out, "ok") == 0, "write /dev/null: \"%s\"", run.out);
  return 0;
}

static int t_tmpfs_accepts_writes(struct fs *fs) {
  struct run run;
  if (probe(fs, &run, "write", "/tmp/sbx-fs-test") < 0) return -1;
  CHECK(strcmp(run.out, "ok") == 0, "write /tmp/...: \"%s\"", run.out);
  return 0;
}

static int t_rw_bind_reaches_host(struct fs *fs) {
  char dir[] = "/tmp/sbx-fs-test-XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
  chmod(dir, 0777); /* the sandboxee is host nobody in the root run */
  struct oplist extra;
  ol_init(&extra);
  ol_bind(&extra, SBX_BIND_RW, dir, "/work/out");
  struct job job = {
      .path = g_probe, .argv = {"fs_probe", "write", "/work/out/file", NULL}, .extra = &extra};
  struct run run;
  int r = run_job(fs, &job, &run);
  ol_free(&extra);
  char file[64];
  snprintf(file, sizeof file, "%s/file", dir);
  struct stat st;
  bool there = stat(file, &st) == 0 && st.st_size == 1;
  unlink(file);
  rmdir(dir);
  if (r < 0) return -1;
  CHECK(strcmp(run.out, "ok") == 0 && there, "write: \"%s\", on the host: %d", run.out, there);
  return 0;
}

static int t_rlimit_fsize(struct fs *fs) {
  struct oplist extra;
  ol_init(&extra);
  ol_rlimit(&extra, RLIMIT_FSIZE, 1024, 1024);
  /* `exit $?` keeps sh as pid 1 and head a child: SIGXFSZ is not delivered to a pid-1 process
   * without a handler. */
  struct job job = {.path = "/bin/sh",
                    .argv = {"sh", "-c", "head -c 4096 /dev/zero > /tmp/big; exit $?", NULL},
                    .extra = &extra};
  struct run run;
  int r = run_job(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(exited_with(run.status, 128 + SIGXFSZ), "status 0x%x (want exit %d: head got SIGXFSZ)",
        run.status, 128 + SIGXFSZ);
  return 0;
}

static int t_missing_binary(struct fs *fs) {
  struct job job = {.path = "/nonexistent/sbx-no-such-binary", .argv = {"x", NULL}};
  struct run run;
  if (run_start(fs, &job, &run) < 0) return -1;
  close(run.out_fd);
  close(run.setup_fd);
  CHECK(run.spawned.err == -ENOENT, "err %d \"%s\"", run.spawned.err, run.spawned.msg);
  CHECK(strcmp(run.spawned.msg,
               "open(/nonexistent/sbx-no-such-binary): No such file or directory") == 0,
        "message \"%s\"", run.spawned.msg);
  CHECK(run.spawned.step == SBX_STEP_OPEN_EXEC && run.spawned.fail_flags == SBX_FAILURE_PATH,
        "step %u flags %u", run.spawned.step, run.spawned.fail_flags);
  return 0;
}

/* An invalid request gets -EINVAL and a message naming the op; the next one works. */
static int expect_invalid(struct fs *fs, const struct oplist *o, const char *needle) {
  int e = sbx_comms_send_tlv(&fs->c, SBX_FS_SPAWN, o->buf, o->len);
  CHECK(e == 0, "send: %s", sbx_comms_strerror(e));
  struct reply r;
  CHECK(fs_recv(fs, &r) == 0, "no reply");
  CHECK(r.tag == SBX_FS_SPAWNED && r.err == -EINVAL, "tag 0x%x err %d \"%s\"", (unsigned)r.tag,
        r.err, r.msg);
  CHECK(r.step == SBX_STEP_REQUEST, "step %u", r.step);
  CHECK(strstr(r.msg, needle) != NULL, "message \"%s\" lacks \"%s\"", r.msg, needle);
  fprintf(stderr, "#   refused: %s\n", r.msg);
  return 0;
}

static int t_invalid_requests(struct fs *fs) {
  struct oplist o;
  /* unknown op after a valid request id: the reply carries the id */
  ol_init(&o);
  ol_u64(&o, SBX_OP_REQUEST_ID, 4242);
  ol_raw(&o, 999, "abc", 3);
  if (expect_invalid(fs, &o, "unknown op") < 0) return -1;
  ol_free(&o);
  /* NUL inside a string */
  ol_init(&o);
  ol_u64(&o, SBX_OP_REQUEST_ID, 1);
  ol_raw(&o, SBX_OP_EXEC_PATH, "/bin/tr\0ue", 10);
  if (expect_invalid(fs, &o, "EXEC_PATH") < 0) return -1;
  ol_free(&o);
  /* duplicate single op */
  ol_init(&o);
  ol_u64(&o, SBX_OP_REQUEST_ID, 1);
  ol_u64(&o, SBX_OP_REQUEST_ID, 2);
  if (expect_invalid(fs, &o, "REQUEST_ID (op 1 at offset 20): may appear only once") < 0) return -1;
  ol_free(&o);
  /* missing required op */
  ol_init(&o);
  ol_u64(&o, SBX_OP_REQUEST_ID, 1);
  ol_str(&o, SBX_OP_EXEC_PATH, "/usr/bin/true");
  if (expect_invalid(fs, &o, "missing required op ARG") < 0) return -1;
  ol_free(&o);
  /* short payload */
  ol_init(&o);
  ol_raw(&o, SBX_OP_REQUEST_ID, "1234", 4);
  if (expect_invalid(fs, &o, "REQUEST_ID") < 0) return -1;
  ol_free(&o);
  /* an escape attempt in an inside path */
  ol_init(&o);
  ol_u64(&o, SBX_OP_REQUEST_ID, 1);
  ol_mkdir(&o, 0755, "/../../etc/sbx");
  if (expect_invalid(fs, &o, "MKDIR") < 0) return -1;
  ol_free(&o);
  /* random garbage (whose framing announces no fds) */
  srand(7);
  for (int round = 0; round < 20; round++) {
    uint8_t junk[200];
    size_t n = 1 + (size_t)(rand() % (int)sizeof junk);
    for (size_t i = 0; i < n; i++) junk[i] = (uint8_t)rand();
    if (round % 2) junk[0] = SBX_OP_ARG, memset(junk + 1, 0, 3); /* a plausible first op */
    struct sbx_request req;
    char err[256];
    if (sbx_request_parse(junk, n, &req, err, sizeof err) == 0) {
      sbx_request_free(&req);
      continue;
    }
    if (req.fd_count != 0) continue;
    int e = sbx_comms_send_tlv(&fs->c, SBX_FS_SPAWN, junk, n);
    CHECK(e == 0, "send");
    struct reply r;
    CHECK(fs_recv(fs, &r) == 0, "no reply to garbage round %d", round);
    CHECK(r.err == -EINVAL && r.msg[0] != '\0', "garbage: err %d \"%s\"", r.err, r.msg);
  }
  /* still serving */
  return t_true_exits_0(fs);
}

static int t_setup_failure_is_reported(struct fs *fs) {
  struct oplist extra;
  ol_init(&extra);
  ol_bind(&extra, 0, "/nonexistent-sbx-source", "/x");
  struct job job = {.path = "/usr/bin/true", .argv = {"true", NULL}, .extra = &extra};
  struct run run;
  int r = run_job(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(exited_with(run.status, 127), "status 0x%x", run.status);
  CHECK(strncmp(run.setup_msg, "mount: open_tree(/nonexistent-sbx-source", 40) == 0 &&
            strstr(run.setup_msg, "): No such file or directory") != NULL,
        "setup message \"%s\"", run.setup_msg);
  /* the kind is data: the step, errno and the path flag */
  CHECK(run.setup_step == SBX_STEP_MOUNT && run.setup_errno == ENOENT &&
            run.setup_flags == SBX_FAILURE_PATH,
        "step %u errno %d flags %u", run.setup_step, run.setup_errno, run.setup_flags);
  /* the same source marked optional is skipped */
  ol_init(&extra);
  ol_bind(&extra, SBX_BIND_OPTIONAL, "/nonexistent-sbx-source", "/x");
  r = run_job(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(exited_with(run.status, 0) && run.setup_msg[0] == '\0', "optional: status 0x%x \"%s\"",
        run.status, run.setup_msg);
  return 0;
}

static int t_exec_failure_is_reported(struct fs *fs) {
  struct job job = {.path = "/usr/bin/true", .argv = {"true", NULL}, .flags = JOB_NO_LIB64};
  struct run run;
  if (run_job(fs, &job, &run) < 0) return -1;
  CHECK(exited_with(run.status, 127), "status 0x%x", run.status);
  CHECK(strcmp(run.setup_msg, "exec: execveat(/usr/bin/true): No such file or directory") == 0,
        "setup message \"%s\"", run.setup_msg);
  CHECK(run.setup_step == SBX_STEP_EXEC && run.setup_errno == ENOENT && run.setup_flags == 0,
        "step %u errno %d flags %u", run.setup_step, run.setup_errno, run.setup_flags);
  return 0;
}

/* With the TRACE op the child sends its marks: the forkserver's steps first, then the child's in
 * order, on one monotonic clock. Without it, nothing. */
static int t_trace_only_when_asked(struct fs *fs) {
  struct job job = {.path = "/usr/bin/true", .argv = {"true", NULL}};
  struct run run;
  if (run_job(fs, &job, &run) < 0) return -1;
  CHECK(exited_with(run.status, 0) && run.trace_n == 0, "untraced: status 0x%x, %u marks",
        run.status, run.trace_n);
  struct oplist extra;
  ol_init(&extra);
  ol_raw(&extra, SBX_OP_TRACE, NULL, 0);
  job.extra = &extra;
  int r = run_job(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(exited_with(run.status, 0), "traced: status 0x%x \"%s\"", run.status, run.setup_msg);
  CHECK(run.trace_n >= 8, "%u marks", run.trace_n);
  CHECK(run.trace_step[0] == SBX_STEP_REQUEST && run.trace_step[1] == SBX_STEP_OPEN_EXEC,
        "first marks %u %u", run.trace_step[0], run.trace_step[1]);
  bool clone = false, mount = false, caps = false;
  for (uint32_t i = 0; i < run.trace_n; i++) {
    CHECK(i == 0 || run.trace_ns[i] >= run.trace_ns[i - 1], "mark %u goes back in time", i);
    clone |= run.trace_step[i] == SBX_STEP_CLONE || run.trace_step[i] == SBX_STEP_POOL;
    mount |= run.trace_step[i] == SBX_STEP_MOUNT;
    caps |= run.trace_step[i] == SBX_STEP_CAPABILITIES;
  }
  CHECK(clone && mount && caps, "clone %d mount %d capabilities %d", clone, mount, caps);
  return 0;
}

static int t_fds_are_mapped(struct fs *fs) {
  int p1[2], p2[2];
  CHECK(pipe2(p1, O_CLOEXEC) == 0 && pipe2(p2, O_CLOEXEC) == 0, "pipe");
  struct oplist extra;
  ol_init(&extra);
  ol_u32(&extra, SBX_OP_FD, 5);
  ol_u32(&extra, SBX_OP_FD, 1023);
  int fds[2] = {p1[1], p2[1]};
  struct job job = {.path = g_probe,
                    .argv = {"fs_probe", "fds", NULL},
                    .extra = &extra,
                    .extra_fds = fds,
                    .nextra_fds = 2};
  struct run run;
  int r = run_job(fs, &job, &run);
  ol_free(&extra);
  close(p1[0]), close(p1[1]), close(p2[0]), close(p2[1]);
  if (r < 0) return -1;
  CHECK(strcmp(run.out, "0 1 2 5 1023") == 0, "open fds \"%s\"", run.out);
  return 0;
}

static int t_no_namespaces(struct fs *fs) {
  struct job job = {.path = "/usr/bin/true", .argv = {"true", NULL}, .flags = JOB_BARE};
  struct run run;
  if (run_job(fs, &job, &run) < 0) return -1;
  CHECK(exited_with(run.status, 0), "status 0x%x \"%s\"", run.status, run.setup_msg);
  return 0;
}

/* allow all, but USER_NOTIF for execveat with the magic in arg 5 (low word; x86-64 only) */
static void magic_filter(struct oplist *o) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execveat, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[5])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SBX_EXEC_MAGIC, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  ol_raw(o, SBX_OP_SECCOMP, f, sizeof f); /* little-endian host: the wire layout */
  ol_u32(o, SBX_OP_SECCOMP_FLAGS, SBX_SECCOMP_LISTENER);
}

/* Takes the listener (fd n from the setup socket) and waits for one notification. */
static int take_listener(struct run *run, int *listener) {
  sbx_comms sc;
  sbx_comms_init(&sc, run->setup_fd);
  CHECK(wait_readable(run->setup_fd, TIMEOUT_MS), "no listener number");
  /* The target is pid 2 under the sandbox's init: it sends its own pidfd before n. */
  int target_pidfd = -1;
  int e = sbx_comms_recv_fd(&sc, &target_pidfd);
  CHECK(e == 0, "recv target pidfd: %s (last tag 0x%x)", sbx_comms_strerror(e),
        (unsigned)sbx_comms_last_tag(&sc));
  uint32_t n;
  e = sbx_comms_recv_uint32(&sc, &n);
  CHECK(e == 0, "recv listener number: %s (last tag 0x%x)", sbx_comms_strerror(e),
        (unsigned)sbx_comms_last_tag(&sc));
  /* n arrives just before the child's seccomp() runs: until it has, fd n does not exist
   * (EBADF), and nothing else can take that number, so retry briefly. */
  for (int tries = 0; (*listener = pidfd_getfd(target_pidfd, (int)n, 0)) < 0; tries++) {
    CHECK(errno == EBADF && tries < 10000, "pidfd_getfd(%u): %s", n, strerror(errno));
    CHECK(!wait_readable(run->setup_fd, 0), "a setup message instead of the filter");
    usleep(20);
  }
  close(target_pidfd);
  return 0;
}

static int recv_notif(int listener, struct seccomp_notif *req) {
  memset(req, 0, sizeof *req);
  CHECK(wait_readable(listener, TIMEOUT_MS), "no notification");
  CHECK(ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) == 0, "NOTIF_RECV: %s", strerror(errno));
  return 0;
}

static int t_seccomp_listener_handoff(struct fs *fs) {
  struct oplist extra;
  ol_init(&extra);
  magic_filter(&extra);
  struct job job = {
      .path = "/usr/bin/echo", .argv = {"echo", "hello", "seccomp", NULL}, .extra = &extra};
  struct run run;
  int r = run_start(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(run.spawned.err == 0, "spawn: %s", run.spawned.msg);
  int listener;
  if (take_listener(&run, &listener) < 0) return -1;
  struct seccomp_notif req;
  if (recv_notif(listener, &req) < 0) return -1;
  CHECK(req.data.nr == __NR_execveat && req.data.args[5] == SBX_EXEC_MAGIC &&
            req.data.args[0] == SBX_EXEC_FD_TARGET,
        "notification nr %d arg0 %llu arg5 0x%llx", req.data.nr,
        (unsigned long long)req.data.args[0], (unsigned long long)req.data.args[5]);
  struct seccomp_notif_resp resp = {.id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
  CHECK(ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0, "NOTIF_SEND: %s", strerror(errno));
  if (run_finish(fs, &run) < 0) return -1;
  close(listener);
  CHECK(exited_with(run.status, 0) && strcmp(run.out, "hello seccomp") == 0,
        "status 0x%x out \"%s\" setup \"%s\"", run.status, run.out, run.setup_msg);
  return 0;
}

static int t_seccomp_exec_failure_goes_to_monitor(struct fs *fs) {
  struct oplist extra;
  ol_init(&extra);
  magic_filter(&extra);
  struct job job = {
      .path = "/usr/bin/true", .argv = {"true", NULL}, .extra = &extra, .flags = JOB_NO_LIB64};
  struct run run;
  int r = run_start(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(run.spawned.err == 0, "spawn: %s", run.spawned.msg);
  int listener;
  if (take_listener(&run, &listener) < 0) return -1;
  struct seccomp_notif req;
  if (recv_notif(listener, &req) < 0) return -1;
  struct seccomp_notif_resp resp = {.id = req.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
  CHECK(ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0, "NOTIF_SEND: %s", strerror(errno));
  /* the exec fails (no ELF interpreter): the second magic execveat carries -ENOENT in arg 3 */
  if (recv_notif(listener, &req) < 0) return -1;
  CHECK(req.data.nr == __NR_execveat && req.data.args[5] == SBX_EXEC_MAGIC &&
            (int64_t)req.data.args[3] == -ENOENT,
        "second notification: nr %d arg3 %lld", req.data.nr, (long long)req.data.args[3]);
  resp = (struct seccomp_notif_resp){.id = req.id, .error = -EPERM};
  CHECK(ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0, "NOTIF_SEND: %s", strerror(errno));
  if (run_finish(fs, &run) < 0) return -1;
  close(listener);
  CHECK(exited_with(run.status, 127), "status 0x%x", run.status);
  return 0;
}

static int count_fds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  if (d == NULL) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static int t_no_fd_leak(struct fs *fs) {
  int before = count_fds(fs->pid);
  CHECK(before > 0, "cannot read /proc/%d/fd", (int)fs->pid);
  struct job ok = {.path = "/usr/bin/true", .argv = {"true", NULL}};
  struct job missing = {.path = "/nonexistent/x", .argv = {"x", NULL}};
  for (int i = 0; i < 500; i++) {
    struct run run;
    if (i % 50 == 49) { /* failures must not leak either */
      if (run_start(fs, &missing, &run) < 0) return -1;
      close(run.out_fd), close(run.setup_fd);
      continue;
    }
    if (i % 50 == 48) { /* an invalid request whose announced fds must be drained and closed */
      struct oplist o;
      ol_init(&o);
      ol_u64(&o, SBX_OP_REQUEST_ID, 9);
      ol_u32(&o, SBX_OP_FD, 4);
      ol_raw(&o, SBX_OP_SETUP_SOCKET, NULL, 0);
      ol_raw(&o, 77, NULL, 0);
      CHECK(sbx_comms_send_tlv(&fs->c, SBX_FS_SPAWN, o.buf, o.len) == 0, "send");
      ol_free(&o);
      CHECK(sbx_comms_send_fd(&fs->c, 0) == 0 && sbx_comms_send_fd(&fs->c, 2) == 0, "send fds");
      struct reply rep;
      CHECK(fs_recv(fs, &rep) == 0 && rep.err == -EINVAL && rep.id == 9, "err %d", rep.err);
      continue;
    }
    if (run_job(fs, &ok, &run) < 0) return -1;
    CHECK(exited_with(run.status, 0), "spawn %d: status 0x%x", i, run.status);
  }
  int after = count_fds(fs->pid);
  fprintf(stderr, "#   forkserver fds: %d before, %d after 500 spawns\n", before, after);
  CHECK(after == before, "%d fds before, %d after", before, after);
  return 0;
}

static int t_eof_kills_children(struct fs *unused) {
  (void)unused;
  struct fs fs;
  CHECK(fs_start(&fs) == 0, "start");
  struct job job = {.path = "/usr/bin/sleep", .argv = {"sleep", "100", NULL}};
  struct run run;
  if (run_start(&fs, &job, &run) < 0) return -1;
  CHECK(run.spawned.err == 0, "spawn: %s", run.spawned.msg);
  close(run.out_fd);
  close(run.setup_fd);
  int status;
  CHECK(fs_stop(&fs, &status) == 0, "the forkserver did not exit on EOF");
  CHECK(exited_with(status, 0), "forkserver status 0x%x", status);
  CHECK(wait_readable(run.spawned.pidfd, 2000), "the sandboxee survived its forkserver");
  close(run.spawned.pidfd);
  return 0;
}

static int t_spawn_bad_usage(struct fs *unused) {
  (void)unused;
  /* without fd 3 the forkserver refuses to start, with a message */
  pid_t pid = fork();
  if (pid == 0) {
    close(SBX_FS_COMMS_FD);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(g_forkserver, g_forkserver, (char *)NULL);
    _exit(126);
  }
  int status;
  waitpid(pid, &status, 0);
  CHECK(exited_with(status, 1), "status 0x%x", status);
  return 0;
}

static int count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  int n = 0;
  for (int c; (c = fgetc(f)) != EOF;)
    if (c == '\n') n++;
  fclose(f);
  return n;
}

/* No capabilities (bounding set included), no_new_privs, clean signal state, own session, the
 * caller's umask back, and no mount leaked into the host's namespace. */
static int t_sandboxee_state(struct fs *fs) {
  int mounts_before = count_lines("/proc/self/mountinfo");
  struct run run;
  if (probe(fs, &run, "status", NULL) < 0) return -1;
  mode_t um = umask(022);
  umask(um);
  char want[256];
  snprintf(want, sizeof want,
           "SigBlk=0000000000000000 SigIgn=0000000000000000 CapPrm=0000000000000000 "
           "CapEff=0000000000000000 CapBnd=0000000000000000 CapAmb=0000000000000000 "
           "NoNewPrivs=1 sid=1 umask=%o", /* in /proc/self/status order */
           (unsigned)um);
  CHECK(strcmp(run.out, want) == 0, "\n#     got  \"%s\"\n#     want \"%s\"", run.out, want);
  CHECK(count_lines("/proc/self/mountinfo") == mounts_before, "the host's mount table changed");
  return 0;
}

static int t_low_nofile(struct fs *fs) {
  struct oplist extra;
  ol_init(&extra);
  ol_rlimit(&extra, RLIMIT_NOFILE, 16, 16); /* below the setup and exec fd numbers */
  struct job job = {.path = g_probe, .argv = {"fs_probe", "fds", NULL}, .extra = &extra};
  struct run run;
  int r = run_job(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(exited_with(run.status, 0) && strcmp(run.out, "0 1 2") == 0, "status 0x%x fds \"%s\" %s",
        run.status, run.out, run.setup_msg);
  /* above the hard limit (raising it needs CAP_SYS_RESOURCE): clamped, not an error */
  ol_init(&extra);
  ol_rlimit(&extra, RLIMIT_NOFILE, RLIM_INFINITY, RLIM_INFINITY);
  r = run_job(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(exited_with(run.status, 0), "status 0x%x %s", run.status, run.setup_msg);
  return 0;
}

static int t_invalid_filter_reported(struct fs *fs) {
  struct oplist extra;
  ol_init(&extra);
  /* a jump past the end: the kernel's checker refuses it */
  struct sock_filter f[] = {BPF_JUMP(BPF_JMP | BPF_JA, 5, 0, 0),
                            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  ol_raw(&extra, SBX_OP_SECCOMP, f, sizeof f);
  struct job job = {.path = "/usr/bin/true", .argv = {"true", NULL}, .extra = &extra};
  struct run run;
  int r = run_job(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(exited_with(run.status, 127), "status 0x%x", run.status);
  CHECK(strcmp(run.setup_msg, "seccomp: seccomp(SECCOMP_SET_MODE_FILTER): Invalid argument") == 0,
        "setup message \"%s\"", run.setup_msg);
  CHECK(run.setup_step == SBX_STEP_SECCOMP && run.setup_errno == EINVAL, "step %u errno %d",
        run.setup_step, run.setup_errno);
  return 0;
}

static int t_forkserver_death_kills_children(struct fs *unused) {
  (void)unused;
  struct fs fs;
  CHECK(fs_start(&fs) == 0, "start");
  struct job job = {.path = "/usr/bin/sleep", .argv = {"sleep", "100", NULL}};
  struct run run;
  if (run_start(&fs, &job, &run) < 0) return -1;
  CHECK(run.spawned.err == 0, "spawn: %s", run.spawned.msg);
  close(run.out_fd);
  close(run.setup_fd);
  usleep(20000); /* let the child get past its setup (PDEATHSIG is re-armed after setresuid) */
  kill(fs.pid, SIGKILL);
  int status;
  waitpid(fs.pid, &status, 0);
  sbx_comms_close(&fs.c);
  CHECK(wait_readable(run.spawned.pidfd, 2000), "the sandboxee survived a SIGKILLed forkserver");
  close(run.spawned.pidfd);
  return 0;
}

/* The cgroup2 mount point, or "" (hybrid hosts have it at /sys/fs/cgroup/unified). */
static void cgroup2_root(char *out, size_t len) {
  out[0] = '\0';
  FILE *f = fopen("/proc/self/mountinfo", "r");
  if (f == NULL) return;
  char line[1024];
  while (fgets(line, sizeof line, f) != NULL) {
    char *sep = strstr(line, " - cgroup2 ");
    if (sep == NULL) continue;
    char mnt[512];
    if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1) snprintf(out, len, "%s", mnt);
    break;
  }
  fclose(f);
}

static int t_clone_into_cgroup(struct fs *fs) {
  char root[512], dir[600], procs[700];
  cgroup2_root(root, sizeof root);
  if (root[0] == '\0') return 77;
  snprintf(dir, sizeof dir, "%s/sbx-fs-test-%d", root, (int)getpid());
  if (mkdir(dir, 0755) < 0) {
    fprintf(stderr, "#   skip: mkdir(%s): %s\n", dir, strerror(errno));
    return 77;
  }
  struct oplist extra;
  ol_init(&extra);
  ol_str(&extra, SBX_OP_CGROUP, dir);
  struct job job = {.path = "/usr/bin/sleep", .argv = {"sleep", "100", NULL}, .extra = &extra};
  struct run run;
  int r = run_start(fs, &job, &run);
  ol_free(&extra);
  if (r < 0) return -1;
  bool found = false;
  if (run.spawned.err == 0) {
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    FILE *f = fopen(procs, "r");
    for (int pid; f != NULL && fscanf(f, "%d", &pid) == 1;)
      if ((uint32_t)pid == run.spawned.pid) found = true;
    if (f != NULL) fclose(f);
    pidfd_send_signal(run.spawned.pidfd, SIGKILL, NULL, 0);
  }
  r = run.spawned.err == 0 ? run_finish(fs, &run) : 0;
  rmdir(dir);
  if (r < 0) return -1;
  CHECK(run.spawned.err == 0, "spawn: %s", run.spawned.msg);
  CHECK(found, "pid %u is not in %s", run.spawned.pid, procs);
  CHECK(WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGKILL, "status 0x%x", run.status);
  return 0;
}

/* MKDIR and SYMLINK build what they say, and a symlink in the tree cannot send a later op out
 * to the host: with /evil -> /etc, MKDIR /evil/x fails while the sandbox has no /etc (dangling
 * inside the root) and lands in the sandbox's own /etc once it has one; never in the host's. */
static int t_mkdir_symlink_in_root(struct fs *fs) {
  char name[64], inside[96], host_path[96];
  snprintf(name, sizeof name, "sbx-fs-test-escape-%d", (int)getpid());
  snprintf(inside, sizeof inside, "/evil/%s", name);
  snprintf(host_path, sizeof host_path, "/etc/%s", name);
  struct stat st;
  struct run run;
  for (int with_etc = 0; with_etc <= 1; with_etc++) {
    struct oplist extra;
    ol_init(&extra);
    ol_mkdir(&extra, 0700, "/data/priv/");
    ol_symlink(&extra, "/usr/bin", "/data/link");
    if (with_etc) ol_mkdir(&extra, 0755, "/etc");
    ol_symlink(&extra, "/etc", "/evil");
    ol_mkdir(&extra, 0755, inside);
    struct job job = {
        .path = g_probe, .argv = {"fs_probe", "stat", host_path, NULL}, .extra = &extra};
    int r = run_job(fs, &job, &run);
    bool escaped = stat(host_path, &st) == 0;
    if (escaped) rmdir(host_path);
    if (r == 0 && with_etc) { /* also check the modes */
      struct run m;
      job.argv[1] = "mode";
      job.argv[2] = "/data/priv";
      r = run_job(fs, &job, &m);
      if (r == 0) CHECK(strcmp(m.out, "40700") == 0, "/data/priv mode \"%s\"", m.out);
      job.argv[2] = "/data/link";
      if (r == 0) r = run_job(fs, &job, &m);
      if (r == 0) CHECK(strcmp(m.out, "120777") == 0, "/data/link mode \"%s\"", m.out);
    }
    ol_free(&extra);
    if (r < 0) return -1;
    CHECK(!escaped, "MKDIR %s created %s on the host", inside, host_path);
    if (!with_etc)
      CHECK(exited_with(run.status, 127) && strstr(run.setup_msg, "openat2(/evil,") != NULL,
            "dangling: status 0x%x \"%s\"", run.status, run.setup_msg);
    else
      CHECK(exited_with(run.status, 0) && strcmp(run.out, "ok") == 0, "%s inside: \"%s\" %s",
            host_path, run.out, run.setup_msg);
  }
  return 0;
}

/* ---- Landlock (SBX_OP_LANDLOCK) ---- */

#define LL_READ (1u << 2 | 1u << 3) /* READ_FILE | READ_DIR */
#define LL_EXEC (1u << 0)           /* EXECUTE */
#define LL_DEV  (1u << 1 | 1u << 2 | 1u << 3 | 1u << 14 | 1u << 15)

static void ol_landlock_config(struct oplist *o, uint64_t fs, uint64_t net, uint64_t scoped) {
  uint8_t b[28];
  uint32_t kind = SBX_LANDLOCK_CONFIG;
  memcpy(b, &kind, 4), memcpy(b + 4, &fs, 8), memcpy(b + 12, &net, 8), memcpy(b + 20, &scoped, 8);
  ol_raw(o, SBX_OP_LANDLOCK, b, sizeof b);
}

static void ol_landlock_path(struct oplist *o, uint64_t access, const char *path) {
  uint8_t b[12 + 256];
  uint32_t kind = SBX_LANDLOCK_PATH;
  size_t n = strlen(path);
  memcpy(b, &kind, 4), memcpy(b + 4, &access, 8), memcpy(b + 12, path, n);
  ol_raw(o, SBX_OP_LANDLOCK, b, 12 + n);
}

/* The standard tree's rules: / listable, /usr read+exec, /proc read, /dev devices, /tmp all. */
static void landlock_ops(struct oplist *o) {
  ol_landlock_config(o, 0xffff, 0, 0x3);
  ol_landlock_path(o, 1u << 3, "/");
  ol_landlock_path(o, LL_READ | LL_EXEC, "/usr");
  ol_landlock_path(o, LL_READ, "/proc");
  ol_landlock_path(o, LL_DEV, "/dev");
  ol_landlock_path(o, 0xffff & ~(1u << 9 | 1u << 12), "/tmp");
  ol_landlock_path(o, LL_READ, "/no/such/path"); /* skipped */
}

static long landlock_abi(void) { return syscall(444, NULL, 0, 1u); }

/* A sanitized probe reads its options and runs its leak check through /proc: the cases whose
 * sandbox has no /proc (or no Landlock rule for it) are skipped in such a build. */
#if defined(__SANITIZE_ADDRESS__)
#define PROBE_NEEDS_PROC 1
#else
#define PROBE_NEEDS_PROC 0
#endif

/* probe ARGS in the standard tree, with or without the Landlock ops */
static int probe_ll(struct fs *fs, struct run *run, bool landlock, unsigned flags, const char *a1,
                    const char *a2) {
  struct oplist extra;
  ol_init(&extra);
  if (landlock) landlock_ops(&extra);
  struct job job = {.path = g_probe,
                    .argv = {"fs_probe", a1, a2, NULL},
                    .flags = flags,
                    .extra = landlock ? &extra : NULL};
  int r = run_job(fs, &job, run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(exited_with(run->status, 0), "probe %s %s: status 0x%x, setup \"%s\"", a1, a2, run->status,
        run->setup_msg);
  return 0;
}

/* The mount tree lets the sandboxee write its own /proc files (proc is mounted read-write);
 * the Landlock rule for /proc is read-only, so Landlock refuses. The rest keeps working. */
static int t_landlock_fs(struct fs *fs) {
  if (landlock_abi() < 3) return 77;
  struct run run;
  if (probe_ll(fs, &run, false, 0, "append", "/proc/self/comm") < 0) return -1;
  CHECK(strcmp(run.out, "ok") == 0, "no Landlock: write /proc/self/comm: \"%s\"", run.out);
  if (probe_ll(fs, &run, true, 0, "append", "/proc/self/comm") < 0) return -1;
  CHECK(strcmp(run.out, "EACCES") == 0, "Landlock: write /proc/self/comm: \"%s\"", run.out);
  if (probe_ll(fs, &run, true, 0, "read", "/proc/self/status") < 0) return -1;
  CHECK(strcmp(run.out, "ok") == 0, "Landlock: read /proc/self/status: \"%s\"", run.out);
  if (probe_ll(fs, &run, true, 0, "write", "/tmp/x") < 0) return -1;
  CHECK(strcmp(run.out, "ok") == 0, "Landlock: write /tmp/x: \"%s\"", run.out);
  if (probe_ll(fs, &run, true, 0, "write", "/dev/null") < 0) return -1;
  CHECK(strcmp(run.out, "ok") == 0, "Landlock: write /dev/null: \"%s\"", run.out);
  if (probe_ll(fs, &run, true, 0, "write", "/usr/x") < 0) return -1;
  CHECK(strcmp(run.out, "EROFS") == 0 || strcmp(run.out, "EACCES") == 0, "write /usr/x: \"%s\"",
        run.out);
  return 0;
}

/* SCOPE_SIGNAL: a process outside the sandbox with the sandboxee's own host uid (visible: no pid
 * namespace) can be signalled without Landlock, not with it. */
static int t_landlock_signal_scope(struct fs *fs) {
  if (landlock_abi() < 6 || PROBE_NEEDS_PROC) return 77;
  pid_t sentinel = fork();
  CHECK(sentinel >= 0, "fork: %s", strerror(errno));
  if (sentinel == 0) {
    if (getuid() == 0 &&
        (setgroups(0, NULL) < 0 || setresgid(g_outside_gid, g_outside_gid, g_outside_gid) < 0 ||
         setresuid(g_outside_uid, g_outside_uid, g_outside_uid) < 0))
      _exit(1);
    for (;;) pause();
  }
  char pid[24];
  snprintf(pid, sizeof pid, "%d", (int)sentinel);
  usleep(20000); /* let it drop its ids */
  struct run a, b;
  int r = probe_ll(fs, &a, false, JOB_NO_PIDNS, "kill", pid);
  if (r == 0) r = probe_ll(fs, &b, true, JOB_NO_PIDNS, "kill", pid);
  kill(sentinel, SIGKILL);
  waitpid(sentinel, NULL, 0);
  if (r < 0) return -1;
  CHECK(strcmp(a.out, "ok") == 0, "no Landlock: kill(sentinel, 0): \"%s\"", a.out);
  CHECK(strcmp(b.out, "EPERM") == 0, "Landlock: kill(sentinel, 0): \"%s\"", b.out);
  return 0;
}

/* A rule on a file with directory rights keeps its file rights only (no EINVAL from the kernel),
 * and what no rule names is refused. */
static int ll_file_probe(struct fs *fs, struct run *run, const char *a1, const char *a2) {
  struct oplist extra;
  ol_init(&extra);
  ol_landlock_config(&extra, 0xffff, 0, 0);
  ol_landlock_path(&extra, LL_READ | LL_EXEC, "/usr");
  ol_landlock_path(&extra, 0xffff, "/dev/null");
  struct job job = {.path = g_probe, .argv = {"fs_probe", a1, a2, NULL}, .extra = &extra};
  int r = run_job(fs, &job, run);
  ol_free(&extra);
  if (r < 0) return -1;
  CHECK(exited_with(run->status, 0), "probe %s %s: status 0x%x, setup \"%s\"", a1, a2, run->status,
        run->setup_msg);
  return 0;
}

static int t_landlock_file_rule(struct fs *fs) {
  if (landlock_abi() < 1 || PROBE_NEEDS_PROC) return 77;
  struct run run;
  if (ll_file_probe(fs, &run, "write", "/dev/null") < 0) return -1;
  CHECK(strcmp(run.out, "ok") == 0, "write /dev/null: \"%s\"", run.out);
  if (ll_file_probe(fs, &run, "read", "/dev/zero") < 0) return -1;
  CHECK(strcmp(run.out, "EACCES") == 0, "read /dev/zero (no rule): \"%s\"", run.out);
  return 0;
}

struct test_case {
  const char *name;
  int (*fn)(struct fs *);
};

static const struct test_case cases[] = {
    {"true exits 0 in a full sandbox", t_true_exits_0},
    {"false exits 1", t_false_exits_1},
    {"ids inside are the mapped ones", t_ids_are_mapped},
    {"hostname is set", t_hostname},
    {"only lo exists and it is up", t_only_lo_and_up},
    {"sandboxee is pid 2 under its own init", t_pid_1},
    {"files outside the mounts are invisible", t_outside_invisible},
    {"read-only bind and root refuse writes", t_ro_bind_refuses_writes},
    {"tmpfs accepts writes", t_tmpfs_accepts_writes},
    {"rw bind writes reach the host", t_rw_bind_reaches_host},
    {"RLIMIT_FSIZE gives SIGXFSZ", t_rlimit_fsize},
    {"walltime kills the whole sandbox and is flagged", t_walltime},
    {"SET_WALLTIME gives a running sandbox a deadline", t_set_walltime},
    {"missing binary is a SPAWNED error", t_missing_binary},
    {"invalid requests get -EINVAL naming the op, serving goes on", t_invalid_requests},
    {"setup failure is reported on the setup socket", t_setup_failure_is_reported},
    {"exec failure is reported on the setup socket", t_exec_failure_is_reported},
    {"the child sends its step marks only when the request asks (TRACE)", t_trace_only_when_asked},
    {"fds are mapped, the rest closed", t_fds_are_mapped},
    {"no namespaces", t_no_namespaces},
    {"seccomp listener hand-off and magic execveat", t_seccomp_listener_handoff},
    {"exec failure under a filter reaches the monitor", t_seccomp_exec_failure_goes_to_monitor},
    {"MKDIR and SYMLINK stay inside the new root", t_mkdir_symlink_in_root},
    {"sandboxee holds no capabilities, no signal state, own session", t_sandboxee_state},
    {"a low RLIMIT_NOFILE does not stop the fd placement", t_low_nofile},
    {"an invalid filter is reported", t_invalid_filter_reported},
    {"CLONE_INTO_CGROUP puts the child in the cgroup", t_clone_into_cgroup},
    {"no fd leak over 500 spawns", t_no_fd_leak},
    {"comms EOF ends the forkserver and its children", t_eof_kills_children},
    {"a SIGKILLed forkserver takes its children along", t_forkserver_death_kills_children},
    {"refuses to start without comms on fd 3", t_spawn_bad_usage},
    {"Landlock refuses what the mount tree allows (/proc write)", t_landlock_fs},
    {"Landlock signal scope stops a signal the uid would allow", t_landlock_signal_scope},
    {"Landlock file rules are masked to file rights", t_landlock_file_rule},
};

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: fs_test FORKSERVER PROBE\n");
    return 2;
  }
  /* absolute: the request carries host paths, and the parser wants them absolute */
  static char fs_path[4096], probe_path[4096];
  if (realpath(argv[1], fs_path) == NULL || realpath(argv[2], probe_path) == NULL) {
    perror("realpath");
    return 2;
  }
  g_forkserver = fs_path;
  g_probe = probe_path;
  alarm(300); /* a hang is a failure, not a stuck ctest */
  /* Root maps inside 1000 to host nobody (as the executor does); a user maps its own ids. */
  g_outside_uid = getuid() == 0 ? 65534 : getuid();
  g_outside_gid = getuid() == 0 ? 65534 : getgid();
  fprintf(stderr, "# running as uid %u, inside 1000 -> outside %u\n", (unsigned)getuid(),
          (unsigned)g_outside_uid);

  struct fs fs;
  if (fs_start(&fs) < 0) {
    perror("start forkserver");
    return 1;
  }
  size_t n = sizeof cases / sizeof cases[0];
  int failed = 0;
  printf("1..%zu\n", n);
  for (size_t i = 0; i < n; i++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = cases[i].fn(&fs);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (r == 77)
      printf("ok %zu - %s # SKIP\n", i + 1, cases[i].name);
    else
      printf("%s %zu - %s (%.1f ms)\n", r == 0 ? "ok" : "not ok", i + 1, cases[i].name, ms);
    fflush(stdout);
    if (r != 0 && r != 77) failed++;
  }
  int status;
  if (fs_stop(&fs, &status) < 0 || !exited_with(status, 0)) {
    printf("not ok - forkserver exit status 0x%x\n", status);
    failed++;
  }
  return failed ? 1 : 0;
}
