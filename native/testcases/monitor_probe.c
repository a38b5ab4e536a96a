/* monitor_probe: attacks on what the monitor carries out for a sandboxee under network rules
 * (test/escape/monitor.test.ts), and on process limits (prlimit64). One attempt per run; every
 * step prints "<name>: ok", "<name>: <detail>" or "<name>: errno <NAME>".
 *
 *   monitor_probe netlink-newlink IFNAME addressed|plain
 *       RTM_NEWLINK of an ifb interface IFNAME in the namespace of pid 1 (IFLA_NET_NS_PID), sent
 *       with sendto(sockaddr_nl) or sendmsg without an address; prints the send and the ack.
 *   monitor_probe netlink-audit       AUDIT_GET (needs CAP_AUDIT_CONTROL in the host's user ns).
 *   monitor_probe netlink-route       RTM_GETLINK dump, addressed: what glibc's getaddrinfo asks.
 *   monitor_probe cmsg HOST PORT mark|retopts HOP|rights|none
 *       a UDP sendmsg to HOST:PORT carrying one control message.
 *   monitor_probe ifconf HOST PORT    connects a UDP socket to HOST:PORT (a socket of the host is
 *       put in its place), then SIOCGIFCONF on it; prints the interface names.
 *   monitor_probe prlimit PID         prlimit64(PID, RLIMIT_NOFILE, {64, 64}); then reads it back.
 *   monitor_probe bind-low PORT [unspec]  binds a TCP socket of the sandbox to 127.0.0.1:PORT
 *                                     (unspec: AF_UNSPEC 0.0.0.0:PORT, taken as AF_INET).
 *   monitor_probe ipoptions HOST PORT HOP
 *       connects a UDP socket to HOST:PORT (a socket of the host is put in its place), sets an
 *       IP_OPTIONS loose source route through HOP on it, then send()s (no address: the kernel sends).
 *   monitor_probe unix-peer PATH      connects a unix stream socket to PATH; prints what it reads.
 *   monitor_probe unix-hold PATH      connects to PATH, prints "unix-hold: connected", then waits.
 *   monitor_probe scm-many N          sendmsg on a socketpair with N fds in one SCM_RIGHTS cmsg:
 *                                     N-1 copies of fd 0, then fd 1000 (not open).
 *   monitor_probe unix-scan PATH      connects to PATH, then looks in /proc for threads of its uid
 *       outside its own process (the monitor's acting thread has the sandbox's uid); for each one
 *       prints what signal 0, /proc/<tid>/mem, and setpriority on it say.
 *   monitor_probe peercred-server PATH MODE   (outside a sandbox) listens on the unix path PATH,
 *       chmod MODE (octal), prints "listening"; answers each peer "uid=U gid=G" (SO_PEERCRED).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static const char *errname(int e) {
  static char buf[32];
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EAGAIN: return "EAGAIN";
    case EEXIST: return "EEXIST";
    case ENOTTY: return "ENOTTY";
    case ESRCH: return "ESRCH";
    case EBADF: return "EBADF";
    case ENOTDIR: return "ENOTDIR";
    default: snprintf(buf, sizeof buf, "%d", e); return buf;
  }
}

static int report(const char *name, long rc) {
  if (rc < 0)
    printf("%s: errno %s\n", name, errname(errno));
  else
    printf("%s: ok\n", name);
  return 0;
}

static int usage(void) {
  fprintf(
      stderr,
      "usage: monitor_probe netlink-newlink|netlink-audit|netlink-route|cmsg|ifconf|prlimit ...\n");
  return 2;
}

/* --- netlink ----------------------------------------------------------------------------------- */

