// addon.cc: the export table of sbx_native.node. One file per concern; see bindings.h. (Custom-fork
// mode's binding is an addon of its own, built per Node ABI: fork_binding.cc.)
#include "bindings.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  sbx::InitFdBinding(env, exports);
  sbx::InitWatcher(env, exports);
  sbx::InitProcessBinding(env, exports);
  sbx::InitCommsBinding(env, exports);
  sbx::InitMonitor(env, exports);
  sbx::InitClientBinding(env, exports);
  sbx::InitRuntimeBinding(env, exports);
  sbx::InitBufferBinding(env, exports);
  sbx::InitTtyBinding(env, exports);
  sbx::InitUnixBinding(env, exports);
  sbx::InitIpcBinding(env, exports);
  return exports;
}

NODE_API_MODULE(sbx_native, Init)
