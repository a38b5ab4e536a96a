/*
 * names.c: static names for tags and error codes, for error messages on both sides.
 */
#include "sbx/comms.h"

#include <errno.h>

const char *sbx_comms_tag_name(uint32_t tag) {
  switch (tag) {
    case SBX_TAG_INVALID: return "Invalid";
    case SBX_TAG_BOOL: return "Bool";
    case SBX_TAG_INT8: return "Int8";
    case SBX_TAG_UINT8: return "Uint8";
    case SBX_TAG_INT16: return "Int16";
    case SBX_TAG_UINT16: return "Uint16";
    case SBX_TAG_INT32: return "Int32";
    case SBX_TAG_UINT32: return "Uint32";
    case SBX_TAG_INT64: return "Int64";
    case SBX_TAG_UINT64: return "Uint64";
    case SBX_TAG_STRING: return "String";
    case SBX_TAG_BYTES: return "Bytes";
    case SBX_TAG_PROTO2: return "Proto2";
    case SBX_TAG_BARRIER: return "Barrier";
    case SBX_TAG_VERSION: return "Version";
    case SBX_TAG_MSGPACK: return "Msgpack";
    case SBX_TAG_FD: return "Fd";
    case SBX_TAG_CREDS: return "Creds";
    default: return tag < SBX_TAG_USER_MAX ? "user tag" : "unknown built-in tag";
  }
}

/* Our own wording for the codes whose meaning is specific to Comms; the kernel's strerror()
 * would say "Protocol error" or "Bad message" without telling what went wrong. */
const char *sbx_comms_strerror(int err) {
  if (err < 0) err = -err;
  switch (err) {
    case 0: return "success";
    case EPIPE: return "the peer closed the connection";
    case EPROTO: return "broken Comms stream (truncated message or misplaced fd)";
    case EBADMSG: return "unexpected Comms message (wrong tag or size)";
    case EMSGSIZE: return "Comms message longer than allowed";
    case ENOMEM: return "out of memory";
    case EINVAL: return "invalid argument";
    case EPROTONOSUPPORT: return "Comms protocol version mismatch";
    case EBADF: return "bad file descriptor";
    case ENOTSOCK: return "not a socket";
    case ECONNRESET: return "connection reset by peer";
    case EAGAIN: return "operation would block";
    default: return "socket error";
  }
}
