/*
 * test_buffer.c: sbx/buffer.h. Round trips over a socketpair in one process (both ends are
 * this library), the refusals of sbx_buffer_from_fd() for every kind of wrong fd, the seals a
 * peer runs into, and fd/mapping counts after many cycles. Results are TAP lines.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sbx/buffer.h>
#include <sbx/comms.h>

#include "check.h"

#define CHECK_RC(expr, want) CHECK_RC_NAMED(expr, want, sbx_buffer_strerror)

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n++;
  closedir(d);
  return n;
}

static int count_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  int n = 0, ch;
  while ((ch = fgetc(f)) != EOF) n += ch == '\n';
  fclose(f);
  return n;
}

static int raw_memfd(unsigned flags, off_t size) {
  int fd = (int)syscall(SYS_memfd_create, "raw", flags);
  if (fd >= 0 && ftruncate(fd, size) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* One round trip of `size` bytes over a socketpair: the receiver sees the sender's bytes and
 * the sender sees the receiver's, through the same pages. */
static int round_trip(size_t size) {
  int sv[2];
  CHECK(sbx_comms_socketpair(sv) == 0);
  sbx_comms a, b;
  sbx_comms_init(&a, sv[0]);
  sbx_comms_init(&b, sv[1]);
  sbx_buffer out, in;
  CHECK_RC(sbx_buffer_create(size, &out), 0);
  CHECK(out.size == size && out.fd >= 0 && (size == 0) == (out.data == NULL));
  int seals = fcntl(out.fd, F_GET_SEALS);
  CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW));
  CHECK(size == 0 || (ftruncate(out.fd, 0) != 0 && errno == EPERM));
  CHECK(ftruncate(out.fd, (off_t)size + 4096) != 0 && errno == EPERM);
  unsigned char *p = out.data;
  if (size) {
    p[0] = 0xa5;
    p[size - 1] = 0x5a;
  }
  CHECK_RC(sbx_buffer_send(&a, &out), 0);
  CHECK_RC(sbx_buffer_recv(&b, &in, size), 0);
  CHECK(in.size == size && in.fd >= 0 && in.fd != out.fd);
  unsigned char *q = in.data;
  if (size) {
    CHECK(q[0] == (size == 1 ? 0x5a : 0xa5) && q[size - 1] == 0x5a);
    q[size / 2] = 0x77;
    CHECK(p[size / 2] == 0x77);
    CHECK(q != p);
  }
  CHECK_RC(sbx_buffer_close(&in), 0);
  CHECK_RC(sbx_buffer_close(&in), 0); /* idempotent */
  CHECK_RC(sbx_buffer_close(&out), 0);
  close(sv[0]);
  close(sv[1]);
  return 0;
}

