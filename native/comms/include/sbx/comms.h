/*
 * sbx/comms.h: the Comms wire format (docs/wire-protocol.md, "Comms") for C programs.
 *
 * A message is a TLV: u32 tag, u64 length, then `length` bytes, little-endian, 12-byte header,
 * over a unix SOCK_STREAM socket. An fd travels as an empty SBX_TAG_FD message sent in the same
 * sendmsg() as exactly one SCM_RIGHTS fd. Received fds carry FD_CLOEXEC.
 *
 * Conventions (as libseccomp): every function returns 0 (or a documented non-negative value) on
 * success and a negative errno on failure, never aborts and never prints. The documented errors:
 *   -EPIPE      the peer closed the connection at a message boundary (orderly end)
 *   -EPROTO     the stream is broken: EOF inside a message, an fd where none belongs, more than
 *               one fd on an Fd message, an Fd message without an fd
 *   -EBADMSG    a well-formed message of the wrong tag or of the wrong size for its type;
 *               sbx_comms_last_tag() returns the tag that arrived
 *   -EMSGSIZE   the announced length is above the channel's max_message_size
 *   -ENOMEM     allocation failed
 *   -EINVAL     bad argument (NULL pointer, negative fd, tag 0)
 *   any other   the errno of the failing socket call (EBADF, ECONNRESET, EAGAIN, ...)
 * EINTR is retried internally. After any error but -EBADMSG the channel must be considered broken.
 * On every failure, fds that were received in the failing call are closed (no leaks).
 *
 * Every send_X has a recv_X. Functions borrow the fds they are given unless they say otherwise.
 */
#ifndef SBX_COMMS_H
#define SBX_COMMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SBX_COMMS_BUILDING)
#define SBX_API __attribute__((visibility("default")))
#else
#define SBX_API
#endif

/* Built-in tags: Sandbox2's numbers, so a Sandbox2-style peer reads basic messages.
 * User tags must be below SBX_TAG_USER_MAX. 0 is invalid. Retired numbers are never reused. */
enum sbx_tag {
  SBX_TAG_INVALID = 0,
  SBX_TAG_USER_MAX = 0x80000000u, /* user tags are 1 .. 0x7fffffff */
  SBX_TAG_BOOL = 0x80000001u,
  SBX_TAG_INT8 = 0x80000002u,
  SBX_TAG_UINT8 = 0x80000003u,
  SBX_TAG_INT16 = 0x80000004u,
  SBX_TAG_UINT16 = 0x80000005u,
  SBX_TAG_INT32 = 0x80000006u,
  SBX_TAG_UINT32 = 0x80000007u,
  SBX_TAG_INT64 = 0x80000008u,
  SBX_TAG_UINT64 = 0x80000009u,
  SBX_TAG_STRING = 0x80000100u,
  SBX_TAG_BYTES = 0x80000101u,
  SBX_TAG_PROTO2 = 0x80000102u, /* Sandbox2's; reserved, unused by sbx */
  SBX_TAG_BARRIER = 0x80000103u,
  SBX_TAG_VERSION = 0x80000104u,
  SBX_TAG_STATUS = 0x80000105u,  /* u32 code (absl::StatusCode numbering) | UTF-8 message */
  SBX_TAG_MSGPACK = 0x80000180u, /* sbx's own: a msgpack-encoded structured message */
  SBX_TAG_FD = 0x80000201u,
  SBX_TAG_CREDS = 0x80000202u, /* reserved: credentials are read with SO_PEERCRED */
};

#define SBX_COMMS_HEADER_SIZE 12u
/* The sandboxee's comms fd unless the environment variable SBX_COMMS_FD names another. */
#define SBX_COMMS_DEFAULT_FD 1023
#define SBX_COMMS_FD_ENV     "SBX_COMMS_FD"
/* Default cap on an incoming message's length: 64 MiB. */
#define SBX_COMMS_DEFAULT_MAX_MESSAGE_SIZE ((uint64_t)64 << 20)
/* Protocol version sent by sbx_comms_send_version(). */
#define SBX_COMMS_PROTOCOL_VERSION 1u

/* One end of a Comms channel. Fields are private; the struct is public so that it can live on
 * the stack (post-fork code must not allocate). Initialise with sbx_comms_init(). */
