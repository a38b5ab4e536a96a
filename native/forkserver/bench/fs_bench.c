/*
 * fs_bench.c: spawn latency through sbx-forkserver, from the request leaving the executor's
 * side to SBX_FS_EXITED arriving, for /bin/true in a full sandbox (user, mount, pid, net, ipc,
 * uts, cgroup namespaces; tmpfs root with ro /usr, symlinks, /proc, /dev, /tmp). Interleaved with
 * a plain fork+execve+waitpid of /bin/true measured in the same run as the peer.
 *
 * Usage: fs_bench FORKSERVER [N]   (N timed runs each, default 200). JSON on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sbx/comms.h>

#include "oplist.h"
#include "protocol.h"

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  int i = (int)(p * (n - 1) + 0.5);
  return v[i];
}

static void request(struct oplist *o, uint64_t id, unsigned ns) {
  uint32_t uid = getuid() == 0 ? 65534 : getuid(), gid = getuid() == 0 ? 65534 : getgid();
  ol_init(o);
  ol_u64(o, SBX_OP_REQUEST_ID, id);
  ol_str(o, SBX_OP_EXEC_PATH, "/bin/true");
  ol_str(o, SBX_OP_ARG, "true");
  ol_str(o, SBX_OP_ENV, "PATH=/usr/bin:/bin");
  ol_u32(o, SBX_OP_NAMESPACES, ns);
  ol_str(o, SBX_OP_HOSTNAME, "sbx");
  ol_id_map(o, 1000, uid, 1000, gid);
  ol_bind(o, 0, "/usr", "/usr");
  ol_symlink(o, "usr/bin", "/bin");
  ol_symlink(o, "usr/lib", "/lib");
  ol_symlink(o, "usr/lib64", "/lib64");
  ol_symlink(o, "usr/sbin", "/sbin");
  ol_str(o, SBX_OP_PROC, "/proc");
  ol_str(o, SBX_OP_DEV, "/dev");
  ol_tmpfs(o, 0, 01777, "/tmp");
}

/* One spawn through the forkserver; returns microseconds or -1. */
static double spawn_once(sbx_comms *c, uint64_t id, unsigned ns) {
  struct oplist o;
  request(&o, id, ns);
  double t0 = now_us();
  int e = sbx_comms_send_tlv(c, SBX_FS_SPAWN, o.buf, o.len);
  ol_free(&o);
  if (e < 0) return -1;
  for (int got = 0; got < 2;) {
    uint32_t tag;
    void *data;
    uint64_t len;
    if (sbx_comms_recv_tlv(c, &tag, &data, &len) < 0) return -1;
    if (tag == SBX_FS_SPAWNED) {
      int32_t err = len >= 12 ? (int32_t)((uint8_t *)data)[8] | ((uint8_t *)data)[9] << 8 |
                                    ((uint8_t *)data)[10] << 16 | ((uint8_t *)data)[11] << 24
                              : -1;
      if (err != 0) {
        fprintf(stderr, "spawn failed: %.*s\n", (int)(len - 24), (char *)data + 24);
        free(data);
        return -1;
      }
      int pidfd;
      if (sbx_comms_recv_fd(c, &pidfd) < 0) return -1;
      close(pidfd);
    }
    free(data);
    got++;
  }
  return now_us() - t0;
}

static double fork_exec_once(void) {
  double t0 = now_us();
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/true", "true", (char *)NULL);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  return now_us() - t0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fs_bench FORKSERVER [N]\n");
    return 2;
  }
  int n = argc > 2 ? atoi(argv[2]) : 200;
  if (n < 10) n = 10;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return 1;
  pid_t fs = fork();
  if (fs == 0) {
    dup2(sv[1], SBX_FS_COMMS_FD);
    execl(argv[1], argv[1], (char *)NULL);
    _exit(126);
  }
  close(sv[1]);
  sbx_comms c;
  sbx_comms_init(&c, sv[0]);

  unsigned full = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                  CLONE_NEWUTS | CLONE_NEWCGROUP;
  unsigned nonet = full & ~(unsigned)CLONE_NEWNET;
  double *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b),
         *f = calloc((size_t)n, sizeof *f);
  uint64_t id = 1;
  for (int i = 0; i < 20; i++) /* warm-up */
    if (spawn_once(&c, id++, full) < 0 || spawn_once(&c, id++, nonet) < 0) return 1;
  for (int i = 0; i < n; i++) {
    if ((a[i] = spawn_once(&c, id++, full)) < 0) return 1;
    if ((b[i] = spawn_once(&c, id++, nonet)) < 0) return 1;
    f[i] = fork_exec_once();
  }
  sbx_comms_close(&c);
  int st;
  waitpid(fs, &st, 0);
  printf(
      "{\"spawn_true_p50_us\":%.0f,\"spawn_true_p90_us\":%.0f,"
      "\"spawn_true_nonet_p50_us\":%.0f,\"spawn_true_nonet_p90_us\":%.0f,"
      "\"fork_exec_true_p50_us\":%.0f,\"fork_exec_true_p90_us\":%.0f,\"n\":%d,\"uid\":%u}\n",
      pct(a, n, 0.5), pct(a, n, 0.9), pct(b, n, 0.5), pct(b, n, 0.9), pct(f, n, 0.5),
      pct(f, n, 0.9), n, (unsigned)getuid());
  return 0;
}
