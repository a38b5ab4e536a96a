/*
 * logs.c: log lines to the executor. Each record is one Comms TLV (tag SBX_LOG_TAG) on the fd the
 * executor mapped as "sbx.log": a level byte, then the message (docs/wire-protocol.md, "Logs").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sbx/client.h>
#include <sbx/comms.h>

#define SBX_LOG_TAG     0x5310u
#define SBX_LOG_FD_NAME "sbx.log"

/* One record goes out in one send, but two threads' sends must not interleave on the stream. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

int sbx_client_log(int level, const char *fmt, ...) {
  if (level < SBX_LOG_DEBUG || level > SBX_LOG_ERROR || fmt == NULL) return -EINVAL;
  int fd = sbx_client_get_mapped_fd(SBX_LOG_FD_NAME);
  if (fd < 0) return fd;
  char record[1 + SBX_LOG_MAX_MESSAGE + 1];
  record[0] = (char)level;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(record + 1, SBX_LOG_MAX_MESSAGE + 1, fmt, ap);
  va_end(ap);
  if (n < 0) return -EINVAL;
  size_t len = (size_t)n > SBX_LOG_MAX_MESSAGE ? SBX_LOG_MAX_MESSAGE : (size_t)n;
  sbx_comms c;
  sbx_comms_init(&c, fd);
  pthread_mutex_lock(&log_lock);
  int r = sbx_comms_send_tlv(&c, SBX_LOG_TAG, record, 1 + len);
  pthread_mutex_unlock(&log_lock);
  return r;
}
