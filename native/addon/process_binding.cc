// process_binding.cc: pidfds (the race-free handle on a sandboxee) and taking an fd from one.
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bindings.h"
#include "errors.h"

namespace sbx {

static Napi::Value PidfdOpen(const Napi::CallbackInfo &info) {
  int pid = ArgInt(info, 0, "pidfdOpen(pid: number)");
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) ThrowErrno(info.Env(), errno, "pidfd_open");
  return Napi::Number::New(info.Env(), (double)fd);
}

// pidfdSendSignal(pidfd, sig) -> true when sent, false when the process is already gone.
static Napi::Value PidfdSendSignal(const Napi::CallbackInfo &info) {
  const char *usage = "pidfdSendSignal(pidfd: number, signal: number)";
  int pidfd = ArgInt(info, 0, usage), sig = ArgInt(info, 1, usage);
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == ESRCH) return Napi::Boolean::New(info.Env(), false);
  ThrowErrno(info.Env(), errno, "pidfd_send_signal");
}

// pidfdGetfd(pidfd, targetFd) -> a CLOEXEC duplicate of the process's fd (needs ptrace access).
static Napi::Value PidfdGetfd(const Napi::CallbackInfo &info) {
  const char *usage = "pidfdGetfd(pidfd: number, targetFd: number)";
  int pidfd = ArgInt(info, 0, usage), target = ArgInt(info, 1, usage);
  long fd = syscall(SYS_pidfd_getfd, pidfd, target, 0);
  if (fd < 0) ThrowErrno(info.Env(), errno, "pidfd_getfd");
  return Napi::Number::New(info.Env(), (double)fd);
}

// landlockAbi() -> the highest Landlock ABI the kernel offers, or -errno (EOPNOTSUPP: disabled at
// boot, ENOSYS: not built in).
static Napi::Value LandlockAbi(const Napi::CallbackInfo &info) {
  const long kCreateRulesetVersion = 1;  // LANDLOCK_CREATE_RULESET_VERSION
  long v = syscall(444 /* landlock_create_ruleset */, NULL, 0, kCreateRulesetVersion);
  return Napi::Number::New(info.Env(), v < 0 ? -errno : (double)v);
}

// seccompActionAvailable(action) -> whether seccomp(SECCOMP_GET_ACTION_AVAIL) knows the action.
static Napi::Value SeccompActionAvailable(const Napi::CallbackInfo &info) {
  uint32_t action = ArgUint32(info, 0, "seccompActionAvailable(action: number)");
  const long kGetActionAvail = 2;  // SECCOMP_GET_ACTION_AVAIL
  return Napi::Boolean::New(info.Env(), syscall(SYS_seccomp, kGetActionAvail, 0, &action) == 0);
}

void InitProcessBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
  exports.Set("landlockAbi", Napi::Function::New(env, LandlockAbi, "landlockAbi"));
  exports.Set("seccompActionAvailable", Napi::Function::New(env, SeccompActionAvailable, "seccompActionAvailable"));
  exports.Set("pidfdGetfd", Napi::Function::New(env, PidfdGetfd, "pidfdGetfd"));
}

}  // namespace sbx
