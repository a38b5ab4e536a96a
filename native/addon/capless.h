// capless.h: the thread that carries out what the monitor does on a sandbox's behalf (sockets it
// creates, connects, binds, sends on; fds it puts into a sandboxee; lookups of unix socket paths
// in the sandbox's root). Each sandbox under network rules has one: it takes on the sandbox's own
// host uid, gid and supplementary groups (raw setresuid/setresgid/setgroups: credentials are per
// thread in Linux; glibc's wrappers would change every thread of the executor) and then holds no
// capabilities at all, so the kernel judges each of those calls, charges its per-user counters
// and shows its peers the credentials it would for the sandboxee itself. The monitor thread hands
// it one job at a time and waits for it.
#pragma once
#include <pthread.h>
#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <mutex>

namespace sbx {

// A task's host credentials as the monitor takes them on: effective uid and gid, supplementary
// groups.
struct TaskIdentity {
  static constexpr int kMaxGroups = 64;  // a sandboxee has none or a few; more: not taken on
  uid_t uid = 0;
  gid_t gid = 0;
  int ngroups = 0;
  gid_t groups[kMaxGroups] = {};  // sorted, no duplicates
};

// The effective uid/gid and groups of task `tid` as this process's user namespace sees them
// (/proc/<tid>/status). False when they cannot be read.
bool ReadTaskIdentity(pid_t tid, TaskIdentity *out);

class CaplessThread {
 public:
  // Starts the thread; it takes on `as` (null: keeps the executor's ids) and drops every
  // capability before it runs anything. False (errno set) when the thread could not be created.
  bool Start(const TaskIdentity *as = nullptr);
  void Stop();
  ~CaplessThread() { Stop(); }
  // Runs fn on the thread and waits until it returned. False when fn did not run: the thread is
  // not running, or it could not take on the identity or drop its capabilities (then nothing is
  // ever run there).
  bool Run(const std::function<void()> &fn);
  // The identity it was started with (only meaningful after Start(as) with as non-null).
  const TaskIdentity &identity() const { return as_; }

 private:
  static void *Main(void *self);
  void Loop();
  bool TakeOn();

  pthread_t thread_{};
  bool started_ = false;
  bool switch_ids_ = false;
  TaskIdentity as_;
  std::mutex run_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()> *job_ = nullptr;
  bool done_ = false;
  bool stop_ = false;
  bool ready_ = false;    // the thread finished dropping (or failed to drop) its privileges
  bool capless_ = false;  // it runs as `as_` with no capabilities
};

// Keeps in the calling thread's permitted and effective sets only the capabilities of `keep` it
// has (bit numbers, e.g. CAP_SYS_PTRACE), plus those of `keep_permitted` in its permitted set
// alone (inert until raised; a thread it creates inherits them), and clears its inheritable set.
// 0 or -errno.
int KeepOnlyCapabilities(const int *keep, int n, const int *keep_permitted = nullptr, int np = 0);

}  // namespace sbx
