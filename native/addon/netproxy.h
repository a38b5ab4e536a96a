// netproxy.h: the monitor's network decisions (policy network rules, docs/architecture.md "Network rules"). No N-API
// here: the monitor thread calls it with a notification and answers or reports what it says.
#pragma once
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "capless.h"

namespace sbx {

// Bits of the syscalls the monitor decides (packages/executor/src/policy/network.ts NET_SYSCALL_BITS).
enum NetBit : uint32_t {
  kNetConnect = 1,
  kNetSendto = 2,
  kNetSendmsg = 4,
  kNetSendmmsg = 8,
  kNetListen = 16,
  kNetBind = 32
};
// Also in the syscall mask: the policy lets the sandboxee exec (execve/execveat), so a socket put in
// place keeps the close-on-exec flag of the fd it replaces (read from /proc; skipped otherwise).
constexpr uint32_t kNetExecAllowed = 1u << 31;

struct NetRule {
  uint8_t action;  // 0 allow, 1 deny, 2 dns exception
  uint8_t family;  // 4 or 6
  uint8_t prefix;
  uint8_t proto;  // 0 any
  uint16_t port;  // 0 any
  uint8_t addr[16];
};

struct NetConfig {
  uint32_t syscalls = 0;  // NetBit mask: the calls the policy runs, which the monitor decides
  int deny_errno = 0;     // 0: a denied destination is a violation; else the call fails with it
  std::vector<NetRule> rules;
  std::vector<std::string> unix_paths;
};

// Parses network.ts encodeNetworkTable(). False with *err set on a malformed table.
bool ParseNetConfig(const uint8_t *data, size_t len, NetConfig *out, std::string *err);

// The NetBit of a native syscall number (0: not a network call).
uint32_t NetBitOf(int nr);

// A denied call, for the violation report.
struct NetDenial {
  char address[160] = {
      0};         // "10.1.2.3:443", "[::1]:80", "unix:/run/x.sock", "unix:@name", "family 40"
  int rule = -1;  // the deciding rule's index; -1: no allow rule matched; -2: see reason
  char reason[96] = {0};  // set when rule is -2 (an unsupported socket type, a unix path...)
};

// A call waiting until a socket of the monitor is writable (a blocking connect, a blocking send).
struct NetPending {
  enum class Kind { kConnect, kRetry } kind = Kind::kRetry;
  alignas(8) unsigned char req[sizeof(struct seccomp_notif)] = {0};  // the notification
  int wait_fd = -1;                                                  // owned: polled for EPOLLOUT
  // kConnect: where the connected socket goes.
  uint32_t target_fd = 0;
  bool cloexec = false;
  // CLOCK_MONOTONIC ns when the caller's SO_SNDTIMEO runs out (0: none): NetProxy::Expire.
  int64_t deadline_ns = 0;
  NetPending() = default;
  NetPending(const NetPending &) = delete;
  NetPending &operator=(const NetPending &) = delete;
  ~NetPending();
};

enum class NetOutcome {
  kAnswered,  // answered (or the caller is gone): nothing more to do
  kDenied,    // a violation: not answered; the monitor kills the sandbox and reports *denial
  kPending,   // *pending waits for its wait_fd to become writable
};

class NetProxy {
 public:
  // acts: it carries out calls, on a thread of its own (capless.h) that takes on the sandbox's
  // host uid/gid/groups from the first caller and holds no capabilities (false, e.g. for DecideIp
  // only: every socket operation and fd injection is refused with EPERM).
  NetProxy(NetConfig config, uint64_t host_netns_cookie, bool acts = false);
  const NetConfig &config() const { return cfg_; }
  // Decides and carries out one notified network call.
  NetOutcome Handle(int listener, const struct seccomp_notif &req, NetDenial *denial,
                    std::unique_ptr<NetPending> *pending);
  // A pending call's socket became writable: finish it (kPending again with a new *pending).
  NetOutcome Resume(int listener, NetPending &p, NetDenial *denial,
                    std::unique_ptr<NetPending> *pending);
  // A pending call's deadline passed: answer as the kernel does when SO_SNDTIMEO runs out (a
  // connect says EINPROGRESS and goes on in the background; a send says EAGAIN).
  void Expire(int listener, NetPending &p);
  // The rule index deciding an AF_INET/AF_INET6 sockaddr (-1: none matched), -3 when it is too
  // short to be one. *display gets "1.2.3.4:80" / "[::1]:80".
  int DecideIp(const uint8_t *sa, size_t len, bool *allowed, char *display,
               size_t display_len) const;

 private:
  struct Call;
  NetOutcome Connect(Call &c);
  NetOutcome Listen(Call &c);
  NetOutcome Bind(Call &c);
  // connect()/bind(): the sockaddr (args 1, 2) copied once into sa (kMaxAddr bytes, zeroed past
  // it); its length, or -1 when the call is answered already (*out says how).
  static int CopyAddress(Call &c, uint8_t *sa, NetOutcome *out);
  NetOutcome Send(Call &c);
  NetOutcome Deny(Call &c, const char *address, int rule, const char *reason);
  struct SendArgs;
  int64_t SendOne(Call &c, const SendArgs &a);
  NetOutcome ConnectIp(Call &c, const uint8_t *sa, size_t len);
  NetOutcome ConnectUnix(Call &c, const uint8_t *sa, size_t len);
  bool UnixAllowed(const std::string &path) const;

  // A pidfd for a notifying task, from a small cache (a cached pidfd can only name that task or
  // a dead one, never another task that got the same tid).
  int TaskPidfd(pid_t tid, bool fresh);
  bool Cloexec(pid_t tid, uint32_t fd) const;
  // Starts the acting thread as the identity of the caller `tid` (once). False when the caller
  // is gone (nothing to answer).
  bool StartActor(int listener, uint64_t id, pid_t tid);
  // Runs fn (a few syscalls, returning >= 0 or -errno) on the acting thread; -EPERM when it
  // cannot run there.
  int64_t Act(const std::function<int64_t()> &fn);
  // The caller's unix socket `path`, looked up in its root by the acting thread (an O_PATH fd or
  // -errno; -ESRCH: the caller is gone).
  int Resolve(Call &c, const std::string &path);
  // Puts `fd` in place of the caller's fd `target` (from the capability-free thread): 0 or -errno
  // (-ENOENT: the caller is gone).
  int64_t Inject(int listener, uint64_t id, int fd, uint32_t target, bool cloexec, bool nonblock);

  NetConfig cfg_;
  uint64_t host_cookie_;
  bool acts_;
  std::unique_ptr<CaplessThread> actor_;
  struct CachedTask {
    pid_t tid = 0;
    int pidfd = -1;
  };
  CachedTask tasks_[8];
  unsigned next_task_ = 0;
  int uncached_ = -1;  // the last process pidfd handed out (closed on the next)

 public:
  ~NetProxy();
  NetProxy(const NetProxy &) = delete;
  NetProxy &operator=(const NetProxy &) = delete;
};

// The network namespace cookie of the calling thread's namespace (0 when the kernel cannot tell).
uint64_t HostNetnsCookie();

// Answers a notification: ret >= 0 is the call's return value, ret < 0 is -errno.
void NetReply(int listener, uint64_t id, int64_t ret);

// CLOCK_MONOTONIC in ns.
int64_t NetNowNs();

}  // namespace sbx
