/*
 * test_client.c: sbx_client_sandbox_me_here() against a test executor. Each case forks a child
 * (the sandboxee: it installs the filter, so it must not be this process) and plays the
 * executor's side of the handshake here on a socketpair, with a small hand-written policy:
 * getppid() is USER_NOTIF, everything else is allowed. The notification proves the listener
 * really went to the executor and that every thread carries the filter. Results are TAP lines.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/client.h>
#include <sbx/comms.h>

#include "check.h"

/* CHECK_RC with the client's error names and its last message. */
#define CHECK_RC(expr, want)                                                               \
  do {                                                                                     \
    int check_rc_ = (expr);                                                                \
    if (check_rc_ != (want)) {                                                             \
      fprintf(stderr, "%s:%d: %s returned %d (%s), want %d (%s); message: %s\n", __FILE__, \
              __LINE__, #expr, check_rc_, sbx_client_strerror(check_rc_), (int)(want),     \
              sbx_client_strerror(want), msg);                                             \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

static char msg[512];
static const long kSpoofed = 4242;

/* ---- the test executor ---- */

static struct sock_filter notify_getppid[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

/* Reads HELLO; stores its fields. */
static int recv_hello(sbx_comms *c, uint32_t hello[4]) {
  unsigned char buf[SBX_CLIENT_HELLO_SIZE];
  uint32_t tag;
  uint64_t len;
  CHECK(sbx_comms_recv_tlv_into(c, &tag, buf, sizeof buf, &len) == 0);
  CHECK(tag == SBX_CLIENT_TAG_HELLO && len == SBX_CLIENT_HELLO_SIZE);
  for (int i = 0; i < 4; i++) hello[i] = get_u32(buf + 4 * i);
  CHECK(hello[0] == SBX_CLIENT_PROTOCOL_VERSION);
  return 0;
}

/* The child of run_pair(): the executor's side takes the listener from it. */
static pid_t g_child = -1;

/* Reads INSTALLED and takes the listener it names from the child, as the executor does. */
static int take_listener(sbx_comms *c, int *listener) {
  unsigned char buf[4];
  uint32_t tag;
  uint64_t len;
  int pidfd;
  CHECK(sbx_comms_recv_tlv_into(c, &tag, buf, sizeof buf, &len) == 0);
  CHECK(tag == SBX_CLIENT_TAG_INSTALLED && len == 4);
  pidfd = (int)syscall(SYS_pidfd_open, g_child, 0);
  CHECK(pidfd >= 0);
  *listener = (int)syscall(SYS_pidfd_getfd, pidfd, (int)get_u32(buf), 0);
  close(pidfd);
  CHECK(*listener >= 0);
  return 0;
}

/* Answers `n` getppid() notifications with kSpoofed. */
static int serve_notifications(int listener, int n) {
  for (int i = 0; i < n; i++) {
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    CHECK(ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0);
    CHECK(req.data.nr == __NR_getppid);
    resp.id = req.id;
    resp.val = kSpoofed;
    CHECK(ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0);
  }
  return 0;
}

static int is_listener(int fd) {
  char path[64], target[128];
  ssize_t n;
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  n = readlink(path, target, sizeof target - 1);
  if (n < 0) return 0;
  target[n] = '\0';
  return strcmp(target, "anon_inode:seccomp notify") == 0;
}

/* ---- the sandboxee side ---- */

static int wake_pipe[2], done_pipe[2];

/* A thread started before the call: once woken, it calls getppid() and reports the answer. */
static void *second_thread(void *arg) {
  char b;
  long v;
  (void)arg;
  if (read(wake_pipe[0], &b, 1) != 1) return NULL;
  v = syscall(SYS_getppid);
  if (write(done_pipe[1], &v, sizeof v) != (ssize_t)sizeof v) return NULL;
  return NULL;
}

/* Every thread shows "Seccomp: 2" and at least one filter. */
static int all_threads_filtered(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int threads = 0;
  CHECK(d != NULL);
  while ((e = readdir(d)) != NULL) {
    char path[300], line[256];
    int mode = -1, filters = -1;
    FILE *f;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    f = fopen(path, "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof line, f) != NULL) {
      sscanf(line, "Seccomp: %d", &mode);
      sscanf(line, "Seccomp_filters: %d", &filters);
    }
    fclose(f);
    CHECK(mode == 2 && filters >= 1);
    threads++;
  }
  closedir(d);
  return threads;
}

static int no_listener_left(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  CHECK(d != NULL);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && is_listener(atoi(e->d_name))) return 0;
  closedir(d);
  return 1;
}

typedef int (*side_fn)(int fd);

/* Runs `child` in a forked process on one end of a socketpair and `parent` here on the other. */
static int run_pair(side_fn parent, side_fn child) {
  int sv[2], status, rc;
  pid_t pid;
  CHECK(sbx_comms_socketpair(sv) == 0);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    close(sv[0]);
    _exit(child(sv[1]));
  }
  g_child = pid;
  close(sv[1]);
  rc = parent(sv[0]);
  close(sv[0]);
  CHECK(waitpid(pid, &status, 0) == pid);
  if (!WIFEXITED(status)) {
    fprintf(stderr, "child ended by signal %d\n", WTERMSIG(status));
    return 1;
  }
  return rc != 0 ? rc : WEXITSTATUS(status);
}

/* ---- cases ---- */

static int full_parent(int fd) {
  sbx_comms c;
  uint32_t hello[4];
  int listener;
  sbx_comms_init(&c, fd);
  if (recv_hello(&c, hello)) return 1;
  CHECK(hello[1] == SBX_CLIENT_NO_FD); /* not counted: TSYNC covers every thread */
  CHECK(hello[2] == SBX_CLIENT_HELLO_TSYNC);
  CHECK(hello[3] != SBX_CLIENT_NO_FD);
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_POLICY, notify_getppid, sizeof notify_getppid) == 0);
  CHECK(take_listener(&c, &listener) == 0);
  CHECK(is_listener(listener));
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_GO, NULL, 0) == 0);
  if (serve_notifications(listener, 2)) return 1;
  close(listener);
  return 0;
}

