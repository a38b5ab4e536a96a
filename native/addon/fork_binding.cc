// fork_binding.cc: custom-fork mode for a Node forkserver (packages/client/src/forking-client.ts),
// over libsbx_client's fork loop (sbx/forking_client.h). An addon of its own (sbx_fork-node-v<ABI>
// .node, one per NODE_MODULE_VERSION): it calls Node's and V8's C++ embedder API (the platform's
// worker count and CallOnWorkerThread), which is not ABI-stable across Node lines; everything
// else sbx does natively is Node-API in sbx_native.node, one build for every Node. What makes forking a warm Node process
// reliable (docs/architecture.md, "The Node configuration, and why") is done here, around fork():
//   before: MADV_DOFORK over every mapping (V8's heap is MADV_DONTFORK); every V8 platform
//           worker parked inside a task of ours (so none is inside a V8 task, holds a V8 lock or
//           waits on the platform queue's condition variable that the child will signal); the
//           libuv threadpool drained (no request still queued or running); every other thread
//           blocked in futex/epoll.
//   after, in the forkserver: the workers are let go.
//   after, in the child: uv_loop_fork() and one async kick (a fresh eventfd; work completed
//           before the fork is then delivered). The child has no platform workers: the process
//           must run with --single-threaded (TS enforces it) and exits through forkExit(), and
//           forkNaturalExit() keeps the loop from ever reaching NodePlatform::DrainTasks.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include <node.h>
#include <uv.h>
#include <v8-version.h>

extern "C" {
#include <sbx/forking_client.h>
}

#include <napi.h>

#include "../client/src/trace.h"
#include "errors.h"

namespace sbx {
namespace {

sbx_forking_client *g_fc = nullptr;
uv_loop_t *g_loop = nullptr;
// JS to run in a new child right after the runtime repair, before it waits for its request (a
// spare) or returns (on request): the child's fix-ups then cost a spare's request nothing.
napi_env g_env = nullptr;
napi_ref g_on_child = nullptr;
node::MultiIsolatePlatform *g_platform = nullptr;

// ---- parking the V8 platform workers ----
std::mutex g_park_mu;
std::condition_variable g_park_cv;
int g_parked = 0;         // park tasks inside Run()
uint64_t g_park_gen = 0;  // bumped to let the parked ones go
bool g_parked_now = false;

class ParkTask : public v8::Task {
 public:
  explicit ParkTask(uint64_t gen) : gen_(gen) {}
  void Run() override {
    std::unique_lock<std::mutex> lock(g_park_mu);
    g_parked++;
    g_park_cv.notify_all();
    g_park_cv.wait(lock, [this] { return g_park_gen != gen_; });
    g_parked--;
    g_park_cv.notify_all();
  }

 private:
  uint64_t gen_;
};

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void SleepUs(long us) {
  timespec ts = {0, us * 1000};
  nanosleep(&ts, nullptr);
}

// Every mapping MADV_DOFORK: V8 maps its heap DONTFORK and the child would fault on first use.
void DoforkAll() {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    unsigned long lo, hi;
    if (sscanf(text.c_str() + pos, "%lx-%lx", &lo, &hi) == 2 && hi > lo) {
      madvise(reinterpret_cast<void *>(lo), hi - lo, MADV_DOFORK);  // [vsyscall] etc. refuse: fine
    }
    pos = eol + 1;
  }
}

// Requests of the loop that are not completed threadpool work sitting in loop->wq.
unsigned PendingRequests() {
  uv_mutex_lock(&g_loop->wq_mutex);
  unsigned done = 0;
  for (uv__queue *q = g_loop->wq.next; q != &g_loop->wq; q = q->next) done++;
  unsigned active = g_loop->active_reqs.count;
  uv_mutex_unlock(&g_loop->wq_mutex);
  return active > done ? active - done : 0;
}

// Threads other than this one that are not blocked in futex or epoll (0 when all are).
int BusyThreads() {
  pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  int dfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return 0;
  int busy = 0;
  char buf[8192];
  // getdents64 by hand: no allocation of a DIR while other threads may be parked in malloc
  for (;;) {
    long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
      } *d = reinterpret_cast<linux_dirent64 *>(buf + off);
      off += d->d_reclen;
      if (d->d_name[0] == '.') continue;
      pid_t tid = static_cast<pid_t>(atoi(d->d_name));
      if (tid == self) continue;
      char path[64], line[128];
      snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;  // the thread just ended
      ssize_t r = read(fd, line, sizeof line - 1);
      close(fd);
      if (r <= 0) continue;
      line[r] = 0;
      long nr = strtol(line, nullptr, 10);
      bool waiting = line[0] != 'r' && (nr == SYS_futex || nr == SYS_epoll_wait ||
                                        nr == SYS_epoll_pwait || nr == 441 /* epoll_pwait2 */);
      if (!waiting) busy++;
    }
  }
  close(dfd);
  return busy;
}