static void add_attr(struct nlmsghdr *h, unsigned short type, const void *data, size_t len) {
  struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Sends `h` on a new netlink socket (addressed: sendto with sockaddr_nl naming the kernel; else
 * sendmsg with no address) and prints what came back: "<name>: ack ok", "ack errno X", "reply T". */
static int netlink_exchange(const char *name, int proto, struct nlmsghdr *h, int addressed) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
  if (s < 0) return report(name, -1);
  struct timeval tv = {2, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t r;
  if (addressed) {
    r = sendto(s, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } else {
    struct iovec iov = {h, h->nlmsg_len};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    r = sendmsg(s, &m, 0);
  }
  if (r < 0) {
    printf("%s: send errno %s\n", name, errname(errno));
    return 0;
  }
  printf("%s: sent\n", name);
  char buf[8192];
  ssize_t n = recv(s, buf, sizeof buf, 0);
  if (n < 0) {
    printf("%s: recv errno %s\n", name, errname(errno));
    return 0;
  }
  struct nlmsghdr *rh = (struct nlmsghdr *)buf;
  if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && rh->nlmsg_type == NLMSG_ERROR) {
    struct nlmsgerr *e = NLMSG_DATA(rh);
    if (e->error == 0)
      printf("%s: ack ok\n", name);
    else
      printf("%s: ack errno %s\n", name, errname(-e->error));
  } else {
    printf("%s: reply %u\n", name, n >= (ssize_t)sizeof *rh ? rh->nlmsg_type : 0u);
  }
  close(s);
  return 0;
}

static int netlink_newlink(const char *ifname, int addressed) {
  union {
    struct nlmsghdr h;
    char buf[512];
  } m;
  memset(&m, 0, sizeof m);
  m.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  m.h.nlmsg_type = RTM_NEWLINK;
  m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
  m.h.nlmsg_seq = 1;
  add_attr(&m.h, IFLA_IFNAME, ifname, strlen(ifname) + 1);
  unsigned int one = 1;
  add_attr(&m.h, IFLA_NET_NS_PID, &one, sizeof one);
  /* IFLA_LINKINFO { IFLA_INFO_KIND "ifb" } */
  struct rtattr *info = (struct rtattr *)((char *)&m.h + NLMSG_ALIGN(m.h.nlmsg_len));
  add_attr(&m.h, IFLA_LINKINFO, NULL, 0);
  struct rtattr *kind = (struct rtattr *)((char *)&m.h + NLMSG_ALIGN(m.h.nlmsg_len));
  kind->rta_type = IFLA_INFO_KIND;
  kind->rta_len = (unsigned short)RTA_LENGTH(sizeof "ifb");
  memcpy(RTA_DATA(kind), "ifb", sizeof "ifb");
  m.h.nlmsg_len += RTA_ALIGN(kind->rta_len);
  info->rta_len = (unsigned short)((char *)&m.h + m.h.nlmsg_len - (char *)info);
  return netlink_exchange("netlink-newlink", NETLINK_ROUTE, &m.h, addressed);
}

static int netlink_audit(void) {
  struct nlmsghdr h;
  memset(&h, 0, sizeof h);
  h.nlmsg_len = NLMSG_LENGTH(0);
  h.nlmsg_type = AUDIT_GET;
  h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  h.nlmsg_seq = 1;
  return netlink_exchange("netlink-audit", NETLINK_AUDIT, &h, 1);
}

static int netlink_route(void) {
  struct {
    struct nlmsghdr h;
    struct rtgenmsg g;
  } m;
  memset(&m, 0, sizeof m);
  m.h.nlmsg_len = sizeof m;
  m.h.nlmsg_type = RTM_GETADDR;
  m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  m.h.nlmsg_seq = 1;
  m.g.rtgen_family = AF_UNSPEC;
  return netlink_exchange("netlink-route", NETLINK_ROUTE, &m.h, 1);
}

/* --- control messages -------------------------------------------------------------------------- */

static int cmsg_send(const char *host, int port, const char *kind, const char *hop) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return report("socket", -1);
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((unsigned short)port);
  inet_pton(AF_INET, host, &to.sin_addr);
  char data[] = "cmsg";
  struct iovec iov = {data, sizeof data - 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(64)];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_name = &to;
  m.msg_namelen = sizeof to;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  struct cmsghdr *c = (struct cmsghdr *)u.buf;
  if (!strcmp(kind, "mark")) {
    unsigned int mark = 0x5b;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SO_MARK;
    c->cmsg_len = CMSG_LEN(sizeof mark);
    memcpy(CMSG_DATA(c), &mark, sizeof mark);
    m.msg_controllen = CMSG_SPACE(sizeof mark);
  } else if (!strcmp(kind, "retopts") && hop) {
    /* NOP, then a loose source route whose first hop is `hop`. */
    unsigned char opt[8] = {IPOPT_NOP, IPOPT_LSRR, 7, 4, 0, 0, 0, 0};
    inet_pton(AF_INET, hop, opt + 4);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_RETOPTS;
    c->cmsg_len = CMSG_LEN(sizeof opt);
    memcpy(CMSG_DATA(c), opt, sizeof opt);
    m.msg_controllen = CMSG_SPACE(sizeof opt);
  } else if (!strcmp(kind, "rights")) {
    int fd = 0;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fd);
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    m.msg_controllen = CMSG_SPACE(sizeof fd);
  } else if (!strcmp(kind, "none")) {
    m.msg_control = NULL;
  } else {
    return usage();
  }
  ssize_t r = sendmsg(s, &m, 0);
  if (r < 0)
    printf("cmsg-%s: errno %s\n", kind, errname(errno));
  else
    printf("cmsg-%s: sent %zd\n", kind, r);
  return 0;
}

