/*
 * client_me_here: a C sandboxee of sandbox-me-here mode, for test/client.test.ts. It starts a
 * second thread, calls sbx_client_sandbox_me_here(), and then does what argv[1] names:
 *   status   prints every thread's seccomp mode and whether a listener fd is left, exit 0
 *   socket   calls socket(), which the test's policy forbids (the sandbox dies)
 *   twice    calls sbx_client_sandbox_me_here() again and prints the error
 *   outside  (run without an executor) prints the error of the first call
 *   udp-at-handshake PORT DENIED  puts a UDP socket of the host (the monitor's, after a send to
 *            127.0.0.1:PORT) at the handshake's fd number and tries to send past the network
 *            rules from there (to 127.0.0.1:DENIED, with sendto and sendmsg), then without an
 *            address (to its connected peer)
 * Output lines: "me_here: ok" or "me_here: <ERRNO NAME>: <message>", then the mode's lines.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sbx/client.h>

static int wake[2], started[2];

/* A thread that exists before the call and waits: TSYNC must filter it too. It says when it
 * runs: a thread still in glibc's start-up (rseq, robust list) when the filter goes on would
 * make those calls under the policy. */
static void *waiter(void *arg) {
  char b = 's';
  (void)arg;
  if (write(started[1], &b, 1) != 1) return NULL;
  if (read(wake[0], &b, 1) < 0) return NULL;
  return NULL;
}

static void report(const char *what, long r) {
  if (r < 0)
    printf("%s: errno %s\n", what, strerrorname_np(errno));
  else
    printf("%s: %ld\n", what, r);
}

/* The handshake's own rules (read, sendto without an address on fd 1020) must not become a way
 * around the network rules for whatever socket sits at that number later. */
static int udp_at_handshake(int port, int denied) {
  struct sockaddr_in ok = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in no = ok;
  no.sin_port = htons((uint16_t)denied);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 1;
  report("first", sendto(s, "a", 1, 0, (struct sockaddr *)&ok, sizeof ok));
  report("dup2", dup2(s, SBX_CLIENT_FD));
  report("sendto-denied", sendto(SBX_CLIENT_FD, "b", 1, 0, (struct sockaddr *)&no, sizeof no));
  struct iovec iov = {"b", 1};
  struct msghdr m = {.msg_name = &no, .msg_namelen = sizeof no, .msg_iov = &iov, .msg_iovlen = 1};
  report("sendmsg-denied", sendmsg(SBX_CLIENT_FD, &m, 0));
  report("send-connected", sendto(SBX_CLIENT_FD, "c", 1, 0, NULL, 0));
  return 0;
}

static int print_status(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int threads = 0, filtered = 0, listeners = 0;
  if (d == NULL) return 1;
  while ((e = readdir(d)) != NULL) {
    char path[300], line[256];
    int mode = -1, filters = -1;
    FILE *f;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    if ((f = fopen(path, "r")) == NULL) return 1;
    while (fgets(line, sizeof line, f) != NULL) {
      sscanf(line, "Seccomp: %d", &mode);
      sscanf(line, "Seccomp_filters: %d", &filters);
    }
    fclose(f);
    threads++;
    if (mode == 2 && filters >= 1) filtered++;
  }
  closedir(d);
  if ((d = opendir("/proc/self/fd")) == NULL) return 1;
  while ((e = readdir(d)) != NULL) {
    char path[300], target[64];
    ssize_t n;
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    n = readlink(path, target, sizeof target - 1);
    if (n > 0) {
      target[n] = '\0';
      if (strcmp(target, "anon_inode:seccomp notify") == 0) listeners++;
    }
  }
  closedir(d);
  printf("threads: %d filtered: %d listeners: %d\n", threads, filtered, listeners);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "status";
  char err[512];
  pthread_t t;
  int rc;
  char b;
  if (pipe(wake) < 0 || pipe(started) < 0 || pthread_create(&t, NULL, waiter, NULL) != 0) return 2;
  if (read(started[0], &b, 1) != 1) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  rc = sbx_client_sandbox_me_here(err, sizeof err);
  if (rc == 0)
    printf("me_here: ok\n");
  else
    printf("me_here: %s: %s\n", strerrorname_np(-rc), err);
  if (strcmp(mode, "status") == 0) {
    if (print_status() != 0) return 1;
  } else if (strcmp(mode, "socket") == 0) {
    printf("socket: %d\n", socket(AF_INET, SOCK_DGRAM, 0));
  } else if (strcmp(mode, "udp-at-handshake") == 0 && argc > 3) {
    if (udp_at_handshake(atoi(argv[2]), atoi(argv[3])) != 0) return 1;
  } else if (strcmp(mode, "prlimit") == 0) {
    /* its own limits (pid 0), then its parent's (the sandbox's init): an always-on violation */
    struct rlimit lim;
    printf("prlimit 0: %ld\n", (long)syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &lim));
    printf("prlimit parent: calling\n");
    printf("prlimit parent: %ld\n",
           (long)syscall(SYS_prlimit64, getppid(), RLIMIT_NOFILE, NULL, &lim));
  } else if (strcmp(mode, "twice") == 0) {
    rc = sbx_client_sandbox_me_here(err, sizeof err);
    printf("second: %s: %s\n", strerrorname_np(-rc), err);
    printf("sandboxed: %d\n", sbx_client_is_sandboxed());
  }
  if (write(wake[1], "x", 1) != 1) return 1;
  pthread_join(t, NULL);
  return 0;
}
