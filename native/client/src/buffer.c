/*
 * buffer.c: shared-memory buffers (sbx/buffer.h). A memfd whose size is sealed before anything
 * maps it, so that no peer can shrink it under a mapping (SIGBUS).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sbx/buffer.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS   1033
#define F_GET_SEALS   1034
#define F_SEAL_SEAL   0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW   0x0004
#define F_SEAL_WRITE  0x0008
#endif

#define SIZE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

static void close_keep_errno(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

/* Maps `size` bytes of `fd` (0: nothing) into buf; fd ownership passes to buf on success. */
static int map_into(int fd, uint64_t size, sbx_buffer *buf) {
  void *data = NULL;
  if (size > 0) {
    data = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (data == MAP_FAILED) {
      int e = errno;
      if (e == EPERM) e = EACCES; /* write-sealed: F_SEAL_WRITE / F_SEAL_FUTURE_WRITE */
      return -e;
    }
  }
  buf->fd = fd;
  buf->data = data;
  buf->size = (size_t)size;
  return 0;
}

int sbx_buffer_create(size_t size, sbx_buffer *buf) {
  if (!buf || (uint64_t)size > (uint64_t)INT64_MAX) return -EINVAL;
  buf->fd = -1;
  buf->data = NULL;
  buf->size = 0;
  int fd = (int)syscall(SYS_memfd_create, "sbx-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  /* Size first, then seals: from here on nobody (we included) can resize the file. */
  if (ftruncate(fd, (off_t)size) != 0 || fcntl(fd, F_ADD_SEALS, SIZE_SEALS) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  int rc = map_into(fd, size, buf);
  if (rc < 0) close(fd);
  return rc;
}

int sbx_buffer_from_fd(int fd, uint64_t expected_size, sbx_buffer *buf) {
  if (!buf || fd < 0) return -EINVAL;
  buf->fd = -1;
  buf->data = NULL;
  buf->size = 0;
  /* A memfd: only shmem (and hugetlbfs) files answer F_GET_SEALS; a memfd is a regular file
   * that was never linked anywhere; and it lives on the internal tmpfs (hugetlbfs memfds are
   * refused: a fault in an exhausted huge page pool is a SIGBUS). */
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return errno == EBADF ? -EBADF : -EMEDIUMTYPE;
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  if (!S_ISREG(st.st_mode) || st.st_nlink != 0) return -EMEDIUMTYPE;
  struct statfs sfs;
  if (fstatfs(fd, &sfs) != 0) return -errno;
  if ((unsigned long)sfs.f_type != (unsigned long)TMPFS_MAGIC) return -EMEDIUMTYPE;
  /* The size counts once sealed: already sealed (as sbx_buffer_create leaves it), the fstat
   * above read the final size; sealed here, it is read again. */
  if ((seals & SIZE_SEALS) != SIZE_SEALS) {
    if (fcntl(fd, F_ADD_SEALS, SIZE_SEALS) != 0) return errno == EPERM ? -EPERM : -errno;
    if (fstat(fd, &st) != 0) return -errno;
  }
  uint64_t size = (uint64_t)st.st_size;
  if (expected_size != SBX_BUFFER_ANY_SIZE && size != expected_size) return -ERANGE;
  if (size > (uint64_t)SIZE_MAX) return -ENOMEM;
  return map_into(fd, size, buf);
}

int sbx_buffer_close(sbx_buffer *buf) {
  if (!buf) return -EINVAL;
  int rc = 0;
  if (buf->data && munmap(buf->data, buf->size) != 0) rc = -errno;
  buf->data = NULL;
  if (buf->fd >= 0 && close(buf->fd) != 0 && errno != EINTR && rc == 0) rc = -errno;
  buf->fd = -1;
  buf->size = 0;
  return rc;
}

int sbx_buffer_send(sbx_comms *c, const sbx_buffer *buf) {
  if (!c || !buf || buf->fd < 0) return -EINVAL;
  int rc = sbx_comms_send_uint64(c, (uint64_t)buf->size);
  if (rc < 0) return rc;
  return sbx_comms_send_fd(c, buf->fd);
}

int sbx_buffer_recv(sbx_comms *c, sbx_buffer *buf, uint64_t expected_size) {
  if (!c || !buf) return -EINVAL;
  buf->fd = -1;
  buf->data = NULL;
  buf->size = 0;
  uint64_t announced;
  int rc = sbx_comms_recv_uint64(c, &announced);
  if (rc < 0) return rc;
  int fd;
  rc = sbx_comms_recv_fd(c, &fd);
  if (rc < 0) return rc;
  if (expected_size != SBX_BUFFER_ANY_SIZE && announced != expected_size) {
    close(fd);
    return -ERANGE;
  }
  rc = sbx_buffer_from_fd(fd, announced, buf);
  if (rc < 0) close_keep_errno(fd);
  return rc;
}

const char *sbx_buffer_strerror(int err) {
  switch (err) {
    case 0: return "success";
    case -EINVAL: return "invalid argument";
    case -EMEDIUMTYPE: return "not a memfd (a regular file, pipe, socket or other fd was given)";
    case -ERANGE: return "the buffer has the wrong size";
    case -EPERM: return "the memfd cannot be sealed against resizing (F_SEAL_SEAL is set)";
    case -EACCES: return "the memfd cannot be mapped writable (write-sealed or read-only)";
    case -ENOMEM: return "out of address space for the mapping";
    case -ENOSYS: return "memfd_create is not available (Linux < 3.17)";
    default: return sbx_comms_strerror(err);
  }
}