static int full_child(int fd) {
  pthread_t t;
  long v = 0;
  char b = 'w';
  CHECK(pipe(wake_pipe) == 0 && pipe(done_pipe) == 0);
  CHECK(pthread_create(&t, NULL, second_thread, NULL) == 0);
  CHECK(!sbx_client_is_sandboxed() && !sbx_client_filter_installed());
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, 0, msg, sizeof msg), 0);
  CHECK(sbx_client_is_sandboxed() && sbx_client_filter_installed());
  CHECK(all_threads_filtered() == 2);
  CHECK(no_listener_left());
  /* The executor answers both threads' getppid(): the listener is its, the filter on both. */
  CHECK(syscall(SYS_getppid) == kSpoofed);
  CHECK(write(wake_pipe[1], &b, 1) == 1);
  CHECK(read(done_pipe[0], &v, sizeof v) == (ssize_t)sizeof v);
  CHECK(v == kSpoofed);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, 0, msg, sizeof msg), -EALREADY);
  CHECK(strstr(msg, "already sandboxed") != NULL);
  return 0;
}

/* Without TSYNC (simulated), one thread still works: the filter goes on the caller alone. */
static int single_parent(int fd) {
  sbx_comms c;
  uint32_t hello[4];
  int listener;
  sbx_comms_init(&c, fd);
  if (recv_hello(&c, hello)) return 1;
  CHECK(hello[1] == 1 && hello[2] == 0);
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_POLICY, notify_getppid, sizeof notify_getppid) == 0);
  CHECK(take_listener(&c, &listener) == 0);
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_GO, NULL, 0) == 0);
  if (serve_notifications(listener, 1)) return 1;
  close(listener);
  return 0;
}

static int single_child(int fd) {
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, SBX_CLIENT_ASSUME_NO_TSYNC, msg, sizeof msg), 0);
  CHECK(all_threads_filtered() == 1);
  CHECK(syscall(SYS_getppid) == kSpoofed);
  return 0;
}

/* The policy sent before HELLO (as the executor does when it does not depend on HELLO): the
 * client installs first, then sends HELLO and INSTALLED in one write, so HELLO finds the filter
 * on and INSTALLED right behind it. */
