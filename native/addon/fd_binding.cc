// fd_binding.cc: sockets and fds for the asynchronous (TypeScript) side of Comms: socketpair,
// non-blocking sendmsg/recvmsg with SCM_RIGHTS, close. The TS decoder does the framing.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bindings.h"
#include "errors.h"

namespace sbx {

// Room for more fds than any valid message carries, so extras are seen (and closed by TS).
static const int kMaxFdsPerRecv = 16;
// The kernel's SCM_MAX_FD: as many as one sendmsg may carry (tests play hostile peers with it).
static const int kMaxFdsPerSend = 253;

// socketpair(nonBlocking0, nonBlocking1) -> [fd0, fd1]: AF_UNIX stream, CLOEXEC.
static Napi::Value SocketPair(const Napi::CallbackInfo &info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    ThrowErrno(info.Env(), errno, "socketpair(AF_UNIX, SOCK_STREAM)");
  for (int i = 0; i < 2; i++) {
    if (info.Length() > (size_t)i && info[i].ToBoolean().Value()) {
      int fl = fcntl(fds[i], F_GETFL);
      fcntl(fds[i], F_SETFL, fl | O_NONBLOCK);
    }
  }
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, fds[0]);
  out.Set(1u, fds[1]);
  return out;
}

// pipe() -> [readFd, writeFd], both CLOEXEC (mapped into a sandboxee as stdio by the forkserver).
static Napi::Value Pipe(const Napi::CallbackInfo &info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) ThrowErrno(info.Env(), errno, "pipe2");
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, fds[0]);
  out.Set(1u, fds[1]);
  return out;
}

static Napi::Value SetNonBlocking(const Napi::CallbackInfo &info) {
  const char *usage = "setNonBlocking(fd: number, on: boolean)";
  int fd = ArgInt(info, 0, usage);
  bool on = info.Length() > 1 && info[1].ToBoolean().Value();
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) ThrowErrno(info.Env(), errno, "fcntl(F_GETFL)");
  if (fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) != 0)
    ThrowErrno(info.Env(), errno, "fcntl(F_SETFL)");
  return info.Env().Undefined();
}

static Napi::Value Close(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "close(fd: number)");
  if (close(fd) != 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close");
  return info.Env().Undefined();
}

// recvmsg(fd, buf, offset, length) -> { bytes, fds, ctrunc }; bytes is -1 on EAGAIN, 0 on EOF.
// Received fds carry CLOEXEC; the caller owns them (and must close them on a protocol error).
static Napi::Value RecvMsg(const Napi::CallbackInfo &info) {
  const char *usage = "recvmsg(fd: number, buf: Buffer, offset: number, length: number)";
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, usage);
  Napi::Buffer<uint8_t> buf = ArgBuffer(info, 1, usage);
  uint32_t off = ArgUint32(info, 2, usage), len = ArgUint32(info, 3, usage);
  if ((uint64_t)off + len > buf.Length()) ThrowUsage(env, usage);

  struct iovec iov = {buf.Data() + off, len};
  union {
    char bytes[CMSG_SPACE(sizeof(int) * kMaxFdsPerRecv)];
    struct cmsghdr align;
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof control.bytes;
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    n = -1;
  else if (n < 0)
    ThrowErrno(env, errno, "recvmsg");

  Napi::Array fds = Napi::Array::New(env);
  if (n >= 0) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int got;
        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        fds.Set(fds.Length(), got);
      }
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("bytes", Napi::Number::New(env, (double)n));
  out.Set("fds", fds);
  out.Set("ctrunc", Napi::Boolean::New(env, n >= 0 && (msg.msg_flags & MSG_CTRUNC) != 0));
  return out;
}

// sendmsg(fd, buf, offset, length, passFds) -> bytes written, or -1 on EAGAIN. passFds (a number,
// -1 for none, or an array of up to 253) are sent borrowed with SCM_RIGHTS on the first byte.
static Napi::Value SendMsg(const Napi::CallbackInfo &info) {
  const char *usage =
      "sendmsg(fd: number, buf: Buffer, offset: number, length: number, passFds: number | "
      "number[])";
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, usage);
  Napi::Buffer<uint8_t> buf = ArgBuffer(info, 1, usage);
  uint32_t off = ArgUint32(info, 2, usage), len = ArgUint32(info, 3, usage);
  if ((uint64_t)off + len > buf.Length()) ThrowUsage(env, usage);
  int pass[kMaxFdsPerSend];
  size_t npass = 0;
  if (info.Length() > 4 && info[4].IsArray()) {
    Napi::Array a = info[4].As<Napi::Array>();
    if (a.Length() > (uint32_t)kMaxFdsPerSend) ThrowUsage(env, usage);
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsNumber()) ThrowUsage(env, usage);
      pass[npass++] = v.As<Napi::Number>().Int32Value();
    }
  } else {
    int one = ArgInt(info, 4, usage);
    if (one >= 0) pass[npass++] = one;
  }

  struct iovec iov = {buf.Data() + off, len};
  union {
    char bytes[CMSG_SPACE(sizeof(int) * kMaxFdsPerSend)];
    struct cmsghdr align;
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (npass > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * npass);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * npass);
    memcpy(CMSG_DATA(c), pass, sizeof(int) * npass);
  }
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Napi::Number::New(env, -1);
  if (n < 0) ThrowErrno(env, errno, "sendmsg");
  return Napi::Number::New(env, (double)n);
}

// flockExclusive(fd) -> true when this process now holds an exclusive lock on fd's file, false
// when another holds one (LOCK_EX | LOCK_NB). The lock ends with the last close of the open file,
// so a process that dies drops it (sandbox uid leases, executor uid-range.ts).
static Napi::Value FlockExclusive(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "flockExclusive(fd: number)");
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EWOULDBLOCK) return Napi::Boolean::New(info.Env(), false);
  if (r < 0) ThrowErrno(info.Env(), errno, "flock(LOCK_EX | LOCK_NB)");
  return Napi::Boolean::New(info.Env(), true);
}

void InitFdBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("flockExclusive", Napi::Function::New(env, FlockExclusive, "flockExclusive"));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking, "setNonBlocking"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("recvmsg", Napi::Function::New(env, RecvMsg, "recvmsg"));
  exports.Set("sendmsg", Napi::Function::New(env, SendMsg, "sendmsg"));
}

}  // namespace sbx
