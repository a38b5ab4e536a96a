// capless.cc: see capless.h.
#include "capless.h"

#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace sbx {

int KeepOnlyCapabilities(const int *keep, int n) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};  // pid 0: this thread
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) return -errno;
  uint32_t want[2] = {0, 0};
  for (int i = 0; i < n; i++) want[keep[i] / 32] |= 1u << (keep[i] % 32);
  for (int i = 0; i < 2; i++) {
    data[i].permitted &= want[i];
    data[i].effective &= want[i];
    data[i].inheritable = 0;
  }
  hdr.pid = 0;
  return syscall(SYS_capset, &hdr, data) == 0 ? 0 : -errno;
}

bool CaplessThread::Start() {
  int err = pthread_create(&thread_, nullptr, &CaplessThread::Main, this);
  if (err != 0) {
    errno = err;
    return false;
  }
  started_ = true;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return ready_; });
  return true;
}

void CaplessThread::Stop() {
  if (!started_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  pthread_join(thread_, nullptr);
  started_ = false;
}

bool CaplessThread::Run(const std::function<void()> &fn) {
  std::lock_guard<std::mutex> one(run_mu_);
  std::unique_lock<std::mutex> lock(mu_);
  if (!started_ || !capless_ || stop_) return false;
  job_ = &fn;
  done_ = false;
  cv_.notify_all();
  cv_.wait(lock, [this] { return done_; });
  return true;
}

void *CaplessThread::Main(void *self) {
  static_cast<CaplessThread *>(self)->Loop();
  return nullptr;
}

void CaplessThread::Loop() {
  prctl(PR_SET_NAME, "sbx-capless", 0, 0, 0);
  bool capless = KeepOnlyCapabilities(nullptr, 0) == 0;
  std::unique_lock<std::mutex> lock(mu_);
  capless_ = capless;
  ready_ = true;
  cv_.notify_all();
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || job_ != nullptr; });
    if (stop_) return;
    const std::function<void()> *job = job_;
    lock.unlock();
    (*job)();
    lock.lock();
    job_ = nullptr;
    done_ = true;
    cv_.notify_all();
  }
}

}  // namespace sbx
