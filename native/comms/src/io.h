/*
 * io.h: socket I/O under the message layer (internal). Exact-length reads that account for every
 * fd the kernel hands over, and whole-message sends with an optional SCM_RIGHTS fd.
 */
#ifndef SBX_COMMS_IO_H
#define SBX_COMMS_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fds that arrived while reading one message. Only the first is kept: a message may carry
 * at most one, so any further fd is closed on arrival and only counted. */
typedef struct sbx_rx_fds {
  int first;      /* -1 until an fd arrives */
  unsigned count; /* fds seen, kept or closed */
  bool truncated; /* MSG_CTRUNC: the kernel dropped fds that did not fit */
} sbx_rx_fds;

void sbx_rx_fds_init(sbx_rx_fds *rx);
/* Closes the kept fd, if any (every failure path ends here). */
void sbx_rx_fds_close(sbx_rx_fds *rx);

/* Reads exactly `len` bytes into `buf`, collecting fds into `rx`. EOF before the first byte is
 * -EPIPE when `at_boundary` (nothing of the message was read yet), else -EPROTO. */
int sbx_read_exact(int fd, void *buf, size_t len, sbx_rx_fds *rx, bool at_boundary);
/* Reads and drops `len` bytes through a small stack buffer (no allocation). */
int sbx_read_drain(int fd, uint64_t len, sbx_rx_fds *rx);

/* Sends `head` then `len` bytes of `data` with one sendmsg() (looping on partial writes), plus
 * `pass_fd` as SCM_RIGHTS on the first byte when it is >= 0. MSG_NOSIGNAL: -EPIPE, no SIGPIPE. */
int sbx_write_msg(int fd, const void *head, size_t head_len, const void *data, size_t len,
                  int pass_fd);

#endif /* SBX_COMMS_IO_H */
