// learn.h: the monitor's learning mode (`sbx learn`, docs/policy-guide.md "Learning a policy").
// A learning filter returns USER_NOTIF with the data value NOTIFY_DATA.DEFAULT for every syscall
// its rules do not decide. The kernel does not pass those 16 data bits to the listener, so the
// monitor runs the very program the kernel ran on the notification's seccomp_data to tell a
// learning notification (answered CONTINUE and recorded) from a violation (always-on denials,
// foreign arches). Only register arguments are looked at; sandboxee memory is never read.
// No N-API here.
#pragma once
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>

#include <set>
#include <string>
#include <vector>

namespace sbx {

struct LearnConfig {
  std::vector<struct sock_filter> program;  // the sandbox's own filter
  uint32_t learn_ret = 0;                   // its return value that means "learn this call"
  uint32_t max_facts = 0;                   // distinct facts one sandbox may record
  std::vector<uint8_t> arg_masks;  // per syscall number: bit i = record arg i (low 32 bits)
};

// One distinct (syscall, recorded arguments) pair; arguments not recorded are 0.
struct LearnFact {
  int32_t nr;
  uint32_t args[6];
  bool operator<(const LearnFact &o) const;
};

// Parses learn/table.ts encodeLearnTable(). False with *err set on a malformed table.
bool ParseLearnConfig(const uint8_t *data, size_t len, LearnConfig *out, std::string *err);

// The table formats the executor sends (learn and hook tables): a little-endian u32, and n
// sock_filter instructions (u16 code, u8 jt, u8 jf, u32 k; 8 bytes each) from p.
uint32_t ReadU32(const uint8_t *p);
void DecodeSockFilters(const uint8_t *p, uint32_t n, std::vector<struct sock_filter> *out);

// Runs a classic-BPF seccomp program on one seccomp_data, as the kernel does. A malformed
// program (it came from our own compiler, so this does not happen) returns KILL_PROCESS.
uint32_t RunSeccompProgram(const std::vector<struct sock_filter> &prog,
                           const struct seccomp_data &d);

// The fact a learning notification records under this configuration.
LearnFact LearnFactOf(const LearnConfig &cfg, const struct seccomp_data &d);

}  // namespace sbx