constexpr double kParkTimeoutMs = 2000;
constexpr double kQuiesceTimeoutMs = 1000;

void ReleaseWorkers() {
  if (!g_parked_now) return;
  g_parked_now = false;
  std::lock_guard<std::mutex> lock(g_park_mu);
  g_park_gen++;
  g_park_cv.notify_all();
}

// Node's NumberOfWorkerThreads() counts its delayed-task scheduler thread too (Node 20, 22):
// the threads that run worker tasks are one fewer.
int PlatformWorkers() { return g_platform->NumberOfWorkerThreads() - 1; }

int ParkWorkers(char *err, size_t errlen);
int Quiesce(char *err, size_t errlen);

// Called ahead, while the forkserver waits for a request, and again right before the fork: the
// second call finds the workers still parked and no JS run since (no new V8 mapping to DOFORK),
// so it only checks that every other thread is still quiet.
int Prepare(void *, char *err, size_t errlen) {
  if (!g_parked_now) {
    int rc = ParkWorkers(err, errlen);
    if (rc < 0) return rc;
  }
  return Quiesce(err, errlen);
}

int ParkWorkers(char *err, size_t errlen) {
  DoforkAll();
  // Park every platform worker (the previous generation has left first).
  int workers = PlatformWorkers();
  {
    std::unique_lock<std::mutex> lock(g_park_mu);
    g_park_cv.wait(lock, [] { return g_parked == 0; });
  }
  uint64_t gen = g_park_gen;
  for (int i = 0; i < workers; i++) g_platform->CallOnWorkerThread(std::make_unique<ParkTask>(gen));
  g_parked_now = true;
  {
    std::unique_lock<std::mutex> lock(g_park_mu);
    bool ok = g_park_cv.wait_until(lock,
                                   std::chrono::system_clock::now() +
                                       std::chrono::milliseconds(static_cast<int>(kParkTimeoutMs)),
                                   [workers] { return g_parked == workers; });
    if (!ok) {
      snprintf(err, errlen,
               "the V8 platform workers stayed busy for %.0f ms (%d of %d parked): not forking now",
               kParkTimeoutMs, g_parked, workers);
      lock.unlock();
      ReleaseWorkers();
      return -EBUSY;
    }
  }
  return 0;
}

// The threadpool drained and every other thread blocked in the kernel.
int Quiesce(char *err, size_t errlen) {
  double start = NowMs();
  for (;;) {
    unsigned reqs = PendingRequests();
    int busy = reqs == 0 ? BusyThreads() : 0;
    if (reqs == 0 && busy == 0) return 0;
    if (NowMs() - start > kQuiesceTimeoutMs) {
      if (reqs)
        snprintf(err, errlen,
                 "the forkserver has %u libuv request(s) in flight (fs, dns, crypto, writes...): "
                 "wait for them before waitAndFork()",
                 reqs);
      else
        snprintf(err, errlen,
                 "%d thread(s) of the forkserver stayed busy for %.0f ms: not forking now", busy,
                 kQuiesceTimeoutMs);
      ReleaseWorkers();
      return -EBUSY;
    }
    SleepUs(100);
  }
}

