// monitor.cc: the one monitor thread of an executor process. It waits (epoll) on every sandbox's
// seccomp user-notification listener and answers each notification:
//   - the sandbox's first execveat carrying SBX_EXEC_MAGIC on the exec fd: CONTINUE (the exec
//     that starts the target; only register args are looked at, so there is no TOCTOU);
//   - a second such execveat: the first failed; arg 3 holds -errno (reported as exec_failed);
//   - in learning mode (learn.h), a call the filter sent here for its default action: CONTINUE,
//     and the (syscall, chosen register args) fact is reported to JS the first time it is seen;
//   - with notify hooks (hooks.h), a call a notifySyscall() rule sent here: reported to JS and
//     answered when JS replies (monitorHookReply) or, at the hook timeout, the sandbox is killed;
//   - anything else: a violation: the sandbox's init is SIGKILLed through its pidfd (the whole
//     pid namespace dies with it), the call is never answered (so it never returns), and the
//     syscall is reported to JS.
// In sandbox-me-here mode (watched with execFd -1) no exec is expected: every notification,
// a magic execveat included, is a violation.
// Reports reach JS through a thread-safe function; the thread never calls into V8.
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "bindings.h"
#include "capless.h"
#include "errors.h"
#include "hooks.h"
#include "learn.h"
#include "netproxy.h"
#include "protocol.h"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

