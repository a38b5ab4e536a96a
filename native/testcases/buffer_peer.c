/*
 * buffer_peer: the C end of the shared-memory Buffer tests (test/buffer.test.ts) and of the
 * buffer example. Talks over sbx_comms_default_fd() and does what argv[1] says:
 *
 *   transform           until the peer closes: receives a buffer (sbx_buffer_recv), replaces
 *                       every byte b with b ^ 0xff in place, sends Uint64 size as the ack
 *   create SIZE         creates a buffer of SIZE bytes, fills it with pattern(i) = (i * 7) & 0xff
 *                       (all of it up to 1 MiB; above, the first and the last 4096 bytes), sends
 *                       it, waits for a Uint32 ack, then checks that the peer wrote 0x42 at
 *                       index 0 (SIZE > 0): exit 3 if not
 *   truncate-after-send a raw memfd (MFD_ALLOW_SEALING, 1 MiB of 0x01, not sealed) is sent as a
 *                       buffer; after the Uint32 ack (the peer mapped it) it tries
 *                       ftruncate(fd, 0) and ftruncate(fd, 2 MiB) and sends each result as an
 *                       Int32 (0 or errno); then waits for a Uint32 and exits
 *   truncate-received   receives a buffer's Uint64 size and fd without this library, tries
 *                       ftruncate(fd, 0) and sends the result as Int32 (0 or errno)
 *   send-file PATH      sends an fd of the regular file PATH (created with 4096 bytes when
 *                       missing) as a buffer of its size; waits for a Uint32 ack
 *   send-pipe           sends a pipe's read end as a buffer of size 0; waits for a Uint32 ack
 *   wrong-size          sends a 4096-byte memfd announced as 8192 bytes; waits for a Uint32 ack
 *   no-sealing          sends a memfd made without MFD_ALLOW_SEALING; waits for a Uint32 ack
 *
 * Exit status: 0 on success, 1 on an error (named on stderr), 2 on bad usage, 3 on a check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sbx/buffer.h"
#include "sbx/comms.h"

static int fail(const char *what, int rc) {
  fprintf(stderr, "buffer_peer: %s: %s\n", what, sbx_buffer_strerror(rc));
  return 1;
}

static unsigned char pattern(size_t i) { return (unsigned char)((i * 7) & 0xff); }

static int raw_memfd(unsigned flags, off_t size) {
  int fd = (int)syscall(SYS_memfd_create, "buffer_peer", flags);
  if (fd >= 0 && ftruncate(fd, size) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int wait_ack(sbx_comms *c) {
  uint32_t ack;
  int rc = sbx_comms_recv_uint32(c, &ack);
  return rc < 0 ? fail("recv ack", rc) : 0;
}

static int run_transform(sbx_comms *c) {
  for (;;) {
    sbx_buffer b;
    int rc = sbx_buffer_recv(c, &b, SBX_BUFFER_ANY_SIZE);
    if (rc == -EPIPE) return 0;
    if (rc < 0) return fail("transform: recv", rc);
    uint64_t *w = b.data;
    size_t words = b.size / 8;
    for (size_t i = 0; i < words; i++) w[i] ^= ~(uint64_t)0;
    unsigned char *p = b.data;
    for (size_t i = words * 8; i < b.size; i++) p[i] ^= 0xff;
    size_t size = b.size;
    sbx_buffer_close(&b);
    rc = sbx_comms_send_uint64(c, size);
    if (rc < 0) return fail("transform: send", rc);
  }
}

static int run_create(sbx_comms *c, size_t size) {
  sbx_buffer b;
  int rc = sbx_buffer_create(size, &b);
  if (rc < 0) return fail("create", rc);
  unsigned char *p = b.data;
  if (size <= ((size_t)1 << 20)) {
    for (size_t i = 0; i < size; i++) p[i] = pattern(i);
  } else {
    for (size_t i = 0; i < 4096; i++) p[i] = pattern(i);
    for (size_t i = size - 4096; i < size; i++) p[i] = pattern(i);
  }
  if ((rc = sbx_buffer_send(c, &b)) < 0) return fail("send", rc);
  if (wait_ack(c)) return 1;
  int ok = size == 0 || p[0] == 0x42;
  sbx_buffer_close(&b);
  return ok ? 0 : 3;
}

static int send_raw(sbx_comms *c, uint64_t announced, int fd) {
  int rc = sbx_comms_send_uint64(c, announced);
  if (rc == 0) rc = sbx_comms_send_fd(c, fd);
  return rc < 0 ? fail("send", rc) : 0;
}

static int run_truncate_after_send(sbx_comms *c) {
  size_t size = (size_t)1 << 20;
  int fd = raw_memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING, (off_t)size);
  if (fd < 0) return fail("memfd", -errno);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail("mmap", -errno);
  memset(p, 1, size);
  munmap(p, size);
  if (send_raw(c, size, fd) || wait_ack(c)) return 1;
  int r1 = ftruncate(fd, 0) == 0 ? 0 : errno;
  int r2 = ftruncate(fd, (off_t)size * 2) == 0 ? 0 : errno;
  int rc = sbx_comms_send_int32(c, r1);
  if (rc == 0) rc = sbx_comms_send_int32(c, r2);
  if (rc < 0) return fail("send result", rc);
  return wait_ack(c);
}

static int run_truncate_received(sbx_comms *c) {
  uint64_t size;
  int fd;
  int rc = sbx_comms_recv_uint64(c, &size);
  if (rc == 0) rc = sbx_comms_recv_fd(c, &fd);
  if (rc < 0) return fail("recv", rc);
  int r = ftruncate(fd, 0) == 0 ? 0 : errno;
  rc = sbx_comms_send_int32(c, r);
  return rc < 0 ? fail("send result", rc) : 0;
}

static int run_send_file(sbx_comms *c, const char *path) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return fail("create file", -errno);
  }
  off_t size = lseek(fd, 0, SEEK_END);
  return send_raw(c, (uint64_t)size, fd) || wait_ack(c);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: buffer_peer MODE [ARG]\n");
    return 2;
  }
  int fd = sbx_comms_default_fd();
  if (fd < 0) return fail("comms fd", fd);
  sbx_comms c;
  sbx_comms_init(&c, fd);
  const char *mode = argv[1];
  if (!strcmp(mode, "transform")) return run_transform(&c);
  if (!strcmp(mode, "create") && argc == 3)
    return run_create(&c, (size_t)strtoull(argv[2], NULL, 10));
  if (!strcmp(mode, "truncate-after-send")) return run_truncate_after_send(&c);
  if (!strcmp(mode, "truncate-received")) return run_truncate_received(&c);
  if (!strcmp(mode, "send-file") && argc == 3) return run_send_file(&c, argv[2]);
  if (!strcmp(mode, "send-pipe")) {
    int pp[2];
    if (pipe(pp) != 0) return fail("pipe", -errno);
    return send_raw(&c, 0, pp[0]) || wait_ack(&c);
  }
  if (!strcmp(mode, "wrong-size")) {
    int m = raw_memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING, 4096);
    return m < 0 ? fail("memfd", -errno) : (send_raw(&c, 8192, m) || wait_ack(&c));
  }
  if (!strcmp(mode, "no-sealing")) {
    int m = raw_memfd(MFD_CLOEXEC, 4096);
    return m < 0 ? fail("memfd", -errno) : (send_raw(&c, 4096, m) || wait_ack(&c));
  }
  fprintf(stderr, "buffer_peer: unknown mode %s\n", mode);
  return 2;
}
