// capless.h: the thread that carries out what the monitor does on a sandbox's behalf (sockets it
// creates, connects, binds, sends on; fds it puts into a sandboxee) with no capabilities at all:
// its permitted, effective and inheritable sets are empty (Linux capabilities are per thread), so
// the kernel judges each of those calls as it would judge an unprivileged process of the
// executor's uid. The monitor thread hands it one job at a time and waits for it.
#pragma once
#include <pthread.h>

#include <condition_variable>
#include <functional>
#include <mutex>

namespace sbx {

class CaplessThread {
 public:
  // Starts the thread; it drops every capability before it runs anything. False (errno set) when
  // the thread could not be created.
  bool Start();
  void Stop();
  // Runs fn on the thread and waits until it returned. False when fn did not run: the thread is
  // not running, or it could not drop its capabilities (then nothing is ever run there).
  bool Run(const std::function<void()> &fn);

 private:
  static void *Main(void *self);
  void Loop();

  pthread_t thread_{};
  bool started_ = false;
  std::mutex run_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()> *job_ = nullptr;
  bool done_ = false;
  bool stop_ = false;
  bool ready_ = false;    // the thread finished dropping (or failed to drop) its capabilities
  bool capless_ = false;  // it runs with no capabilities
};

// Keeps in the calling thread's permitted and effective sets only the capabilities of `keep` it
// has (bit numbers, e.g. CAP_SYS_PTRACE), and clears its inheritable set. 0 or -errno.
int KeepOnlyCapabilities(const int *keep, int n);

}  // namespace sbx
