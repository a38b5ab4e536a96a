// unix_binding.cc: unix-domain stream sockets by address for Comms.connect() / Comms.listen():
// connect, listen, accept (all non-blocking: nothing here waits), and SO_PEERCRED. Addresses are
// a filesystem path or an abstract name (abstract: true; no leading NUL from the caller).
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "bindings.h"
#include "errors.h"

namespace sbx {

// Fills `sa` from (name, abstract); returns the address length, or 0 when the name does not fit
// or is empty.
static socklen_t MakeAddress(const std::string &name, bool abstract, struct sockaddr_un *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  size_t room = sizeof sa->sun_path - 1;  // a NUL in front (abstract) or at the end (path)
  if (name.empty() || name.size() > room || name.find('\0') != std::string::npos) return 0;
  memcpy(sa->sun_path + (abstract ? 1 : 0), name.data(), name.size());
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (abstract ? 1 : 0) + name.size() +
                     (abstract ? 0 : 1));
}

static const char *kConnectUsage = "unixConnect(name: string, abstract: boolean)";
static const char *kListenUsage = "unixListen(name: string, abstract: boolean, backlog: number)";

static std::string ArgName(const Napi::CallbackInfo &info, const char *usage) {
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean())
    ThrowUsage(info.Env(), usage);
  return info[0].As<Napi::String>().Utf8Value();
}

// unixConnect(name, abstract) -> a connected non-blocking fd (CLOEXEC). A listener whose backlog
// is full gives EAGAIN at once instead of a wait.
static Napi::Value UnixConnect(const Napi::CallbackInfo &info) {
  std::string name = ArgName(info, kConnectUsage);
  bool abstract = info[1].As<Napi::Boolean>().Value();
  struct sockaddr_un sa;
  socklen_t len = MakeAddress(name, abstract, &sa);
  if (len == 0) ThrowErrno(info.Env(), ENAMETOOLONG, "unix socket address");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) ThrowErrno(info.Env(), errno, "socket(AF_UNIX)");
  if (connect(fd, (struct sockaddr *)&sa, len) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(info.Env(), err, "connect");
  }
  return Napi::Number::New(info.Env(), fd);
}

// unixListen(name, abstract, backlog) -> a listening non-blocking fd (CLOEXEC).
static Napi::Value UnixListen(const Napi::CallbackInfo &info) {
  std::string name = ArgName(info, kListenUsage);
  bool abstract = info[1].As<Napi::Boolean>().Value();
  int backlog = ArgInt(info, 2, kListenUsage);
  struct sockaddr_un sa;
  socklen_t len = MakeAddress(name, abstract, &sa);
  if (len == 0) ThrowErrno(info.Env(), ENAMETOOLONG, "unix socket address");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) ThrowErrno(info.Env(), errno, "socket(AF_UNIX)");
  if (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(info.Env(), err, "bind/listen");
  }
  return Napi::Number::New(info.Env(), fd);
}

// unixAccept(fd) -> a connected fd (CLOEXEC, blocking: Comms makes it non-blocking), or -1 when
// no connection is pending.
static Napi::Value UnixAccept(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "unixAccept(fd: number)");
  int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR)
      return Napi::Number::New(info.Env(), -1);
    ThrowErrno(info.Env(), errno, "accept4");
  }
  return Napi::Number::New(info.Env(), c);
}

// peerCred(fd) -> { pid, uid, gid } of the peer when it connected (SO_PEERCRED).
static Napi::Value PeerCred(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "peerCred(fd: number)");
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    ThrowErrno(info.Env(), errno, "getsockopt(SO_PEERCRED)");
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("pid", (double)cred.pid);
  out.Set("uid", (double)cred.uid);
  out.Set("gid", (double)cred.gid);
  return out;
}

void InitUnixBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred));
}

}  // namespace sbx