static int early_parent(int fd) {
  sbx_comms c;
  uint32_t hello[4];
  int listener;
  unsigned char peek[SBX_COMMS_HEADER_SIZE];
  char path[64], status[4096];
  sbx_comms_init(&c, fd);
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_POLICY, notify_getppid, sizeof notify_getppid) == 0);
  if (recv_hello(&c, hello)) return 1;
  CHECK(recv(fd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT) == (ssize_t)sizeof peek);
  CHECK(get_u32(peek) == SBX_CLIENT_TAG_INSTALLED);
  snprintf(path, sizeof path, "/proc/%d/status", (int)g_child);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  size_t n = fread(status, 1, sizeof status - 1, f);
  fclose(f);
  status[n] = '\0';
  CHECK(strstr(status, "\nSeccomp:\t2") != NULL);
  CHECK(take_listener(&c, &listener) == 0);
  CHECK(is_listener(listener));
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_GO, NULL, 0) == 0);
  if (serve_notifications(listener, 1)) return 1;
  close(listener);
  return 0;
}

static int early_child(int fd) {
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, 0, msg, sizeof msg), 0);
  CHECK(syscall(SYS_getppid) == kSpoofed);
  return 0;
}

static int idle_parent(int fd) {
  sbx_comms c;
  sbx_comms_init(&c, fd);
  /* The child refuses before saying anything: the next read is EOF. */
  CHECK(sbx_comms_recv_tlv_into(&c, &(uint32_t){0}, msg, 0, &(uint64_t){0}) == -EPIPE);
  return 0;
}

static int threads_without_tsync_child(int fd) {
  pthread_t t;
  char b = 'w';
  CHECK(pipe(wake_pipe) == 0 && pipe(done_pipe) == 0);
  CHECK(pthread_create(&t, NULL, second_thread, NULL) == 0);
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, SBX_CLIENT_ASSUME_NO_TSYNC, msg, sizeof msg),
           -EOPNOTSUPP);
  CHECK(strstr(msg, "2 threads") != NULL && strstr(msg, "TSYNC_ESRCH") != NULL);
  CHECK(!sbx_client_filter_installed());
  CHECK(write(wake_pipe[1], &b, 1) == 1);
  CHECK(pthread_join(t, NULL) == 0);
  return 0;
}

static int refuse_parent(int fd) {
  sbx_comms c;
  uint32_t hello[4];
  sbx_comms_init(&c, fd);
  if (recv_hello(&c, hello)) return 1;
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_ERROR, "policy for test", 15) == 0);
  return 0;
}

static int refuse_child(int fd) {
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, 0, msg, sizeof msg), -ECANCELED);
  CHECK(strcmp(msg, "the executor refused: policy for test") == 0);
  CHECK(!sbx_client_filter_installed());
  return 0;
}

static int gone_before_policy_parent(int fd) {
  sbx_comms c;
  uint32_t hello[4];
  sbx_comms_init(&c, fd);
  return recv_hello(&c, hello); /* then close */
}

static int gone_child(int fd) {
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, 0, msg, sizeof msg), -EPIPE);
  CHECK(strstr(msg, "executor closed the handshake channel") != NULL);
  CHECK(!sbx_client_is_sandboxed());
  return 0;
}

static int gone_before_go_parent(int fd) {
  sbx_comms c;
  uint32_t hello[4];
  int listener;
  sbx_comms_init(&c, fd);
  if (recv_hello(&c, hello)) return 1;
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_POLICY, notify_getppid, sizeof notify_getppid) == 0);
  CHECK(take_listener(&c, &listener) == 0);
  close(listener);
  return 0;
}

static int gone_before_go_child(int fd) {
  if (gone_child(fd)) return 1;
  CHECK(sbx_client_filter_installed());
  /* The filter stays; with no listener left the notified call fails with ENOSYS. */
  CHECK(syscall(SYS_getppid) == -1 && errno == ENOSYS);
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, 0, msg, sizeof msg), -EALREADY);
  CHECK(strstr(msg, "installed the filter and then failed") != NULL);
  return 0;
}

static int bad_policy_parent(int fd) {
  sbx_comms c;
  uint32_t hello[4];
  sbx_comms_init(&c, fd);
  if (recv_hello(&c, hello)) return 1;
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_POLICY, "twelve bytes", 12) == 0);
  return 0;
}

static int bad_policy_child(int fd) {
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, 0, msg, sizeof msg), -EPROTO);
  CHECK(strstr(msg, "12 bytes") != NULL);
  CHECK(!sbx_client_filter_installed());
  return 0;
}