namespace sbx {
namespace {

#if defined(__x86_64__)
const uint32_t kNativeAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
const uint32_t kNativeAuditArch = AUDIT_ARCH_AARCH64;
#endif

const uint64_t kWakeKey = UINT64_MAX;
// epoll keys of network calls waiting for a socket (netproxy.h NetPending): this bit + a counter.
const uint64_t kPendingBit = 1ULL << 40;
// Waiting network calls one sandbox may have at once; more are answered EAGAIN.
const size_t kMaxPendingPerSandbox = 256;

enum class EventType {
  kExec,
  kExecFailed,
  kViolation,
  kClosed,
  kLearn,
  kLearnLimit,
  kHook,
  kHookTimeout
};

struct Event {
  EventType type;
  uint32_t id;
  uint32_t pid = 0;
  int32_t nr = 0;
  uint32_t arch = 0;
  uint64_t ip = 0;
  uint64_t args[6] = {0, 0, 0, 0, 0, 0};
  int err = 0;
  bool network = false;  // a destination the network rules deny (netproxy.cc)
  NetDenial denial = NetDenial();
  uint64_t notif = 0;  // kHook, kHookTimeout: the notification id the reply names
  uint64_t at_ns = 0;  // kExec: CLOCK_MONOTONIC when the exec was let through (the trace)
};

struct Entry {
  int listener = -1;  // owned
  int pidfd = -1;     // owned (a dup of the executor's)
  uint32_t exec_fd = 0;
  bool exec_expected = true;  // false in sandbox-me-here mode: no exec comes, all is a violation
  bool exec_seen = false;
  bool killed = false;
  int kill_signal =
      SIGKILL;  // what ends the sandbox's tree through pidfd (SIGTERM: a subreaper init)
  std::shared_ptr<NetProxy> net;       // network rules (null: none)
  size_t pending = 0;                  // its network calls waiting in pending_
  std::shared_ptr<LearnConfig> learn;  // learning mode (null: off)
  std::set<LearnFact> facts;           // learning: the facts reported so far
  std::shared_ptr<HookConfig> hook;    // notify hooks (null: none)
  HookWaits hook_waits;                // hooked calls waiting for JS's answer
};

// A network call waiting for a socket to become writable (netproxy.h).
struct Pending {
  uint32_t sandbox;
  std::unique_ptr<NetPending> op;
};

// Builds the JS object of a report.
napi_value ToObject(Napi::Env env, const Event &data) {
  Napi::Object o = Napi::Object::New(env);
  static const char *names[] = {"exec",  "exec_failed", "violation", "closed",
                                "learn", "learn_limit", "hook",      "hook_timeout"};
  o.Set("type", names[static_cast<int>(data.type)]);
  o.Set("id", data.id);
  o.Set("pid", data.pid);
  o.Set("nr", data.nr);
  o.Set("arch", data.arch);
  o.Set("ip", Napi::BigInt::New(env, data.ip));
  Napi::Array args = Napi::Array::New(env, 6);
  for (uint32_t i = 0; i < 6; i++) args.Set(i, Napi::BigInt::New(env, data.args[i]));
  o.Set("args", args);
  o.Set("errno", data.err);
  if (data.type == EventType::kHook || data.type == EventType::kHookTimeout)
    o.Set("notif", Napi::BigInt::New(env, data.notif));
  if (data.type == EventType::kExec) o.Set("atNs", Napi::BigInt::New(env, data.at_ns));
  if (data.network) {
    o.Set("address", data.denial.address);
    o.Set("netRule", data.denial.rule);
    o.Set("netReason", data.denial.reason);
  }
  return o;
}

class Monitor {
 public:
  Monitor(Napi::Env env, Napi::Function callback) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epoll_ < 0 || wake_ < 0) ThrowErrno(env, errno, "epoll_create1/eventfd");
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeKey;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
    struct seccomp_notif_sizes sizes = {};
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) == 0) sizes_ = sizes;
    tsfn_ = Napi::ThreadSafeFunction::New(env, callback, "sbx.monitor", 0, 1);
    tsfn_.Unref(env);
    if (pthread_create(&thread_, nullptr, &Monitor::ThreadMain, this) != 0)
      ThrowErrno(env, errno, "pthread_create(monitor)");
  }

  void Stop() {
    stop_ = true;
    uint64_t one = 1;
    if (write(wake_, &one, sizeof one) < 0) { /* the thread also stops on the next event */
    }
    pthread_join(thread_, nullptr);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto &kv : entries_) CloseEntry(kv.second);
    entries_.clear();
    pending_.clear();
    tsfn_.Release();
    close(epoll_);
    close(wake_);
  }

  // Takes ownership of listener; duplicates pidfd. exec_fd < 0: no magic exec is expected.
  // net: the sandbox's network rules (netproxy.h), or null.
  // kill_signal: what a violation sends the init (SIGTERM for a subreaper init). learn: learning
  // mode (learn.h), or null.
  void Watch(Napi::Env env, uint32_t id, int listener, int pidfd, int exec_fd,
             std::shared_ptr<NetProxy> net, int kill_signal, std::shared_ptr<LearnConfig> learn,
             std::shared_ptr<HookConfig> hook) {
    // Only a seccomp listener knows this ioctl; for an id no notification has it says ENOENT.
    // (In sandbox-me-here mode the sandboxee sends the fd: make sure it is one.)
    uint64_t no_such_id = 0;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &no_such_id) == 0 || errno != ENOENT) {
      int err = errno == ENOENT ? EINVAL : errno;
      close(listener);
      ThrowErrno(
          env, err,
          "monitorWatch: the fd is not a seccomp listener (ioctl SECCOMP_IOCTL_NOTIF_ID_VALID)");
    }
    Entry e;
    e.listener = listener;
    e.pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
    e.exec_expected = exec_fd >= 0;
    e.exec_fd = exec_fd >= 0 ? (uint32_t)exec_fd : 0;
    e.net = std::move(net);
    e.kill_signal = kill_signal;
    e.learn = std::move(learn);
    e.hook = std::move(hook);
    if (e.pidfd < 0) {
      close(listener);
      ThrowErrno(env, errno, "fcntl(pidfd, F_DUPFD_CLOEXEC)");
    }
    // Wake the supervisor synchronously: ~6 µs per notification instead of ~120 µs here.
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    std::lock_guard<std::mutex> lock(mu_);
    entries_[id] = e;
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, listener, &ev) != 0) {
      int err = errno;
      CloseEntry(entries_[id]);
      entries_.erase(id);
      ThrowErrno(env, err, "epoll_ctl(ADD listener)");
    }
  }

  void Unwatch(uint32_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    epoll_ctl(epoll_, EPOLL_CTL_DEL, it->second.listener, nullptr);
    CloseEntry(it->second);
    entries_.erase(it);
    DropPending(id);
  }

  // JS's answer to a hooked call: action 0 CONTINUE, 1 fail with -err, 2 kill the sandbox (the
  // call is never answered). False when that call no longer waits (answered, timed out, the
  // sandbox killed or gone); ENOENT from the kernel (the caller died meanwhile) is not an error.
  bool HookReply(uint32_t id, uint64_t notif, int action, int err) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    Entry &e = it->second;
    if (e.killed || !e.hook_waits.Take(notif)) return false;
    if (action == 2) {
      syscall(SYS_pidfd_send_signal, e.pidfd, e.kill_signal, nullptr, 0);
      e.killed = true;
      e.hook_waits.Clear();
      return true;
    }
    alignas(8) unsigned char resp_buf[256];
    memset(resp_buf, 0, sizeof resp_buf);
    struct seccomp_notif_resp *resp = reinterpret_cast<struct seccomp_notif_resp *>(resp_buf);
    resp->id = notif;
    if (action == 0)
      resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    else
      resp->error = -err;
    ioctl(e.listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
    return true;
  }

 private:
  static void *ThreadMain(void *self) {
    prctl(PR_SET_NAME, "sbx-monitor", 0, 0, 0);
    // This thread reads sandboxees (pidfd_getfd, process_vm_readv, /proc/<pid>/root and fdinfo),
    // kills them and answers their notifications; it carries out nothing for them (that is each
    // sandbox's own acting thread's, capless.h: the sandbox's host ids, no capabilities). Of the executor's capabilities it keeps what reading and
    // killing a sandbox of another uid without a user namespace of ours needs (landlock
    // isolation as root); inside a sandbox's user namespace, which the executor's uid owns,
    // nothing is needed. docs/security.md "The monitor's privileges".
    // CAP_SETUID/CAP_SETGID stay in its permitted set only, never effective here: the acting
    // thread of each sandbox (capless.h), which it creates, raises them once to take on the
    // sandbox's ids, and thereby loses every capability.
    static const int keep[] = {CAP_SYS_PTRACE, CAP_KILL, CAP_DAC_READ_SEARCH};
    static const int keep_permitted[] = {CAP_SETUID, CAP_SETGID};
    if (KeepOnlyCapabilities(keep, 3, keep_permitted, 2) !=
        0) { /* a thread that cannot shed capabilities keeps them */
    }
    static_cast<Monitor *>(self)->Loop();
    return nullptr;
  }

  void Loop() {
    struct epoll_event evs[16];
    while (!stop_) {
      int n = epoll_wait(epoll_, evs, 16, NextTimeoutMs());
      ExpirePending();
      ExpireHooks();
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      for (int i = 0; i < n && !stop_; i++) {
        if (evs[i].data.u64 == kWakeKey) {
          uint64_t v;
          if (read(wake_, &v, sizeof v) < 0) { /* nothing to drain */
          }
          continue;
        }
        if (evs[i].data.u64 & kPendingBit) {
          ResumePending(evs[i].data.u64);
          continue;
        }
        Handle(static_cast<uint32_t>(evs[i].data.u64), evs[i].events);
      }
    }
  }

  void Handle(uint32_t id, uint32_t events) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    Entry &e = it->second;
    if (events & EPOLLIN) Answer(id, e);
    if (events & (EPOLLHUP | EPOLLERR)) {
      // Every task using the filter is gone.
      epoll_ctl(epoll_, EPOLL_CTL_DEL, e.listener, nullptr);
      CloseEntry(e);
      entries_.erase(it);
      DropPending(id);
      Post(new Event{EventType::kClosed, id});
    }
  }

  void Answer(uint32_t id, Entry &e) {
    // The kernel's struct sizes may exceed our headers': use the sizes it reports.
    alignas(8) unsigned char req_buf[256], resp_buf[256];
    memset(req_buf, 0, sizeof req_buf);
    memset(resp_buf, 0, sizeof resp_buf);
    if (sizes_.seccomp_notif > sizeof req_buf || sizes_.seccomp_notif_resp > sizeof resp_buf)
      return;
    struct seccomp_notif *req = reinterpret_cast<struct seccomp_notif *>(req_buf);
    struct seccomp_notif_resp *resp = reinterpret_cast<struct seccomp_notif_resp *>(resp_buf);
    if (ioctl(e.listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) return;  // ENOENT: caller died
    resp->id = req->id;

    const struct seccomp_data &d = req->data;
    bool is_exec = e.exec_expected && d.arch == AUDIT_ARCH_X86_64 && d.nr == __NR_execveat &&
                   (uint32_t)d.args[5] == SBX_EXEC_MAGIC && d.args[0] == e.exec_fd;
    Event *ev = new Event{EventType::kViolation, id};
    ev->pid = req->pid;
    ev->nr = d.nr;
    ev->arch = d.arch;
    ev->ip = d.instruction_pointer;
    for (int i = 0; i < 6; i++) ev->args[i] = d.args[i];

    // Notify hooks: a call a notifySyscall() rule sent here waits, parked, for JS's answer.
    if (!is_exec && e.hook && !e.killed && d.arch == kNativeAuditArch &&
        RunSeccompProgram(e.hook->program, d) == e.hook->hook_ret) {
      e.hook_waits.Add(req->id,
                       HookWait{NetNowNs() + (int64_t)e.hook->timeout_ms * 1000000, req->pid, d});
      ev->type = EventType::kHook;
      ev->notif = req->id;
      Post(ev);
      return;
    }

    // Network rules: the calls the policy runs are decided and carried out by netproxy.cc; only
    // a denied destination goes on below, as a network violation.
    if (!is_exec && e.net && !e.killed && d.arch == kNativeAuditArch &&
        (e.net->config().syscalls & NetBitOf(d.nr))) {
      std::unique_ptr<NetPending> wait;
      NetOutcome o = e.net->Handle(e.listener, *req, &ev->denial, &wait);
      if (o == NetOutcome::kPending) AddPending(id, e, std::move(wait));
      if (o != NetOutcome::kDenied) {
        delete ev;
        return;
      }
      ev->network = true;
    }

    // Learning: a call the filter left to its default action runs, and its fact is reported once.
    if (!is_exec && e.learn && !e.killed && d.arch == kNativeAuditArch &&
        RunSeccompProgram(e.learn->program, d) == e.learn->learn_ret) {
      LearnFact fact = LearnFactOf(*e.learn, d);
      bool fresh = e.facts.insert(fact).second;
      if (fresh && e.facts.size() > e.learn->max_facts) {
        // A bounded record: a program that keeps inventing new argument values is stopped.
        syscall(SYS_pidfd_send_signal, e.pidfd, SIGKILL, nullptr, 0);
        e.killed = true;
        ev->type = EventType::kLearnLimit;
        Post(ev);
        return;
      }
      resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      ioctl(e.listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
      if (!fresh) {
        delete ev;
        return;
      }
      ev->type = EventType::kLearn;
      for (int i = 0; i < 6; i++) ev->args[i] = fact.args[i];
      Post(ev);
      return;
    }

    if (is_exec && !e.exec_seen) {
      e.exec_seen = true;
      ev->type = EventType::kExec;
      // Stamped before the answer: the target cannot exit (nor its EXITED be read) earlier.
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      ev->at_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
      resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      ioctl(e.listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
      Post(ev);
      return;
    }
    if (is_exec) {
      ev->type = EventType::kExecFailed;
      ev->err = -(int)(int64_t)d.args[3];
    }
    // The violating call must never return: no answer is sent, so the task stays parked in the
    // kernel until the SIGKILL of the sandbox's init tears the pid namespace down and it dies.
    if (!e.killed) syscall(SYS_pidfd_send_signal, e.pidfd, e.kill_signal, nullptr, 0);
    e.killed = true;
    Post(ev);
  }

  // A network call waits for its socket: epoll it under a pending key.
  void AddPending(uint32_t id, Entry &e, std::unique_ptr<NetPending> op) {
    uint64_t notif = reinterpret_cast<const struct seccomp_notif *>(op->req)->id;
    if (e.pending >= kMaxPendingPerSandbox) {
      NetReply(e.listener, notif, -EAGAIN);
      return;
    }
    uint64_t key = kPendingBit | (next_pending_++ & (kPendingBit - 1));
    struct epoll_event ev = {};
    ev.events = EPOLLOUT;
    ev.data.u64 = key;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, op->wait_fd, &ev) != 0) {
      NetReply(e.listener, notif, -errno);
      return;
    }
    e.pending++;
    pending_[key] = Pending{id, std::move(op)};
  }

  // A waiting network call's socket is writable (or failed): finish it.
  void ResumePending(uint64_t key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(key);
    if (it == pending_.end()) return;
    Pending p = std::move(it->second);
    pending_.erase(it);
    epoll_ctl(epoll_, EPOLL_CTL_DEL, p.op->wait_fd, nullptr);
    auto en = entries_.find(p.sandbox);
    if (en == entries_.end()) return;
    Entry &e = en->second;
    e.pending--;
    if (e.killed || !e.net) return;
    const auto &req = *reinterpret_cast<const struct seccomp_notif *>(p.op->req);
    Event *ev = new Event{EventType::kViolation, p.sandbox};
    ev->pid = req.pid;
    ev->nr = req.data.nr;
    ev->arch = req.data.arch;
    ev->ip = req.data.instruction_pointer;
    for (int i = 0; i < 6; i++) ev->args[i] = req.data.args[i];
    std::unique_ptr<NetPending> again;
    NetOutcome o = e.net->Resume(e.listener, *p.op, &ev->denial, &again);
    if (o == NetOutcome::kPending) AddPending(p.sandbox, e, std::move(again));
    if (o != NetOutcome::kDenied) {
      delete ev;
      return;
    }
    ev->network = true;
    syscall(SYS_pidfd_send_signal, e.pidfd, e.kill_signal, nullptr, 0);
    e.killed = true;
    Post(ev);
  }

  // Milliseconds until the first waiting network call's deadline (-1: none).
  int PendingTimeoutMs() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t first = 0;
    for (auto &kv : pending_) {
      int64_t d = kv.second.op->deadline_ns;
      if (d && (!first || d < first)) first = d;
    }
    if (!first) return -1;
    int64_t ms = (first - NetNowNs() + 999999) / 1000000;
    return ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
  }

  // The epoll timeout: the first deadline of a waiting network call or hooked call (-1: none).
  int NextTimeoutMs() {
    int net = PendingTimeoutMs();
    std::lock_guard<std::mutex> lock(mu_);
    int64_t first = 0;
    for (auto &kv : entries_) {
      int64_t d = kv.second.hook_waits.First();
      if (d && (!first || d < first)) first = d;
    }
    if (!first) return net;
    int64_t ms = (first - NetNowNs() + 999999) / 1000000;
    int hook = ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
    return net < 0 || hook < net ? hook : net;
  }

  // A handler that did not answer in time: the sandbox is killed (the call stays unanswered, as a
  // violation's), and JS is told which call it was.
  void ExpireHooks() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = NetNowNs();
    for (auto &kv : entries_) {
      Entry &e = kv.second;
      uint64_t notif = 0;
      const HookWait *w = e.killed ? nullptr : e.hook_waits.Expired(now, &notif);
      if (!w) continue;
      Event *ev = new Event{EventType::kHookTimeout, kv.first};
      ev->notif = notif;
      ev->pid = w->pid;
      ev->nr = w->data.nr;
      ev->arch = w->data.arch;
      ev->ip = w->data.instruction_pointer;
      for (int i = 0; i < 6; i++) ev->args[i] = w->data.args[i];
      syscall(SYS_pidfd_send_signal, e.pidfd, e.kill_signal, nullptr, 0);
      e.killed = true;
      e.hook_waits.Clear();
      Post(ev);
    }
  }

  // Answers the waiting network calls whose deadline passed (their SO_SNDTIMEO ran out).
  void ExpirePending() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = NetNowNs();
    for (auto it = pending_.begin(); it != pending_.end();) {
      NetPending &op = *it->second.op;
      if (!op.deadline_ns || op.deadline_ns > now) {
        ++it;
        continue;
      }
      epoll_ctl(epoll_, EPOLL_CTL_DEL, op.wait_fd, nullptr);
      auto en = entries_.find(it->second.sandbox);
      if (en != entries_.end()) {
        en->second.pending--;
        if (en->second.net && !en->second.killed) en->second.net->Expire(en->second.listener, op);
      }
      it = pending_.erase(it);
    }
  }

  // Forgets (closes) the waiting network calls of a sandbox that is gone.
  void DropPending(uint32_t id) {
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.sandbox != id) {
        ++it;
        continue;
      }
      epoll_ctl(epoll_, EPOLL_CTL_DEL, it->second.op->wait_fd, nullptr);
      it = pending_.erase(it);
    }
  }

  void CloseEntry(Entry &e) {
    if (e.listener >= 0) close(e.listener);
    if (e.pidfd >= 0) close(e.pidfd);
    e.listener = e.pidfd = -1;
  }

  void Post(Event *ev) {
    napi_status st = tsfn_.NonBlockingCall(ev, [](Napi::Env env, Napi::Function fn, Event *data) {
      std::unique_ptr<Event> owned(data);
      // Node may deliver a late report while it tears the environment down, when JS can no
      // longer run: nothing is waiting for it then, so it is dropped.
      if (env == nullptr || fn.IsEmpty()) return;
      napi_value obj = nullptr;
      try {
        obj = ToObject(env, *data);
      } catch (...) {
        return;
      }
      CallIntoJs(env, fn, obj);
    });
    if (st != napi_ok) delete ev;
  }

  int epoll_ = -1, wake_ = -1;
  pthread_t thread_{};
  volatile bool stop_ = false;
  std::mutex mu_;
  std::map<uint32_t, Entry> entries_;
  std::map<uint64_t, Pending> pending_;
  uint64_t next_pending_ = 0;
  struct seccomp_notif_sizes sizes_ = {
      sizeof(struct seccomp_notif), sizeof(struct seccomp_notif_resp), sizeof(struct seccomp_data)};
  Napi::ThreadSafeFunction tsfn_;
};

