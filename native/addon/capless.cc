// capless.cc: see capless.h.
#include "capless.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

namespace sbx {

namespace {

// The second number after `key` (the effective id of a "Uid:"/"Gid:" line). False if absent.
bool EffectiveId(const char *status, const char *key, unsigned long *out) {
  const char *p = strstr(status, key);
  if (!p) return false;
  char *end = nullptr;
  strtoul(p + strlen(key), &end, 10);  // real
  unsigned long v = strtoul(end, &end, 10);
  if (end == nullptr) return false;
  *out = v;
  return true;
}

// Sorts g[0..n) and drops duplicates; the new count.
int SortUnique(gid_t *g, int n) {
  std::sort(g, g + n);
  return (int)(std::unique(g, g + n) - g);
}

// Makes capability `cap` of the calling thread's permitted set effective. 0 or -errno.
int RaiseEffective(int cap) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) return -errno;
  if (!(data[cap / 32].permitted & (1u << (cap % 32)))) return -EPERM;
  data[cap / 32].effective |= 1u << (cap % 32);
  hdr.pid = 0;
  return syscall(SYS_capset, &hdr, data) == 0 ? 0 : -errno;
}

}  // namespace

bool ReadTaskIdentity(pid_t tid, TaskIdentity *out) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  unsigned long uid = 0, gid = 0;
  if (!EffectiveId(buf, "\nUid:", &uid) || !EffectiveId(buf, "\nGid:", &gid)) return false;
  out->uid = (uid_t)uid;
  out->gid = (gid_t)gid;
  out->ngroups = 0;
  const char *g = strstr(buf, "\nGroups:");
  if (!g) return false;
  g += 8;
  for (;;) {
    while (*g == ' ' || *g == '\t') g++;
    if (*g < '0' || *g > '9') break;
    if (out->ngroups == TaskIdentity::kMaxGroups) return false;
    char *end = nullptr;
    out->groups[out->ngroups++] = (gid_t)strtoul(g, &end, 10);
    g = end;
  }
  out->ngroups = SortUnique(out->groups, out->ngroups);
  return true;
}

int KeepOnlyCapabilities(const int *keep, int n, const int *keep_permitted, int np) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};  // pid 0: this thread
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) return -errno;
  uint32_t want[2] = {0, 0}, prm[2] = {0, 0};
  for (int i = 0; i < n; i++) want[keep[i] / 32] |= 1u << (keep[i] % 32);
  for (int i = 0; i < np; i++) prm[keep_permitted[i] / 32] |= 1u << (keep_permitted[i] % 32);
  for (int i = 0; i < 2; i++) {
    data[i].permitted &= want[i] | prm[i];
    data[i].effective &= want[i];
    data[i].inheritable = 0;
  }
  hdr.pid = 0;
  return syscall(SYS_capset, &hdr, data) == 0 ? 0 : -errno;
}

bool CaplessThread::Start(const TaskIdentity *as) {
  switch_ids_ = as != nullptr;
  if (as) as_ = *as;
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

// Takes on as_ for this thread alone: raw syscalls, since glibc's set*id() wrappers change every
// thread of the process. Leaving uid 0 this way also empties the permitted and effective sets.
bool CaplessThread::TakeOn() {
  if (!switch_ids_) return true;
  uid_t r, e, s;
  gid_t gr, ge, gs;
  if (syscall(SYS_getresuid, &r, &e, &s) != 0 || syscall(SYS_getresgid, &gr, &ge, &gs) != 0)
    return false;
  gid_t mine[TaskIdentity::kMaxGroups];
  int n = (int)syscall(SYS_getgroups, TaskIdentity::kMaxGroups, mine);
  bool same_groups =
      n >= 0 && (n = SortUnique(mine, n)) == as_.ngroups && std::equal(mine, mine + n, as_.groups);
  bool same_ids = r == as_.uid && e == as_.uid && s == as_.uid && gr == as_.gid && ge == as_.gid &&
                  gs == as_.gid;
  if (same_ids && same_groups) return true;
  // The creating thread (the monitor) holds CAP_SETUID/CAP_SETGID in its permitted set only.
  if (RaiseEffective(CAP_SETGID) != 0 || RaiseEffective(CAP_SETUID) != 0) return false;
  if (syscall(SYS_setgroups, (size_t)as_.ngroups, as_.groups) != 0) return false;
  if (syscall(SYS_setresgid, as_.gid, as_.gid, as_.gid) != 0) return false;
  if (syscall(SYS_setresuid, as_.uid, as_.uid, as_.uid) != 0) return false;
  return true;
}

void CaplessThread::Loop() {
  prctl(PR_SET_NAME, "sbx-capless", 0, 0, 0);
  bool capless = TakeOn() && KeepOnlyCapabilities(nullptr, 0) == 0;
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
