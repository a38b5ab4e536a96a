// process_binding.cc: pidfds (the race-free handle on a sandboxee) and taking an fd from one.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "bindings.h"
#include "errors.h"
#include "protocol.h"

namespace sbx {

static Napi::Value PidfdOpen(const Napi::CallbackInfo &info) {
  int pid = ArgInt(info, 0, "pidfdOpen(pid: number)");
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) ThrowErrno(info.Env(), errno, "pidfd_open");
  return Napi::Number::New(info.Env(), (double)fd);
}

// pidfdGetfdOrErrno(pidfd, targetFd) -> the duplicate, or -errno: for a caller that retries on
// EBADF (the setup channel's listener wait), where an exception per attempt is the main cost.
static Napi::Value PidfdGetfdOrErrno(const Napi::CallbackInfo &info) {
  const char *usage = "pidfdGetfdOrErrno(pidfd: number, targetFd: number)";
  int pidfd = ArgInt(info, 0, usage), target = ArgInt(info, 1, usage);
  long fd = syscall(SYS_pidfd_getfd, pidfd, target, 0);
  return Napi::Number::New(info.Env(), fd < 0 ? (double)-errno : (double)fd);
}

// pidfdSendSignal(pidfd, sig) -> true when sent, false when the process is already gone.
static Napi::Value PidfdSendSignal(const Napi::CallbackInfo &info) {
  const char *usage = "pidfdSendSignal(pidfd: number, signal: number)";
  int pidfd = ArgInt(info, 0, usage), sig = ArgInt(info, 1, usage);
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0)
    return Napi::Boolean::New(info.Env(), true);
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

// spawnForkserver(path, commsFd) -> { pid, pidfd }: starts the forkserver with commsFd as its
// SBX_FS_COMMS_FD (protocol.h),
// /dev/null as stdin and stdout, stderr shared. Native, so the executor needs no child_process
// (and none of the modules it pulls in) for it.
static Napi::Value SpawnForkserver(const Napi::CallbackInfo &info) {
  const char *usage = "spawnForkserver(path: string, commsFd: number)";
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) ThrowUsage(env, usage);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int comms = ArgInt(info, 1, usage);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) ThrowErrno(env, errno, "open(/dev/null)");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, devnull, 0);
  posix_spawn_file_actions_adddup2(&fa, devnull, 1);
  // dup2 onto SBX_FS_COMMS_FD clears CLOEXEC; when comms already has that number, dup2 is a no-op
  // that would keep it: go through a spare number.
  if (comms == SBX_FS_COMMS_FD) {
    posix_spawn_file_actions_adddup2(&fa, comms, 100);
    posix_spawn_file_actions_adddup2(&fa, 100, SBX_FS_COMMS_FD);
    posix_spawn_file_actions_addclose(&fa, 100);
  } else {
    posix_spawn_file_actions_adddup2(&fa, comms, SBX_FS_COMMS_FD);
  }
  char *argv[] = {const_cast<char *>("sbx-forkserver"), nullptr};
  // No environment: sandboxees get theirs from the request, and nothing of the executor's
  // (tokens, paths) should sit in the forkserver or in the inits it forks.
  char *envp[] = {nullptr};
  pid_t pid;
  int rc = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  close(devnull);
  if (rc != 0) ThrowErrno(env, rc, "posix_spawn(" + path + ")");
  long pidfd = syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    int err = errno;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ThrowErrno(env, err, "pidfd_open(forkserver)");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, pid));
  out.Set("pidfd", Napi::Number::New(env, (double)pidfd));
  return out;
}

// reapPidfd(pidfd) -> the raw wait status of an exited child, or -1 while it runs.
static Napi::Value ReapPidfd(const Napi::CallbackInfo &info) {
  int pidfd = ArgInt(info, 0, "reapPidfd(pidfd: number)");
  siginfo_t si = {};
  if (waitid((idtype_t)3 /* P_PIDFD */, (id_t)pidfd, &si, WEXITED | WNOHANG) < 0)
    ThrowErrno(info.Env(), errno, "waitid(P_PIDFD)");
  if (si.si_pid == 0) return Napi::Number::New(info.Env(), -1);
  int status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : (si.si_status & 0x7f);
  return Napi::Number::New(info.Env(), status);
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
  exports.Set("spawnForkserver", Napi::Function::New(env, SpawnForkserver, "spawnForkserver"));
  exports.Set("reapPidfd", Napi::Function::New(env, ReapPidfd, "reapPidfd"));
  exports.Set("landlockAbi", Napi::Function::New(env, LandlockAbi, "landlockAbi"));
  exports.Set("seccompActionAvailable",
              Napi::Function::New(env, SeccompActionAvailable, "seccompActionAvailable"));
  exports.Set("pidfdGetfd", Napi::Function::New(env, PidfdGetfd, "pidfdGetfd"));
  exports.Set("pidfdGetfdOrErrno",
              Napi::Function::New(env, PidfdGetfdOrErrno, "pidfdGetfdOrErrno"));
}

}  // namespace sbx
