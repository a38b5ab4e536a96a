/*
 * kernel.c: what the client asks the kernel before the filter goes on: which seccomp flags it
 * knows, how many threads the process has, and which fd number the listener will get.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client_internal.h"
#include "sbx/client.h"

/* The kernel checks the flags before it reads the program: with a NULL program, EFAULT means
 * "these flags are fine" and EINVAL "unknown or not allowed together". Nothing is installed. */
static bool flags_known(unsigned long flags) {
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL);
  return r < 0 && errno == EFAULT;
}

unsigned sbx_client_kernel_support(void) {
  unsigned bits = 0;
  int saved = errno;
  if (flags_known(SECCOMP_FILTER_FLAG_NEW_LISTENER)) bits |= SBX_CLIENT_KERNEL_LISTENER;
  if (flags_known(SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_NEW_LISTENER |
                  SECCOMP_FILTER_FLAG_TSYNC_ESRCH))
    bits |= SBX_CLIENT_KERNEL_TSYNC_LISTENER;
  errno = saved;
  return bits;
}

/* num_threads, the 20th field of /proc/self/stat (one read: cheaper than listing
 * /proc/self/task on a fresh procfs). The 2nd field, (comm), may hold spaces and parentheses:
 * the fields after it start after the last ')'. */
int sbx_client_thread_count(void) {
  char buf[1024];
  ssize_t n;
  const char *p;
  long threads;
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC), field;
  if (fd < 0) return -errno;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return n < 0 ? -errno : -EIO;
  buf[n] = '\0';
  p = strrchr(buf, ')');
  if (p == NULL) return -EIO;
  /* After ')': " state ppid ..." is field 3 onwards; num_threads is field 20. */
  for (field = 2; field < 20 && p != NULL; field++) p = strchr(p + 1, ' ');
  if (p == NULL) return -EIO;
  threads = strtol(p + 1, NULL, 10);
  return threads > 0 ? (int)threads : -EIO;
}

/* The number seccomp(NEW_LISTENER) will return unless another thread opens an fd first: the
 * lowest free one. */
int sbx_client_lowest_free_fd(int any_open_fd) {
  int fd = fcntl(any_open_fd, F_DUPFD, 0);
  if (fd < 0) return -errno;
  close(fd);
  return fd;
}
