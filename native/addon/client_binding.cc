// client_binding.cc: sandbox-me-here for Node sandboxees, straight onto libsbx_client (the one
// implementation C programs use too). TS (packages/client/src/client.ts) validates, touches
// stdio and turns the errors into ClientError.
#include <dlfcn.h>
#include <errno.h>

#include <sbx/client.h>

#include "../client/src/le.h"
#include "../client/src/trace.h"
#include "bindings.h"
#include "errors.h"

namespace sbx {

// clientSandboxMeHere(fd, flags): blocks until sandboxed. A failure throws an errno Error whose
// message is the library's and whose .filterInstalled says whether the filter is on anyway.
static Napi::Value ClientSandboxMeHere(const Napi::CallbackInfo &info) {
  const char *usage = "clientSandboxMeHere(fd: number, flags: number)";
  int fd = ArgInt(info, 0, usage);
  uint32_t flags = ArgUint32(info, 1, usage);
  char err[512];
  int rc = sbx_client_sandbox_me_here_fd(fd, flags, err, sizeof err);
  if (rc < 0) {
    Napi::Error e = ErrnoError(info.Env(), -rc, "sbx_client_sandbox_me_here");
    e.Set("message", Napi::String::New(info.Env(), err));
    e.Set("filterInstalled", Napi::Boolean::New(info.Env(), sbx_client_filter_installed()));
    throw e;
  }
  return info.Env().Undefined();
}

// clientAwaitAssignment(fd): a sandboxed spare waits for its request's fds (sbx/client.h).
static Napi::Value ClientAwaitAssignment(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "clientAwaitAssignment(fd: number)");
  char err[256];
  int rc = sbx_client_await_assignment(fd, err, sizeof err);
  if (rc < 0) {
    Napi::Error e = ErrnoError(info.Env(), -rc, "sbx_client_await_assignment");
    e.Set("message", Napi::String::New(info.Env(), err));
    throw e;
  }
  return info.Env().Undefined();
}

// clientWarmRuntime(): what the runtime would otherwise look up lazily by opening a file after the
// filter is on. Node 24's V8 locks with absl::Mutex, which the first time a lock is contended
// (from whatever thread) counts the CPUs (get_nprocs(): /sys/devices/system/cpu/online) and reads
// the cycle clock's frequency (/sys/devices/system/cpu/cpu0/tsc_freq_khz, else measured), and
// keeps both: asking for them once here is enough. Found by name (the node binary exports them);
// absent on Node 20 and 22, where nothing is needed. Returns whether they were found.
static Napi::Value ClientWarmRuntime(const Napi::CallbackInfo &info) {
  sbx_client_prepare();  // glibc's malloc: the same for C programs (sbx/client.h)
  void *cpus =
      dlsym(RTLD_DEFAULT, "_ZN4absl13base_internal7NumCPUsEv");  // absl::base_internal::NumCPUs()
  void *freq = dlsym(
      RTLD_DEFAULT,
      "_ZN4absl13base_internal19NominalCPUFrequencyEv");  // absl::base_internal::NominalCPUFrequency()
  if (cpus) reinterpret_cast<int (*)()>(cpus)();
  if (freq) reinterpret_cast<double (*)()>(freq)();
  return Napi::Boolean::New(info.Env(), cpus != nullptr && freq != nullptr);
}

// clientState() -> { sandboxed, filterInstalled } (no system call)
static Napi::Value ClientState(const Napi::CallbackInfo &info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("sandboxed", sbx_client_is_sandboxed());
  o.Set("filterInstalled", sbx_client_filter_installed());
  return o;
}

// clientKernelSupport() -> SBX_CLIENT_KERNEL_* bits
static Napi::Value ClientKernelSupport(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), sbx_client_kernel_support());
}

// clientThreadCount() -> threads of this process, or -errno
static Napi::Value ClientThreadCount(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), sbx_client_thread_count());
}

// clientTraceStart(buf): this process is the child of a traced fork request; `buf` holds the
// stages the fork binding saw (trace.h's encoding), sandboxMeHere() adds its own and sends them.
static Napi::Value ClientTraceStart(const Napi::CallbackInfo &info) {
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    Napi::TypeError::New(info.Env(), "clientTraceStart(buf)").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  auto buf = info[0].As<Napi::Buffer<unsigned char>>();
  const unsigned char *p = buf.Data();
  size_t len = buf.Length();
  sbx_trace_start();
  unsigned n = len >= 8 ? get_u32(p) : 0;
  for (unsigned i = 0; i < n && 8 + (i + 1) * SBX_TRACE_RECORD_SIZE <= len; i++) {
    const unsigned char *r = p + 8 + i * SBX_TRACE_RECORD_SIZE;
    sbx_trace_mark_at(get_u32(r), get_u64(r + 8));
  }
  return info.Env().Undefined();
}

// clientTraceMark(stage): records a stage of a traced request now (no-op when not traced).
static Napi::Value ClientTraceMark(const Napi::CallbackInfo &info) {
  if (info.Length() >= 1 && info[0].IsNumber())
    sbx_trace_mark(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

void InitClientBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("clientTraceStart", Napi::Function::New(env, ClientTraceStart, "clientTraceStart"));
  exports.Set("clientTraceMark", Napi::Function::New(env, ClientTraceMark, "clientTraceMark"));
  exports.Set("clientSandboxMeHere",
              Napi::Function::New(env, ClientSandboxMeHere, "clientSandboxMeHere"));
  exports.Set("clientState", Napi::Function::New(env, ClientState, "clientState"));
  exports.Set("clientAwaitAssignment",
              Napi::Function::New(env, ClientAwaitAssignment, "clientAwaitAssignment"));
  exports.Set("clientWarmRuntime",
              Napi::Function::New(env, ClientWarmRuntime, "clientWarmRuntime"));
  exports.Set("clientKernelSupport",
              Napi::Function::New(env, ClientKernelSupport, "clientKernelSupport"));
  exports.Set("clientThreadCount",
              Napi::Function::New(env, ClientThreadCount, "clientThreadCount"));
}

}  // namespace sbx
