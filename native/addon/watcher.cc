// watcher.cc: readiness of an fd on Node's own event loop (uv_poll), so the asynchronous Comms
// never blocks the loop and needs no extra thread. new Watcher(fd, cb); cb(readable, writable).
#include <uv.h>

#include "bindings.h"
#include "errors.h"

namespace sbx {

class Watcher : public Napi::ObjectWrap<Watcher> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(
        env, "Watcher",
        {InstanceMethod("start", &Watcher::Start), InstanceMethod("stop", &Watcher::Stop),
         InstanceMethod("ref", &Watcher::Ref), InstanceMethod("unref", &Watcher::Unref),
         InstanceMethod("close", &Watcher::Close)});
    exports.Set("Watcher", ctor);
  }

  explicit Watcher(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Watcher>(info) {
    const char *usage = "new Watcher(fd: number, callback: (readable, writable) => void)";
    int fd = ArgInt(info, 0, usage);
    if (info.Length() < 2 || !info[1].IsFunction()) ThrowUsage(info.Env(), usage);
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    if (napi_async_init(info.Env(), nullptr, Napi::String::New(info.Env(), "sbx.Watcher"),
                        &async_context_) != napi_ok)
      ThrowUsage(info.Env(), usage);
    uv_loop_t *loop = nullptr;
    if (napi_get_uv_event_loop(info.Env(), &loop) != napi_ok) ThrowUsage(info.Env(), usage);
    handle_ = new uv_poll_t;
    int rc = uv_poll_init(loop, handle_, fd);
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      ThrowErrno(info.Env(), -rc, "uv_poll_init");
    }
    handle_->data = this;
  }

  ~Watcher() override {
    CloseHandle();
    if (async_context_) napi_async_destroy(Env(), async_context_);
  }

 private:
  static void OnPoll(uv_poll_t *h, int status, int events) {
    Watcher *self = static_cast<Watcher *>(h->data);
    if (!self) return;
    Napi::Env env = self->callback_.Env();
    Napi::HandleScope scope(env);
    // An error status (e.g. EBADF) is reported as readable so the reader meets the error.
    bool readable = status < 0 || (events & (UV_READABLE | UV_DISCONNECT));
    bool writable = status < 0 || (events & UV_WRITABLE);
    // MakeCallback (not a plain call): it runs the microtasks the callback queued, as Node's own
    // I/O callbacks do. A throw becomes an uncaught exception; during teardown it is dropped.
    napi_value argv[2] = {Napi::Boolean::New(env, readable), Napi::Boolean::New(env, writable)};
    napi_value result;
    napi_status st = napi_make_callback(env, self->async_context_, env.Global(),
                                        self->callback_.Value(), 2, argv, &result);
    if (st == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }

  // start(readable: boolean, writable: boolean)
  Napi::Value Start(const Napi::CallbackInfo &info) {
    if (!handle_) ThrowUsage(info.Env(), "start() after close()");
    int ev = 0;
    if (info.Length() > 0 && info[0].ToBoolean().Value()) ev |= UV_READABLE | UV_DISCONNECT;
    if (info.Length() > 1 && info[1].ToBoolean().Value()) ev |= UV_WRITABLE;
    int rc = ev ? uv_poll_start(handle_, ev, OnPoll) : uv_poll_stop(handle_);
    if (rc != 0) ThrowErrno(info.Env(), -rc, "uv_poll_start");
    return info.Env().Undefined();
  }
  Napi::Value Stop(const Napi::CallbackInfo &info) {
    if (handle_) uv_poll_stop(handle_);
    return info.Env().Undefined();
  }
  Napi::Value Ref(const Napi::CallbackInfo &info) {
    if (handle_) uv_ref(reinterpret_cast<uv_handle_t *>(handle_));
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo &info) {
    if (handle_) uv_unref(reinterpret_cast<uv_handle_t *>(handle_));
    return info.Env().Undefined();
  }
  // close(): stops watching; the fd itself is not closed (the owner closes it afterwards).
  Napi::Value Close(const Napi::CallbackInfo &info) {
    CloseHandle();
    callback_.Reset();  // a root of its owner (a closed Comms must be collectable)
    return info.Env().Undefined();
  }

  void CloseHandle() {
    if (!handle_) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t *>(handle_),
             [](uv_handle_t *h) { delete reinterpret_cast<uv_poll_t *>(h); });
    handle_ = nullptr;
  }

  uv_poll_t *handle_ = nullptr;
  Napi::FunctionReference callback_;
  napi_async_context async_context_ = nullptr;
};

void InitWatcher(Napi::Env env, Napi::Object exports) { Watcher::Init(env, exports); }

}  // namespace sbx