typedef struct sbx_comms {
  int fd;                    /* borrowed unless sbx_comms_close() is called */
  uint64_t max_message_size; /* incoming messages above this are refused with -EMSGSIZE */
  uint32_t last_tag;         /* tag of the last header read (for tag-mismatch messages) */
} sbx_comms;

/* Binds `c` to connected unix stream socket `fd` (borrowed). */
SBX_API void sbx_comms_init(sbx_comms *c, int fd);
/* Closes the fd (ownership ends here). Returns 0 or -errno from close(). */
SBX_API int sbx_comms_close(sbx_comms *c);
/* The fd named by $SBX_COMMS_FD, else SBX_COMMS_DEFAULT_FD; -EINVAL when $SBX_COMMS_FD is not a
 * decimal fd number, -EBADF when that fd is not open, -ENOTSOCK when it is not a socket. */
SBX_API int sbx_comms_default_fd(void);
/* A connected AF_UNIX SOCK_STREAM pair with SOCK_CLOEXEC. Returns 0 or -errno. */
SBX_API int sbx_comms_socketpair(int fds[2]);
/* Sets the cap on incoming message lengths (default SBX_COMMS_DEFAULT_MAX_MESSAGE_SIZE). Lower
 * it on the side that trusts nothing; a longer message is refused with -EMSGSIZE before any
 * allocation. */
SBX_API void sbx_comms_set_max_message_size(sbx_comms *c, uint64_t max);
/* Tag of the last header read on this channel (0 before any). */
SBX_API uint32_t sbx_comms_last_tag(const sbx_comms *c);
/* A static description of a tag ("Uint32", "Fd", "user tag") for error messages. */
SBX_API const char *sbx_comms_tag_name(uint32_t tag);
/* A static description of an error code returned by this library. */
SBX_API const char *sbx_comms_strerror(int err);

/* Raw TLVs. send: one message with `len` bytes of `data` (data may be NULL when len is 0). */
SBX_API int sbx_comms_send_tlv(sbx_comms *c, uint32_t tag, const void *data, uint64_t len);
/* recv: any tag but SBX_TAG_FD. On success *data is a malloc'ed buffer the caller frees (NULL
 * when *len is 0). An Fd message is -EBADMSG (its fd is closed; use sbx_comms_recv_any() to
 * accept fds too). The send side refuses SBX_TAG_FD and tag 0 with -EINVAL (use send_fd). */
SBX_API int sbx_comms_recv_tlv(sbx_comms *c, uint32_t *tag, void **data, uint64_t *len);
/* recv of any message, Fd messages included: *fd is the received fd (FD_CLOEXEC, the caller
 * owns it) for an SBX_TAG_FD message and -1 for every other tag. *data and *len as recv_tlv
 * (an Fd message has no payload: *data NULL, *len 0). For relays that forward whatever
 * arrives. */
SBX_API int sbx_comms_recv_any(sbx_comms *c, uint32_t *tag, void **data, uint64_t *len, int *fd);
/* Memory for a payload of a length known only once its header is read: recv_any_into() asks
 * alloc(ctx, len) for room (len > 0; NULL means -ENOMEM) and reads the payload straight into it,
 * so a binding can receive into memory its runtime owns without a copy. When the receive fails
 * after alloc, release(ctx, p) is called (release may be NULL). */
typedef struct sbx_comms_allocator {
  void *(*alloc)(void *ctx, uint64_t len);
  void (*release)(void *ctx, void *p);
  void *ctx;
} sbx_comms_allocator;
/* recv_any with the payload in memory from `a`: *data is alloc's pointer (NULL when *len is 0). */
SBX_API int sbx_comms_recv_any_into(sbx_comms *c, const sbx_comms_allocator *a, uint32_t *tag,
                                    void **data, uint64_t *len, int *fd);
/* recv into a caller buffer: -EMSGSIZE when the message is longer than `cap` (the channel is
 * then broken: the payload was not consumed). An Fd message is -EBADMSG as for recv_tlv. */
SBX_API int sbx_comms_recv_tlv_into(sbx_comms *c, uint32_t *tag, void *buf, uint64_t cap,
                                    uint64_t *len);
