// netproxy.cc: network rules, carried out by the monitor thread (docs/architecture.md "Network rules"; the policy side is
// packages/executor/src/policy/network.ts, the filter side compiler.ts networkSyscalls()).
//
// A sandbox under network rules keeps its own network namespace (only lo). Its filter sends every
// connect(), sendto() with an address, sendmsg(), sendmmsg() and listen() the policy allows to the
// monitor. For each, the monitor:
//   - takes a copy of the caller's socket (pidfd_getfd on arg 0) and asks it its family, type,
//     protocol, O_NONBLOCK and network namespace (SO_NETNS_COOKIE: one of the executor's, i.e. a
//     socket the monitor handed in, or the sandbox's own);
//   - copies the caller's sockaddr (and for sends the msghdr, iovecs, data and control) ONCE with
//     process_vm_readv, checks with SECCOMP_IOCTL_NOTIF_ID_VALID that the caller still waits in
//     that same call, and decides from the copy only;
//   - never answers with CONTINUE (the kernel would read the caller's memory and fd table again):
//     it performs the operation itself on the socket copy, or on a socket of its own created in the
//     executor's network namespace and put in place of the caller's fd with
//     SECCOMP_IOCTL_NOTIF_ADDFD (SECCOMP_ADDFD_FLAG_SETFD), and answers with the result.
// Nothing here blocks: connects and sends are non-blocking; a caller whose socket is blocking waits
// in the kernel while the monitor polls (NetPending) the socket for EPOLLOUT.
#include "netproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace sbx {
namespace {

constexpr size_t kMaxAddr = 128;         // sizeof(struct sockaddr_storage): the kernel's own limit
constexpr size_t kMaxData = 256 * 1024;  // bytes one emulated send carries (stream sends: partial)
constexpr size_t kMaxControl = 8192;     // ancillary data of one message
constexpr size_t kMaxIov = 1024;         // UIO_MAXIOV
constexpr unsigned kMaxMmsg = 1024;      // UIO_MAXIOV, sendmmsg's own cap
constexpr size_t kScmMaxFd = 253;        // SCM_MAX_FD: the most fds one message carries
constexpr uint32_t kMagic = 0x4e584253;  // "SBXN"
constexpr uint32_t kVersion = 1;
// SendOne's answers that are not a result.
constexpr int64_t kGone = INT64_MIN;            // the caller left the call: nothing to answer
constexpr int64_t kDenied = INT64_MIN + 1;      // a denied destination (Call::denial has it)
constexpr int64_t kWouldBlock = INT64_MIN + 2;  // a blocking socket is full (Call::wait_fd)

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  Fd(Fd &&o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd &operator=(Fd &&o) noexcept {
    if (this != &o) {
      reset(o.fd);
      o.fd = -1;
    }
    return *this;
  }
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) close(fd);
    fd = f;
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

uint32_t Le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
uint16_t Le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

bool IdValid(int listener, uint64_t id) {
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

// Answers a notification: ret >= 0 is the call's return value, ret < 0 is -errno.
void Reply(int listener, uint64_t id, int64_t ret) {
  // Zeroed and larger than our header's struct, in case the kernel's is larger.
  alignas(8) unsigned char buf[64];
  memset(buf, 0, sizeof buf);
  auto *r = reinterpret_cast<struct seccomp_notif_resp *>(buf);
  r->id = id;
  if (ret < 0)
    r->error = (int32_t)ret;
  else
    r->val = ret;
  // ENOENT: the caller is gone (killed, or a signal interrupted the call): nothing to do.
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, r) != 0) { /* see above */
  }
}

int PidfdOpen(pid_t pid, unsigned flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
int PidfdGetfd(int pidfd, int fd) { return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0); }

// A pidfd for the notifying task: the thread itself (Linux 6.9+; *thread set), else its process.
int OpenTask(pid_t tid, bool *thread) {
  int fd = PidfdOpen(tid, PIDFD_THREAD);
  *thread = fd >= 0;
  if (fd >= 0) return fd;
  fd = PidfdOpen(tid, 0);
  if (fd >= 0) return fd;
  // A thread that does not lead its group: its process's pidfd (the fd table is shared).
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
  Fd f(open(path, O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) return -1;
  char buf[2048];
  ssize_t n = read(f.fd, buf, sizeof buf - 1);
  if (n <= 0) return -1;
  buf[n] = 0;
  const char *t = strstr(buf, "\nTgid:");
  if (!t) return -1;
  long tgid = strtol(t + 6, nullptr, 10);
  return tgid > 0 ? PidfdOpen((pid_t)tgid, 0) : -1;
}

// Whether fd `fd` of task `tid` is close-on-exec (/proc/<tid>/fdinfo/<fd> "flags:", octal).
bool FdCloexec(pid_t tid, uint32_t fd) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fdinfo/%u", (int)tid, fd);
  Fd f(open(path, O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) return true;
  char buf[512];
  ssize_t n = read(f.fd, buf, sizeof buf - 1);
  if (n <= 0) return true;
  buf[n] = 0;
  const char *p = strstr(buf, "flags:");
  if (!p) return true;
  return (strtoul(p + 6, nullptr, 8) & O_CLOEXEC) != 0;
}

bool ReadMem(pid_t tid, uint64_t addr, void *buf, size_t len) {
  if (len == 0) return true;
  struct iovec l = {buf, len};
  struct iovec r = {reinterpret_cast<void *>(static_cast<uintptr_t>(addr)), len};
  return process_vm_readv(tid, &l, 1, &r, 1, 0) == (ssize_t)len;
}

bool WriteMem(pid_t tid, uint64_t addr, const void *buf, size_t len) {
  struct iovec l = {const_cast<void *>(buf), len};
  struct iovec r = {reinterpret_cast<void *>(static_cast<uintptr_t>(addr)), len};
  return process_vm_writev(tid, &l, 1, &r, 1, 0) == (ssize_t)len;
}

// Puts `fd` in place of the caller's fd `target` (its O_NONBLOCK set as `nonblock`, its
// close-on-exec as `cloexec`). False when the caller is gone or the kernel refused (errno).
bool InjectFd(int listener, uint64_t id, int fd, uint32_t target, bool cloexec, bool nonblock) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, nonblock ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
  struct seccomp_notif_addfd a;
  memset(&a, 0, sizeof a);
  a.id = id;
  a.flags = SECCOMP_ADDFD_FLAG_SETFD;
  a.srcfd = (uint32_t)fd;
  a.newfd = target;
  a.newfd_flags = cloexec ? O_CLOEXEC : 0;
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a) >= 0;
}

