#include "errors.h"

#include <string.h>

namespace sbx {

static const char *ErrnoName(int err) {
  const char *name = strerrorname_np(err);  // glibc 2.32+
  return name ? name : "EUNKNOWN";
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string &syscall) {
  std::string msg = syscall + ": " + strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

void ThrowErrno(Napi::Env env, int err, const std::string &syscall) {
  throw ErrnoError(env, err, syscall);
}

void ThrowUsage(Napi::Env env, const char *usage) {
  throw Napi::TypeError::New(env, std::string("Usage: ") + usage);
}

int ArgInt(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowUsage(info.Env(), usage);
  return info[i].As<Napi::Number>().Int32Value();
}

uint32_t ArgUint32(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowUsage(info.Env(), usage);
  return info[i].As<Napi::Number>().Uint32Value();
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  if (info.Length() <= i || !info[i].IsBuffer()) ThrowUsage(info.Env(), usage);
  return info[i].As<Napi::Buffer<uint8_t>>();
}

void CallIntoJs(Napi::Env env, Napi::Function fn, napi_value arg) {
  napi_value result;
  napi_status st = napi_call_function(env, env.Global(), fn, 1, &arg, &result);
  if (st != napi_pending_exception) return;  // ok, or JS cannot run any more
  napi_value err;
  if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
}

}  // namespace sbx
