// comms_binding.cc: the synchronous Comms calls of the client side, straight onto libsbx_comms
// (the one C implementation of the wire format). Errors carry the library's -errno as .errno and
// the tag that arrived as .lastTag.
#include <errno.h>
#include <stdint.h>

#include <sbx/comms.h>

#include "bindings.h"
#include "errors.h"

namespace sbx {

[[noreturn]] static void ThrowComms(Napi::Env env, int rc, const sbx_comms &c, const char *call) {
  Napi::Error e = ErrnoError(env, -rc, call);
  e.Set("message", Napi::String::New(env, std::string(call) + ": " + sbx_comms_strerror(rc)));
  e.Set("lastTag", Napi::Number::New(env, c.last_tag));
  throw e;
}

// commsSend(fd, tag, data: Buffer)
static Napi::Value CommsSend(const Napi::CallbackInfo &info) {
  const char *usage = "commsSend(fd: number, tag: number, data: Buffer)";
  sbx_comms c;
  sbx_comms_init(&c, ArgInt(info, 0, usage));
  uint32_t tag = ArgUint32(info, 1, usage);
  Napi::Buffer<uint8_t> data = ArgBuffer(info, 2, usage);
  int rc = sbx_comms_send_tlv(&c, tag, data.Data(), data.Length());
  if (rc < 0) ThrowComms(info.Env(), rc, c, "sbx_comms_send_tlv");
  return info.Env().Undefined();
}

// commsSendFd(fd, passFd): passFd is borrowed.
static Napi::Value CommsSendFd(const Napi::CallbackInfo &info) {
  const char *usage = "commsSendFd(fd: number, passFd: number)";
  sbx_comms c;
  sbx_comms_init(&c, ArgInt(info, 0, usage));
  int rc = sbx_comms_send_fd(&c, ArgInt(info, 1, usage));
  if (rc < 0) ThrowComms(info.Env(), rc, c, "sbx_comms_send_fd");
  return info.Env().Undefined();
}

// The payload is read straight into a Buffer that V8 owns (no malloc, no copy): the allocator
// callback runs once the header has told the length. napi_* calls only, since a C++ exception
// must not cross libsbx_comms. A caller's reusable buffer (`into`) takes a payload that fits: a
// fresh Buffer would be fresh pages, faulted in (zeroed by the kernel) on every receive.
struct RecvTarget {
  napi_env env;
  napi_value buffer;
  uint8_t *into;
  size_t intoLength;
  bool usedInto;
};

static void *AllocPayload(void *ctx, uint64_t len) {
  RecvTarget *t = static_cast<RecvTarget *>(ctx);
  if (t->into != nullptr && len <= t->intoLength) {
    t->usedInto = true;
    return t->into;
  }
  void *data = nullptr;
  if (len > SIZE_MAX || napi_create_buffer(t->env, (size_t)len, &data, &t->buffer) != napi_ok) {
    t->buffer = nullptr;
    return nullptr;
  }
  return data;
}

static void DropPayload(void *ctx, void *) {
  RecvTarget *t = static_cast<RecvTarget *>(ctx);
  t->buffer = nullptr;
  t->usedInto = false;
}

// commsRecv(fd, maxMessageSize, into?: Uint8Array) -> { tag, data: Buffer | null, length, fd }:
// data is null when the payload went into `into` (its first `length` bytes); fd is -1 unless an
// Fd message.
static Napi::Value CommsRecv(const Napi::CallbackInfo &info) {
  const char *usage = "commsRecv(fd: number, maxMessageSize: number, into?: Uint8Array)";
  Napi::Env env = info.Env();
  sbx_comms c;
  sbx_comms_init(&c, ArgInt(info, 0, usage));
  if (info.Length() < 2 || !info[1].IsNumber()) ThrowUsage(env, usage);
  c.max_message_size = (uint64_t)info[1].As<Napi::Number>().Int64Value();
  RecvTarget target = {env, nullptr, nullptr, 0, false};
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsTypedArray() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      ThrowUsage(env, usage);
    Napi::Uint8Array into = info[2].As<Napi::Uint8Array>();
    target.into = into.Data();
    target.intoLength = into.ByteLength();
  }
  sbx_comms_allocator allocator = {AllocPayload, DropPayload, &target};
  uint32_t tag = 0;
  void *data = nullptr;
  uint64_t len = 0;
  int fd = -1;
  int rc = sbx_comms_recv_any_into(&c, &allocator, &tag, &data, &len, &fd);
  if (rc < 0) {
    // A failed allocation may have left a pending JS exception; ours names the call instead.
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    ThrowComms(env, rc, c, "sbx_comms_recv");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("tag", Napi::Number::New(env, tag));
  if (target.usedInto)
    out.Set("data", env.Null());
  else
    out.Set("data", target.buffer != nullptr ? Napi::Value(env, target.buffer)
                                             : Napi::Buffer<uint8_t>::New(env, 0));
  out.Set("length", Napi::Number::New(env, (double)len));
  out.Set("fd", Napi::Number::New(env, fd));
  return out;
}

void InitCommsBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("commsSend", Napi::Function::New(env, CommsSend, "commsSend"));
  exports.Set("commsSendFd", Napi::Function::New(env, CommsSendFd, "commsSendFd"));
  exports.Set("commsRecv", Napi::Function::New(env, CommsRecv, "commsRecv"));
}

}  // namespace sbx
