// bindings.h: each binding file adds its functions to the export object.
#pragma once
#include <napi.h>

namespace sbx {
void InitFdBinding(Napi::Env env, Napi::Object exports);
void InitWatcher(Napi::Env env, Napi::Object exports);
void InitProcessBinding(Napi::Env env, Napi::Object exports);
void InitCommsBinding(Napi::Env env, Napi::Object exports);
void InitMonitor(Napi::Env env, Napi::Object exports);
void InitClientBinding(Napi::Env env, Napi::Object exports);
void InitRuntimeBinding(Napi::Env env, Napi::Object exports);
void InitBufferBinding(Napi::Env env, Napi::Object exports);
void InitTtyBinding(Napi::Env env, Napi::Object exports);
void InitUnixBinding(Napi::Env env, Napi::Object exports);
void InitIpcBinding(Napi::Env env, Napi::Object exports);
}  // namespace sbx
