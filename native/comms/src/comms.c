/*
 * comms.c: the Comms message layer (docs/wire-protocol.md, "Comms"): TLV framing, the receive rules that keep a
 * distrusted peer from leaking fds or forcing allocations, and the typed send/recv pairs.
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#include "sbx/comms.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "io.h"

/* ---- Wire encoding: explicit little-endian, independent of the host. ---- */

static void put_le(unsigned char *p, uint64_t v, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  size_t i;
  for (i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* ---- Channel setup ---- */

void sbx_comms_init(sbx_comms *c, int fd) {
  if (c == NULL) return;
  c->fd = fd;
  c->max_message_size = SBX_COMMS_DEFAULT_MAX_MESSAGE_SIZE;
  c->last_tag = SBX_TAG_INVALID;
}

void sbx_comms_set_max_message_size(sbx_comms *c, uint64_t max) {
  if (c != NULL) c->max_message_size = max;
}

int sbx_comms_close(sbx_comms *c) {
  int fd;
  if (c == NULL || c->fd < 0) return -EINVAL;
  fd = c->fd;
  c->fd = -1;
  /* No retry on EINTR: on Linux the fd is gone either way. */
  return close(fd) < 0 ? -errno : 0;
}

int sbx_comms_default_fd(void) {
  const char *env = getenv(SBX_COMMS_FD_ENV);
  long fd = SBX_COMMS_DEFAULT_FD;
  struct stat st;
  if (env != NULL && env[0] != '\0') {
    char *end;
    errno = 0;
    fd = strtol(env, &end, 10);
    if (errno != 0 || *end != '\0' || env[0] < '0' || env[0] > '9' || fd > INT_MAX) return -EINVAL;
  }
  if (fcntl((int)fd, F_GETFD) < 0) return -EBADF;
  if (fstat((int)fd, &st) < 0) return -errno;
  if (!S_ISSOCK(st.st_mode)) return -ENOTSOCK;
  return (int)fd;
}

int sbx_comms_socketpair(int fds[2]) {
  if (fds == NULL) return -EINVAL;
  return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 ? -errno : 0;
}

uint32_t sbx_comms_last_tag(const sbx_comms *c) { return c != NULL ? c->last_tag : 0; }

int sbx_comms_peer_creds(sbx_comms *c, pid_t *pid, uid_t *uid, gid_t *gid) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (c == NULL || c->fd < 0) return -EINVAL;
  if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
  if (pid != NULL) *pid = cred.pid;
  if (uid != NULL) *uid = cred.uid;
  if (gid != NULL) *gid = cred.gid;
  return 0;
}

/* ---- Sending ---- */

static int send_message(sbx_comms *c, uint32_t tag, const void *data, uint64_t len, int pass_fd) {
  unsigned char head[SBX_COMMS_HEADER_SIZE];
  if (c == NULL || c->fd < 0 || tag == SBX_TAG_INVALID || (data == NULL && len > 0)) return -EINVAL;
  if (len > SIZE_MAX) return -EMSGSIZE; /* 32-bit hosts only */
  put_le(head, tag, 4);
  put_le(head + 4, len, 8);
  return sbx_write_msg(c->fd, head, sizeof head, data, (size_t)len, pass_fd);
}

int sbx_comms_send_tlv(sbx_comms *c, uint32_t tag, const void *data, uint64_t len) {
  if (tag == SBX_TAG_FD)
    return -EINVAL; /* an Fd message without its fd would break the peer's stream */
  return send_message(c, tag, data, len, -1);
}

/* ---- Receiving ----
 * Every receive reads one whole message (or fails) through recv_message(), which applies the
 * rules of docs/wire-protocol.md "Comms" in one place:
 *   1. header; EOF before its first byte is the orderly end (-EPIPE), later EOF is -EPROTO;
 *   2. length above max_message_size: -EMSGSIZE before any allocation;
 *   3. fds: only an Fd message carries one, exactly one, with an empty payload (else -EPROTO);
 *   4. tag or size mismatch: the payload is read and dropped, -EBADMSG, the channel stays usable.
 * Every path that does not hand the received fd to the caller closes it. */

/* How recv_message() treats a payload of the expected tag. */
typedef enum {
  BODY_ALLOC, /* malloc len + extra bytes (extra: the string terminator) */
  BODY_INTO,  /* caller buffer of cap bytes; longer is -EMSGSIZE, unconsumed */
  BODY_EXACT, /* exactly cap bytes into buf (scalars); another size is -EBADMSG, consumed */
} body_mode;

typedef struct {
  uint32_t want; /* expected tag; SBX_TAG_INVALID accepts any */
  body_mode mode;
  void *buf;                            /* INTO, EXACT */
  uint64_t cap;                         /* INTO, EXACT */
  size_t extra;                         /* ALLOC */
  const sbx_comms_allocator *allocator; /* ALLOC: NULL is malloc/free */
  int *fd_out; /* NULL: an Fd message is not accepted here (-EBADMSG, fd closed) */
} recv_request;

typedef struct {
  uint32_t tag;
  uint64_t len;
  void *data; /* ALLOC only */
} recv_result;

static int recv_message(sbx_comms *c, const recv_request *rq, recv_result *out) {
  unsigned char head[SBX_COMMS_HEADER_SIZE];
  sbx_rx_fds rx;
  uint32_t tag;
  uint64_t len;
  void *data = NULL;
  int rc;

  if (c == NULL || c->fd < 0) return -EINVAL;
  sbx_rx_fds_init(&rx);
  rc = sbx_read_exact(c->fd, head, sizeof head, &rx, true);
  if (rc < 0) goto fail;
  tag = (uint32_t)get_le(head, 4);
  len = get_le(head + 4, 8);
  c->last_tag = tag;

  /* Fds in the wrong place break the stream whatever the caller wanted. */
  if (rx.truncated || tag == SBX_TAG_INVALID || (tag != SBX_TAG_FD && rx.count > 0)) {
    rc = -EPROTO;
    goto fail;
  }
  if (tag == SBX_TAG_FD) {
    if (rx.count != 1 || len != 0) {
      rc = -EPROTO;
      goto fail;
    }
    if (rq->fd_out == NULL || (rq->want != SBX_TAG_INVALID && rq->want != SBX_TAG_FD)) {
      rc = -EBADMSG; /* well-formed, just not what the caller asked for */
      goto fail;
    }
    *rq->fd_out = rx.first;
    out->tag = tag;
    out->len = 0;
    out->data = NULL;
    return 0;
  }

  if (len > c->max_message_size || len > SIZE_MAX - rq->extra) {
    rc = -EMSGSIZE;
    goto fail;
  }
  if ((rq->want != SBX_TAG_INVALID && tag != rq->want) ||
      (rq->mode == BODY_EXACT && len != rq->cap)) {
    rc = sbx_read_drain(c->fd, len, &rx);
    if (rc == 0) rc = rx.count > 0 || rx.truncated ? -EPROTO : -EBADMSG;
    goto fail;
  }

  switch (rq->mode) {
    case BODY_ALLOC:
      if (len + rq->extra > 0) {
        data = rq->allocator != NULL ? rq->allocator->alloc(rq->allocator->ctx, len + rq->extra)
                                     : malloc((size_t)len + rq->extra);
        if (data == NULL) {
          rc = -ENOMEM;
          goto fail;
        }
      }
      rc = sbx_read_exact(c->fd, data, (size_t)len, &rx, false);
      break;
    case BODY_INTO:
      if (len > rq->cap) {
        rc = -EMSGSIZE;
        goto fail;
      }
      rc = sbx_read_exact(c->fd, rq->buf, (size_t)len, &rx, false);
      break;
    case BODY_EXACT: rc = sbx_read_exact(c->fd, rq->buf, (size_t)len, &rx, false); break;
  }
  if (rc == 0 && (rx.count > 0 || rx.truncated)) rc = -EPROTO; /* an fd rode on the payload */
  if (rc < 0) goto fail;
  out->tag = tag;
  out->len = len;
  out->data = data;
  return 0;

fail:
  if (data != NULL && rq->allocator != NULL) {
    if (rq->allocator->release != NULL) rq->allocator->release(rq->allocator->ctx, data);
  } else {
    free(data);
  }
  sbx_rx_fds_close(&rx);
  return rc;
}

static int recv_alloc(sbx_comms *c, uint32_t want, size_t extra, const sbx_comms_allocator *a,
                      int *fd_out, uint32_t *tag, void **data, uint64_t *len) {
  recv_request rq;
  recv_result res;
  int rc;
  memset(&rq, 0, sizeof rq);
  rq.want = want;
  rq.mode = BODY_ALLOC;
  rq.extra = extra;
  rq.allocator = a;
  rq.fd_out = fd_out;
  rc = recv_message(c, &rq, &res);
  if (rc < 0) return rc;
  if (tag != NULL) *tag = res.tag;
  *data = res.data;
  if (len != NULL) *len = res.len;
  return 0;
}

int sbx_comms_recv_tlv(sbx_comms *c, uint32_t *tag, void **data, uint64_t *len) {
  if (data == NULL || tag == NULL || len == NULL) return -EINVAL;
  *data = NULL;
  return recv_alloc(c, SBX_TAG_INVALID, 0, NULL, NULL, tag, data, len);
}

int sbx_comms_recv_any(sbx_comms *c, uint32_t *tag, void **data, uint64_t *len, int *fd) {
  int rc;
  if (data == NULL || tag == NULL || len == NULL || fd == NULL) return -EINVAL;
  *data = NULL;
  *fd = -1;
  rc = recv_alloc(c, SBX_TAG_INVALID, 0, NULL, fd, tag, data, len);
  if (rc < 0) *fd = -1;
  return rc;
}

int sbx_comms_recv_any_into(sbx_comms *c, const sbx_comms_allocator *a, uint32_t *tag, void **data,
                            uint64_t *len, int *fd) {
  int rc;
  if (a == NULL || a->alloc == NULL || data == NULL || tag == NULL || len == NULL || fd == NULL)
    return -EINVAL;
  *data = NULL;
  *fd = -1;
  rc = recv_alloc(c, SBX_TAG_INVALID, 0, a, fd, tag, data, len);
  if (rc < 0) *fd = -1;
  return rc;
}

int sbx_comms_recv_tlv_into(sbx_comms *c, uint32_t *tag, void *buf, uint64_t cap, uint64_t *len) {
  recv_request rq;
  recv_result res;
  int rc;
  if (tag == NULL || len == NULL || (buf == NULL && cap > 0)) return -EINVAL;
  memset(&rq, 0, sizeof rq);
  rq.mode = BODY_INTO;
  rq.buf = buf;
  rq.cap = cap;
  rc = recv_message(c, &rq, &res);
  if (rc < 0) return rc;
  *tag = res.tag;
  *len = res.len;
  return 0;
}

int sbx_comms_recv_expect(sbx_comms *c, uint32_t tag, void **data, uint64_t *len) {
  if (data == NULL || len == NULL || tag == SBX_TAG_INVALID || tag == SBX_TAG_FD) return -EINVAL;
  *data = NULL;
  return recv_alloc(c, tag, 0, NULL, NULL, NULL, data, len);
}

/* ---- Scalars ---- */

static int send_scalar(sbx_comms *c, uint32_t tag, uint64_t v, size_t size) {
  unsigned char p[8];
  put_le(p, v, size);
  return send_message(c, tag, p, size, -1);
}

static int recv_scalar(sbx_comms *c, uint32_t tag, uint64_t *v, size_t size) {
  unsigned char p[8];
  recv_request rq;
  recv_result res;
  int rc;
  if (v == NULL) return -EINVAL;
  memset(&rq, 0, sizeof rq);
  rq.want = tag;
  rq.mode = BODY_EXACT;
  rq.buf = p;
  rq.cap = size;
  rc = recv_message(c, &rq, &res);
  if (rc < 0) return rc;
  *v = get_le(p, size);
  return 0;
}

int sbx_comms_send_bool(sbx_comms *c, bool v) { return send_scalar(c, SBX_TAG_BOOL, v ? 1 : 0, 1); }

int sbx_comms_recv_bool(sbx_comms *c, bool *v) {
  uint64_t raw;
  int rc;
  if (v == NULL) return -EINVAL;
  rc = recv_scalar(c, SBX_TAG_BOOL, &raw, 1);
  if (rc < 0) return rc;
  if (raw > 1) return -EBADMSG;
  *v = raw == 1;
  return 0;
}

/* Signed values travel as their two's complement bit pattern; the casts through the unsigned
 * type of the same width keep the conversion well-defined in C99. */
#define SBX_SCALAR(name, type, utype, tag)                        \
  int sbx_comms_send_##name(sbx_comms *c, type v) {               \
    return send_scalar(c, tag, (uint64_t)(utype)v, sizeof(type)); \
  }                                                               \
  int sbx_comms_recv_##name(sbx_comms *c, type *v) {              \
    uint64_t raw;                                                 \
    utype u;                                                      \
    int rc;                                                       \
    if (v == NULL) return -EINVAL;                                \
    rc = recv_scalar(c, tag, &raw, sizeof(type));                 \
    if (rc < 0) return rc;                                        \
    u = (utype)raw;                                               \
    memcpy(v, &u, sizeof u);                                      \
    return 0;                                                     \
  }

