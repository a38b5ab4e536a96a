/* net_client: network probes for test/network.test.ts and bench/network.mjs, driven by argv.
 *   net_client tcp HOST PORT            connect, send "ping", print the reply
 *   net_client nonblock HOST PORT       the same with a non-blocking socket (EINPROGRESS + poll)
 *   net_client thread HOST PORT         tcp from a second thread
 *   net_client udp HOST PORT            sendto "ping", print the reply
 *   net_client udp-connect HOST PORT    connect, send, recv
 *   net_client udp-sendmsg HOST PORT    sendmsg with msg_name, recv
 *   net_client udp-sendmmsg HOST PORT   connect, sendmmsg of two datagrams, recv both
 *   net_client unix PATH                AF_UNIX stream connect, send "ping", print the reply
 *   net_client race HOST GOOD BAD N     N connects to GOOD while a thread flips the port in the
 *                                       very sockaddr to BAD and back; prints ok/failed counts
 *   net_client bench HOST PORT N        N x (socket, connect, read 1 byte, close): p50/p90 in µs
 *   net_client bench-denied HOST PORT N N x connect to a destination the rules deny with an errno:
 *                                       the monitor's round trip alone (a diagnostic)
 *   net_client tcp-sendmsg HOST PORT    connect, sendmsg "ping" (no name), print the reply
 *   net_client scm -                    passes a pipe's fd over a socketpair (SCM_RIGHTS) and
 *                                       writes through the received copy
 *   net_client bad HOST PORT            connect/sendto with a bad pointer, a bad fd, a pipe
 *   net_client serve HOST PORT          (the bench's server, unsandboxed) accepts forever, writes
 *                                       "x" to each connection and closes it; prints the port
 *   net_client hold HOST PORT DELAY_MS  (a test server, unsandboxed) listens with backlog 0, prints
 *                                       the port, accepts nothing for DELAY_MS, then serves "x"
 *   net_client timeout HOST PORT MS     a blocking connect with SO_SNDTIMEO of MS: its result
 *   net_client eintr HOST PORT MS GOOD  a blocking connect that a signal (no SA_RESTART) interrupts
 *                                       after MS, then tcp to HOST:GOOD on a fresh socket
 *   net_client listen HOST PORT         listen on a socket of the sandbox, then on one
 *                                       connected to HOST:PORT (a socket of the host)
 * HOST is an IPv4 or IPv6 literal. A failing call prints "MODE: errno NAME" and exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *mode;

static int fail(const char *what) {
  printf("%s: %s errno %s\n", mode, what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  fflush(stdout);
  return 0;
}

static socklen_t make_addr(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons((unsigned short)port);
    return sizeof *in;
  }
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((unsigned short)port);
    return sizeof *in6;
  }
  fprintf(stderr, "net_client: bad host %s\n", host);
  exit(2);
}

/* Sends "ping" on a connected socket and prints what comes back. */
static int exchange(int s) {
  if (write(s, "ping", 4) != 4) return fail("write");
  char buf[64];
  ssize_t n = read(s, buf, sizeof buf - 1);
  if (n < 0) return fail("read");
  buf[n] = 0;
  printf("%s: %s\n", mode, buf);
  fflush(stdout);
  return 0;
}

static int tcp(const char *host, int port, int nonblock) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (s < 0) return fail("socket");
  if (connect(s, (struct sockaddr *)&ss, len) != 0) {
    if (!nonblock || errno != EINPROGRESS) return fail("connect");
    printf("%s: connect EINPROGRESS\n", mode);
    struct pollfd p = {s, POLLOUT, 0};
    if (poll(&p, 1, 5000) != 1) return fail("poll");
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
      errno = err;
      return fail("SO_ERROR");
    }
    int fl = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
  }
  int r = exchange(s);
  close(s);
  return r;
}

struct target {
  const char *host;
  int port;
};

static void *thread_main(void *arg) {
  struct target *t = arg;
  tcp(t->host, t->port, 0);
  return NULL;
}