// Socket options a program may have set before connect() that the fresh socket keeps.
void CopyOptions(int from, int to, int domain, bool stream) {
  int v = 0;
  socklen_t l = sizeof v;
  auto copy_int = [&](int level, int name, bool always) {
    v = 0;
    l = sizeof v;
    if (getsockopt(from, level, name, &v, &l) == 0 && (always || v != 0))
      setsockopt(to, level, name, &v, sizeof v);
  };
  copy_int(SOL_SOCKET, SO_KEEPALIVE, false);
  if (stream) copy_int(IPPROTO_TCP, TCP_NODELAY, false);
  if (domain == AF_INET6) copy_int(IPPROTO_IPV6, IPV6_V6ONLY, true);
  for (int name : {SO_RCVTIMEO, SO_SNDTIMEO}) {
    struct timeval tv = {0, 0};
    l = sizeof tv;
    if (getsockopt(from, SOL_SOCKET, name, &tv, &l) == 0 && (tv.tv_sec || tv.tv_usec))
      setsockopt(to, SOL_SOCKET, name, &tv, sizeof tv);
  }
  struct linger lg = {0, 0};
  l = sizeof lg;
  if (getsockopt(from, SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && lg.l_onoff)
    setsockopt(to, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

bool PrefixMatch(const uint8_t *net, const uint8_t *addr, unsigned prefix) {
  unsigned full = prefix / 8, rem = prefix % 8;
  if (memcmp(net, addr, full) != 0) return false;
  if (rem == 0) return true;
  uint8_t m = (uint8_t)(0xff << (8 - rem));
  return (net[full] & m) == (addr[full] & m);
}

// sun_path of a sockaddr_un copy: the path (up to the first NUL), or an abstract name.
void ParseUnix(const uint8_t *sa, size_t len, std::string *path, bool *abstract) {
  const size_t off = offsetof(struct sockaddr_un, sun_path);
  const char *p = reinterpret_cast<const char *>(sa + off);
  size_t n = len > off ? len - off : 0;
  *abstract = n > 0 && p[0] == '\0';
  if (*abstract) {
    path->assign(p + 1, n - 1);
  } else {
    size_t k = 0;
    while (k < n && p[k]) k++;
    path->assign(p, k);
  }
}

// "unix:/path" or "unix:@name" with unprintable bytes as '?'.
void UnixDisplay(const std::string &path, bool abstract, char *out, size_t n) {
  std::string s = abstract ? "unix:@" : "unix:";
  for (char ch : path) s += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  snprintf(out, n, "%s", s.c_str());
}

// The socket at `path` as the caller sees it (its root; symlinks stay inside): an O_PATH fd. The
// monitor opens the caller's root (that needs ptrace access to it); the walk from there runs on
// `act`, the sandbox's own identity without capabilities, so a directory the sandboxee cannot
// search hides what is in it from the monitor's answer too (EACCES, as the sandboxee would get).
int ResolveInRoot(int listener, uint64_t id, pid_t tid, const std::string &path,
                  const std::function<int64_t(const std::function<int64_t()> &)> &act) {
  char rp[64];
  snprintf(rp, sizeof rp, "/proc/%d/root", (int)tid);
  Fd root(open(rp, O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.fd < 0) return -errno;
  if (!IdValid(listener, id)) return -ESRCH;  // the pid may name another task now
  return (int)act([&]() -> int64_t {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    Fd obj((int)syscall(SYS_openat2, root.fd, path.c_str(), &how, sizeof how));
    if (obj.fd < 0) return -errno;
    struct stat st;
    if (fstat(obj.fd, &st) != 0) return -errno;
    if (!S_ISSOCK(st.st_mode)) return -ECONNREFUSED;  // what connect() says for a non-socket
    return obj.release();
  });
}

// A sockaddr_un naming an O_PATH fd of this process (the kernel follows the magic link).
socklen_t ProcFdAddress(int fd, struct sockaddr_un *u) {
  memset(u, 0, sizeof *u);
  u->sun_family = AF_UNIX;
  snprintf(u->sun_path, sizeof u->sun_path, "/proc/self/fd/%d", fd);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(u->sun_path) + 1);
}

}  // namespace

void NetReply(int listener, uint64_t id, int64_t ret) { Reply(listener, id, ret); }

int64_t NetNowNs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

namespace {
// The deadline of a blocking call on `fd` under its SO_SNDTIMEO (0: none).
int64_t SendTimeoutDeadline(int fd) {
  struct timeval tv = {0, 0};
  socklen_t l = sizeof tv;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0))
    return 0;
  return NetNowNs() + (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
}
}  // namespace

void NetProxy::Expire(int listener, NetPending &p) {
  const auto &req = *reinterpret_cast<const struct seccomp_notif *>(p.req);
  if (p.kind == NetPending::Kind::kRetry) {
    Reply(listener, req.id, -EAGAIN);
    return;
  }
  // A timed-out blocking connect: the socket keeps connecting, now in the caller's hands.
  int64_t ir = Inject(listener, req.id, p.wait_fd, p.target_fd, p.cloexec, false);
  if (ir < 0) {
    if (ir != -ENOENT) Reply(listener, req.id, ir);
    return;
  }
  Reply(listener, req.id, -EINPROGRESS);
}

NetPending::~NetPending() {
  if (wait_fd >= 0) close(wait_fd);
}

bool ParseNetConfig(const uint8_t *d, size_t len, NetConfig *out, std::string *err) {
  if (len < 24 || Le32(d) != kMagic || Le32(d + 4) != kVersion) {
    *err = "network rule table: bad header (executor and addon out of step? rebuild)";
    return false;
  }
  out->syscalls = Le32(d + 8);
  out->deny_errno = (int)Le32(d + 12);
  uint32_t nrules = Le32(d + 16), nunix = Le32(d + 20);
  if (out->deny_errno < 0 || out->deny_errno > 4095) {
    *err = "network rule table: bad deny errno";
    return false;
  }
  size_t off = 24;
  if (nrules > (len - off) / 24) {
    *err = "network rule table: truncated rules";
    return false;
  }
  for (uint32_t i = 0; i < nrules; i++, off += 24) {
    NetRule r;
    r.action = d[off];
    r.family = d[off + 1];
    r.prefix = d[off + 2];
    r.proto = d[off + 3];
    r.port = Le16(d + off + 4);
    memcpy(r.addr, d + off + 8, 16);
    if (r.action > 2 || (r.family != 4 && r.family != 6) || r.prefix > (r.family == 4 ? 32 : 128)) {
      *err = "network rule table: bad rule";
      return false;
    }
    out->rules.push_back(r);
  }
  for (uint32_t i = 0; i < nunix; i++) {
    if (len - off < 2 || len - off - 2 < Le16(d + off)) {
      *err = "network rule table: truncated unix paths";
      return false;
    }
    uint16_t n = Le16(d + off);
    out->unix_paths.emplace_back(reinterpret_cast<const char *>(d + off + 2), n);
    off += 2 + n;
  }
  return true;
}

uint32_t NetBitOf(int nr) {
  switch (nr) {
    case __NR_connect: return kNetConnect;
    case __NR_sendto: return kNetSendto;
    case __NR_sendmsg: return kNetSendmsg;
    case __NR_sendmmsg: return kNetSendmmsg;
    case __NR_listen: return kNetListen;
    case __NR_bind: return kNetBind;
    default: return 0;
  }
}

uint64_t HostNetnsCookie() {
  Fd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0) s.reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  uint64_t cookie = 0;
  socklen_t l = sizeof cookie;
  if (s.fd < 0 || getsockopt(s.fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &l) != 0) return 0;
  return cookie;
}

