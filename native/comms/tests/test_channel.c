/*
 * test_channel.c: the channel-level calls: peer credentials, barrier, version handshake, the
 * well-known fd, orderly close, argument checks and the static names.
 */
#define _GNU_SOURCE /* setenv */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

static int creds_parent(sbx_comms *c) {
  pid_t pid, child_pid;
  uid_t uid;
  gid_t gid;
  CHECK_OK(sbx_comms_recv_int32(c, &child_pid));
  CHECK_OK(sbx_comms_peer_creds(c, &pid, &uid, &gid));
  /* socketpair() was called by us, before fork: the kernel records the creator. */
  CHECK(pid == getpid());
  CHECK(uid == getuid() && gid == getgid());
  CHECK_OK(sbx_comms_peer_creds(c, NULL, NULL, NULL));
  return 0;
}

static int creds_child(sbx_comms *c) {
  pid_t pid;
  CHECK_OK(sbx_comms_send_int32(c, getpid()));
  CHECK_OK(sbx_comms_peer_creds(c, &pid, NULL, NULL));
  CHECK(pid == getppid());
  return 0;
}

/* The barrier orders the two sides: the child's value is only sent after the parent's. */
static int barrier_parent(sbx_comms *c) {
  uint32_t v;
  CHECK_OK(sbx_comms_send_uint32(c, 1));
  CHECK_OK(sbx_comms_barrier(c));
  CHECK_OK(sbx_comms_recv_uint32(c, &v));
  CHECK(v == 2);
  CHECK_OK(sbx_comms_barrier(c));
  return 0;
}

static int barrier_child(sbx_comms *c) {
  uint32_t v;
  CHECK_OK(sbx_comms_recv_uint32(c, &v));
  CHECK(v == 1);
  CHECK_OK(sbx_comms_barrier(c));
  CHECK_OK(sbx_comms_send_uint32(c, 2));
  CHECK_OK(sbx_comms_barrier(c));
  return 0;
}

static int version_parent(sbx_comms *c) {
  uint32_t v = 0;
  CHECK_OK(sbx_comms_recv_version(c, &v));
  CHECK(v == SBX_COMMS_PROTOCOL_VERSION);
  CHECK_RC(sbx_comms_recv_version(c, &v), -EPROTONOSUPPORT);
  CHECK(v == 2);
  CHECK_OK(sbx_comms_send_version(c));
  return 0;
}

static int version_child(sbx_comms *c) {
  static const unsigned char two[4] = {2, 0, 0, 0};
  CHECK_OK(sbx_comms_send_version(c));
  CHECK_OK(sbx_comms_send_tlv(c, SBX_TAG_VERSION, two, sizeof two));
  return sbx_comms_recv_version(c, NULL);
}

/* A peer that exits between messages: recv says -EPIPE (the orderly end), and sending to it
 * says -EPIPE too instead of killing us with SIGPIPE. */
static int close_parent(sbx_comms *c) {
  uint8_t v;
  int rc, i;
  CHECK_OK(sbx_comms_recv_uint8(c, &v));
  CHECK_RC(sbx_comms_recv_uint8(c, &v), -EPIPE);
  /* The first sends may still land in the dead socket's buffer on some kernels. */
  for (i = 0, rc = 0; i < 16 && rc == 0; i++) rc = sbx_comms_send_uint8(c, 1);
  CHECK_RC(rc, -EPIPE);
  return 0;
}

static int close_child(sbx_comms *c) { return sbx_comms_send_uint8(c, 9); }