Monitor *g_monitor = nullptr;

// monitorStart(callback(event)): starts the thread once per addon instance.
Napi::Value MonitorStart(const Napi::CallbackInfo &info) {
  const char *usage = "monitorStart(callback: (event) => void)";
  if (info.Length() < 1 || !info[0].IsFunction()) ThrowUsage(info.Env(), usage);
  if (g_monitor) ThrowUsage(info.Env(), "monitorStart() called twice");
  g_monitor = new Monitor(info.Env(), info[0].As<Napi::Function>());
  info.Env().AddCleanupHook([]() {
    if (g_monitor) {
      g_monitor->Stop();
      delete g_monitor;
      g_monitor = nullptr;
    }
  });
  return info.Env().Undefined();
}

// monitorWatch(id, listenerFd (taken), pidfd (borrowed), execFd (-1: sandbox-me-here, no exec),
//              networkTable?, killSignal? (default SIGKILL; SIGTERM for a subreaper init), learnTable?)
Napi::Value MonitorWatch(const Napi::CallbackInfo &info) {
  const char *usage = "monitorWatch(id: number, listenerFd: number, pidfd: number, execFd: number)";
  if (!g_monitor) ThrowUsage(info.Env(), "monitorWatch() before monitorStart()");
  uint32_t id = ArgUint32(info, 0, usage);
  int listener = ArgInt(info, 1, usage), pidfd = ArgInt(info, 2, usage),
      exec_fd = ArgInt(info, 3, usage);
  // Optional 5th argument: the network rule table (network.ts encodeNetworkTable).
  std::shared_ptr<NetProxy> net;
  if (info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsNull()) {
    Napi::Buffer<uint8_t> table =
        ArgBuffer(info, 4, "monitorWatch(id, listenerFd, pidfd, execFd, networkTable?: Buffer)");
    NetConfig cfg;
    std::string err;
    uint64_t cookie = HostNetnsCookie();
    if (!ParseNetConfig(table.Data(), table.Length(), &cfg, &err)) {
      close(listener);
      ThrowUsage(info.Env(), err.c_str());
    }
    if (cookie == 0) {
      close(listener);
      ThrowErrno(info.Env(), ENOPROTOOPT,
                 "getsockopt(SO_NETNS_COOKIE): network rules need Linux 5.14 or later");
    }
    net = std::make_shared<NetProxy>(std::move(cfg), cookie, true);
  }
  int kill_signal = SIGKILL;
  if (info.Length() > 5 && !info[5].IsUndefined()) {
    kill_signal = ArgInt(info, 5,
                         "monitorWatch(id, listenerFd, pidfd, execFd, networkTable?, killSignal?: "
                         "SIGKILL | SIGTERM)");
    // 0: the monitor signals nothing (pidfd_send_signal of 0 only probes); the executor ends
    // the tree itself once it has the violating thread's stack (sandbox/stack-trace.ts).
    if (kill_signal != SIGKILL && kill_signal != SIGTERM && kill_signal != 0) {
      close(listener);
      ThrowUsage(info.Env(), "monitorWatch: killSignal must be 9 (SIGKILL), 15 (SIGTERM) or 0");
    }
  }
  // Optional 6th argument: learning mode (learn/table.ts encodeLearnTable).
  std::shared_ptr<LearnConfig> learn;
  if (info.Length() > 6 && !info[6].IsUndefined() && !info[6].IsNull()) {
    Napi::Buffer<uint8_t> table =
        ArgBuffer(info, 6,
                  "monitorWatch(id, listenerFd, pidfd, execFd, networkTable?: Buffer, killSignal?: "
                  "number, learnTable?: Buffer)");
    learn = std::make_shared<LearnConfig>();
    std::string err;
    if (!ParseLearnConfig(table.Data(), table.Length(), learn.get(), &err)) {
      close(listener);
      ThrowUsage(info.Env(), err.c_str());
    }
  }
  // Optional 8th argument: notify hooks (sandbox/notify-hooks.ts encodeHookTable).
  std::shared_ptr<HookConfig> hook;
  if (info.Length() > 7 && !info[7].IsUndefined() && !info[7].IsNull()) {
    Napi::Buffer<uint8_t> table = ArgBuffer(info, 7,
                                            "monitorWatch(id, listenerFd, pidfd, execFd, "
                                            "networkTable?, killSignal?, learnTable?, hookTable?: "
                                            "Buffer)");
    hook = std::make_shared<HookConfig>();
    std::string err;
    if (!ParseHookConfig(table.Data(), table.Length(), hook.get(), &err)) {
      close(listener);
      ThrowUsage(info.Env(), err.c_str());
    }
  }
  g_monitor->Watch(info.Env(), id, listener, pidfd, exec_fd, std::move(net), kill_signal,
                   std::move(learn), std::move(hook));
  return info.Env().Undefined();
}