NetProxy::NetProxy(NetConfig config, uint64_t host_netns_cookie, bool acts)
    : cfg_(std::move(config)), host_cookie_(host_netns_cookie), acts_(acts) {}

bool NetProxy::StartActor(int listener, uint64_t id, pid_t tid) {
  if (actor_ || !acts_) return true;
  // The caller waits in its call (checked after the read), so tid still names it: its ids are the
  // sandbox's (a sandboxee has no capability to change them).
  TaskIdentity as;
  if (!ReadTaskIdentity(tid, &as)) return IdValid(listener, id) ? true : false;
  if (!IdValid(listener, id)) return false;
  auto t = std::make_unique<CaplessThread>();
  if (!t->Start(&as)) return true;  // no thread: every action is refused (EPERM)
  actor_ = std::move(t);
  return true;
}

int64_t NetProxy::Act(const std::function<int64_t()> &fn) {
  int64_t r = -EPERM;
  if (!actor_ || !actor_->Run([&] { r = fn(); })) return -EPERM;
  return r;
}

int64_t NetProxy::Inject(int listener, uint64_t id, int fd, uint32_t target, bool cloexec,
                         bool nonblock) {
  return Act([&]() -> int64_t {
    return InjectFd(listener, id, fd, target, cloexec, nonblock) ? 0 : -errno;
  });
}

// Creates a socket of the host's namespace for the caller's socket `from` (its options copied),
// connected to addr, on the capability-free thread. *fd gets the socket (-1 when none was made);
// returns 0 or -errno of connect (-EINPROGRESS: non-blocking, under way) or of socket.
static int64_t HostSocket(const std::function<int64_t(const std::function<int64_t()> &)> &act,
                          int from, int domain, int type, int protocol, bool stream,
                          const struct sockaddr *addr, socklen_t len, int *fd) {
  int made = -1;
  int64_t r = act([&]() -> int64_t {
    int s = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (s < 0) return -errno;
    made = s;
    if (from >= 0) CopyOptions(from, s, domain, stream);
    return connect(s, addr, len) == 0 ? 0 : -errno;
  });
  *fd = made;
  return r;
}

NetProxy::~NetProxy() {
  for (auto &t : tasks_)
    if (t.pidfd >= 0) close(t.pidfd);
  if (uncached_ >= 0) close(uncached_);
}

int NetProxy::TaskPidfd(pid_t tid, bool fresh) {
  for (auto &t : tasks_) {
    if (t.tid != tid || t.pidfd < 0) continue;
    if (!fresh) return t.pidfd;
    close(t.pidfd);
    t.pidfd = -1;
  }
  bool thread = false;
  int fd = OpenTask(tid, &thread);
  if (fd < 0) return -1;
  if (!thread) {
    // A process pidfd (kernels before 6.9) is not cached: after the thread's death its tid could
    // name a thread of another process while this process lives on.
    if (uncached_ >= 0) close(uncached_);
    uncached_ = fd;
    return fd;
  }
  CachedTask &slot = tasks_[next_task_++ % (sizeof tasks_ / sizeof tasks_[0])];
  if (slot.pidfd >= 0) close(slot.pidfd);
  slot.tid = tid;
  slot.pidfd = fd;
  return fd;
}

bool NetProxy::Cloexec(pid_t tid, uint32_t fd) const {
  // A sandboxee that can never exec cannot tell: skip the /proc read (~5-8 µs).
  return (cfg_.syscalls & kNetExecAllowed) ? FdCloexec(tid, fd) : true;
}

// One notification being handled.
struct NetProxy::Call {
  int listener;
  const struct seccomp_notif &req;
  NetDenial *denial;
  std::unique_ptr<NetPending> *pending;
  pid_t tid = 0;
  int task = -1;       // pidfd of the caller (thread or process; owned by the task cache)
  uint32_t fdnum = 0;  // the caller's fd (arg 0)
  Fd sock;             // our copy of that socket (or, once replaced, the socket put there)
  int domain = 0, type = 0, protocol = 0;
  bool nonblock = false;
  bool host = false;  // in the executor's network namespace
  Fd wait_fd;         // kWouldBlock: the socket to wait on
  Call(int l, const struct seccomp_notif &r, NetDenial *d, std::unique_ptr<NetPending> *p)
      : listener(l), req(r), denial(d), pending(p) {}
  NetOutcome Answer(int64_t ret) {
    Reply(listener, req.id, ret);
    return NetOutcome::kAnswered;
  }
  bool Valid() const { return IdValid(listener, req.id); }
};

int NetProxy::Resolve(Call &c, const std::string &path) {
  return ResolveInRoot(c.listener, c.req.id, c.tid, path,
                       [this](const std::function<int64_t()> &fn) { return Act(fn); });
}

