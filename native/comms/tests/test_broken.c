/*
 * test_broken.c: a broken or hostile peer gets a clear error, never a crash, a hang, a huge
 * allocation or a leaked fd. The child plays the peer with hand-made messages; the parent
 * counts its open fds around each receive. malloc is wrapped (-Wl,--wrap=malloc) to record the
 * largest request the library makes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

/* ---- malloc watch ---- */
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
static size_t largest_malloc;
void *__wrap_malloc(size_t n) {
  if (n > largest_malloc) largest_malloc = n;
  return __real_malloc(n);
}

/* Parent side helpers: the receive under test must leave the fd count where it was. */
#define FDS_BEFORE()    int fds_before_ = count_fds()
#define CHECK_NO_LEAK() CHECK(count_fds() == fds_before_)

static int open_pipe_pair(int p[2]) { return pipe(p); }

/* ---- EOF inside a message ---- */

static int trunc_header_child(sbx_comms *c) {
  static const unsigned char half[6] = {0x07, 0x00, 0x00, 0x80, 0x04, 0x00};
  return raw_write(c->fd, half, sizeof half, NULL, 0); /* then exits */
}

static int trunc_header_parent(sbx_comms *c) {
  uint32_t v;
  FDS_BEFORE();
  CHECK_RC(sbx_comms_recv_uint32(c, &v), -EPROTO);
  CHECK_NO_LEAK();
  return 0;
}

static int trunc_payload_child(sbx_comms *c) {
  char half[50];
  memset(half, 'x', sizeof half);
  return raw_send(c->fd, SBX_TAG_BYTES, 100, half, sizeof half, NULL, 0);
}

static int trunc_payload_parent(sbx_comms *c) {
  void *data;
  size_t n;
  FDS_BEFORE();
  CHECK_RC(sbx_comms_recv_bytes(c, &data, &n), -EPROTO);
  CHECK(data == NULL);
  CHECK_NO_LEAK();
  return 0;
}

/* A peer that dies mid-message while holding an fd in flight: the fd is closed too. */
static int trunc_fd_child(sbx_comms *c) {
  int p[2];
  char half[10];
  CHECK(open_pipe_pair(p) == 0);
  memset(half, 'y', sizeof half);
  return raw_send(c->fd, SBX_TAG_FD, 0, NULL, 0, p, 1) ||
         raw_send(c->fd, SBX_TAG_STRING, 40, half, sizeof half, p, 2);
}

static int trunc_fd_parent(sbx_comms *c) {
  char *s;
  int fd;
  FDS_BEFORE();
  CHECK_OK(sbx_comms_recv_fd(c, &fd));
  close(fd);
  CHECK_RC(sbx_comms_recv_string(c, &s, NULL), -EPROTO);
  CHECK_NO_LEAK();
  return 0;
}

/* ---- tag and size mismatches (the channel stays usable) ---- */

static int wrong_tag_child(sbx_comms *c) {
  int p[2];
  static const unsigned char three[3] = {1, 2, 3};
  CHECK(open_pipe_pair(p) == 0);
  CHECK_OK(sbx_comms_send_string(c, "not a number"));
  CHECK_OK(sbx_comms_send_fd(c, p[0]));
  CHECK_OK(sbx_comms_send_uint64(c, 5));
  CHECK_OK(sbx_comms_send_tlv(c, SBX_TAG_UINT32, three, sizeof three));
  CHECK_OK(sbx_comms_send_tlv(c, SBX_TAG_BOOL, "\x02", 1));
  CHECK_OK(sbx_comms_send_tlv(c, SBX_TAG_BARRIER, "x", 1));
  CHECK_OK(sbx_comms_send_fd(c, p[1]));
  CHECK_OK(sbx_comms_send_uint32(c, 77));
  return wait_for_eof(c); /* stays alive for the parent's Barrier */
}