// netDecide(table, sockaddr): the monitor's decision for an IP sockaddr, { allowed, rule, address }
// or null (not one); tests hold it against policy/network.ts decideNetwork().
Napi::Value NetDecide(const Napi::CallbackInfo &info) {
  const char *usage = "netDecide(table: Buffer, sockaddr: Buffer)";
  Napi::Buffer<uint8_t> table = ArgBuffer(info, 0, usage), sa = ArgBuffer(info, 1, usage);
  NetConfig cfg;
  std::string err;
  if (!ParseNetConfig(table.Data(), table.Length(), &cfg, &err))
    ThrowUsage(info.Env(), err.c_str());
  if (sa.Length() < 2 || sa.Length() > 128) return info.Env().Null();
  NetProxy proxy(std::move(cfg), 0);
  bool allowed = false;
  char shown[160] = {0};
  int rule = proxy.DecideIp(sa.Data(), sa.Length(), &allowed, shown, sizeof shown);
  if (rule == -3) return info.Env().Null();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("allowed", allowed);
  o.Set("rule", rule);
  o.Set("address", shown);
  return o;
}

// learnRun(table, seccompData): what the monitor's learning path makes of one notification:
// { ret (the filter's return), fact: [nr, 6 recorded args] }; tests hold it against evaluate().
Napi::Value LearnRun(const Napi::CallbackInfo &info) {
  const char *usage = "learnRun(table: Buffer, seccompData: Buffer (64 bytes))";
  Napi::Buffer<uint8_t> table = ArgBuffer(info, 0, usage), raw = ArgBuffer(info, 1, usage);
  LearnConfig cfg;
  std::string err;
  if (!ParseLearnConfig(table.Data(), table.Length(), &cfg, &err))
    ThrowUsage(info.Env(), err.c_str());
  struct seccomp_data d;
  if (raw.Length() != sizeof d) ThrowUsage(info.Env(), usage);
  memcpy(&d, raw.Data(), sizeof d);
  LearnFact fact = LearnFactOf(cfg, d);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("ret", RunSeccompProgram(cfg.program, d));
  Napi::Array f = Napi::Array::New(info.Env(), 7);
  f.Set(0u, fact.nr);
  for (uint32_t i = 0; i < 6; i++) f.Set(i + 1, fact.args[i]);
  o.Set("fact", f);
  return o;
}