static int udp(const char *host, int port, int how) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  int s = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail("socket");
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int expect = 1;
  if (how == 0) {
    if (sendto(s, "ping", 4, 0, (struct sockaddr *)&ss, len) != 4) return fail("sendto");
  } else if (how == 1) {
    if (connect(s, (struct sockaddr *)&ss, len) != 0) return fail("connect");
    if (send(s, "ping", 4, 0) != 4) return fail("send");
  } else if (how == 2) {
    struct iovec iov = {"ping", 4};
    struct msghdr m = {.msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
    if (sendmsg(s, &m, 0) != 4) return fail("sendmsg");
  } else {
    if (connect(s, (struct sockaddr *)&ss, len) != 0) return fail("connect");
    struct iovec a = {"ping", 4}, b = {"pong", 4};
    struct mmsghdr v[2];
    memset(v, 0, sizeof v);
    v[0].msg_hdr.msg_iov = &a;
    v[0].msg_hdr.msg_iovlen = 1;
    v[1].msg_hdr.msg_iov = &b;
    v[1].msg_hdr.msg_iovlen = 1;
    int n = sendmmsg(s, v, 2, 0);
    if (n != 2) return n < 0 ? fail("sendmmsg") : (printf("%s: sent %d\n", mode, n), 0);
    if (v[0].msg_len != 4 || v[1].msg_len != 4) {
      printf("%s: msg_len %u %u\n", mode, v[0].msg_len, v[1].msg_len);
      return 0;
    }
    expect = 2;
  }
  for (int i = 0; i < expect; i++) {
    char buf[64];
    ssize_t n = recv(s, buf, sizeof buf - 1, 0);
    if (n < 0) return fail("recv");
    buf[n] = 0;
    printf("%s: %s\n", mode, buf);
  }
  fflush(stdout);
  close(s);
  return 0;
}

static int unix_stream(const char *path) {
  struct sockaddr_un u;
  memset(&u, 0, sizeof u);
  u.sun_family = AF_UNIX;
  snprintf(u.sun_path, sizeof u.sun_path, "%s", path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail("socket");
  if (connect(s, (struct sockaddr *)&u, sizeof u) != 0) return fail("connect");
  int r = exchange(s);
  close(s);
  return r;
}

/* The race: one sockaddr shared by the connecting thread and a thread that flips its port. */
static struct sockaddr_storage race_addr;
static atomic_int race_stop;
static int race_good, race_bad;

static void *flipper(void *arg) {
  (void)arg;
  volatile unsigned short *port = &((struct sockaddr_in *)&race_addr)->sin_port;
  if (race_addr.ss_family == AF_INET6) port = &((struct sockaddr_in6 *)&race_addr)->sin6_port;
  while (!atomic_load(&race_stop)) {
    *port = htons((unsigned short)race_bad);
    *port = htons((unsigned short)race_good);
  }
  return NULL;
}

static int race(const char *host, int good, int bad, int n) {
  race_good = good;
  race_bad = bad;
  socklen_t len = make_addr(host, good, &race_addr);
  pthread_t t;
  pthread_create(&t, NULL, flipper, NULL);
  int ok = 0, failed = 0;
  for (int i = 0; i < n; i++) {
    int s = socket(race_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail("socket");
    if (connect(s, (struct sockaddr *)&race_addr, len) == 0) {
      char c;
      if (read(s, &c, 1) == 1 && c == 'G')
        ok++;
      else
        failed++;
    } else {
      failed++;
    }
    close(s);
  }
  atomic_store(&race_stop, 1);
  pthread_join(t, NULL);
  printf("%s: ok %d failed %d\n", mode, ok, failed);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* bench: connect + first byte. bench-denied: only the connect, to a denied address (errno mode):
 * the monitor's round trip without any socket work. */
static int bench(const char *host, int port, int n, int denied) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  double *us = calloc((size_t)n, sizeof *us);
  int s0 = denied ? socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (denied) {
      if (connect(s0, (struct sockaddr *)&ss, len) == 0) return fail("connect succeeded");
      clock_gettime(CLOCK_MONOTONIC, &b);
      us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
      continue;
    }
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail("socket");
    if (connect(s, (struct sockaddr *)&ss, len) != 0) return fail("connect");
    char c;
    if (read(s, &c, 1) != 1) return fail("read");
    clock_gettime(CLOCK_MONOTONIC, &b);
    close(s);
    us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
  }
  qsort(us, (size_t)n, sizeof *us, cmp_double);
  printf("{\"p50\": %.2f, \"p90\": %.2f, \"min\": %.2f}\n", us[n / 2], us[(n * 9) / 10], us[0]);
  free(us);
  return 0;
}

static int tcp_sendmsg(const char *host, int port) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail("socket");
  if (connect(s, (struct sockaddr *)&ss, len) != 0) return fail("connect");
  struct iovec iov[2] = {{"pi", 2}, {"ng", 2}};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
  if (sendmsg(s, &m, 0) != 4) return fail("sendmsg");
  char buf[64];
  ssize_t n = read(s, buf, sizeof buf - 1);
  if (n < 0) return fail("read");
  buf[n] = 0;
  printf("%s: %s\n", mode, buf);
  close(s);
  return 0;
}

