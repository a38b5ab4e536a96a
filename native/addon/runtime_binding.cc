// runtime_binding.cc: what Node creates lazily and a sandbox-me-here policy would forbid once the
// filter is on, started before it (docs/architecture.md, "What sandboxMeHere() starts before the
// filter"). libuv starts its threadpool on the first piece of work queued to it (fs, dns, zlib,
// crypto), all of its threads at once (UV_THREADPOOL_SIZE, default 4), with clone(); after a
// fork() it forgets the threads (they did not survive) and starts them again on the next work.
// A policy without clone (allowNodeRuntime without threads) would report that start as a
// violation, so the client starts the pool itself, once per process, before the filter.
#include <sys/syscall.h>
#include <unistd.h>

#include <uv.h>

#include "bindings.h"
#include "errors.h"

namespace sbx {
namespace {

// The process whose threadpool this addon started: a forked child (another pid) starts its own.
pid_t g_pool_started_in = 0;

void NoWork(uv_work_t *) {}
void AfterNoWork(uv_work_t *req, int) { delete req; }

}  // namespace

// clientStartThreadpool() -> boolean: queues one empty piece of work, which makes libuv create
// every thread of its pool before uv_queue_work() returns (it waits until each one runs). False
// when this process's pool was already started here. The request completes on a later loop turn.
static Napi::Value ClientStartThreadpool(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  pid_t pid = static_cast<pid_t>(syscall(SYS_getpid));
  if (g_pool_started_in == pid) return Napi::Boolean::New(env, false);
  uv_loop_t *loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    ThrowErrno(env, EINVAL, "napi_get_uv_event_loop");
  auto *req = new uv_work_t;
  int rc = uv_queue_work(loop, req, NoWork, AfterNoWork);
  if (rc != 0) {
    delete req;
    ThrowErrno(env, -rc, "uv_queue_work");
  }
  g_pool_started_in = pid;
  return Napi::Boolean::New(env, true);
}

void InitRuntimeBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("clientStartThreadpool",
              Napi::Function::New(env, ClientStartThreadpool, "clientStartThreadpool"));
}

}  // namespace sbx