// monitorHookReply(id, notif: bigint, action: 0 allow | 1 errno | 2 kill, errno): JS's answer to a
// 'hook' report; false when the call no longer waits.
Napi::Value MonitorHookReply(const Napi::CallbackInfo &info) {
  const char *usage =
      "monitorHookReply(id: number, notif: bigint, action: 0 | 1 | 2, errno: number (1..4095))";
  uint32_t id = ArgUint32(info, 0, usage);
  if (info.Length() < 4 || !info[1].IsBigInt()) ThrowUsage(info.Env(), usage);
  bool lossless = false;
  uint64_t notif = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  uint32_t action = ArgUint32(info, 2, usage), err = ArgUint32(info, 3, usage);
  if (!lossless || action > 2 || (action == 1 && (err < 1 || err > 4095)))
    ThrowUsage(info.Env(), usage);
  if (!g_monitor) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), g_monitor->HookReply(id, notif, (int)action, (int)err));
}

Napi::Value MonitorUnwatch(const Napi::CallbackInfo &info) {
  if (g_monitor) g_monitor->Unwatch(ArgUint32(info, 0, "monitorUnwatch(id: number)"));
  return info.Env().Undefined();
}

}  // namespace

void InitMonitor(Napi::Env env, Napi::Object exports) {
  exports.Set("monitorStart", Napi::Function::New(env, MonitorStart, "monitorStart"));
  exports.Set("monitorWatch", Napi::Function::New(env, MonitorWatch, "monitorWatch"));
  exports.Set("monitorUnwatch", Napi::Function::New(env, MonitorUnwatch, "monitorUnwatch"));
  exports.Set("monitorHookReply", Napi::Function::New(env, MonitorHookReply, "monitorHookReply"));
  exports.Set("netDecide", Napi::Function::New(env, NetDecide, "netDecide"));
  exports.Set("learnRun", Napi::Function::New(env, LearnRun, "learnRun"));
}

}  // namespace sbx