void Parent(void *) { ReleaseWorkers(); }

void Child(void *) {
  // The park mutex/condvar hold the parent's workers as waiters: never touched again here.
  g_parked_now = false;
  uv_loop_fork(g_loop);
  // One kick on a fresh async handle: the loop rescans, delivering what completed before fork.
  auto *kick = new uv_async_t;
  uv_async_init(g_loop, kick, [](uv_async_t *h) {
    uv_close(reinterpret_cast<uv_handle_t *>(h),
             [](uv_handle_t *hh) { delete reinterpret_cast<uv_async_t *>(hh); });
  });
  uv_async_send(kick);
  sbx_trace_mark(SBX_TRACE_CHILD_LOOP);
  // The JS callback catches its own errors (forking-client.ts): nothing may unwind through C.
  if (g_on_child != nullptr) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(g_env, &scope) == napi_ok) {
      napi_value fn, global, result;
      if (napi_get_reference_value(g_env, g_on_child, &fn) == napi_ok && fn != nullptr &&
          napi_get_global(g_env, &global) == napi_ok)
        napi_call_function(g_env, global, fn, 0, nullptr, &result);
      napi_close_handle_scope(g_env, scope);
    }
  }
}

const sbx_fork_hooks g_hooks = {Prepare, Parent, Child, nullptr};

// ---- natural exit in the child ----
// A ref'd async keeps uv_run from returning (so DrainTasks, which would wait for platform tasks
// no thread runs, is never reached); an unref'd prepare sees the loop go idle and tells JS:
// state 1 = 'beforeExit', state 2 = still idle after it: exit.
struct NaturalExit {
  napi_env env;
  napi_ref fn;
  napi_async_context ctx;
  uv_async_t keepalive;
  uv_prepare_t prepare;
  int state = 0;
};
NaturalExit *g_natural = nullptr;

bool LoopIdle(uv_loop_t *loop) {
  return loop->active_handles <= 1 && loop->active_reqs.count == 0 &&
         loop->pending_queue.next == &loop->pending_queue && loop->closing_handles == nullptr;
}

void OnPrepare(uv_prepare_t *h) {
  NaturalExit *ne = static_cast<NaturalExit *>(h->data);
  if (!LoopIdle(h->loop)) {
    ne->state = 0;
    return;
  }
  ne->state = ne->state == 0 ? 1 : 2;
  napi_handle_scope scope;
  if (napi_open_handle_scope(ne->env, &scope) != napi_ok) return;
  napi_value fn, global, arg, result;
  napi_get_reference_value(ne->env, ne->fn, &fn);
  napi_get_global(ne->env, &global);
  napi_create_int32(ne->env, ne->state, &arg);
  napi_status st = napi_make_callback(ne->env, ne->ctx, global, fn, 1, &arg, &result);
  if (st == napi_pending_exception) {
    napi_value e;
    if (napi_get_and_clear_last_exception(ne->env, &e) == napi_ok) napi_fatal_exception(ne->env, e);
  }
  napi_close_handle_scope(ne->env, scope);
  // Another iteration to see whether 'beforeExit' scheduled work.
  uv_async_send(&ne->keepalive);
}

}  // namespace

