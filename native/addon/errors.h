// errors.h: native errors carry errno facts; TypeScript turns them into typed errors.
#pragma once
#include <napi.h>
#include <string>

namespace sbx {
// An Error with .code ("EAGAIN"...), .errno (positive) and .syscall, like Node's own.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string &syscall);
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string &syscall);
// "Usage: name(args)" TypeError for bad arity or types (TS normally validates first).
[[noreturn]] void ThrowUsage(Napi::Env env, const char *usage);
// Calls a JS callback from a native event (no JS caller): a throw becomes an uncaught exception,
// as Node does for its own callbacks; a failure because the environment is going away is dropped.
void CallIntoJs(Napi::Env env, Napi::Function fn, napi_value arg);
// Argument helpers that throw Usage on a wrong type.
int ArgInt(const Napi::CallbackInfo &info, size_t i, const char *usage);
uint32_t ArgUint32(const Napi::CallbackInfo &info, size_t i, const char *usage);
Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo &info, size_t i, const char *usage);
}  // namespace sbx
