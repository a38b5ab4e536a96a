// client_binding.cc: sandbox-me-here for Node sandboxees, straight onto libsbx_client (the one
// implementation C programs use too). TS (packages/client/src/client.ts) validates, touches
// stdio and turns the errors into ClientError.
#include <errno.h>

#include <sbx/client.h>

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

void InitClientBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("clientSandboxMeHere", Napi::Function::New(env, ClientSandboxMeHere, "clientSandboxMeHere"));
  exports.Set("clientState", Napi::Function::New(env, ClientState, "clientState"));
  exports.Set("clientKernelSupport", Napi::Function::New(env, ClientKernelSupport, "clientKernelSupport"));
  exports.Set("clientThreadCount", Napi::Function::New(env, ClientThreadCount, "clientThreadCount"));
}

}  // namespace sbx
