// monitor.cc: the one monitor thread of an executor process. It waits (epoll) on every sandbox's
// seccomp user-notification listener and answers each notification:
//   - the sandbox's first execveat carrying SBX_EXEC_MAGIC on the exec fd: CONTINUE (the exec
//     that starts the target; only register args are looked at, so there is no TOCTOU);
//   - a second such execveat: the first failed; arg 3 holds -errno (reported as exec_failed);
//   - anything else: a violation: the sandbox's init is SIGKILLed through its pidfd (the whole
//     pid namespace dies with it), the call is never answered (so it never returns), and the
//     syscall is reported to JS.
// Reports reach JS through a thread-safe function; the thread never calls into V8.
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>

#include "bindings.h"
#include "errors.h"
#include "protocol.h"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

namespace sbx {
namespace {

const uint64_t kWakeKey = UINT64_MAX;

enum class EventType { kExec, kExecFailed, kViolation, kClosed };

struct Event {
  EventType type;
  uint32_t id;
  uint32_t pid = 0;
  int32_t nr = 0;
  uint32_t arch = 0;
  uint64_t ip = 0;
  uint64_t args[6] = {0, 0, 0, 0, 0, 0};
  int err = 0;
};

struct Entry {
  int listener = -1;  // owned
  int pidfd = -1;     // owned (a dup of the executor's)
  uint32_t exec_fd = 0;
  bool exec_seen = false;
  bool killed = false;
};

// Builds the JS object of a report.
napi_value ToObject(Napi::Env env, const Event &data) {
  Napi::Object o = Napi::Object::New(env);
  static const char *names[] = {"exec", "exec_failed", "violation", "closed"};
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
    if (write(wake_, &one, sizeof one) < 0) { /* the thread also stops on the next event */ }
    pthread_join(thread_, nullptr);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto &kv : entries_) CloseEntry(kv.second);
    entries_.clear();
    tsfn_.Release();
    close(epoll_);
    close(wake_);
  }

  // Takes ownership of listener; duplicates pidfd.
  void Watch(Napi::Env env, uint32_t id, int listener, int pidfd, uint32_t exec_fd) {
    Entry e;
    e.listener = listener;
    e.pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
    e.exec_fd = exec_fd;
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
  }

 private:
  static void *ThreadMain(void *self) {
    static_cast<Monitor *>(self)->Loop();
    return nullptr;
  }

  void Loop() {
    struct epoll_event evs[16];
    while (!stop_) {
      int n = epoll_wait(epoll_, evs, 16, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      for (int i = 0; i < n && !stop_; i++) {
        if (evs[i].data.u64 == kWakeKey) {
          uint64_t v;
          if (read(wake_, &v, sizeof v) < 0) { /* nothing to drain */ }
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
      Post(new Event{EventType::kClosed, id});
    }
  }

  void Answer(uint32_t id, Entry &e) {
    // The kernel's struct sizes may exceed our headers': use the sizes it reports.
    alignas(8) unsigned char req_buf[256], resp_buf[256];
    memset(req_buf, 0, sizeof req_buf);
    memset(resp_buf, 0, sizeof resp_buf);
    if (sizes_.seccomp_notif > sizeof req_buf || sizes_.seccomp_notif_resp > sizeof resp_buf) return;
    struct seccomp_notif *req = reinterpret_cast<struct seccomp_notif *>(req_buf);
    struct seccomp_notif_resp *resp = reinterpret_cast<struct seccomp_notif_resp *>(resp_buf);
    if (ioctl(e.listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) return;  // ENOENT: caller died
    resp->id = req->id;

    const struct seccomp_data &d = req->data;
    bool is_exec = d.arch == AUDIT_ARCH_X86_64 && d.nr == __NR_execveat &&
                   (uint32_t)d.args[5] == SBX_EXEC_MAGIC && d.args[0] == e.exec_fd;
    Event *ev = new Event{EventType::kViolation, id};
    ev->pid = req->pid;
    ev->nr = d.nr;
    ev->arch = d.arch;
    ev->ip = d.instruction_pointer;
    for (int i = 0; i < 6; i++) ev->args[i] = d.args[i];

    if (is_exec && !e.exec_seen) {
      e.exec_seen = true;
      ev->type = EventType::kExec;
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
    if (!e.killed) syscall(SYS_pidfd_send_signal, e.pidfd, SIGKILL, nullptr, 0);
    e.killed = true;
    Post(ev);
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
  struct seccomp_notif_sizes sizes_ = {sizeof(struct seccomp_notif), sizeof(struct seccomp_notif_resp),
                                       sizeof(struct seccomp_data)};
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

// monitorWatch(id, listenerFd (taken), pidfd (borrowed), execFd)
Napi::Value MonitorWatch(const Napi::CallbackInfo &info) {
  const char *usage = "monitorWatch(id: number, listenerFd: number, pidfd: number, execFd: number)";
  if (!g_monitor) ThrowUsage(info.Env(), "monitorWatch() before monitorStart()");
  g_monitor->Watch(info.Env(), ArgUint32(info, 0, usage), ArgInt(info, 1, usage), ArgInt(info, 2, usage),
                   ArgUint32(info, 3, usage));
  return info.Env().Undefined();
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
}

}  // namespace sbx
