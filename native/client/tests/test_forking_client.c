/*
 * test_forking_client.c: sbx/forking_client.h. The test plays the executor over a socketpair;
 * a forked "forkserver" process runs sbx_forking_client_wait_and_fork() in a loop, and each of
 * its children runs a small probe on the fd the request gave it. Results are TAP lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/comms.h>
#include <sbx/forking_client.h>

#include "check.h"

/* The child's fd for the test's probe channel. */
#define PROBE_FD 40

/* In a forked child: answers on PROBE_FD what it sees, then exits with the code it is told. */
static void child_probe(void) {
  sbx_comms c;
  sbx_comms_init(&c, PROBE_FD);
  char line[256];
  int forkserver_comms_open = fcntl(5, F_GETFD) >= 0; /* the forkserver's channel is fd 5 */
  errno = 0;
  int kill_parent = kill(getppid(), 0) == 0 ? 0 : errno;
  snprintf(line, sizeof line, "pid=%d dumpable=%d nnp=%d fs_comms=%d kill_parent=%d cloexec=%d",
           (int)getpid(), prctl(PR_GET_DUMPABLE), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
           forkserver_comms_open, kill_parent, fcntl(PROBE_FD, F_GETFD));
  sbx_comms_send_string(&c, line);
  uint32_t code = 0;
  sbx_comms_recv_uint32(&c, &code);
  _exit((int)code);
}

/* The forkserver: serves until the channel ends; exits with 0 on -EPIPE, 10 + protocol error. */
static unsigned g_spares;

/* Runtime hooks that check their contract: a fork only while prepared, one parent() per
 * successful prepare (however many calls it took), none left over when the call returns, and
 * prepare run ahead while the loop waits (more calls than forks). */
static int g_use_hooks;
static int g_outstanding; /* prepared, parent() not run yet */
static unsigned g_prepares, g_forks;
static int hook_prepare(void *arg, char *err, size_t errlen) {
  (void)arg, (void)err, (void)errlen;
  g_prepares++;
  g_outstanding = 1;
  return 0;
}
static void hook_parent(void *arg) {
  (void)arg;
  if (g_outstanding != 1) _exit(12); /* parent() without a prepare, or twice */
  g_outstanding = 0;
  g_forks++;
}
static void hook_child(void *arg) {
  (void)arg;
  if (g_outstanding != 1) _exit(13); /* forked while not prepared */
}
static const struct sbx_fork_hooks g_test_hooks = {hook_prepare, hook_parent, hook_child, NULL};

static void run_forkserver(int fd) {
  int moved = dup2(fd, 5);
  if (moved != fd) close(fd);
  sbx_forking_client *fc;
  char err[256];
  if (sbx_forking_client_open(&fc, 5, err, sizeof err) < 0) _exit(9);
  if (sbx_forking_client_set_spares(fc, g_spares) < 0) _exit(8);
  for (;;) {
    pid_t pid =
        sbx_forking_client_wait_and_fork(fc, g_use_hooks ? &g_test_hooks : NULL, err, sizeof err);
    if (pid == 0) {
      sbx_forking_client_free(fc);
      child_probe();
    }
    if (g_outstanding != 0) _exit(14); /* returned still prepared */
    if (pid == -EPIPE && g_use_hooks && g_spares == 0 && g_prepares <= g_forks) _exit(15);
    if (pid < 0) _exit(pid == -EPIPE ? 0 : pid == -EPROTO ? 10 : 11);
  }
}

static int send_request(sbx_comms *c, uint64_t id, const uint32_t *targets, const int *fds,
                        unsigned n) {
  unsigned char buf[12 + 4 * 16];
  put_u64(buf, id);
  put_u32(buf + 8, n);
  for (unsigned i = 0; i < n; i++) put_u32(buf + 12 + 4 * i, targets[i]);
  int rc = sbx_comms_send_tlv(c, SBX_FORK_TAG_REQUEST, buf, 12 + 4 * n);
  for (unsigned i = 0; rc == 0 && i < n; i++) rc = sbx_comms_send_fd(c, fds[i]);
  return rc;
}

/* Reads FORKED: returns err, sets *pid and *pidfd (on success). */
static int recv_forked(sbx_comms *c, uint64_t want_id, pid_t *pid, int *pidfd) {
  uint32_t tag;
  void *data;
  uint64_t len;
  if (sbx_comms_recv_tlv(c, &tag, &data, &len) < 0 || tag != SBX_FORK_TAG_FORKED || len < 16)
    return -999;
  int32_t e = (int32_t)get_u32((unsigned char *)data + 8);
  *pid = (pid_t)get_u32((unsigned char *)data + 12);
  uint64_t id = get_u64(data);
  free(data);
  if (id != want_id) return -998;
  if (e == 0 && sbx_comms_recv_fd(c, pidfd) < 0) return -997;
  return e;
}

static int landlock_abi(void) { return (int)syscall(444, NULL, 0, 1); }

/* 20 requests: each child gets its fd at the target number and its isolation, answers the probe,
 * exits with the code it is told, and its exit is reported. */
