// buffer_binding.cc: shared-memory buffers (libsbx_client's sbx/buffer.h) as ArrayBuffers.
//
// The ArrayBuffer is external: it points straight at the shared mapping (no copy). Its owner is
// the ArrayBuffer itself: a native record (mapping, size, fd) is wrapped onto it and released
// when the ArrayBuffer is garbage-collected (munmap + close), unless bufferClose() released it
// before, which also detaches the ArrayBuffer so that JS can never touch unmapped memory. The
// mapping is reported to V8 as external memory, capped at kMaxCharge per buffer: a mapping is
// address space and an fd, its pages exist only once touched, and charging V8 the full size of
// a large sparse buffer makes it run a full GC on every create (measured: ~5 ms per 1 GiB
// buffer). The cap still makes forgotten buffers push the GC (one per ~64 of them at most).
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#include <sbx/buffer.h>

#include "bindings.h"
#include "errors.h"

namespace sbx {

static const int64_t kMaxCharge = 1 << 20;

static int64_t Charge(size_t size) {
  return (int64_t)size < kMaxCharge ? (int64_t)size : kMaxCharge;
}

struct Mapping {
  sbx_buffer buf;
  bool closed;
};

static void Release(napi_env env, Mapping *m) {
  if (m->closed) return;
  m->closed = true;
  int64_t charge = Charge(m->buf.size);
  sbx_buffer_close(&m->buf);
  int64_t ignored;
  if (charge > 0) napi_adjust_external_memory(env, -charge, &ignored);
}

static void Finalize(napi_env env, void *data, void * /*hint*/) {
  Mapping *m = static_cast<Mapping *>(data);
  Release(env, m);
  delete m;
}

[[noreturn]] static void ThrowBuffer(Napi::Env env, int rc, const char *call) {
  Napi::Error e = ErrnoError(env, -rc, call);
  e.Set("message", Napi::String::New(env, std::string(call) + ": " + sbx_buffer_strerror(rc)));
  throw e;
}

// { fd, size, memory: ArrayBuffer } over a buffer that is now owned by the ArrayBuffer.
static Napi::Object Wrap(Napi::Env env, const sbx_buffer &buf) {
  Mapping *m = new Mapping{buf, false};
  napi_value ab;
  napi_status st;
  if (buf.size > 0)
    st = napi_create_external_arraybuffer(env, buf.data, buf.size, nullptr, nullptr, &ab);
  else
    st = napi_create_arraybuffer(env, 0, nullptr, &ab);
  if (st == napi_ok) st = napi_wrap(env, ab, m, Finalize, nullptr, nullptr);
  if (st != napi_ok) {
    sbx_buffer_close(&m->buf);
    delete m;
    throw Napi::Error::New(env, "sbx: cannot create an ArrayBuffer over a shared mapping");
  }
  int64_t ignored;
  if (buf.size > 0) napi_adjust_external_memory(env, Charge(buf.size), &ignored);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, buf.fd));
  out.Set("size", Napi::Number::New(env, (double)buf.size));
  out.Set("memory", Napi::Value(env, ab));
  return out;
}

static uint64_t ArgSize(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowUsage(info.Env(), usage);
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d == -1) return SBX_BUFFER_ANY_SIZE;
  if (!(d >= 0 && d <= 9007199254740991.0) || d != (double)(uint64_t)d)
    ThrowUsage(info.Env(), usage);
  return (uint64_t)d;
}

// bufferCreate(size) -> { fd, size, memory }
static Napi::Value BufferCreate(const Napi::CallbackInfo &info) {
  const char *usage = "bufferCreate(size: number)";
  uint64_t size = ArgSize(info, 0, usage);
  if (size == SBX_BUFFER_ANY_SIZE) ThrowUsage(info.Env(), usage);
  sbx_buffer buf;
  int rc = sbx_buffer_create((size_t)size, &buf);
  if (rc < 0) ThrowBuffer(info.Env(), rc, "sbx_buffer_create");
  return Wrap(info.Env(), buf);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

// bufferPopulate(memory): allocates the mapping's pages now, in one call (Linux 5.14+), instead
// of a page fault at each first touch. True when done; false when the kernel cannot (the pages
// then come at first touch, as without it).
static Napi::Value BufferPopulate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer())
    ThrowUsage(env, "bufferPopulate(memory: ArrayBuffer)");
  void *data = nullptr;
  if (napi_unwrap(env, info[0], &data) != napi_ok || !data)
    throw Napi::TypeError::New(env, "bufferPopulate: not a shared buffer's ArrayBuffer");
  Mapping *m = static_cast<Mapping *>(data);
  if (m->closed || m->buf.size == 0) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, madvise(m->buf.data, m->buf.size, MADV_POPULATE_WRITE) == 0);
}

// bufferFromFd(fd, expectedSize | -1) -> { fd, size, memory }; the fd is owned by the buffer on
// success and still the caller's on failure.
static Napi::Value BufferFromFd(const Napi::CallbackInfo &info) {
  const char *usage = "bufferFromFd(fd: number, expectedSize: number)";
  int fd = ArgInt(info, 0, usage);
  uint64_t expected = ArgSize(info, 1, usage);
  sbx_buffer buf;
  int rc = sbx_buffer_from_fd(fd, expected, &buf);
  if (rc < 0) ThrowBuffer(info.Env(), rc, "sbx_buffer_from_fd");
  return Wrap(info.Env(), buf);
}

// bufferClose(memory): unmaps, closes the fd and detaches the ArrayBuffer. Idempotent.
static Napi::Value BufferClose(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer())
    ThrowUsage(env, "bufferClose(memory: ArrayBuffer)");
  void *data = nullptr;
  if (napi_unwrap(env, info[0], &data) != napi_ok || !data)
    throw Napi::TypeError::New(env, "bufferClose: not a shared buffer's ArrayBuffer");
  Mapping *m = static_cast<Mapping *>(data);
  if (!m->closed) {
    // Detach first: from here on JS sees a zero-length buffer, never the unmapped range.
    if (napi_detach_arraybuffer(env, info[0]) != napi_ok)
      throw Napi::Error::New(env,
                             "bufferClose: the ArrayBuffer cannot be detached; the mapping stays");
    Release(env, m);
  }
  return env.Undefined();
}

void InitBufferBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("bufferCreate", Napi::Function::New(env, BufferCreate, "bufferCreate"));
  exports.Set("bufferFromFd", Napi::Function::New(env, BufferFromFd, "bufferFromFd"));
  exports.Set("bufferPopulate", Napi::Function::New(env, BufferPopulate, "bufferPopulate"));
  exports.Set("bufferClose", Napi::Function::New(env, BufferClose, "bufferClose"));
}

}  // namespace sbx
