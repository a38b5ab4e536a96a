/* fd_targets.c: a request's fds moved off the numbers its other fds must take, before each is
 * placed on its own target. Shared by a forked child (forking_client.c) and a sandboxed spare
 * taking its assignment (assign.c); each then places them its own way. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "client_internal.h"

int sbx_client_is_target(const uint32_t *targets, unsigned n, int fd, unsigned except) {
  for (unsigned j = 0; j < n; j++)
    if (j != except && (int)targets[j] == fd) return 1;
  return 0;
}

int sbx_client_fds_off_targets(int *fds, const uint32_t *targets, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    int min = 0;
    while (sbx_client_is_target(targets, n, fds[i], i)) {
      int d = fcntl(fds[i], F_DUPFD_CLOEXEC, min);
      if (d < 0) return -errno;
      if (sbx_client_is_target(targets, n, d, i)) {
        min = d + 1;
        close(d);
        continue;
      }
      close(fds[i]);
      fds[i] = d;
    }
  }
  return 0;
}
