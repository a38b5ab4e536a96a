/*
 * io.c: exact-length reads and whole-message writes on a unix stream socket, with fd accounting.
 */
#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC */
#include "io.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Room for several fds per recvmsg() so that a peer sending too many is seen (and its fds
 * closed) instead of being silently truncated away. */
#define RX_FD_SLOTS 8
#define DRAIN_CHUNK 4096

typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int) * RX_FD_SLOTS)];
} rx_control;

void sbx_rx_fds_init(sbx_rx_fds *rx) {
  rx->first = -1;
  rx->count = 0;
  rx->truncated = false;
}

void sbx_rx_fds_close(sbx_rx_fds *rx) {
  if (rx->first >= 0) {
    close(rx->first);
    rx->first = -1;
  }
}

/* Takes every SCM_RIGHTS fd out of `m`: keeps the first of the message, closes the others. */
static void collect_fds(const struct msghdr *m, sbx_rx_fds *rx) {
  struct cmsghdr *cm;
  if (m->msg_flags & MSG_CTRUNC) rx->truncated = true;
  for (cm = CMSG_FIRSTHDR(m); cm != NULL; cm = CMSG_NXTHDR((struct msghdr *)m, cm)) {
    size_t n, i;
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue; /* e.g. SCM_CREDENTIALS if someone set SO_PASSCRED: harmless */
    n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (i = 0; i < n; i++) {
      int got;
      /* memcpy: CMSG_DATA is not guaranteed to be int-aligned */
      memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof got);
      if (rx->first < 0 && rx->count == 0)
        rx->first = got;
      else
        close(got);
      rx->count++;
    }
  }
}

int sbx_read_exact(int fd, void *buf, size_t len, sbx_rx_fds *rx, bool at_boundary) {
  size_t got = 0;
  while (got < len) {
    rx_control control;
    struct iovec iov;
    struct msghdr m;
    ssize_t n;
    memset(&m, 0, sizeof m);
    iov.iov_base = (char *)buf + got;
    iov.iov_len = len - got;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.buf;
    m.msg_controllen = sizeof control.buf;
    n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    collect_fds(&m, rx);
    if (n == 0) return (at_boundary && got == 0) ? -EPIPE : -EPROTO;
    got += (size_t)n;
  }
  return 0;
}

int sbx_read_drain(int fd, uint64_t len, sbx_rx_fds *rx) {
  char sink[DRAIN_CHUNK];
  while (len > 0) {
    size_t step = len < sizeof sink ? (size_t)len : sizeof sink;
    int rc = sbx_read_exact(fd, sink, step, rx, false);
    if (rc < 0) return rc;
    len -= step;
  }
  return 0;
}

int sbx_write_msg(int fd, const void *head, size_t head_len, const void *data, size_t len,
                  int pass_fd) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct iovec iov[2];
  struct iovec *cur = iov;
  struct msghdr m;

  memset(&m, 0, sizeof m);
  iov[0].iov_base = (void *)head;
  iov[0].iov_len = head_len;
  iov[1].iov_base = (void *)data;
  iov[1].iov_len = len;
  m.msg_iov = iov;
  m.msg_iovlen = len > 0 ? 2 : 1;
  if (pass_fd >= 0) {
    struct cmsghdr *cm;
    memset(&control, 0, sizeof control);
    m.msg_control = control.buf;
    m.msg_controllen = sizeof control.buf;
    cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
  }

  while (m.msg_iovlen > 0) {
    ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
    size_t done;
    if (n < 0) {
      if (errno == EINTR) continue; /* nothing was sent, the fd included: send it again */
      return -errno;
    }
    /* The fd went with the first bytes; later partial writes must not send it again. */
    m.msg_control = NULL;
    m.msg_controllen = 0;
    done = (size_t)n;
    while (m.msg_iovlen > 0 && done >= cur->iov_len) {
      done -= cur->iov_len;
      cur++;
      m.msg_iovlen--;
    }
    if (m.msg_iovlen > 0) {
      cur->iov_base = (char *)cur->iov_base + done;
      cur->iov_len -= done;
    }
    m.msg_iov = cur;
  }
  return 0;
}