/* --- socket ioctls on a socket of the host ------------------------------------------------------ */

static int ifconf(const char *host, int port) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return report("socket", -1);
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((unsigned short)port);
  inet_pton(AF_INET, host, &to.sin_addr);
  if (connect(s, (struct sockaddr *)&to, sizeof to) < 0) return report("connect", -1);
  printf("connect: ok\n");
  struct ifreq reqs[32];
  struct ifconf ifc;
  memset(reqs, 0, sizeof reqs);
  ifc.ifc_len = sizeof reqs;
  ifc.ifc_req = reqs;
  if (ioctl(s, SIOCGIFCONF, &ifc) < 0) return report("ifconf", -1);
  printf("ifconf:");
  for (size_t i = 0; i < ifc.ifc_len / sizeof(struct ifreq); i++) printf(" %s", reqs[i].ifr_name);
  printf("\n");
  return 0;
}

/* --- process limits ----------------------------------------------------------------------------- */

static int prlimit_probe(int pid) {
  struct rlimit lim = {64, 64}, old;
  printf("prlimit: calling\n");
  if (syscall(SYS_prlimit64, pid, RLIMIT_NOFILE, &lim, &old) < 0) return report("prlimit", -1);
  printf("prlimit: ok\n");
  if (getrlimit(RLIMIT_NOFILE, &old) < 0) return report("getrlimit", -1);
  printf("getrlimit: %llu\n", (unsigned long long)old.rlim_cur);
  return 0;
}

static int ipoptions(const char *host, int port, const char *hop) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return report("socket", -1);
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((unsigned short)port);
  inet_pton(AF_INET, host, &to.sin_addr);
  if (connect(s, (struct sockaddr *)&to, sizeof to) < 0) return report("connect", -1);
  unsigned char opt[8] = {IPOPT_NOP, IPOPT_LSRR, 7, 4, 0, 0, 0, 0};
  inet_pton(AF_INET, hop, opt + 4);
  if (setsockopt(s, IPPROTO_IP, IP_OPTIONS, opt, sizeof opt) < 0) return report("ipoptions", -1);
  printf("ipoptions: ok\n");
  return report("send", send(s, "opts", 4, 0));
}

/* unspec: AF_UNSPEC with INADDR_ANY, which an IPv4 socket's bind takes as AF_INET (a compatibility
 * rule of the kernel's inet_bind). */
static int bind_low(int port, int unspec) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return report("socket", -1);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = unspec ? AF_UNSPEC : AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = unspec ? htonl(INADDR_ANY) : htonl(INADDR_LOOPBACK);
  return report("bind-low", bind(s, (struct sockaddr *)&a, sizeof a));
}

/* --- unix sockets and who the peer is -------------------------------------------------------------- */

