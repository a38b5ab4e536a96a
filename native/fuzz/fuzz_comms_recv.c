/*
 * fuzz_comms_recv: libFuzzer target for libsbx_comms' receive path, over a real socketpair so
 * that the kernel's framing of reads and SCM_RIGHTS batches is the real one.
 *
 * Input: byte 0 selects the receive function (bits 0-2: any, tlv, string, the typed ones in turn,
 * fd, expect, into a small buffer, or all of these in turn) and max_message_size (bits 3-4: 16,
 * 100, 4096 or 1 MiB). The rest is a sequence of chunks, each `u8 head` then `head & 0x3f` bytes
 * (0 means 1). Each chunk is one sendmsg() on the peer end; head bit 7 attaches one fd (a
 * /dev/null copy), bit 6 two, both MANY_FDS (more than one recvmsg takes: MSG_CTRUNC). Then the peer end is shut down and the receiver loops until the
 * channel breaks.
 *
 * Checked on every input (a failure aborts, which libFuzzer reports as a crash):
 *   - only documented return codes, also for a call after the channel broke;
 *   - no payload above max_message_size is ever returned;
 *   - no fd leaks: every fd the kernel delivered is either handed to us (and closed here) or
 *     closed by the library, so the fd table is back to where it was.
 * ASan and UBSan (the build flags) catch memory errors on the way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sbx/comms.h"

static int devnull = -1;

static void check(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "fuzz_comms_recv: invariant broken: %s\n", what);
    abort();
  }
}

/* Which of the fds 0..FD_WATCH-1 are open. Received fds are always allocated lowest first, so a
 * leak shows up here as an fd that was not open before the input. */
#define FD_WATCH 256
static void open_fds(unsigned char out[FD_WATCH]) {
  for (int fd = 0; fd < FD_WATCH; fd++) out[fd] = !(fcntl(fd, F_GETFD) < 0 && errno == EBADF);
}

static void check_no_new_fds(const unsigned char before[FD_WATCH]) {
  unsigned char after[FD_WATCH];
  open_fds(after);
  for (int fd = 0; fd < FD_WATCH; fd++) {
    if (!after[fd] || before[fd]) continue;
    char link[64], target[256] = "?";
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) target[n] = '\0';
    fprintf(stderr, "fuzz_comms_recv: fd %d (%s) leaked\n", fd, target);
    check(0, "an fd leaked");
  }
}

#define MANY_FDS 20
static int send_chunk(int fd, const uint8_t *data, size_t len, int nfds) {
  struct iovec iov = {(void *)data, len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(MANY_FDS * sizeof(int))];
  } control;
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (nfds > 0) {
    int fds[MANY_FDS];
    for (int k = 0; k < MANY_FDS; k++) fds[k] = devnull;
    memset(&control, 0, sizeof control);
    m.msg_control = control.buf;
    m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
  }
  return sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len ? 0 : -1;
}

static int documented(int rc) {
  return rc == 0 || rc == -EPIPE || rc == -EPROTO || rc == -EBADMSG || rc == -EMSGSIZE ||
         rc == -EPROTONOSUPPORT;
}