/* recv of one expected tag: -EBADMSG on another tag (the payload is consumed and dropped, a
 * stray Fd message's fd closed). `tag` SBX_TAG_FD is -EINVAL (use sbx_comms_recv_fd). */
SBX_API int sbx_comms_recv_expect(sbx_comms *c, uint32_t tag, void **data, uint64_t *len);

/* Scalars: fixed size payloads (1, 2, 4 or 8 bytes, little-endian; a Bool is one byte 0 or 1).
 * A wrong size (or a Bool byte other than 0/1) is -EBADMSG, the payload consumed. */
SBX_API int sbx_comms_send_bool(sbx_comms *c, bool v);
SBX_API int sbx_comms_recv_bool(sbx_comms *c, bool *v);
SBX_API int sbx_comms_send_int8(sbx_comms *c, int8_t v);
SBX_API int sbx_comms_recv_int8(sbx_comms *c, int8_t *v);
SBX_API int sbx_comms_send_uint8(sbx_comms *c, uint8_t v);
SBX_API int sbx_comms_recv_uint8(sbx_comms *c, uint8_t *v);
SBX_API int sbx_comms_send_int16(sbx_comms *c, int16_t v);
SBX_API int sbx_comms_recv_int16(sbx_comms *c, int16_t *v);
SBX_API int sbx_comms_send_uint16(sbx_comms *c, uint16_t v);
SBX_API int sbx_comms_recv_uint16(sbx_comms *c, uint16_t *v);
SBX_API int sbx_comms_send_int32(sbx_comms *c, int32_t v);
SBX_API int sbx_comms_recv_int32(sbx_comms *c, int32_t *v);
SBX_API int sbx_comms_send_uint32(sbx_comms *c, uint32_t v);
SBX_API int sbx_comms_recv_uint32(sbx_comms *c, uint32_t *v);
SBX_API int sbx_comms_send_int64(sbx_comms *c, int64_t v);
SBX_API int sbx_comms_recv_int64(sbx_comms *c, int64_t *v);
SBX_API int sbx_comms_send_uint64(sbx_comms *c, uint64_t v);
SBX_API int sbx_comms_recv_uint64(sbx_comms *c, uint64_t *v);

/* Strings travel without a terminator; recv returns a malloc'ed NUL-terminated copy. A string
 * containing NUL bytes is received whole; *len (optional) gives its length. */
SBX_API int sbx_comms_send_string(sbx_comms *c, const char *s);
SBX_API int sbx_comms_recv_string(sbx_comms *c, char **s, size_t *len);
SBX_API int sbx_comms_send_bytes(sbx_comms *c, const void *data, size_t len);
SBX_API int sbx_comms_recv_bytes(sbx_comms *c, void **data, size_t *len);
/* Msgpack payloads are opaque bytes to C (encode/decode with a msgpack library of your choice). */
SBX_API int sbx_comms_send_msgpack(sbx_comms *c, const void *data, size_t len);
SBX_API int sbx_comms_recv_msgpack(sbx_comms *c, void **data, size_t *len);

/* fds: send borrows `fd` (the caller still owns and may close it). recv stores a new fd with
 * FD_CLOEXEC that the caller owns. An Fd message must be empty and carry exactly one fd
 * (anything else is -EPROTO); another tag is -EBADMSG, its payload consumed. */
SBX_API int sbx_comms_send_fd(sbx_comms *c, int fd);
SBX_API int sbx_comms_recv_fd(sbx_comms *c, int *fd);

/* The peer's pid/uid/gid as the kernel saw them at connect/socketpair time (SO_PEERCRED). Any
 * pointer may be NULL. */
SBX_API int sbx_comms_peer_creds(sbx_comms *c, pid_t *pid, uid_t *uid, gid_t *gid);

/* Both sides call it: sends a Barrier (empty payload), then waits for the peer's Barrier. */
SBX_API int sbx_comms_barrier(sbx_comms *c);
/* Version handshake (payload: u32 little-endian): send ours; recv stores the peer's version in
 * *peer_version (optional) and fails with -EPROTONOSUPPORT when it differs from ours. */
SBX_API int sbx_comms_send_version(sbx_comms *c);
SBX_API int sbx_comms_recv_version(sbx_comms *c, uint32_t *peer_version);

#ifdef __cplusplus
}
#endif
#endif /* SBX_COMMS_H */