// forkingOpen(commsFd, onChild?) -> { workers }: takes the channel (-1: default); onChild runs
// in every new child after the runtime repair (before a spare waits for its request).
static Napi::Value ForkingOpen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "forkingOpen(commsFd: number, onChild?: () => void)");
  if (g_fc) ThrowErrno(env, EALREADY, "forkingOpen");
  if (info.Length() > 1 && info[1].IsFunction() && g_on_child == nullptr) {
    g_env = env;
    napi_create_reference(env, info[1], 1, &g_on_child);
  }
  napi_get_uv_event_loop(env, &g_loop);
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  g_platform =
      node::GetMultiIsolatePlatform(node::GetCurrentEnvironment(isolate->GetCurrentContext()));
  if (!g_platform) ThrowErrno(env, ENOTSUP, "node::GetMultiIsolatePlatform");
  char err[256] = "";
  int rc = sbx_forking_client_open(&g_fc, fd, err, sizeof err);
  if (rc < 0) {
    Napi::Error e = ErrnoError(env, -rc, "sbx_forking_client_open");
    e.Set("message", Napi::String::New(env, err));
    throw e;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("workers", PlatformWorkers());
  return o;
}

// forkingV8Built() -> "major.minor" of the V8 headers this addon was compiled against: the
// platform calls above are C++ virtual calls whose layout changes between V8 versions.
static Napi::Value ForkingV8Built(const Napi::CallbackInfo &info) {
  return Napi::String::New(
      info.Env(), std::to_string(V8_MAJOR_VERSION) + "." + std::to_string(V8_MINOR_VERSION));
}

// forkingWaitAndFork() -> pid in the forkserver, 0 in the child. Throws an errno Error
// (EPIPE: the executor closed the channel).
static Napi::Value ForkingWaitAndFork(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!g_fc) ThrowErrno(env, EBADF, "forkingWaitAndFork");
  char err[512] = "";
  pid_t pid = sbx_forking_client_wait_and_fork(g_fc, &g_hooks, err, sizeof err);
  if (pid < 0) {
    Napi::Error e = ErrnoError(env, static_cast<int>(-pid), "sbx_forking_client_wait_and_fork");
    e.Set("message", Napi::String::New(env, err));
    throw e;
  }
  if (pid == 0) {
    sbx_forking_client_free(g_fc);
    g_fc = nullptr;
  }
  return Napi::Number::New(env, pid);
}

// forkingSetSpares(n): children forked ahead of requests (sbx_forking_client_set_spares).
static Napi::Value ForkingSetSpares(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t n = ArgUint32(info, 0, "forkingSetSpares(n: number)");
  if (!g_fc) ThrowErrno(env, EBADF, "forkingSetSpares");
  int rc = sbx_forking_client_set_spares(g_fc, n);
  if (rc < 0) ThrowErrno(env, -rc, "sbx_forking_client_set_spares");
  return env.Undefined();
}

// forkingRecycleSpares(): the waiting spares are killed, new ones forked from the state as it is now.
static Napi::Value ForkingRecycleSpares(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!g_fc) ThrowErrno(env, EBADF, "forkingRecycleSpares");
  int rc = sbx_forking_client_recycle_spares(g_fc);
  if (rc < 0) ThrowErrno(env, -rc, "sbx_forking_client_recycle_spares");
  return env.Undefined();
}

// forkingStats() -> { children } (forkserver side)
static Napi::Value ForkingStats(const Napi::CallbackInfo &info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("children", sbx_forking_client_children(g_fc));
  return o;
}

// forkExit(code): _exit(), skipping Node's teardown (it joins platform threads the child lacks).
static Napi::Value ForkExit(const Napi::CallbackInfo &info) {
  int code = ArgInt(info, 0, "forkExit(code: number)");
  _exit(code & 0xff);
}

// forkNaturalExit(fn(state)): in a forked child, watch for the loop going idle (see above).
static Napi::Value ForkNaturalExit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction())
    ThrowUsage(env, "forkNaturalExit(fn: (state: number) => void)");
  if (g_natural) ThrowErrno(env, EALREADY, "forkNaturalExit");
  auto *ne = new NaturalExit;
  ne->env = env;
  napi_create_reference(env, info[0], 1, &ne->fn);
  napi_value name;
  napi_create_string_utf8(env, "sbx:naturalExit", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, nullptr, name, &ne->ctx);
  if (!g_loop) napi_get_uv_event_loop(env, &g_loop);
  uv_async_init(g_loop, &ne->keepalive, [](uv_async_t *) {});
  uv_prepare_init(g_loop, &ne->prepare);
  ne->prepare.data = ne;
  uv_prepare_start(&ne->prepare, OnPrepare);
  uv_unref(reinterpret_cast<uv_handle_t *>(&ne->prepare));
  g_natural = ne;
  return env.Undefined();
}