static int scm(void) {
  int sv[2], p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return fail("socketpair");
  if (pipe2(p, O_CLOEXEC) != 0) return fail("pipe");
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct iovec iov = {"x", 1};
  struct msghdr m = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &p[1], sizeof(int));
  if (sendmsg(sv[0], &m, 0) != 1) return fail("sendmsg");
  close(p[1]);
  char x;
  struct iovec riov = {&x, 1};
  memset(&u, 0, sizeof u);
  struct msghdr r = {
      .msg_iov = &riov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  if (recvmsg(sv[1], &r, MSG_CMSG_CLOEXEC) != 1) return fail("recvmsg");
  c = CMSG_FIRSTHDR(&r);
  if (!c || c->cmsg_type != SCM_RIGHTS) {
    printf("%s: no fd\n", mode);
    return 0;
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if (write(fd, "via-fd", 6) != 6) return fail("write");
  close(fd);
  char buf[16] = {0};
  if (read(p[0], buf, sizeof buf - 1) < 0) return fail("read");
  printf("%s: %s\n", mode, buf);
  return 0;
}

static void report(const char *what, long r) {
  if (r < 0)
    printf("%s: %s errno %s\n", mode, what, strerrorname_np(errno));
  else
    printf("%s: %s %ld\n", mode, what, r);
}

static int bad(const char *host, int port) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int u = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int p[2];
  if (s < 0 || u < 0 || pipe2(p, O_CLOEXEC) != 0) return fail("setup");
  report("connect-badptr", connect(s, (struct sockaddr *)8, len));
  report("connect-badlen", connect(s, (struct sockaddr *)&ss, 4096));
  report("connect-badfd", connect(987, (struct sockaddr *)&ss, len));
  report("connect-pipe", connect(p[0], (struct sockaddr *)&ss, len));
  report("sendto-badptr", sendto(u, "x", 1, 0, (struct sockaddr *)8, len));
  report("sendto-badbuf", sendto(u, (void *)8, 1, 0, (struct sockaddr *)&ss, len));
  struct msghdr m = {.msg_iovlen = 5000};
  report("sendmsg-iovlen", sendmsg(u, &m, 0));
  report("sendmsg-badhdr", sendmsg(u, (struct msghdr *)8, 0));
  fflush(stdout);
  return 0;
}

static int listen_probe(const char *host, int port) {
  struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (a < 0) return fail("socket");
  if (bind(a, (struct sockaddr *)&lo, sizeof lo) != 0) return fail("bind");
  report("sandbox", listen(a, 4));
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(s, (struct sockaddr *)&ss, len) != 0) return fail("connect");
  report("host", listen(s, 4));
  fflush(stdout);
  return 0;
}

/* Whether a socket lives in another network namespace than a fresh one (the host's, handed in). */
static int in_host_netns(int s) {
  unsigned long long a = 0, b = 0;
  socklen_t la = sizeof a, lb = sizeof b;
  int fresh = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int r = getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &a, &la) == 0 &&
          getsockopt(fresh, SOL_SOCKET, SO_NETNS_COOKIE, &b, &lb) == 0 && a != b;
  close(fresh);
  return r;
}

/* bind(): the sandbox's own socket binds; a socket of the host whose connect failed (so it is
 * unbound again) does not, and neither does a path. `port` is an allowed port nothing listens on. */