/* One receive of the selected kind. Returns its result; frees and closes what it got. */
static int recv_one(sbx_comms *c, unsigned mode, unsigned step, uint64_t max) {
  void *data = NULL;
  uint64_t len = 0;
  uint32_t tag = 0;
  int fd = -1;
  int rc;
  if (mode == 7) mode = step % 7; /* rotate through all of them */
  switch (mode) {
    case 0:
      rc = sbx_comms_recv_any(c, &tag, &data, &len, &fd);
      if (rc == 0) check((tag == SBX_TAG_FD) == (fd >= 0), "an fd exactly for Fd messages");
      break;
    case 1: rc = sbx_comms_recv_tlv(c, &tag, &data, &len); break;
    case 2: {
      char *s = NULL;
      size_t slen = 0;
      rc = sbx_comms_recv_string(c, &s, &slen);
      if (rc == 0) check(s != NULL && s[slen] == '\0', "string terminated");
      data = s;
      len = slen;
      break;
    }
    case 3: { /* the typed receivers, one after another */
      union {
        bool b;
        int8_t i8;
        uint8_t u8;
        int16_t i16;
        uint16_t u16;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
      } v;
      size_t blen = 0;
      switch (step % 12) {
        case 0: rc = sbx_comms_recv_bool(c, &v.b); break;
        case 1: rc = sbx_comms_recv_int8(c, &v.i8); break;
        case 2: rc = sbx_comms_recv_uint8(c, &v.u8); break;
        case 3: rc = sbx_comms_recv_int16(c, &v.i16); break;
        case 4: rc = sbx_comms_recv_uint16(c, &v.u16); break;
        case 5: rc = sbx_comms_recv_int32(c, &v.i32); break;
        case 6: rc = sbx_comms_recv_uint32(c, &v.u32); break;
        case 7: rc = sbx_comms_recv_int64(c, &v.i64); break;
        case 8: rc = sbx_comms_recv_uint64(c, &v.u64); break;
        case 9: rc = sbx_comms_recv_version(c, &v.u32); break;
        case 10: rc = sbx_comms_recv_bytes(c, &data, &blen); break;
        default: rc = sbx_comms_recv_msgpack(c, &data, &blen); break;
      }
      len = blen;
      break;
    }
    case 4:
      rc = sbx_comms_recv_fd(c, &fd);
      if (rc == 0)
        check(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "a received fd has FD_CLOEXEC");
      break;
    case 5: rc = sbx_comms_recv_expect(c, SBX_TAG_BYTES, &data, &len); break;
    default: {
      unsigned char buf[64];
      rc = sbx_comms_recv_tlv_into(c, &tag, buf, sizeof buf, &len);
      if (rc == 0) check(len <= sizeof buf, "recv_tlv_into within its buffer");
      len = 0;
      break;
    }
  }
  if (rc == 0)
    check(len <= max, "payload within max_message_size");
  else
    check(data == NULL && fd < 0, "no data and no fd on failure");
  free(data);
  if (fd >= 0) close(fd);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  static const uint64_t maxes[4] = {16, 100, 4096, 1 << 20};
  if (devnull < 0) devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (size < 1) return 0;
  unsigned mode = in[0] & 7;
  uint64_t max = maxes[(in[0] >> 3) & 3];

  unsigned char before[FD_WATCH];
  open_fds(before);
  int sv[2];
  check(sbx_comms_socketpair(sv) == 0, "socketpair");
  /* The whole input goes into the socket before the first read: room for it. */
  int sndbuf = 1 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  size_t i = 1;
  while (i < size) {
    uint8_t head = in[i++];
    size_t len = head & 0x3f;
    if (len == 0) len = 1;
    if (len > size - i) len = size - i;
    if (len == 0) break;
    int nfds = (head & 0xc0) == 0xc0 ? MANY_FDS : (head & 0x80) ? 1 : (head & 0x40) ? 2 : 0;
    if (send_chunk(sv[1], in + i, len, nfds) < 0) break; /* full: receive what is there */
    i += len;
  }
  shutdown(sv[1], SHUT_WR);

  sbx_comms c;
  sbx_comms_init(&c, sv[0]);
  sbx_comms_set_max_message_size(&c, max);
  for (unsigned step = 0; step < 4096; step++) {
    int rc = recv_one(&c, mode, step, max);
    check(documented(rc), "a documented error code");
    if (rc == 0 || rc == -EBADMSG) continue;
    /* Broken. A caller must stop here; one that does not still gets a documented answer and
     * no leak. */
    check(documented(recv_one(&c, mode, step + 1, max)), "a documented error code after a break");
    break;
  }
  close(sv[0]);
  close(sv[1]);
  check_no_new_fds(before);
  return 0;
}
