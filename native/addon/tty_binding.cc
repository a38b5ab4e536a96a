// tty_binding.cc: the caller's terminal around a sandbox that had it as stdio (executor
// cli/terminal-guard.ts holds the logic): its state before, put back after, and a way out when it
// cannot be put back (Node's own reset of its stdio at exit aborts when tcsetattr fails).
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "bindings.h"
#include "errors.h"

namespace sbx {
namespace {

// ttyState(fd): { termios: Buffer, ldisc: number } of a terminal; throws (errno) otherwise.
Napi::Value TtyState(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "ttyState(fd: number)");
  struct termios t;
  int ldisc = 0;
  if (tcgetattr(fd, &t) != 0) ThrowErrno(info.Env(), errno, "tcgetattr");
  if (ioctl(fd, TIOCGETD, &ldisc) != 0) ThrowErrno(info.Env(), errno, "ioctl(TIOCGETD)");
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("termios",
        Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t *>(&t), sizeof t));
  o.Set("ldisc", ldisc);
  return o;
}

// ttyRestore(fd, termios, ldisc): puts the line discipline and the modes back. 0 or an errno.
// SIGTTOU is blocked meanwhile: a background sbx would otherwise be stopped by its tcsetattr.
Napi::Value TtyRestore(const Napi::CallbackInfo &info) {
  const char *usage = "ttyRestore(fd: number, termios: Buffer, ldisc: number)";
  int fd = ArgInt(info, 0, usage);
  Napi::Buffer<uint8_t> buf = ArgBuffer(info, 1, usage);
  int ldisc = ArgInt(info, 2, usage);
  struct termios t;
  if (buf.Length() != sizeof t) ThrowUsage(info.Env(), usage);
  memcpy(&t, buf.Data(), sizeof t);
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &ttou, &old);
  int err = 0, now = -1;
  if (ioctl(fd, TIOCGETD, &now) != 0)
    err = errno;
  else if (now != ldisc && ioctl(fd, TIOCSETD, &ldisc) != 0)
    err = errno;
  if (!err) {
    int r;
    do r = tcsetattr(fd, TCSANOW, &t);
    while (r != 0 && errno == EINTR);
    if (r != 0) err = errno;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return Napi::Number::New(info.Env(), err);
}

// ttyDetach(fd): puts /dev/null in place of fd (a terminal that cannot be put back). 0 or an errno.
Napi::Value TtyDetach(const Napi::CallbackInfo &info) {
  int fd = ArgInt(info, 0, "ttyDetach(fd: number)");
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return Napi::Number::New(info.Env(), errno);
  int err = dup2(null_fd, fd) < 0 ? errno : 0;
  close(null_fd);
  return Napi::Number::New(info.Env(), err);
}

}  // namespace

void InitTtyBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("ttyState", Napi::Function::New(env, TtyState, "ttyState"));
  exports.Set("ttyRestore", Napi::Function::New(env, TtyRestore, "ttyRestore"));
  exports.Set("ttyDetach", Napi::Function::New(env, TtyDetach, "ttyDetach"));
}

}  // namespace sbx