static int bind_probe(const char *host, int port) {
  struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (a < 0) return fail("socket");
  report("sandbox", bind(a, (struct sockaddr *)&lo, sizeof lo));
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (connect(s, (struct sockaddr *)&ss, len) == 0 || errno != EINPROGRESS) return fail("connect");
  struct pollfd p = {s, POLLOUT, 0};
  if (poll(&p, 1, 5000) != 1) return fail("poll");
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
  printf("%s: connect %s, socket of the host %d\n", mode, err ? strerrorname_np(err) : "ok",
         in_host_netns(s));
  report("host", bind(s, (struct sockaddr *)&lo, sizeof lo));
  fflush(stdout); /* the path bind below is a violation: the sandbox ends there */
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  snprintf(un.sun_path, sizeof un.sun_path, "/tmp/sbx-bind-probe");
  int u = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  report("path", bind(u, (struct sockaddr *)&un, sizeof un));
  fflush(stdout);
  return 0;
}

static int serve(const char *host, int port, int backlog, int delay_ms) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (s < 0 || bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, backlog) != 0)
    return fail("listen");
  len = sizeof ss;
  getsockname(s, (struct sockaddr *)&ss, &len);
  printf("%u\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  fflush(stdout);
  if (delay_ms > 0) usleep((useconds_t)delay_ms * 1000);
  for (;;) {
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    if (write(c, "x", 1) != 1) { /* the client went away */
    }
    close(c);
  }
}

static void on_alarm(int sig) { (void)sig; }

/* A blocking connect interrupted by a signal whose handler does not ask for restarts: EINTR, as
 * the kernel says it; then an ordinary exchange with good_port on a fresh socket. */
static int interrupted(const char *host, int port, int ms, int good_port) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
  setitimer(ITIMER_REAL, &it, NULL);
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail("socket");
  if (connect(s, (struct sockaddr *)&ss, len) != 0)
    fail("connect");
  else
    printf("%s: connected\n", mode);
  close(s);
  return tcp(host, good_port, 0);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: net_client MODE ARGS...\n");
    return 2;
  }
  mode = argv[1];
  const char *host = argv[2];
  int port = argc > 3 ? atoi(argv[3]) : 0;
  if (!strcmp(mode, "tcp")) return tcp(host, port, 0);
  if (!strcmp(mode, "nonblock")) return tcp(host, port, 1);
  if (!strcmp(mode, "thread")) {
    struct target t = {host, port};
    pthread_t th;
    pthread_create(&th, NULL, thread_main, &t);
    pthread_join(th, NULL);
    return 0;
  }
  if (!strcmp(mode, "udp")) return udp(host, port, 0);
  if (!strcmp(mode, "udp-connect")) return udp(host, port, 1);
  if (!strcmp(mode, "udp-sendmsg")) return udp(host, port, 2);
  if (!strcmp(mode, "udp-sendmmsg")) return udp(host, port, 3);
  if (!strcmp(mode, "unix")) return unix_stream(host);
  if (!strcmp(mode, "race") && argc > 5) return race(host, port, atoi(argv[4]), atoi(argv[5]));
  if (!strcmp(mode, "bench") && argc > 4) return bench(host, port, atoi(argv[4]), 0);
  if (!strcmp(mode, "bench-denied") && argc > 4) return bench(host, port, atoi(argv[4]), 1);
  if (!strcmp(mode, "tcp-sendmsg")) return tcp_sendmsg(host, port);
  if (!strcmp(mode, "scm")) return scm();
  if (!strcmp(mode, "bad")) return bad(host, port);
  if (!strcmp(mode, "listen")) return listen_probe(host, port);
  if (!strcmp(mode, "bind")) return bind_probe(host, port);
  if (!strcmp(mode, "serve")) return serve(host, port, 128, 0);
  if (!strcmp(mode, "hold") && argc > 4) return serve(host, port, 0, atoi(argv[4]));
  if (!strcmp(mode, "timeout") && argc > 4) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(host, port, &ss);
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ms = atoi(argv[4]);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(s, (struct sockaddr *)&ss, len) != 0) return fail("connect");
    printf("%s: connected\n", mode);
    return 0;
  }
  if (!strcmp(mode, "eintr") && argc > 5)
    return interrupted(host, port, atoi(argv[4]), atoi(argv[5]));
  fprintf(stderr, "net_client: unknown mode %s\n", mode);
  return 2;
}