static int unix_connect(const char *name, const char *path) {
  struct sockaddr_un u;
  memset(&u, 0, sizeof u);
  u.sun_family = AF_UNIX;
  snprintf(u.sun_path, sizeof u.sun_path, "%s", path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return report("socket", -1);
  if (connect(s, (struct sockaddr *)&u, sizeof u) < 0) {
    report(name, -1);
    return -1;
  }
  return s;
}

static int unix_peer(const char *path) {
  int s = unix_connect("unix-peer", path);
  if (s < 0) return 0;
  char buf[64];
  ssize_t n = read(s, buf, sizeof buf - 1);
  if (n < 0) return report("read", -1);
  buf[n] = 0;
  printf("unix-peer: %s\n", buf);
  return 0;
}

static int unix_hold(const char *path) {
  if (unix_connect("unix-hold", path) < 0) return 0;
  printf("unix-hold: connected\n");
  for (;;) pause();
}

static int scm_many(int n) {
  if (n < 1 || n > 1024) return usage();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) return report("socketpair", -1);
  static union {
    char buf[CMSG_SPACE(1024 * sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  char byte = 'x';
  struct iovec iov = {&byte, 1};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  m.msg_controllen = CMSG_SPACE(n * sizeof(int));
  struct cmsghdr *c = (struct cmsghdr *)u.buf;
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n * sizeof(int));
  for (int i = 0; i < n; i++) {
    int fd = i == n - 1 ? 1000 : 0;
    memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof fd);
  }
  return report("scm-many", sendmsg(sv[0], &m, 0));
}

static int unix_scan(const char *path) {
  if (unix_connect("unix-scan", path) < 0) return 0;
  int found = 0;
  DIR *procs = opendir("/proc");
  if (!procs) return report("opendir", -1);
  for (struct dirent *p; (p = readdir(procs)) != NULL;) {
    int pid = atoi(p->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", pid);
    DIR *tasks = opendir(dir);
    if (!tasks) continue;
    for (struct dirent *t; (t = readdir(tasks)) != NULL;) {
      int tid = atoi(t->d_name);
      if (tid <= 0) continue;
      char st[96], buf[4096];
      snprintf(st, sizeof st, "/proc/%d/task/%d/status", pid, tid);
      FILE *f = fopen(st, "re");
      if (!f) continue;
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[n] = 0;
      const char *u = strstr(buf, "\nUid:");
      if (!u || (uid_t)strtoul(u + 5, NULL, 10) != getuid()) continue;
      found++;
      long sig = syscall(SYS_tgkill, pid, tid, 0);
      int sig_err = errno;
      char mem[96];
      snprintf(mem, sizeof mem, "/proc/%d/task/%d/mem", pid, tid);
      int fd = open(mem, O_RDONLY | O_CLOEXEC);
      int mem_err = errno;
      if (fd >= 0) close(fd);
      long pr = setpriority(PRIO_PROCESS, (id_t)tid, 19);
      int pr_err = errno;
      printf("unix-scan: thread signal %s mem %s setpriority %s\n",
             sig == 0 ? "ok" : errname(sig_err), fd >= 0 ? "ok" : errname(mem_err),
             pr == 0 ? "ok" : errname(pr_err));
    }
    closedir(tasks);
  }
  closedir(procs);
  printf("unix-scan: %d found\n", found);
  return 0;
}

static int peercred_server(const char *path, const char *mode) {
  struct sockaddr_un u;
  memset(&u, 0, sizeof u);
  u.sun_family = AF_UNIX;
  snprintf(u.sun_path, sizeof u.sun_path, "%s", path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unlink(path);
  if (s < 0 || bind(s, (struct sockaddr *)&u, sizeof u) < 0 || listen(s, 16) < 0)
    return report("listen", -1);
  if (chmod(path, (mode_t)strtoul(mode, NULL, 8)) < 0) return report("chmod", -1);
  printf("listening\n");
  for (;;) {
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    struct ucred cr;
    socklen_t l = sizeof cr;
    char out[64];
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &l) == 0)
      snprintf(out, sizeof out, "uid=%u gid=%u", (unsigned)cr.uid, (unsigned)cr.gid);
    else
      snprintf(out, sizeof out, "peercred errno %s", errname(errno));
    if (write(c, out, strlen(out)) < 0) { /* the peer went away */
    }
    close(c);
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return usage();
  const char *w = argv[1];
  if (!strcmp(w, "netlink-newlink") && argc > 3)
    return netlink_newlink(argv[2], !strcmp(argv[3], "addressed"));
  if (!strcmp(w, "netlink-audit")) return netlink_audit();
  if (!strcmp(w, "netlink-route")) return netlink_route();
  if (!strcmp(w, "cmsg") && argc > 4)
    return cmsg_send(argv[2], atoi(argv[3]), argv[4], argc > 5 ? argv[5] : NULL);
  if (!strcmp(w, "ifconf") && argc > 3) return ifconf(argv[2], atoi(argv[3]));
  if (!strcmp(w, "ipoptions") && argc > 4) return ipoptions(argv[2], atoi(argv[3]), argv[4]);
  if (!strcmp(w, "bind-low") && argc > 2)
    return bind_low(atoi(argv[2]), argc > 3 && !strcmp(argv[3], "unspec"));
  if (!strcmp(w, "prlimit") && argc > 2) return prlimit_probe(atoi(argv[2]));
  if (!strcmp(w, "unix-peer") && argc > 2) return unix_peer(argv[2]);
  if (!strcmp(w, "unix-hold") && argc > 2) return unix_hold(argv[2]);
  if (!strcmp(w, "unix-scan") && argc > 2) return unix_scan(argv[2]);
  if (!strcmp(w, "scm-many") && argc > 2) return scm_many(atoi(argv[2]));
  if (!strcmp(w, "peercred-server") && argc > 3) return peercred_server(argv[2], argv[3]);
  return usage();
}