// Arguments of one message to send (remote pointers are the caller's).
struct NetProxy::SendArgs {
  bool name_given = false;
  uint64_t name = 0;
  int64_t namelen = 0;
  const struct iovec *iov = nullptr;
  size_t iovcnt = 0;
  uint64_t control = 0;
  uint64_t controllen = 0;
  int flags = 0;
};

NetOutcome NetProxy::Deny(Call &c, const char *address, int rule, const char *reason) {
  if (cfg_.deny_errno > 0) return c.Answer(-cfg_.deny_errno);
  snprintf(c.denial->address, sizeof c.denial->address, "%s", address);
  c.denial->rule = rule;
  snprintf(c.denial->reason, sizeof c.denial->reason, "%s", reason ? reason : "");
  return NetOutcome::kDenied;
}

bool NetProxy::UnixAllowed(const std::string &path) const {
  return std::find(cfg_.unix_paths.begin(), cfg_.unix_paths.end(), path) != cfg_.unix_paths.end();
}

int NetProxy::DecideIp(const uint8_t *sa, size_t len, bool *allowed, char *display,
                       size_t display_len) const {
  uint16_t fam;
  memcpy(&fam, sa, sizeof fam);
  uint8_t addr[16] = {0};
  int family;
  uint16_t port;
  char ip[INET6_ADDRSTRLEN] = "?";
  if (fam == AF_INET) {
    if (len < sizeof(struct sockaddr_in)) return -3;
    struct sockaddr_in in;
    memcpy(&in, sa, sizeof in);
    family = 4;
    memcpy(addr, &in.sin_addr, 4);
    port = ntohs(in.sin_port);
    inet_ntop(AF_INET, &in.sin_addr, ip, sizeof ip);
    snprintf(display, display_len, "%s:%u", ip, port);
  } else if (fam == AF_INET6) {
    if (len < 24) return -3;  // SIN6_LEN_RFC2133: the shortest sockaddr_in6 the kernel takes
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    memcpy(&in6, sa, std::min(len, sizeof in6));
    family = 6;
    memcpy(addr, &in6.sin6_addr, 16);
    port = ntohs(in6.sin6_port);
    inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof ip);
    snprintf(display, display_len, "[%s]:%u", ip, port);
  } else {
    return -3;
  }
  // What the kernel will really reach: ::ffff:a.b.c.d is IPv4; 0.0.0.0 and :: are the local host.
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == 6 && memcmp(addr, kMapped, 12) == 0) {
    family = 4;
    memmove(addr, addr + 12, 4);
    memset(addr + 4, 0, 12);
  }
  size_t n = family == 4 ? 4 : 16;
  if (std::all_of(addr, addr + n, [](uint8_t b) { return b == 0; })) {
    if (family == 4)
      addr[0] = 127, addr[3] = 1;
    else
      addr[15] = 1;
  }
  int dns = -1, deny = -1, allow = -1;
  for (size_t i = 0; i < cfg_.rules.size(); i++) {
    const NetRule &r = cfg_.rules[i];
    if (r.family != family || (r.port != 0 && r.port != port) ||
        !PrefixMatch(r.addr, addr, r.prefix))
      continue;
    int &slot = r.action == 2 ? dns : r.action == 1 ? deny : allow;
    if (slot < 0) slot = (int)i;
  }
  if (dns >= 0) return *allowed = true, dns;
  if (deny >= 0) return *allowed = false, deny;
  *allowed = allow >= 0;
  return allow;
}

NetOutcome NetProxy::Handle(int listener, const struct seccomp_notif &req, NetDenial *denial,
                            std::unique_ptr<NetPending> *pending) {
  Call c(listener, req, denial, pending);
  c.tid = (pid_t)req.pid;
  c.task = TaskPidfd(c.tid, false);
  if (c.task < 0 || !c.Valid()) return NetOutcome::kAnswered;  // the caller is gone
  if (!StartActor(listener, req.id, c.tid)) return NetOutcome::kAnswered;
  c.fdnum = (uint32_t)req.data.args[0];  // an int: the kernel reads the low 32 bits
  if ((int)c.fdnum < 0) return c.Answer(-EBADF);
  int f = PidfdGetfd(c.task, (int)c.fdnum);
  if (f < 0 && errno == ESRCH) {
    // A cached pidfd of a task that is gone: the tid names the caller now (it is valid).
    c.task = TaskPidfd(c.tid, true);
    if (c.task < 0 || !c.Valid()) return NetOutcome::kAnswered;
    f = PidfdGetfd(c.task, (int)c.fdnum);
  }
  if (f < 0) return c.Answer(-errno);
  c.sock.reset(f);
  socklen_t l = sizeof(int);
  if (getsockopt(f, SOL_SOCKET, SO_DOMAIN, &c.domain, &l) != 0)
    return c.Answer(-errno);  // ENOTSOCK
  l = sizeof(int);
  getsockopt(f, SOL_SOCKET, SO_TYPE, &c.type, &l);
  l = sizeof(int);
  getsockopt(f, SOL_SOCKET, SO_PROTOCOL, &c.protocol, &l);
  int fl = fcntl(f, F_GETFL);
  c.nonblock = fl >= 0 && (fl & O_NONBLOCK);
  uint64_t cookie = 0;
  l = sizeof cookie;
  // A socket whose namespace cannot be told is treated as the host's (the stricter handling).
  c.host = getsockopt(f, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &l) != 0 || cookie == host_cookie_;
  // An allowlist: the monitor acts on IP and unix sockets only. Never on netlink (a message to the
  // kernel is judged by the sender's credentials, and IFLA_NET_NS_PID and the like name objects
  // by the sender's pid namespace), packet or any other family: EPERM, as a kernel refusing the
  // caller would say. glibc's address lookup then assumes both IPv4 and IPv6 and goes on.
  if (c.domain != AF_INET && c.domain != AF_INET6 && c.domain != AF_UNIX) return c.Answer(-EPERM);
  switch (NetBitOf(req.data.nr)) {
    case kNetConnect: return Connect(c);
    case kNetListen: return Listen(c);
    case kNetBind: return Bind(c);
    case kNetSendto:
    case kNetSendmsg:
    case kNetSendmmsg: return Send(c);
    default: return c.Answer(-ENOSYS);
  }
}