static int wrong_tag_parent(sbx_comms *c) {
  uint32_t v, tag;
  uint64_t len;
  void *data;
  bool b;
  int fd;
  FDS_BEFORE();
  CHECK_RC(sbx_comms_recv_uint32(c, &v), -EBADMSG);
  CHECK(sbx_comms_last_tag(c) == SBX_TAG_STRING);
  CHECK_RC(sbx_comms_recv_uint32(c, &v), -EBADMSG); /* an Fd message: its fd is closed */
  CHECK(sbx_comms_last_tag(c) == SBX_TAG_FD);
  CHECK_RC(sbx_comms_recv_fd(c, &fd), -EBADMSG);
  CHECK(sbx_comms_last_tag(c) == SBX_TAG_UINT64);
  CHECK_RC(sbx_comms_recv_uint32(c, &v), -EBADMSG); /* right tag, 3 bytes */
  CHECK(sbx_comms_last_tag(c) == SBX_TAG_UINT32);
  CHECK_RC(sbx_comms_recv_bool(c, &b), -EBADMSG);               /* a Bool of 2 */
  CHECK_RC(sbx_comms_barrier(c), -EBADMSG);                     /* a Barrier with a payload */
  CHECK_RC(sbx_comms_recv_tlv(c, &tag, &data, &len), -EBADMSG); /* Fd needs recv_any */
  CHECK(sbx_comms_last_tag(c) == SBX_TAG_FD);
  CHECK_OK(sbx_comms_recv_uint32(c, &v));
  CHECK(v == 77);
  CHECK_NO_LEAK();
  return 0;
}

/* ---- lengths ---- */

static int huge_child(sbx_comms *c) {
  return raw_send(c->fd, SBX_TAG_BYTES, (uint64_t)1 << 62, NULL, 0, NULL, 0);
}

static int huge_parent(sbx_comms *c) {
  void *data;
  size_t n;
  FDS_BEFORE();
  largest_malloc = 0;
  CHECK_RC(sbx_comms_recv_bytes(c, &data, &n), -EMSGSIZE);
  CHECK(largest_malloc < 4096);
  CHECK_NO_LEAK();
  return 0;
}

static int capped_child(sbx_comms *c) {
  static char buf[4096];
  CHECK_OK(sbx_comms_send_bytes(c, buf, 1024));
  CHECK_OK(sbx_comms_send_bytes(c, buf, 1025));
  return 0;
}

static int capped_parent(sbx_comms *c) {
  void *data;
  size_t n;
  sbx_comms_set_max_message_size(c, 1024);
  largest_malloc = 0;
  CHECK_OK(sbx_comms_recv_bytes(c, &data, &n));
  CHECK(n == 1024);
  CHECK(largest_malloc == 1024); /* the watch sees the library's allocations */
  free(data);
  largest_malloc = 0;
  CHECK_RC(sbx_comms_recv_bytes(c, &data, &n), -EMSGSIZE);
  CHECK(largest_malloc < 1025);
  return 0;
}

static int into_child(sbx_comms *c) { return sbx_comms_send_tlv(c, 9, "0123456789", 10); }

static int into_parent(sbx_comms *c) {
  char buf[8];
  uint32_t tag;
  uint64_t len;
  CHECK_RC(sbx_comms_recv_tlv_into(c, &tag, buf, sizeof buf, &len), -EMSGSIZE);
  return 0;
}

/* ---- fds where none belongs ---- */

static int two_fds_child(sbx_comms *c) {
  int p[2];
  CHECK(open_pipe_pair(p) == 0);
  return raw_send(c->fd, SBX_TAG_FD, 0, NULL, 0, p, 2);
}

static int two_fds_parent(sbx_comms *c) {
  int fd = -1;
  FDS_BEFORE();
  CHECK_RC(sbx_comms_recv_fd(c, &fd), -EPROTO);
  CHECK(fd == -1);
  CHECK_NO_LEAK();
  return 0;
}

static int many_fds_child(sbx_comms *c) {
  int fds[20], i;
  for (i = 0; i < 20; i++) fds[i] = open("/dev/null", O_RDONLY);
  return raw_send(c->fd, SBX_TAG_FD, 0, NULL, 0, fds, 20); /* more than recvmsg has room for */
}

/* Twenty fds on the first half of a payload: the receive in progress gets what fits (MSG_CTRUNC
 * for the rest) and must close them all. */
static int partial_many_fds_child(sbx_comms *c) {
  int fds[20], i;
  char half[50];
  memset(half, 'x', sizeof half);
  for (i = 0; i < 20; i++) fds[i] = open("/dev/null", O_RDONLY);
  return raw_send(c->fd, SBX_TAG_BYTES, 100, half, sizeof half, fds, 20);
}

