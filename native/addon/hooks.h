// hooks.h: the monitor's notify hooks (Sandbox's notify.onSyscall, docs/policy-guide.md "Notify
// hooks"). A rule made by PolicyBuilder.notifySyscall() returns USER_NOTIF with the data value
// NOTIFY_DATA.USER. The kernel does not pass those 16 data bits to the listener, so the monitor
// runs the sandbox's own program on the notification's seccomp_data (as in learning mode) to
// tell a hooked call from a violation. A hooked call stays parked in the kernel while JS decides;
// the monitor holds its notification id and a deadline, and answers it when JS replies (CONTINUE,
// an errno, or a kill of the sandbox) or kills the sandbox at the deadline. Only register
// arguments are passed on; sandboxee memory is never read here. No N-API here.
#pragma once
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>

#include <map>
#include <string>
#include <vector>

namespace sbx {

struct HookConfig {
  std::vector<struct sock_filter> program;  // the sandbox's own filter
  uint32_t hook_ret = 0;                    // its return value that means "ask the handler"
  uint32_t timeout_ms = 0;                  // how long a hooked call may wait for its answer
};

// Parses notify-hooks.ts encodeHookTable(). False with *err set on a malformed table.
bool ParseHookConfig(const uint8_t *data, size_t len, HookConfig *out, std::string *err);

// A hooked call waiting for JS: its deadline (CLOCK_MONOTONIC ns) and what it is (for the report
// when the deadline passes).
struct HookWait {
  int64_t deadline_ns;
  uint32_t pid;
  struct seccomp_data data;
};

// The hooked calls of one sandbox that wait for JS, by notification id. A task has at most one
// call in flight, so the number of tasks bounds it.
class HookWaits {
 public:
  void Add(uint64_t notif, const HookWait &w) { waits_[notif] = w; }
  // True (and forgotten) when notif was waiting: each notification is answered at most once.
  bool Take(uint64_t notif) { return waits_.erase(notif) == 1; }
  // The earliest deadline, 0 when nothing waits.
  int64_t First() const;
  // The first notification whose deadline is at or before now, if any (it stays until taken).
  const HookWait *Expired(int64_t now_ns, uint64_t *notif) const;
  void Clear() { waits_.clear(); }

 private:
  std::map<uint64_t, HookWait> waits_;
};

}  // namespace sbx
