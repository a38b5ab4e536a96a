/*
 * pty_pair: opens a pseudo-terminal pair and sends the master, then the slave, as two Comms Fd
 * messages on fd 3 (a unix stream socket), then exits. Both are opened O_NOCTTY (no process
 * gets a controlling terminal here) and the master is non-blocking, so that a test can poll it
 * for bytes a sandboxee may have pushed into the terminal. Exit 0 on success, 1 on failure.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbx/comms.h"

int main(void) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
    perror("pty_pair: posix_openpt");
    return 1;
  }
  const char *name = ptsname(master);
  int slave = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
  if (slave < 0) {
    perror("pty_pair: open slave");
    return 1;
  }
  sbx_comms c;
  sbx_comms_init(&c, 3);
  int r = sbx_comms_send_fd(&c, master);
  if (r == 0) r = sbx_comms_send_fd(&c, slave);
  if (r < 0) {
    fprintf(stderr, "pty_pair: send: %s\n", sbx_comms_strerror(r));
    return 1;
  }
  return 0;
}