static int default_fd_parent(sbx_comms *c) {
  int p[2];
  char num[16];
  snprintf(num, sizeof num, "%d", c->fd);
  CHECK(setenv(SBX_COMMS_FD_ENV, num, 1) == 0);
  CHECK_RC(sbx_comms_default_fd(), c->fd);
  CHECK(pipe(p) == 0);
  snprintf(num, sizeof num, "%d", p[0]);
  CHECK(setenv(SBX_COMMS_FD_ENV, num, 1) == 0);
  CHECK_RC(sbx_comms_default_fd(), -ENOTSOCK);
  close(p[0]);
  close(p[1]);
  CHECK_RC(sbx_comms_default_fd(), -EBADF);
  CHECK(setenv(SBX_COMMS_FD_ENV, "12x", 1) == 0);
  CHECK_RC(sbx_comms_default_fd(), -EINVAL);
  CHECK(setenv(SBX_COMMS_FD_ENV, "-3", 1) == 0);
  CHECK_RC(sbx_comms_default_fd(), -EINVAL);
  CHECK(unsetenv(SBX_COMMS_FD_ENV) == 0);
  /* Without the variable it is 1023, which this test process does not have open. */
  CHECK(fcntl(SBX_COMMS_DEFAULT_FD, F_GETFD) < 0);
  CHECK_RC(sbx_comms_default_fd(), -EBADF);
  return 0;
}

static int args_parent(sbx_comms *c) {
  void *data;
  uint64_t len;
  uint32_t tag;
  sbx_comms closed;
  CHECK_RC(sbx_comms_send_tlv(c, SBX_TAG_INVALID, NULL, 0), -EINVAL);
  CHECK_RC(sbx_comms_send_tlv(c, SBX_TAG_FD, NULL, 0), -EINVAL);
  CHECK_RC(sbx_comms_send_tlv(c, 5, NULL, 3), -EINVAL);
  CHECK_RC(sbx_comms_send_fd(c, -1), -EINVAL);
  CHECK_RC(sbx_comms_send_string(c, NULL), -EINVAL);
  CHECK_RC(sbx_comms_recv_expect(c, SBX_TAG_FD, &data, &len), -EINVAL);
  CHECK_RC(sbx_comms_recv_tlv(c, &tag, NULL, &len), -EINVAL);
  CHECK_RC(sbx_comms_recv_uint32(c, NULL), -EINVAL);
  CHECK_RC(sbx_comms_send_uint32(NULL, 1), -EINVAL);
  sbx_comms_init(&closed, -1);
  CHECK_RC(sbx_comms_send_uint32(&closed, 1), -EINVAL);
  CHECK_RC(sbx_comms_close(&closed), -EINVAL);
  return 0;
}

static int names_parent(sbx_comms *c) {
  CHECK(strcmp(sbx_comms_tag_name(SBX_TAG_UINT32), "Uint32") == 0);
  CHECK(strcmp(sbx_comms_tag_name(SBX_TAG_FD), "Fd") == 0);
  CHECK(strcmp(sbx_comms_tag_name(SBX_TAG_MSGPACK), "Msgpack") == 0);
  CHECK(strcmp(sbx_comms_tag_name(77), "user tag") == 0);
  CHECK(strcmp(sbx_comms_tag_name(0x8000ffffu), "unknown built-in tag") == 0);
  CHECK(strcmp(sbx_comms_strerror(-EPIPE), sbx_comms_strerror(EPIPE)) == 0);
  CHECK(strcmp(sbx_comms_strerror(-EPROTO), sbx_comms_strerror(-EBADMSG)) != 0);
  CHECK(sbx_comms_strerror(-12345) != NULL);
  CHECK(sbx_comms_last_tag(c) == SBX_TAG_INVALID);
  return 0;
}

int main(void) {
  static const test_case cases[] = {
      {"peer credentials name the socketpair's creator", creds_parent, creds_child},
      {"barrier orders both sides", barrier_parent, barrier_child},
      {"version handshake accepts ours and refuses another", version_parent, version_child},
      {"a peer closing between messages is -EPIPE both ways, no SIGPIPE", close_parent,
       close_child},
      {"default_fd reads SBX_COMMS_FD and checks the fd", default_fd_parent, NULL},
      {"bad arguments are -EINVAL", args_parent, NULL},
      {"tag and error names are static strings", names_parent, NULL},
  };
  return run_cases(cases, sizeof cases / sizeof cases[0]);
}