// forkingIoUringDenied() -> whether io_uring_setup fails here with ENOSYS or EPERM (a filter, or a
// kernel without or with io_uring switched off), so that libuv cannot open a ring later. The
// probe cannot make one: a null params pointer fails (EFAULT) where io_uring is available.
static Napi::Value ForkingIoUringDenied(const Napi::CallbackInfo &info) {
  long r = syscall(__NR_io_uring_setup, 0, nullptr);
  int e = errno;
  if (r >= 0) close(static_cast<int>(r));  // not possible with a null pointer; never keep one
  return Napi::Boolean::New(info.Env(), r < 0 && (e == ENOSYS || e == EPERM));
}

// forkingChildTrace() -> in the child of a traced request, its stages so far (trace.h's wire
// encoding, for Client's trace to carry on), else null.
static Napi::Value ForkingChildTrace(const Napi::CallbackInfo &info) {
  if (!sbx_trace_enabled()) return info.Env().Null();
  uint32_t stages[SBX_TRACE_MAX];
  uint64_t ns[SBX_TRACE_MAX];
  unsigned n = sbx_trace_get(stages, ns, SBX_TRACE_MAX);
  if (n > SBX_TRACE_MAX) n = SBX_TRACE_MAX;
  unsigned char buf[8 + SBX_TRACE_MAX * SBX_TRACE_RECORD_SIZE];
  size_t len = sbx_trace_encode(buf, sizeof buf, stages, ns, n);
  return Napi::Buffer<unsigned char>::Copy(info.Env(), buf, len);
}

// forkingChildFlags() -> in a forked child, its request's SBX_FORK_REQUEST_* flags.
static Napi::Value ForkingChildFlags(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), sbx_forking_client_child_flags());
}

// forkGetpid(): the real pid (process.pid is the forkserver's in a child until fixed).
static Napi::Value ForkGetpid(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), getpid());
}

Napi::Object InitForkBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("forkGetpid", Napi::Function::New(env, ForkGetpid, "forkGetpid"));
  exports.Set("forkingChildTrace",
              Napi::Function::New(env, ForkingChildTrace, "forkingChildTrace"));
  exports.Set("forkingOpen", Napi::Function::New(env, ForkingOpen, "forkingOpen"));
  exports.Set("forkingChildFlags",
              Napi::Function::New(env, ForkingChildFlags, "forkingChildFlags"));
  exports.Set("forkingV8Built", Napi::Function::New(env, ForkingV8Built, "forkingV8Built"));
  exports.Set("forkingWaitAndFork",
              Napi::Function::New(env, ForkingWaitAndFork, "forkingWaitAndFork"));
  exports.Set("forkingSetSpares", Napi::Function::New(env, ForkingSetSpares, "forkingSetSpares"));
  exports.Set("forkingRecycleSpares",
              Napi::Function::New(env, ForkingRecycleSpares, "forkingRecycleSpares"));
  exports.Set("forkingStats", Napi::Function::New(env, ForkingStats, "forkingStats"));
  exports.Set("forkExit", Napi::Function::New(env, ForkExit, "forkExit"));
  exports.Set("forkNaturalExit", Napi::Function::New(env, ForkNaturalExit, "forkNaturalExit"));
  exports.Set("forkingIoUringDenied",
              Napi::Function::New(env, ForkingIoUringDenied, "forkingIoUringDenied"));
  exports.Set("nodeModuleVersion", Napi::Number::New(env, NODE_MODULE_VERSION));
  return exports;
}

}  // namespace sbx

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  return sbx::InitForkBinding(env, exports);
}

NODE_API_MODULE(sbx_fork, Init)