NetOutcome NetProxy::Resume(int listener, NetPending &p, NetDenial *denial,
                            std::unique_ptr<NetPending> *pending) {
  const auto &req = *reinterpret_cast<const struct seccomp_notif *>(p.req);
  if (p.kind == NetPending::Kind::kRetry)
    return Handle(listener, req, denial, pending);  // read and decide again
  int err = 0;
  socklen_t l = sizeof err;
  if (getsockopt(p.wait_fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0) err = errno;
  if (err != 0) {
    Reply(listener, req.id, -err);
    return NetOutcome::kAnswered;
  }
  int64_t ir = Inject(listener, req.id, p.wait_fd, p.target_fd, p.cloexec, false);
  if (ir < 0) {
    if (ir != -ENOENT) Reply(listener, req.id, ir);
    return NetOutcome::kAnswered;
  }
  Reply(listener, req.id, 0);
  return NetOutcome::kAnswered;
}

NetOutcome NetProxy::Listen(Call &c) {
  // A socket of the host never listens: the sandboxee must not serve the host's network.
  if (c.host) return c.Answer(-EINVAL);
  int backlog = (int)c.req.data.args[1];
  return c.Answer(Act([&]() -> int64_t { return listen(c.sock.fd, backlog) == 0 ? 0 : -errno; }));
}

int NetProxy::CopyAddress(Call &c, uint8_t *sa, NetOutcome *out) {
  const auto &d = c.req.data;
  int len = (int)(uint32_t)d.args[2];
  memset(sa, 0, kMaxAddr);
  if (len < (int)sizeof(sa_family_t) || (size_t)len > kMaxAddr) {
    *out = c.Answer(-EINVAL);
    return -1;
  }
  if (!ReadMem(c.tid, d.args[1], sa, (size_t)len)) {
    *out = c.Valid() ? c.Answer(-EFAULT) : NetOutcome::kAnswered;
    return -1;
  }
  if (!c.Valid()) {
    *out = NetOutcome::kAnswered;
    return -1;
  }
  return len;
}

NetOutcome NetProxy::Bind(Call &c) {
  // A socket of the host never binds: its port would be the host's (a TCP socket the monitor
  // handed in for a connect that failed is unbound again and would take any host port).
  if (c.host) return c.Answer(-EINVAL);
  alignas(8) uint8_t sa[kMaxAddr];
  NetOutcome answered;
  int len = CopyAddress(c, sa, &answered);
  if (len < 0) return answered;
  uint16_t fam;
  memcpy(&fam, sa, sizeof fam);
  if (fam == AF_UNIX && c.domain == AF_UNIX &&
      (size_t)len > offsetof(struct sockaddr_un, sun_path) &&
      sa[offsetof(struct sockaddr_un, sun_path)] != '\0') {
    // A path is looked up in the caller's filesystem view, which the monitor does not share, and
    // letting the kernel run the call (CONTINUE) would re-read the fd and the address after the
    // check: a racing thread could put a host socket there.
    std::string path;
    bool abstract = false;
    ParseUnix(sa, (size_t)len, &path, &abstract);
    char shown[160];
    UnixDisplay(path, abstract, shown, sizeof shown);
    return Deny(c, shown, -2,
                "binding a unix socket to a path is not supported under network rules");
  }
  // The sandbox's own socket (its namespace): bound here, on the object that was checked, with
  // the address copied once. An abstract or unnamed unix address, netlink and IP all name
  // something in the socket's own namespace.
  // The capability-free thread still owns (by uid) the sandbox's user namespace, which would let
  // it bind a port below 1024 there; the sandboxee, with no capabilities, cannot: EACCES, as the
  // kernel tells it.
  // AF_UNSPEC too: an IPv4 socket's bind takes AF_UNSPEC with INADDR_ANY as AF_INET.
  if ((fam == AF_INET || fam == AF_INET6 || fam == AF_UNSPEC) &&
      (size_t)len >= sizeof(struct sockaddr_in)) {
    uint16_t port_be;
    memcpy(&port_be, sa + offsetof(struct sockaddr_in, sin_port), sizeof port_be);
    uint16_t port = ntohs(port_be);
    if (port != 0 && port < 1024) return c.Answer(-EACCES);
  }
  return c.Answer(Act([&]() -> int64_t {
    return bind(c.sock.fd, reinterpret_cast<struct sockaddr *>(sa), (socklen_t)len) == 0 ? 0
                                                                                         : -errno;
  }));
}

NetOutcome NetProxy::Connect(Call &c) {
  alignas(8) uint8_t sa[kMaxAddr];
  NetOutcome answered;
  int len = CopyAddress(c, sa, &answered);
  if (len < 0) return answered;
  uint16_t fam;
  memcpy(&fam, sa, sizeof fam);
  if (fam == AF_UNSPEC) {
    // Dissolving an association: fine in the sandbox's own namespace; a host socket stays as it is.
    if (c.host) return c.Answer(-EINVAL);
    return c.Answer(Act([&]() -> int64_t {
      return connect(c.sock.fd, reinterpret_cast<struct sockaddr *>(sa), (socklen_t)len) == 0
                 ? 0
                 : -errno;
    }));
  }
  if (fam == AF_INET || fam == AF_INET6) return ConnectIp(c, sa, (size_t)len);
  if (fam == AF_UNIX) return ConnectUnix(c, sa, (size_t)len);
  char shown[32];
  snprintf(shown, sizeof shown, "family %u", fam);
  return Deny(c, shown, -2, "an address family network rules do not cover");
}

NetOutcome NetProxy::ConnectIp(Call &c, const uint8_t *sa, size_t len) {
  if (c.domain != AF_INET && c.domain != AF_INET6) return c.Answer(-EINVAL);
  bool allowed = false;
  char shown[160];
  int rule = DecideIp(sa, len, &allowed, shown, sizeof shown);
  if (rule == -3) return c.Answer(-EINVAL);
  bool stream = c.type == SOCK_STREAM && (c.protocol == 0 || c.protocol == IPPROTO_TCP);
  bool dgram = c.type == SOCK_DGRAM && (c.protocol == 0 || c.protocol == IPPROTO_UDP);
  uint16_t port_be;
  memcpy(&port_be, sa + offsetof(struct sockaddr_in, sin_port),
         sizeof port_be); /* same offset in sockaddr_in6 */
  if (!allowed && dgram && port_be == 0) {
    // getaddrinfo() orders its answers by connecting a UDP socket to each with port 0 (source
    // address selection, RFC 6724) and carries on when that fails. Nothing is sent by such a
    // connect, so it is not a violation; it is answered "unreachable" without touching any socket
    // (connecting the sandbox's own socket could let later writes, which the monitor never sees,
    // go out where no rule allows).
    return c.Answer(-ENETUNREACH);
  }
  if (!allowed) return Deny(c, shown, rule, nullptr);
  if (!stream && !dgram)
    return Deny(c, shown, -2, "only TCP and UDP sockets reach out under network rules");
  const auto *addr = reinterpret_cast<const struct sockaddr *>(sa);
  if (c.host) {
    // A socket the monitor handed in before: UDP re-connects at once; TCP says where it is.
    if (dgram)
      return c.Answer(Act(
          [&]() -> int64_t { return connect(c.sock.fd, addr, (socklen_t)len) == 0 ? 0 : -errno; }));
    struct tcp_info ti;
    memset(&ti, 0, sizeof ti);
    socklen_t tl = sizeof ti;
    if (getsockopt(c.sock.fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state != TCP_CLOSE) {
      return c.Answer(ti.tcpi_state == TCP_SYN_SENT ? -EALREADY : -EISCONN);
    }
    // Closed after a failed connect: a fresh socket, as below.
  }
  int made = -1;
  auto act = [this](const std::function<int64_t()> &fn) { return Act(fn); };
  int64_t r =
      HostSocket(act, c.sock.fd, c.domain, c.type, c.protocol, stream, addr, (socklen_t)len, &made);
  Fd h(made);
  int err = (int)-r;
  if (h.fd < 0 || (err != 0 && err != EINPROGRESS)) return c.Answer(r);
  bool cloexec = Cloexec(c.tid, c.fdnum);
  if (err == EINPROGRESS && !c.nonblock) {
    // A blocking caller: done now if the handshake already completed (loopback), else wait.
    struct pollfd p = {h.fd, POLLOUT, 0};
    int ready = poll(&p, 1, 0);
    if (ready != 1) {
      auto w = std::make_unique<NetPending>();
      w->kind = NetPending::Kind::kConnect;
      memcpy(w->req, &c.req, sizeof w->req);
      w->wait_fd = h.release();
      w->target_fd = c.fdnum;
      w->cloexec = cloexec;
      w->deadline_ns = SendTimeoutDeadline(w->wait_fd);  // copied from the caller's socket
      *c.pending = std::move(w);
      return NetOutcome::kPending;
    }
    if (p.revents & (POLLERR | POLLHUP)) {
      int se = 0;
      socklen_t sl = sizeof se;
      if (getsockopt(h.fd, SOL_SOCKET, SO_ERROR, &se, &sl) != 0) se = errno;
      return c.Answer(-(se ? se : ECONNREFUSED));
    }
    err = 0;
  }
  int64_t ir = Inject(c.listener, c.req.id, h.fd, c.fdnum, cloexec, c.nonblock);
  if (ir < 0) return ir == -ENOENT ? NetOutcome::kAnswered : c.Answer(ir);
  return c.Answer(-err);  // 0, or -EINPROGRESS for a non-blocking caller
}

NetOutcome NetProxy::ConnectUnix(Call &c, const uint8_t *sa, size_t len) {
  if (c.domain != AF_UNIX)
    return c.Answer(c.domain == AF_INET || c.domain == AF_INET6 ? -EAFNOSUPPORT : -EINVAL);
  if (len <= offsetof(struct sockaddr_un, sun_path)) return c.Answer(-EINVAL);
  std::string path;
  bool abstract = false;
  ParseUnix(sa, len, &path, &abstract);
  char shown[160];
  UnixDisplay(path, abstract, shown, sizeof shown);
  if (abstract) return Deny(c, shown, -2, "abstract unix sockets are denied under network rules");
  if (!UnixAllowed(path)) {
    // Nothing there in the sandbox's view (glibc probing for nscd, say), or nothing the sandboxee
    // could look up itself (a directory it cannot search): that error, as without rules.
    int o = Resolve(c, path);
    if (o == -ESRCH) return NetOutcome::kAnswered;
    if (o < 0 && o != -ECONNREFUSED) return c.Answer(o);
    if (o >= 0) close(o);
    return Deny(c, shown, -2, "a unix socket path no allowUnixSocket() names");
  }
  if (c.host) {
    // Connected already (one the monitor handed in)? Without a network namespace (landlock
    // isolation) every socket of the sandboxee is in the host's, so ask the socket itself.
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    if (getpeername(c.sock.fd, reinterpret_cast<struct sockaddr *>(&peer), &pl) == 0)
      return c.Answer(-EISCONN);
  }
  if (c.type != SOCK_STREAM && c.type != SOCK_DGRAM && c.type != SOCK_SEQPACKET)
    return c.Answer(-EINVAL);
  int o = Resolve(c, path);
  if (o == -ESRCH) return NetOutcome::kAnswered;
  if (o < 0) return c.Answer(o);
  Fd obj(o);
  struct sockaddr_un u;
  socklen_t ul = ProcFdAddress(obj.fd, &u);
  // A unix connect completes at once (or says EAGAIN: the listener's backlog is full).
  int made = -1;
  auto act = [this](const std::function<int64_t()> &fn) { return Act(fn); };
  int64_t r = HostSocket(act, -1, AF_UNIX, c.type, 0, false,
                         reinterpret_cast<struct sockaddr *>(&u), ul, &made);
  Fd h(made);
  if (r != 0) return c.Answer(r < 0 ? r : -EINVAL);
  int64_t ir = Inject(c.listener, c.req.id, h.fd, c.fdnum, Cloexec(c.tid, c.fdnum), c.nonblock);
  if (ir < 0) return ir == -ENOENT ? NetOutcome::kAnswered : c.Answer(ir);
  return c.Answer(0);
}

// Sends one message from the caller's memory: bytes sent, -errno, or kGone/kDenied/kWouldBlock.
int64_t NetProxy::SendOne(Call &c, const SendArgs &a) {
  // The destination, copied once.
  alignas(8) uint8_t sa[kMaxAddr];
  memset(sa, 0, sizeof sa);
  size_t salen = 0;
  if (a.name_given) {
    if (a.namelen < 0 || a.namelen > INT_MAX) return -EINVAL;
    salen = std::min((size_t)a.namelen, kMaxAddr);  // longer names are cut, as the kernel does
    if (!ReadMem(c.tid, a.name, sa, salen)) return -EFAULT;
  }
  // The data: at most kMaxData bytes (a stream send may be partial; a datagram may not).
  bool stream = c.type == SOCK_STREAM;
  std::vector<struct iovec> riov;
  size_t total = 0;
  for (size_t i = 0; i < a.iovcnt && total < kMaxData + 1; i++) {
    size_t n = a.iov[i].iov_len;
    if (n > (size_t)SSIZE_MAX) return -EINVAL;
    size_t take = std::min(n, kMaxData + 1 - total);
    if (take) riov.push_back({a.iov[i].iov_base, take});
    total += take;
  }
  if (total > kMaxData) {
    if (!stream) return -EMSGSIZE;
    size_t over = total - kMaxData;
    riov.back().iov_len -= over;
    if (riov.back().iov_len == 0) riov.pop_back();
    total = kMaxData;
  }
  std::vector<uint8_t> data(total);
  struct iovec local = {data.data(), total};
  if (total && process_vm_readv(c.tid, &local, 1, riov.data(), riov.size(), 0) != (ssize_t)total) {
    return c.Valid() ? -EFAULT : kGone;
  }
  // Ancillary data.
  if (a.controllen > kMaxControl) return -ENOBUFS;
  std::vector<uint8_t> control(a.control ? a.controllen : 0);
  if (!control.empty() && !ReadMem(c.tid, a.control, control.data(), control.size()))
    return -EFAULT;
  if (!c.Valid()) return kGone;

  // Where it goes.
  int target = c.sock.fd;
  bool keep_name = salen > 0 || a.name_given;
  uint16_t fam = 0;
  if (salen >= sizeof fam) memcpy(&fam, sa, sizeof fam);
  struct sockaddr_un via;
  Fd via_obj;
  if (a.name_given && c.type == SOCK_STREAM) {
    // A connected stream ignores a destination (MSG_FASTOPEN never gets here: the filter refuses it).
    if (c.domain != AF_INET && c.domain != AF_INET6) return -EOPNOTSUPP;
    keep_name = false;
  } else if (a.name_given && c.type == SOCK_SEQPACKET) {
    keep_name = false;  // unix seqpacket ignores it too
  } else if (a.name_given && (c.domain == AF_INET || c.domain == AF_INET6)) {
    // UDP reads AF_UNSPEC as AF_INET on an IPv4 socket, and as "no address" on an IPv6 one.
    if (fam == AF_UNSPEC && c.domain == AF_INET && salen >= sizeof(struct sockaddr_in)) {
      fam = AF_INET;
      memcpy(sa, &fam, sizeof fam);
    } else if (fam == AF_UNSPEC && c.domain == AF_INET6) {
      keep_name = false;
    }
    if (keep_name) {
      if (fam != AF_INET && fam != AF_INET6) return -EAFNOSUPPORT;
      bool allowed = false;
      int rule = DecideIp(sa, salen, &allowed, c.denial->address, sizeof c.denial->address);
      if (rule == -3) return -EINVAL;
      bool dgram = c.type == SOCK_DGRAM && (c.protocol == 0 || c.protocol == IPPROTO_UDP);
      if (!allowed || !dgram) {
        c.denial->rule = allowed ? -2 : rule;
        snprintf(c.denial->reason, sizeof c.denial->reason, "%s",
                 allowed ? "only TCP and UDP sockets reach out under network rules" : "");
        return kDenied;
      }
      if (!c.host) {
        // The sandbox's own UDP socket: replaced by one of the host, connected to this peer.
        int made = -1;
        auto act = [this](const std::function<int64_t()> &fn) { return Act(fn); };
        int64_t r = HostSocket(act, c.sock.fd, c.domain, c.type, c.protocol, false,
                               reinterpret_cast<struct sockaddr *>(sa), (socklen_t)salen, &made);
        Fd h(made);
        if (r != 0) return r < 0 ? r : -EINVAL;
        int64_t ir =
            Inject(c.listener, c.req.id, h.fd, c.fdnum, Cloexec(c.tid, c.fdnum), c.nonblock);
        if (ir < 0) return ir == -ENOENT ? kGone : ir;
        c.sock = std::move(h);
        c.host = true;
        target = c.sock.fd;
      }
    }
  } else if (a.name_given && c.domain == AF_UNIX) {
    std::string path;
    bool abstract = false;
    if (fam != AF_UNIX || salen <= offsetof(struct sockaddr_un, sun_path)) return -EINVAL;
    ParseUnix(sa, salen, &path, &abstract);
    UnixDisplay(path, abstract, c.denial->address, sizeof c.denial->address);
    c.denial->rule = -2;
    if (abstract || !UnixAllowed(path)) {
      if (!abstract) {
        int o = Resolve(c, path);
        if (o == -ESRCH) return kGone;
        if (o < 0 && o != -ECONNREFUSED) return o;  // as for connect (ConnectUnix)
        if (o >= 0) close(o);
      }
      snprintf(c.denial->reason, sizeof c.denial->reason, "%s",
               abstract ? "abstract unix sockets are denied under network rules"
                        : "a unix socket path no allowUnixSocket() names");
      return kDenied;
    }
    int o = Resolve(c, path);
    if (o == -ESRCH) return kGone;
    if (o < 0) return o;
    via_obj.reset(o);
    salen = ProcFdAddress(o, &via);
    memcpy(sa, &via, salen);
  } else if (a.name_given) {
    snprintf(c.denial->address, sizeof c.denial->address, "family %u", fam);
    c.denial->rule = -2;
    snprintf(c.denial->reason, sizeof c.denial->reason,
             "an address family network rules do not cover");
    return kDenied;
  }

  // fds passed along: the caller's fd numbers become our copies of those files.
  std::vector<Fd> passed;
  if (!control.empty()) {
    struct msghdr cm;
    memset(&cm, 0, sizeof cm);
    cm.msg_control = control.data();
    cm.msg_controllen = control.size();
    const uint8_t *end = control.data() + control.size();
    // Checked before any fd is pulled: the kernel takes at most SCM_MAX_FD fds in one message.
    size_t fds = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&cm); h; h = CMSG_NXTHDR(&cm, h)) {
      if (h->cmsg_len < CMSG_LEN(0) || reinterpret_cast<uint8_t *>(h) + h->cmsg_len > end)
        return -EINVAL;
      // An allowlist: fds (SCM_RIGHTS) only. Anything else asks the kernel for something on the
      // sender's credentials (SO_MARK, IP_RETOPTS source routes, SCM_CREDENTIALS, ...), and the
      // sender would be the monitor, not the caller: EPERM, what the kernel tells the caller.
      if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) return -EPERM;
      fds += (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      if (fds > kScmMaxFd) return -EINVAL;
    }
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&cm); h; h = CMSG_NXTHDR(&cm, h)) {
      size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      uint8_t *p = CMSG_DATA(h);
      for (size_t i = 0; i < n; i++) {
        int num;
        memcpy(&num, p + i * sizeof(int), sizeof num);
        int mine = PidfdGetfd(c.task, num);
        if (mine < 0) return -EBADF;
        passed.emplace_back(mine);
        memcpy(p + i * sizeof(int), &mine, sizeof mine);
      }
    }
  }

  struct iovec liov = {data.data(), data.size()};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  if (keep_name) {
    mh.msg_name = sa;
    mh.msg_namelen = (socklen_t)salen;
  }
  mh.msg_iov = &liov;
  mh.msg_iovlen = 1;
  mh.msg_control = control.empty() ? nullptr : control.data();
  mh.msg_controllen = control.size();
  // The caller's flags, allowlisted (MSG_FASTOPEN never gets here: the filter answers it).
  int flags =
      (a.flags & (MSG_OOB | MSG_EOR | MSG_MORE | MSG_CONFIRM)) | MSG_DONTWAIT | MSG_NOSIGNAL;
  int64_t r = Act([&]() -> int64_t {
    ssize_t n = sendmsg(target, &mh, flags);
    return n >= 0 ? n : -errno;
  });
  if (r >= 0) return r;
  int err = (int)-r;
  if ((err == EAGAIN || err == EWOULDBLOCK) && !c.nonblock && !(a.flags & MSG_DONTWAIT)) {
    c.wait_fd.reset(fcntl(target, F_DUPFD_CLOEXEC, 3));
    if (c.wait_fd.fd >= 0) return kWouldBlock;
  }
  // The kernel signals the sender on EPIPE unless MSG_NOSIGNAL: the sender is the caller.
  if (err == EPIPE && !(a.flags & MSG_NOSIGNAL))
    syscall(SYS_pidfd_send_signal, c.task, SIGPIPE, nullptr, 0);
  return -err;
}