static int stray_fd_child(sbx_comms *c) {
  int p[2];
  static const unsigned char seven[4] = {7, 0, 0, 0};
  CHECK(open_pipe_pair(p) == 0);
  return raw_send(c->fd, SBX_TAG_UINT32, 4, seven, 4, p, 1);
}

static int stray_fd_parent(sbx_comms *c) {
  uint32_t v;
  FDS_BEFORE();
  CHECK_RC(sbx_comms_recv_uint32(c, &v), -EPROTO);
  CHECK_NO_LEAK();
  return 0;
}

/* The fd rides on the payload's bytes, sent apart from the header. */
static int payload_fd_child(sbx_comms *c) {
  int p[2];
  unsigned char head[12] = {0x01, 0x01, 0x00, 0x80, 8, 0, 0, 0, 0, 0, 0, 0}; /* Bytes, 8 */
  CHECK(open_pipe_pair(p) == 0);
  /* Two sendmsg() calls: the kernel never merges them, and the header read (12 bytes) cannot
   * reach the second, so the fds arrive with the payload. */
  CHECK_OK(raw_write(c->fd, head, sizeof head, NULL, 0));
  return raw_write(c->fd, "abcdefgh", 8, p, 2);
}

static int payload_fd_parent(sbx_comms *c) {
  void *data;
  size_t n;
  FDS_BEFORE();
  CHECK_RC(sbx_comms_recv_bytes(c, &data, &n), -EPROTO);
  CHECK_NO_LEAK();
  return 0;
}

/* An Fd message with a payload, and one without its fd. */
static int bad_fd_msg_child(sbx_comms *c) {
  int p[2];
  CHECK(open_pipe_pair(p) == 0);
  return raw_send(c->fd, SBX_TAG_FD, 4, "abcd", 4, p, 1);
}

static int no_fd_child(sbx_comms *c) { return raw_send(c->fd, SBX_TAG_FD, 0, NULL, 0, NULL, 0); }

static int any_fd_parent(sbx_comms *c) {
  uint32_t tag;
  void *data;
  uint64_t len;
  int fd;
  FDS_BEFORE();
  CHECK_RC(sbx_comms_recv_any(c, &tag, &data, &len, &fd), -EPROTO);
  CHECK(fd == -1 && data == NULL);
  CHECK_NO_LEAK();
  return 0;
}

static int tag_zero_child(sbx_comms *c) { return raw_send(c->fd, 0, 0, NULL, 0, NULL, 0); }

int main(void) {
  static const test_case cases[] = {
      {"peer dies inside the header: -EPROTO", trunc_header_parent, trunc_header_child},
      {"peer dies inside the payload: -EPROTO", trunc_payload_parent, trunc_payload_child},
      {"peer dies mid-message with fds in flight: -EPROTO, fds closed", trunc_fd_parent,
       trunc_fd_child},
      {"wrong tag or size: -EBADMSG with last_tag, payload consumed", wrong_tag_parent,
       wrong_tag_child},
      {"a 2^62-byte length: -EMSGSIZE without allocating", huge_parent, huge_child},
      {"a length above a lowered cap: -EMSGSIZE without allocating", capped_parent, capped_child},
      {"recv_tlv_into a smaller buffer: -EMSGSIZE", into_parent, into_child},
      {"two fds on one Fd message: -EPROTO, both closed", two_fds_parent, two_fds_child},
      {"twenty fds on one Fd message: -EPROTO, none leaked", two_fds_parent, many_fds_child},
      {"an fd on a Uint32 message: -EPROTO, closed", stray_fd_parent, stray_fd_child},
      {"twenty fds on half a payload: -EPROTO, none leaked", trunc_payload_parent,
       partial_many_fds_child},
      {"fds on a payload sent apart: -EPROTO, closed", payload_fd_parent, payload_fd_child},
      {"an Fd message with a payload: -EPROTO, fd closed", any_fd_parent, bad_fd_msg_child},
      {"an Fd message without an fd: -EPROTO", any_fd_parent, no_fd_child},
      {"tag 0: -EPROTO", any_fd_parent, tag_zero_child},
  };
  return run_cases(cases, sizeof cases / sizeof cases[0]);
}