SBX_SCALAR(int8, int8_t, uint8_t, SBX_TAG_INT8)
SBX_SCALAR(uint8, uint8_t, uint8_t, SBX_TAG_UINT8)
SBX_SCALAR(int16, int16_t, uint16_t, SBX_TAG_INT16)
SBX_SCALAR(uint16, uint16_t, uint16_t, SBX_TAG_UINT16)
SBX_SCALAR(int32, int32_t, uint32_t, SBX_TAG_INT32)
SBX_SCALAR(uint32, uint32_t, uint32_t, SBX_TAG_UINT32)
SBX_SCALAR(int64, int64_t, uint64_t, SBX_TAG_INT64)
SBX_SCALAR(uint64, uint64_t, uint64_t, SBX_TAG_UINT64)

/* ---- Strings, bytes, msgpack ---- */

int sbx_comms_send_string(sbx_comms *c, const char *s) {
  if (s == NULL) return -EINVAL;
  return send_message(c, SBX_TAG_STRING, s, strlen(s), -1);
}

int sbx_comms_recv_string(sbx_comms *c, char **s, size_t *len) {
  void *data;
  uint64_t n;
  int rc;
  if (s == NULL) return -EINVAL;
  *s = NULL;
  rc = recv_alloc(c, SBX_TAG_STRING, 1, NULL, NULL, NULL, &data, &n);
  if (rc < 0) return rc;
  ((char *)data)[n] = '\0'; /* extra = 1: data is never NULL here */
  *s = data;
  if (len != NULL) *len = (size_t)n;
  return 0;
}