NetOutcome NetProxy::Send(Call &c) {
  const auto &d = c.req.data;
  auto finish = [&](int64_t r, int64_t done) -> NetOutcome {
    if (r == kGone) return NetOutcome::kAnswered;
    if (r == kDenied) {
      if (done > 0 && cfg_.deny_errno > 0) return c.Answer(done);
      if (cfg_.deny_errno > 0) return c.Answer(-cfg_.deny_errno);
      return NetOutcome::kDenied;
    }
    if (r == kWouldBlock) {
      if (done > 0) return c.Answer(done);
      auto w = std::make_unique<NetPending>();
      w->kind = NetPending::Kind::kRetry;
      memcpy(w->req, &c.req, sizeof w->req);
      w->wait_fd = c.wait_fd.release();
      w->deadline_ns = SendTimeoutDeadline(w->wait_fd);
      *c.pending = std::move(w);
      return NetOutcome::kPending;
    }
    return c.Answer(r);
  };
  uint32_t bit = NetBitOf(d.nr);
  if (bit == kNetSendto) {
    struct iovec iov = {reinterpret_cast<void *>(static_cast<uintptr_t>(d.args[1])),
                        (size_t)d.args[2]};
    SendArgs a;
    a.name_given = d.args[4] != 0;
    a.name = d.args[4];
    a.namelen = (int)(uint32_t)d.args[5];
    a.iov = &iov;
    a.iovcnt = 1;
    a.flags = (int)d.args[3];
    return finish(SendOne(c, a), 0);
  }
  // sendmsg: one msghdr; sendmmsg: up to 1024 mmsghdr, each answered in its msg_len.
  bool many = bit == kNetSendmmsg;
  unsigned count = many ? std::min((unsigned)(uint32_t)d.args[2], kMaxMmsg) : 1;
  int flags = (int)(many ? d.args[3] : d.args[2]);
  int64_t done = 0;
  size_t bytes =
      0;  // one sendmmsg moves at most 4 x kMaxData through the monitor (the rest: a short count)
  for (unsigned i = 0; i < count && bytes < 4 * kMaxData; i++) {
    uint64_t at = d.args[1] + (uint64_t)i * sizeof(struct mmsghdr);
    struct msghdr m;
    if (!ReadMem(c.tid, at, &m, sizeof m))
      return finish(c.Valid() ? (done ? done : -EFAULT) : kGone, 0);
    if (m.msg_iovlen > kMaxIov) return finish(done ? done : -EMSGSIZE, 0);
    std::vector<struct iovec> iov(m.msg_iovlen);
    if (!iov.empty() && !ReadMem(c.tid, reinterpret_cast<uintptr_t>(m.msg_iov), iov.data(),
                                 iov.size() * sizeof(struct iovec))) {
      return finish(c.Valid() ? (done ? done : -EFAULT) : kGone, 0);
    }
    SendArgs a;
    a.name_given = m.msg_name != nullptr && m.msg_namelen != 0;
    a.name = reinterpret_cast<uintptr_t>(m.msg_name);
    a.namelen = (int)m.msg_namelen;
    a.iov = iov.data();
    a.iovcnt = iov.size();
    a.control = reinterpret_cast<uintptr_t>(m.msg_control);
    a.controllen = m.msg_controllen;
    a.flags = flags;
    int64_t r = SendOne(c, a);
    if (r < 0) {
      if (r == kGone || r == kDenied || r == kWouldBlock || done == 0) return finish(r, done);
      return c.Answer(done);  // what was sent before counts
    }
    if (!many) return c.Answer(r);
    bytes += (size_t)r;
    unsigned len = (unsigned)r;
    if (!WriteMem(c.tid, at + offsetof(struct mmsghdr, msg_len), &len, sizeof len))
      return c.Answer(done ? done : -EFAULT);
    done++;
  }
  return c.Answer(done);
}

}  // namespace sbx