static int test_sizes(void) {
  long ps = sysconf(_SC_PAGESIZE);
  size_t sizes[] = {0, 1, (size_t)ps - 1, (size_t)ps, (size_t)ps + 1, (size_t)1 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    if (round_trip(sizes[i]) != 0) {
      fprintf(stderr, "size %zu failed\n", sizes[i]);
      return 1;
    }
  return 0;
}

/* 1 GiB, sparse: only the touched pages exist. */
static int test_one_gib(void) { return round_trip((size_t)1 << 30); }

static int test_refusals(void) {
  sbx_buffer b;
  int fd;
  /* A regular file on a disk filesystem. */
  fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  CHECK(fd >= 0);
  CHECK_RC(sbx_buffer_from_fd(fd, SBX_BUFFER_ANY_SIZE, &b), -EMEDIUMTYPE);
  CHECK(fcntl(fd, F_GETFD) >= 0); /* still the caller's */
  close(fd);
  /* A pipe and a socket. */
  int pp[2];
  CHECK(pipe2(pp, O_CLOEXEC) == 0);
  CHECK_RC(sbx_buffer_from_fd(pp[0], SBX_BUFFER_ANY_SIZE, &b), -EMEDIUMTYPE);
  CHECK_RC(sbx_buffer_from_fd(pp[1], SBX_BUFFER_ANY_SIZE, &b), -EMEDIUMTYPE);
  close(pp[0]);
  close(pp[1]);
  int sv[2];
  CHECK(sbx_comms_socketpair(sv) == 0);
  CHECK_RC(sbx_buffer_from_fd(sv[0], SBX_BUFFER_ANY_SIZE, &b), -EMEDIUMTYPE);
  close(sv[0]);
  close(sv[1]);
  /* A linked file on a tmpfs (/dev/shm where it exists). */
  char path[] = "/dev/shm/sbx-buffer-test-XXXXXX";
  fd = mkstemp(path);
  if (fd >= 0) {
    CHECK(ftruncate(fd, 4096) == 0);
    CHECK_RC(sbx_buffer_from_fd(fd, SBX_BUFFER_ANY_SIZE, &b), -EMEDIUMTYPE);
    unlink(path);
    close(fd);
  }
  /* Bad arguments. */
  CHECK_RC(sbx_buffer_from_fd(-1, SBX_BUFFER_ANY_SIZE, &b), -EINVAL);
  CHECK_RC(sbx_buffer_from_fd(0, SBX_BUFFER_ANY_SIZE, NULL), -EINVAL);
  CHECK_RC(sbx_buffer_create(1, NULL), -EINVAL);
  CHECK_RC(sbx_buffer_from_fd(999999, SBX_BUFFER_ANY_SIZE, &b), -EBADF);
  /* A memfd without MFD_ALLOW_SEALING (F_SEAL_SEAL from birth). */
  fd = raw_memfd(MFD_CLOEXEC, 4096);
  CHECK(fd >= 0);
  CHECK_RC(sbx_buffer_from_fd(fd, SBX_BUFFER_ANY_SIZE, &b), -EPERM);
  close(fd);
  /* A memfd whose creator sealed the seals without freezing the size. */
  fd = raw_memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING, 4096);
  CHECK(fd >= 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) == 0);
  CHECK_RC(sbx_buffer_from_fd(fd, SBX_BUFFER_ANY_SIZE, &b), -EPERM);
  close(fd);
  /* Sealed SHRINK|GROW|SEAL by the creator: fine. */
  fd = raw_memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING, 4096);
  CHECK(fd >= 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
  CHECK_RC(sbx_buffer_from_fd(fd, 4096, &b), 0);
  CHECK_RC(sbx_buffer_close(&b), 0);
  /* Write-sealed: cannot be mapped writable. */
  fd = raw_memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING, 4096);
  CHECK(fd >= 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0);
  CHECK_RC(sbx_buffer_from_fd(fd, 4096, &b), -EACCES);
  close(fd);
  /* Wrong size. */
  fd = raw_memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING, 4096);
  CHECK(fd >= 0);
  CHECK_RC(sbx_buffer_from_fd(fd, 8192, &b), -ERANGE);
  /* ... but it was sealed on the way: the creator cannot shrink it any more. */
  CHECK(ftruncate(fd, 0) != 0 && errno == EPERM);
  CHECK_RC(sbx_buffer_from_fd(fd, 4096, &b), 0);
  CHECK_RC(sbx_buffer_close(&b), 0);
  return 0;
}

/* A raw (unsealed) memfd from a peer: the receiver seals it; the peer's later ftruncate fails
 * and the mapping stays valid. */
static int test_peer_cannot_truncate(void) {
  int sv[2];
  CHECK(sbx_comms_socketpair(sv) == 0);
  sbx_comms a, b;
  sbx_comms_init(&a, sv[0]);
  sbx_comms_init(&b, sv[1]);
  int fd = raw_memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING, 3 * 4096);
  CHECK(fd >= 0);
  CHECK(sbx_comms_send_uint64(&a, 3 * 4096) == 0 && sbx_comms_send_fd(&a, fd) == 0);
  sbx_buffer in;
  CHECK_RC(sbx_buffer_recv(&b, &in, SBX_BUFFER_ANY_SIZE), 0);
  CHECK(ftruncate(fd, 0) != 0 && errno == EPERM);
  CHECK(ftruncate(fd, 1 << 20) != 0 && errno == EPERM);
  CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) != 0 && errno == EBUSY);
  volatile unsigned char *q = in.data;
  q[3 * 4096 - 1] = 1; /* the last byte is still there */
  CHECK(q[3 * 4096 - 1] == 1);
  CHECK_RC(sbx_buffer_close(&in), 0);
  close(fd);
  close(sv[0]);
  close(sv[1]);
  return 0;
}