static int recv_blob(sbx_comms *c, uint32_t tag, void **data, size_t *len) {
  uint64_t n;
  int rc;
  if (data == NULL || len == NULL) return -EINVAL;
  *data = NULL;
  rc = recv_alloc(c, tag, 0, NULL, NULL, NULL, data, &n);
  if (rc < 0) return rc;
  *len = (size_t)n;
  return 0;
}

int sbx_comms_send_bytes(sbx_comms *c, const void *data, size_t len) {
  return send_message(c, SBX_TAG_BYTES, data, len, -1);
}

int sbx_comms_recv_bytes(sbx_comms *c, void **data, size_t *len) {
  return recv_blob(c, SBX_TAG_BYTES, data, len);
}

int sbx_comms_send_msgpack(sbx_comms *c, const void *data, size_t len) {
  return send_message(c, SBX_TAG_MSGPACK, data, len, -1);
}

int sbx_comms_recv_msgpack(sbx_comms *c, void **data, size_t *len) {
  return recv_blob(c, SBX_TAG_MSGPACK, data, len);
}

/* ---- fds ---- */

int sbx_comms_send_fd(sbx_comms *c, int fd) {
  if (fd < 0) return -EINVAL;
  return send_message(c, SBX_TAG_FD, NULL, 0, fd);
}

