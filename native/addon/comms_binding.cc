// comms_binding.cc: the synchronous Comms calls of the client side, straight onto libsbx_comms
// (the one C implementation of the wire format). Errors carry the library's -errno as .errno and
// the tag that arrived as .lastTag.
#include <errno.h>
#include <stdlib.h>

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

// commsRecv(fd, maxMessageSize) -> { tag, data: Buffer, fd: number (-1 unless an Fd message) }
static Napi::Value CommsRecv(const Napi::CallbackInfo &info) {
  const char *usage = "commsRecv(fd: number, maxMessageSize: number)";
  Napi::Env env = info.Env();
  sbx_comms c;
  sbx_comms_init(&c, ArgInt(info, 0, usage));
  if (info.Length() < 2 || !info[1].IsNumber()) ThrowUsage(env, usage);
  c.max_message_size = (uint64_t)info[1].As<Napi::Number>().Int64Value();
  uint32_t tag = 0;
  void *data = nullptr;
  uint64_t len = 0;
  int fd = -1;
  int rc = sbx_comms_recv_any(&c, &tag, &data, &len, &fd);
  if (rc < 0) ThrowComms(env, rc, c, "sbx_comms_recv");
  Napi::Object out = Napi::Object::New(env);
  out.Set("tag", Napi::Number::New(env, tag));
  // Copy into a V8-owned Buffer and free at once: an external buffer would hide the memory
  // from V8's GC accounting, and fresh (never recycled) pages cost more than the copy.
  Napi::Buffer<uint8_t> copy = Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t *>(data), len);
  free(data);
  out.Set("data", copy);
  out.Set("fd", Napi::Number::New(env, fd));
  return out;
}

void InitCommsBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("commsSend", Napi::Function::New(env, CommsSend, "commsSend"));
  exports.Set("commsSendFd", Napi::Function::New(env, CommsSendFd, "commsSendFd"));
  exports.Set("commsRecv", Napi::Function::New(env, CommsRecv, "commsRecv"));
}

}  // namespace sbx
