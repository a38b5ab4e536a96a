// hooks.cc: see hooks.h.
#include "hooks.h"

#include "learn.h"

namespace sbx {

// Layout (little-endian): u32 version (1), u32 hook_ret, u32 timeout_ms, u32 program length n,
// then n sock_filter (u16 code, u8 jt, u8 jf, u32 k).
bool ParseHookConfig(const uint8_t *data, size_t len, HookConfig *out, std::string *err) {
  if (len < 16) {
    *err = "hook table: shorter than its 16-byte header";
    return false;
  }
  if (ReadU32(data) != 1) {
    *err = "hook table: unknown version";
    return false;
  }
  out->hook_ret = ReadU32(data + 4);
  out->timeout_ms = ReadU32(data + 8);
  uint32_t n = ReadU32(data + 12);
  if (n == 0 || n > BPF_MAXINSNS || len != 16 + (size_t)n * 8) {
    *err = "hook table: the program size does not match the table's length";
    return false;
  }
  if (out->timeout_ms == 0) {
    *err = "hook table: the timeout must be at least 1 ms";
    return false;
  }
  DecodeSockFilters(data + 16, n, &out->program);
  return true;
}

int64_t HookWaits::First() const {
  int64_t first = 0;
  for (const auto &kv : waits_)
    if (!first || kv.second.deadline_ns < first) first = kv.second.deadline_ns;
  return first;
}

const HookWait *HookWaits::Expired(int64_t now_ns, uint64_t *notif) const {
  for (const auto &kv : waits_) {
    if (kv.second.deadline_ns <= now_ns) {
      *notif = kv.first;
      return &kv.second;
    }
  }
  return nullptr;
}

}  // namespace sbx