int sbx_comms_recv_fd(sbx_comms *c, int *fd) {
  recv_request rq;
  recv_result res;
  int got = -1;
  int rc;
  if (fd == NULL) return -EINVAL;
  memset(&rq, 0, sizeof rq);
  rq.want = SBX_TAG_FD;
  rq.mode = BODY_ALLOC; /* only reached for a mismatched tag, whose payload is drained */
  rq.fd_out = &got;
  rc = recv_message(c, &rq, &res);
  if (rc < 0) return rc;
  *fd = got;
  return 0;
}

/* ---- Barrier and version ---- */

int sbx_comms_barrier(sbx_comms *c) {
  unsigned char none[1];
  recv_request rq;
  recv_result res;
  int rc = send_message(c, SBX_TAG_BARRIER, NULL, 0, -1);
  if (rc < 0) return rc;
  memset(&rq, 0, sizeof rq);
  rq.want = SBX_TAG_BARRIER;
  rq.mode = BODY_EXACT;
  rq.buf = none;
  rq.cap = 0;
  return recv_message(c, &rq, &res);
}

int sbx_comms_send_version(sbx_comms *c) {
  return send_scalar(c, SBX_TAG_VERSION, SBX_COMMS_PROTOCOL_VERSION, 4);
}

int sbx_comms_recv_version(sbx_comms *c, uint32_t *peer_version) {
  uint64_t v;
  int rc = recv_scalar(c, SBX_TAG_VERSION, &v, 4);
  if (rc < 0) return rc;
  if (peer_version != NULL) *peer_version = (uint32_t)v;
  return v == SBX_COMMS_PROTOCOL_VERSION ? 0 : -EPROTONOSUPPORT;
}