/* recv: the announced size and the expected size must both match; the fd is closed otherwise. */
static int test_recv_sizes(void) {
  int sv[2];
  CHECK(sbx_comms_socketpair(sv) == 0);
  sbx_comms a, b;
  sbx_comms_init(&a, sv[0]);
  sbx_comms_init(&b, sv[1]);
  int fd = raw_memfd(MFD_CLOEXEC | MFD_ALLOW_SEALING, 4096);
  CHECK(fd >= 0);
  int before = count_fds();
  sbx_buffer in;
  /* Announces 8192 for a 4096-byte file. */
  CHECK(sbx_comms_send_uint64(&a, 8192) == 0 && sbx_comms_send_fd(&a, fd) == 0);
  CHECK_RC(sbx_buffer_recv(&b, &in, SBX_BUFFER_ANY_SIZE), -ERANGE);
  CHECK(count_fds() == before);
  /* Announces the truth, but the receiver wants another size. */
  CHECK(sbx_comms_send_uint64(&a, 4096) == 0 && sbx_comms_send_fd(&a, fd) == 0);
  CHECK_RC(sbx_buffer_recv(&b, &in, 100), -ERANGE);
  CHECK(count_fds() == before);
  /* A pipe instead of a memfd. */
  int pp[2];
  CHECK(pipe2(pp, O_CLOEXEC) == 0);
  before = count_fds();
  CHECK(sbx_comms_send_uint64(&a, 0) == 0 && sbx_comms_send_fd(&a, pp[0]) == 0);
  CHECK_RC(sbx_buffer_recv(&b, &in, SBX_BUFFER_ANY_SIZE), -EMEDIUMTYPE);
  CHECK(count_fds() == before);
  /* A String where the size belongs: -EBADMSG, as Comms says. */
  CHECK(sbx_comms_send_string(&a, "no") == 0);
  CHECK_RC(sbx_buffer_recv(&b, &in, SBX_BUFFER_ANY_SIZE), -EBADMSG);
  close(pp[0]);
  close(pp[1]);
  close(fd);
  close(sv[0]);
  close(sv[1]);
  return 0;
}

static int test_counts(void) {
  int sv[2];
  CHECK(sbx_comms_socketpair(sv) == 0);
  sbx_comms a, b;
  sbx_comms_init(&a, sv[0]);
  sbx_comms_init(&b, sv[1]);
  int fds = count_fds(), maps = count_maps();
  for (int i = 0; i < 500; i++) {
    sbx_buffer out, in;
    CHECK_RC(sbx_buffer_create(65536 + (size_t)i, &out), 0);
    ((char *)out.data)[i] = 1;
    CHECK_RC(sbx_buffer_send(&a, &out), 0);
    CHECK_RC(sbx_buffer_recv(&b, &in, SBX_BUFFER_ANY_SIZE), 0);
    CHECK(((char *)in.data)[i] == 1);
    CHECK_RC(sbx_buffer_close(&in), 0);
    CHECK_RC(sbx_buffer_close(&out), 0);
  }
  CHECK(count_fds() == fds);
  CHECK(count_maps() == maps);
  close(sv[0]);
  close(sv[1]);
  return 0;
}

int main(void) {
  struct {
    const char *name;
    int (*fn)(void);
  } cases[] = {
      {"round trips of sizes 0, 1, page-1, page, page+1, 1 MiB", test_sizes},
      {"1 GiB sparse round trip", test_one_gib},
      {"from_fd refuses what is not a sealable memfd of the right size", test_refusals},
      {"a peer cannot truncate a received buffer", test_peer_cannot_truncate},
      {"recv checks announced and expected sizes and closes the fd", test_recv_sizes},
      {"fd and mapping counts after 500 cycles", test_counts},
  };
  int n = (int)(sizeof cases / sizeof *cases), failed = 0;
  printf("1..%d\n", n);
  for (int i = 0; i < n; i++) {
    int rc = cases[i].fn();
    printf("%s %d - %s\n", rc == 0 ? "ok" : "not ok", i + 1, cases[i].name);
    failed += rc != 0;
  }
  return failed ? 1 : 0;
}