static int rejected_policy_parent(int fd) {
  static struct sock_filter bad[] = {BPF_STMT(0xffff, 0)};
  sbx_comms c;
  uint32_t hello[4];
  sbx_comms_init(&c, fd);
  if (recv_hello(&c, hello)) return 1;
  CHECK(sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_POLICY, bad, sizeof bad) == 0);
  return 0;
}

static int rejected_policy_child(int fd) {
  CHECK_RC(sbx_client_sandbox_me_here_fd(fd, 0, msg, sizeof msg), -EINVAL);
  CHECK(strstr(msg, "rejected the policy") != NULL);
  CHECK(!sbx_client_filter_installed());
  return 0;
}

/* ---- in-process cases (they fail before anything is installed) ---- */

static int not_in_sandbox(void) {
  int p[2];
  CHECK_RC(sbx_client_sandbox_me_here_fd(1000, 0, msg, sizeof msg), -EBADF);
  CHECK(strstr(msg, "fd 1000 (SBX_CLIENT_FD) is not open") != NULL);
  CHECK(pipe(p) == 0);
  CHECK_RC(sbx_client_sandbox_me_here_fd(p[0], 0, msg, sizeof msg), -ENOTSOCK);
  CHECK(strstr(msg, "not a unix stream socket") != NULL);
  close(p[0]);
  close(p[1]);
  CHECK(setenv(SBX_CLIENT_FD_ENV, "x1", 1) == 0);
  CHECK(sbx_client_default_fd() == -EBADF);
  CHECK_RC(sbx_client_sandbox_me_here(msg, sizeof msg), -EBADF);
  CHECK(strstr(msg, "SBX_CLIENT_FD=\"x1\"") != NULL);
  CHECK(setenv(SBX_CLIENT_FD_ENV, "1001", 1) == 0);
  CHECK(sbx_client_default_fd() == 1001);
  CHECK(unsetenv(SBX_CLIENT_FD_ENV) == 0);
  CHECK(sbx_client_default_fd() == SBX_CLIENT_FD);
  /* A NULL buffer is fine. */
  CHECK(sbx_client_sandbox_me_here_fd(1000, 0, NULL, 0) == -EBADF);
  CHECK(!sbx_client_is_sandboxed());
  return 0;
}

static int probes(void) {
  unsigned bits = sbx_client_kernel_support();
  CHECK(sbx_client_thread_count() == 1);
  /* This suite runs on Linux >= 5.7 in CI; say so instead of failing elsewhere. */
  if (!(bits & SBX_CLIENT_KERNEL_TSYNC_LISTENER)) fprintf(stderr, "# kernel lacks TSYNC_ESRCH\n");
  CHECK(bits & SBX_CLIENT_KERNEL_LISTENER);
  return 0;
}

struct pair_case {
  const char *name;
  side_fn parent, child;
};

int main(void) {
  static const struct pair_case pairs[] = {
      {"sandboxes every thread and hands the listener to the executor", full_parent, full_child},
      {"one thread without TSYNC gets the filter on the caller", single_parent, single_child},
      {"a policy sent before HELLO: installed first, HELLO with INSTALLED", early_parent,
       early_child},
      {"refuses several threads without TSYNC", idle_parent, threads_without_tsync_child},
      {"reports the executor's ERROR", refuse_parent, refuse_child},
      {"executor gone before the policy: EPIPE", gone_before_policy_parent, gone_child},
      {"executor gone before GO: EPIPE, filter stays", gone_before_go_parent, gone_before_go_child},
      {"a policy of a partial instruction: EPROTO", bad_policy_parent, bad_policy_child},
      {"a policy the kernel rejects: EINVAL", rejected_policy_parent, rejected_policy_child},
  };
  int failed = 0, n = 0;
  size_t total = sizeof pairs / sizeof pairs[0] + 2;
  printf("1..%zu\n", total);
  signal(SIGPIPE, SIG_IGN);
#define REPORT(ok, name)                                     \
  do {                                                       \
    n++;                                                     \
    printf("%s %d - %s\n", (ok) ? "ok" : "not ok", n, name); \
    if (!(ok)) failed++;                                     \
  } while (0)
  REPORT(probes() == 0, "kernel probes and thread count");
  REPORT(not_in_sandbox() == 0, "outside a sandbox: EBADF / ENOTSOCK, naming SBX_CLIENT_FD");
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    fflush(stdout);
    REPORT(run_pair(pairs[i].parent, pairs[i].child) == 0, pairs[i].name);
  }
  return failed == 0 ? 0 : 1;
}