static int twenty_rounds(sbx_comms *exec) {
  for (int round = 0; round < 20; round++) {
    int probe[2];
    CHECK(sbx_comms_socketpair(probe) == 0);
    uint32_t target = PROBE_FD;
    CHECK(send_request(exec, 100 + round, &target, &probe[1], 1) == 0);
    close(probe[1]);
    pid_t pid = 0;
    int pidfd = -1;
    int e = recv_forked(exec, 100 + round, &pid, &pidfd);
    CHECK(e == 0 && pid > 0 && pidfd >= 0);
    sbx_comms pc;
    sbx_comms_init(&pc, probe[0]);
    char *line = NULL;
    size_t len;
    CHECK(sbx_comms_recv_string(&pc, &line, &len) == 0);
    char want[128];
    snprintf(want, sizeof want, "pid=%d dumpable=0 nnp=1 fs_comms=0 kill_parent=%d cloexec=0",
             (int)pid, landlock_abi() >= 6 ? EPERM : 0);
    if (strcmp(line, want) != 0) fprintf(stderr, "child said \"%s\", want \"%s\"\n", line, want);
    CHECK(strcmp(line, want) == 0);
    free(line);
    CHECK(sbx_comms_send_uint32(&pc, (uint32_t)round) == 0);
    close(probe[0]);
    uint32_t tag;
    void *data;
    uint64_t dlen;
    CHECK(sbx_comms_recv_tlv(exec, &tag, &data, &dlen) == 0);
    CHECK(tag == SBX_FORK_TAG_EXITED && dlen == SBX_FORK_EXITED_SIZE);
    CHECK(get_u64(data) == (uint64_t)(100 + round));
    CHECK((pid_t)get_u32((unsigned char *)data + 8) == pid);
    int status = (int)get_u32((unsigned char *)data + 12);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == round);
    free(data);
    close(pidfd);
  }
  return 0;
}

/* Test 1 against a forkserver with `spares` children forked ahead. */
static int forks_round_trip(unsigned spares) {
  g_spares = spares;
  int pair[2];
  CHECK(sbx_comms_socketpair(pair) == 0);
  pid_t server = fork();
  CHECK(server >= 0);
  if (server == 0) {
    close(pair[0]);
    run_forkserver(pair[1]);
  }
  close(pair[1]);
  sbx_comms exec;
  sbx_comms_init(&exec, pair[0]);
  if (twenty_rounds(&exec) != 0) return 1;
  close(pair[0]);
  int status;
  CHECK(waitpid(server, &status, 0) == server);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return 0;
}

int main(void) {
  int test = 0;
  printf("1..6\n");
  if (forks_round_trip(3) != 0) return 1;
  printf(
      "ok %d - 20 forks from 3 spares: fds in place, isolation on, exits reported, spares gone at "
      "EOF\n",
      ++test);
  g_spares = 0;
  int pair[2];
  CHECK(sbx_comms_socketpair(pair) == 0);
  pid_t server = fork();
  CHECK(server >= 0);
  if (server == 0) {
    close(pair[0]);
    run_forkserver(pair[1]);
  }
  close(pair[1]);
  sbx_comms exec;
  sbx_comms_init(&exec, pair[0]);

  /* 1: a child gets its fd at the target number, its isolation, and its exit is reported. */
  if (twenty_rounds(&exec) != 0) return 1;
  printf("ok %d - 20 forks: fds in place, isolation on, exits reported\n", ++test);

  /* 2: distinct targets only: refused with -EINVAL, the server goes on. */
  {
    int a[2];
    CHECK(sbx_comms_socketpair(a) == 0);
    uint32_t targets[2] = {40, 40};
    int fds[2] = {a[0], a[1]};
    CHECK(send_request(&exec, 7, targets, fds, 2) == 0);
    close(a[0]);
    close(a[1]);
    pid_t pid;
    int pidfd;
    CHECK(recv_forked(&exec, 7, &pid, &pidfd) == -EINVAL);
  }
  printf("ok %d - duplicate target fds refused\n", ++test);

  /* 3: a message that is no REQUEST: the server stops with -EPROTO. */
  CHECK(sbx_comms_send_uint32(&exec, 1) == 0);
  int status;
  CHECK(waitpid(server, &status, 0) == server);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 10);
  close(pair[0]);
  printf("ok %d - a wrong message ends the loop with -EPROTO\n", ++test);

  /* 4: the executor closing the channel ends the loop with -EPIPE. */
  CHECK(sbx_comms_socketpair(pair) == 0);
  server = fork();
  CHECK(server >= 0);
  if (server == 0) {
    close(pair[0]);
    run_forkserver(pair[1]);
  }
  close(pair[1]);
  close(pair[0]);
  CHECK(waitpid(server, &status, 0) == server);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  printf("ok %d - EOF from the executor ends the loop with -EPIPE\n", ++test);

  /* 5: runtime hooks, on request and from spares: prepared for every fork, balanced, ahead. */
  g_use_hooks = 1;
  if (forks_round_trip(0) != 0 || forks_round_trip(2) != 0) return 1;
  g_use_hooks = 0;
  printf("ok %d - runtime hooks: prepared at every fork, one parent() per prepare, run ahead\n",
         ++test);
  return 0;
}
