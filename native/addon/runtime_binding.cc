// runtime_binding.cc: what Node creates lazily and a sandbox-me-here policy would forbid once the
// filter is on, started before it (docs/architecture.md, "What sandboxMeHere() starts before the
// filter"). libuv starts its threadpool on the first piece of work queued to it (fs, dns, zlib,
// crypto), all of its threads at once (UV_THREADPOOL_SIZE, default 4), with clone(); after a
// fork() it forgets the threads (they did not survive) and starts them again on the next work.
// A policy without clone (allowNodeRuntime without threads) would report that start as a
// violation, so the client starts the pool itself, once per process, before the filter.
#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <uv.h>

#include "bindings.h"
#include "errors.h"

namespace sbx {
namespace {

// The process whose threadpool this addon started: a forked child (another pid) starts its own.
pid_t g_pool_started_in = 0;

// absl's CPU count and cycle-clock frequency (Node 22 and 24; see client_binding.cc's
// clientWarmRuntime). Where the host does not publish the frequency (tsc_freq_khz), absl measures
// it, which takes milliseconds: it runs on a thread of its own while the main
// thread prepares the rest, and is joined before the filter.
pthread_t g_warm;
bool g_warming = false;
void *g_cpus = nullptr;
void *g_freq = nullptr;

void *Warm(void *) {
  reinterpret_cast<int (*)()>(g_cpus)();
  reinterpret_cast<double (*)()>(g_freq)();
  return nullptr;
}

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

// clientWarmRuntimeStart() -> boolean: starts the absl look-ups on a thread (false: this node has
// none, or they are under way). clientWarmRuntimeJoin(): waits for that thread.
static Napi::Value ClientWarmRuntimeStart(const Napi::CallbackInfo &info) {
  g_cpus = dlsym(RTLD_DEFAULT, "_ZN4absl13base_internal7NumCPUsEv");
  g_freq = dlsym(RTLD_DEFAULT, "_ZN4absl13base_internal19NominalCPUFrequencyEv");
  if (g_cpus == nullptr || g_freq == nullptr || g_warming)
    return Napi::Boolean::New(info.Env(), false);
  // A failed start is no error: clientWarmRuntime() then does it on the caller's thread.
  g_warming = pthread_create(&g_warm, nullptr, Warm, nullptr) == 0;
  return Napi::Boolean::New(info.Env(), g_warming);
}

static Napi::Value ClientWarmRuntimeJoin(const Napi::CallbackInfo &info) {
  if (g_warming) pthread_join(g_warm, nullptr);
  g_warming = false;
  return info.Env().Undefined();
}

void InitRuntimeBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("clientWarmRuntimeStart",
              Napi::Function::New(env, ClientWarmRuntimeStart, "clientWarmRuntimeStart"));
  exports.Set("clientWarmRuntimeJoin",
              Napi::Function::New(env, ClientWarmRuntimeJoin, "clientWarmRuntimeJoin"));
  exports.Set("clientStartThreadpool",
              Napi::Function::New(env, ClientStartThreadpool, "clientStartThreadpool"));
}

}  // namespace sbx
