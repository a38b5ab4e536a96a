/*
 * test_fds.c: fds cross the channel usable, with FD_CLOEXEC, and none leaks on the way.
 */
#define _GNU_SOURCE /* O_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

#define MANY 200

/* The parent sends a pipe's write end; the child writes through it; the parent reads. */
static int pipe_parent(sbx_comms *c) {
  int p[2];
  char buf[32];
  ssize_t n;
  CHECK(pipe(p) == 0);
  CHECK_OK(sbx_comms_send_fd(c, p[1]));
  close(p[1]); /* send borrows: ours to close; the child's copy keeps the pipe open */
  CHECK_OK(sbx_comms_barrier(c));
  n = read(p[0], buf, sizeof buf);
  CHECK(n == 6 && memcmp(buf, "hello\n", 6) == 0);
  n = read(p[0], buf, sizeof buf);
  CHECK(n == 0); /* the child closed its copy: no stray reference anywhere */
  close(p[0]);
  return 0;
}

static int pipe_child(sbx_comms *c) {
  int fd;
  CHECK_OK(sbx_comms_recv_fd(c, &fd));
  CHECK(fd >= 0);
  CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  CHECK(write(fd, "hello\n", 6) == 6);
  close(fd);
  return sbx_comms_barrier(c);
}

/* recv_any hands back an Fd message's fd and -1 for the others; messages around it stay intact. */
static int any_parent(sbx_comms *c) {
  int p[2];
  CHECK(pipe(p) == 0);
  CHECK_OK(sbx_comms_send_uint32(c, 7));
  CHECK_OK(sbx_comms_send_fd(c, p[0]));
  CHECK_OK(sbx_comms_send_string(c, "after"));
  close(p[0]);
  CHECK(write(p[1], "x", 1) == 1);
  close(p[1]);
  return sbx_comms_barrier(c);
}

static int any_child(sbx_comms *c) {
  uint32_t tag;
  void *data;
  uint64_t len;
  int fd, none;
  char x;
  CHECK_OK(sbx_comms_recv_any(c, &tag, &data, &len, &none));
  CHECK(tag == SBX_TAG_UINT32 && len == 4 && none == -1);
  free(data);
  CHECK_OK(sbx_comms_recv_any(c, &tag, &data, &len, &fd));
  CHECK(tag == SBX_TAG_FD && len == 0 && data == NULL && fd >= 0);
  CHECK_OK(sbx_comms_recv_any(c, &tag, &data, &len, &none));
  CHECK(tag == SBX_TAG_STRING && len == 5 && memcmp(data, "after", 5) == 0 && none == -1);
  free(data);
  CHECK_OK(sbx_comms_barrier(c));
  CHECK(read(fd, &x, 1) == 1 && x == 'x');
  close(fd);
  return 0;
}

/* recv_any_into: payloads land in the caller's memory (asked for once the length is known), an
 * Fd message asks for none, and a payload cut short by the peer's exit is handed back. */
typedef struct {
  char block[64];
  int allocs, releases;
  uint64_t asked;
} arena;

static void *arena_alloc(void *ctx, uint64_t len) {
  arena *a = ctx;
  a->allocs++;
  a->asked = len;
  return len <= sizeof a->block ? a->block : NULL;
}

static void arena_release(void *ctx, void *p) {
  arena *a = ctx;
  if (p == a->block) a->releases++;
}

static int into_parent(sbx_comms *c) {
  int p[2];
  CHECK(pipe(p) == 0);
  CHECK_OK(sbx_comms_send_string(c, "payload"));
  CHECK_OK(sbx_comms_send_fd(c, p[0]));
  CHECK_OK(sbx_comms_send_bytes(c, "", 0));
  CHECK_OK(sbx_comms_send_bytes(c, "0123456789", 10));
  close(p[0]);
  close(p[1]);
  CHECK_OK(sbx_comms_barrier(c));
  /* A header announcing 32 bytes, then 3 and the end of the stream. */
  CHECK(raw_send(c->fd, SBX_TAG_BYTES, 32, "abc", 3, NULL, 0) == 0);
  return 0;
}

static int into_child(sbx_comms *c) {
  arena a = {{0}, 0, 0, 0};
  sbx_comms_allocator al = {arena_alloc, arena_release, &a};
  uint32_t tag;
  void *data;
  uint64_t len;
  int fd;
  CHECK_OK(sbx_comms_recv_any_into(c, &al, &tag, &data, &len, &fd));
  CHECK(tag == SBX_TAG_STRING && len == 7 && data == a.block && fd == -1);
  CHECK(memcmp(a.block, "payload", 7) == 0 && a.allocs == 1 && a.asked == 7);
  CHECK_OK(sbx_comms_recv_any_into(c, &al, &tag, &data, &len, &fd));
  CHECK(tag == SBX_TAG_FD && len == 0 && data == NULL && fd >= 0 && a.allocs == 1);
  close(fd);
  CHECK_OK(sbx_comms_recv_any_into(c, &al, &tag, &data, &len, &fd));
  CHECK(tag == SBX_TAG_BYTES && len == 0 && data == NULL && a.allocs == 1); /* nothing to hold */
  CHECK_OK(sbx_comms_recv_any_into(c, &al, &tag, &data, &len, &fd));
  CHECK(tag == SBX_TAG_BYTES && len == 10 && memcmp(data, "0123456789", 10) == 0);
  CHECK_OK(sbx_comms_barrier(c));
  CHECK_RC(sbx_comms_recv_any_into(c, &al, &tag, &data, &len, &fd), -EPROTO);
  CHECK(a.asked == 32 && a.releases == 1 && data == NULL && fd == -1);
  CHECK_RC(sbx_comms_recv_any_into(c, NULL, &tag, &data, &len, &fd), -EINVAL);
  return 0;
}

/* Many fds in a row, each closed by the receiver: the count of open fds does not grow. */
static int many_parent(sbx_comms *c) {
  int i, before = count_fds();
  for (i = 0; i < MANY; i++) {
    int fd;
    CHECK_OK(sbx_comms_recv_fd(c, &fd));
    close(fd);
  }
  CHECK(count_fds() == before);
  return 0;
}

static int many_child(sbx_comms *c) {
  int i, fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  CHECK(fd >= 0);
  for (i = 0; i < MANY; i++) CHECK_OK(sbx_comms_send_fd(c, fd));
  close(fd);
  return 0;
}

int main(void) {
  static const test_case cases[] = {
      {"a pipe fd arrives usable and with FD_CLOEXEC", pipe_parent, pipe_child},
      {"recv_any returns the fd of an Fd message and -1 otherwise", any_parent, any_child},
      {"recv_any_into reads payloads into the caller's memory and hands back a cut one",
       into_parent, into_child},
      {"200 fds received and closed leave the fd count unchanged", many_parent, many_child},
  };
  return run_cases(cases, sizeof cases / sizeof cases[0]);
}
