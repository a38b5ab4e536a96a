/*
 * assign.c: a pre-sandboxed spare's assignment (sbx/client.h, sbx_client_await_assignment()).
 *
 * Custom-fork mode with sandboxed spares: the child was forked and sandboxed (filter on, listener
 * with the executor's monitor) before any request. A request then reaches it on its handshake
 * channel as ASSIGN (u32 n | n x u32 target) followed by n SBX_TAG_FD messages, and this puts the
 * fds on their numbers. Runs under the filter: recvmsg() on the channel, fcntl(F_DUPFD_CLOEXEC,
 * F_DUPFD, F_SETFD) and close(), which the executor checks the child policy allows before it makes
 * such a spare. No allocation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sbx/comms.h>

#include "sbx/client.h"
#include "client_internal.h"
#include "le.h"

#define ASSIGN_MAX_FDS 16u

static int afail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* One Comms header and its payload (at most `cap` bytes) with recvmsg(); *fd gets an attached fd
 * (CLOEXEC) or -1. 0, -EPIPE at the end of the stream, -EPROTO, or -errno. */
static int recv_one(int sock, uint32_t *tag, unsigned char *payload, size_t cap, size_t *len,
                    int *fd) {
  unsigned char h[SBX_COMMS_HEADER_SIZE];
  size_t got = 0;
  *fd = -1;
  while (got < sizeof h) {
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = h + got, .iov_len = sizeof h - got};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) return -EPIPE;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t j = 0; j < k; j++) {
        int f;
        memcpy(&f, CMSG_DATA(cm) + j * sizeof(int), sizeof f);
        if (*fd < 0)
          *fd = f;
        else
          close(f); /* one fd per message: more is a protocol error */
      }
    }
    if (mh.msg_flags & MSG_CTRUNC) return -EPROTO;
    got += (size_t)r;
  }
  *tag = get_u32(h);
  uint64_t n = (uint64_t)get_u32(h + 4) | (uint64_t)get_u32(h + 8) << 32;
  if (n > cap) return -EPROTO;
  *len = (size_t)n;
  for (got = 0; got < n;) {
    ssize_t r = read(sock, payload + got, (size_t)n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) return -EPIPE;
    got += (size_t)r;
  }
  return 0;
}

/* `fd` onto number `target` with F_DUPFD, which never closes what is there: a target that is
 * taken in the child (one of the runtime's own fds) is an error, not a silent replacement. */
static int move_fd(int fd, int target) {
  /* stdio is the exception: the child inherited the forkserver's, which a request's own replaces
   * (as dup2() does on an ordinary fork). close() + F_DUPFD, both allowed by the child policy. */
  if (target <= 2) close(target);
  int d = fcntl(fd, F_DUPFD, target);
  if (d < 0) return -1;
  if (d != target) {
    close(d);
    errno = EBUSY;
    return -1;
  }
  return 0;
}

/* The fds onto their targets: first off any number another fd must take, then F_DUPFD. */
static int place(int *fds, const uint32_t *targets, unsigned n) {
  int r = sbx_client_fds_off_targets(fds, targets, n);
  if (r < 0) return r;
  for (unsigned i = 0; i < n; i++) {
    if (fds[i] == (int)targets[i]) {
      if (fcntl(fds[i], F_SETFD, 0) < 0) return -errno;
    } else {
      if (move_fd(fds[i], (int)targets[i]) < 0) return -errno;
      close(fds[i]);
    }
    fds[i] = -1;
  }
  return 0;
}

int sbx_client_await_assignment(int fd, char *err, size_t errlen) {
  if (!sbx_client_is_sandboxed())
    return afail(err, errlen, -EINVAL,
                 "a sandboxed spare's assignment before sandboxMeHere() succeeded");
  unsigned char payload[4 + 4 * ASSIGN_MAX_FDS];
  uint32_t tag = 0, targets[ASSIGN_MAX_FDS];
  size_t len = 0;
  int extra = -1, fds[ASSIGN_MAX_FDS];
  int rc = recv_one(fd, &tag, payload, sizeof payload, &len, &extra);
  if (rc < 0 || extra >= 0 || tag != SBX_CLIENT_TAG_ASSIGN || len < 4) {
    if (extra >= 0) close(extra);
    if (rc == -EPIPE) return afail(err, errlen, -EPIPE, "the executor closed the channel");
    return afail(err, errlen, rc < 0 ? rc : -EPROTO, "expected ASSIGN from the executor");
  }
  uint32_t n = get_u32(payload);
  if (n > ASSIGN_MAX_FDS || len != 4 + 4ull * n)
    return afail(err, errlen, -EPROTO, "ASSIGN of %zu bytes for %u fds", len, n);
  for (uint32_t i = 0; i < n; i++) {
    targets[i] = get_u32(payload + 4 + 4 * i);
    if (targets[i] > 1023 || (int)targets[i] == fd ||
        sbx_client_is_target(targets, i, (int)targets[i], i))
      return afail(err, errlen, -EPROTO, "ASSIGN: bad target fd %u", targets[i]);
  }
  for (uint32_t i = 0; i < n; i++) {
    size_t l = 0;
    rc = recv_one(fd, &tag, payload, 0, &l, &fds[i]);
    if (rc < 0 || tag != SBX_TAG_FD || fds[i] < 0) {
      if (rc == 0 && fds[i] >= 0) close(fds[i]);
      for (uint32_t j = 0; j < i; j++) close(fds[j]);
      return afail(err, errlen, rc < 0 ? rc : -EPROTO, "ASSIGN: fd %u of %u did not arrive", i + 1,
                   n);
    }
  }
  rc = place(fds, targets, n);
  if (rc < 0) {
    for (uint32_t i = 0; i < n; i++)
      if (fds[i] >= 0) close(fds[i]);
    return afail(err, errlen, rc, "placing the assigned fds: %s", strerror(-rc));
  }
  close(fd); /* the handshake is over: the channel's number is free for the program */
  return 0;
}
