/*
 * comms_peer: the C end of the Node <-> C Comms tests. Talks over sbx_comms_default_fd()
 * ($SBX_COMMS_FD, else 1023) and does what argv[1] says:
 *
 *   echo               sends back every message it receives, fds included (sent back with
 *                      send_fd, then closed); exits 0 when the peer closes (-EPIPE)
 *   pipe-write         receives one fd and writes "hello from C\n" to it
 *   types              sends one message of each built-in type, in this order, then exits:
 *                        Bool     true
 *                        Int8     -128            (INT8_MIN)
 *                        Uint8    255             (UINT8_MAX)
 *                        Int16    -32768          (INT16_MIN)
 *                        Uint16   65535           (UINT16_MAX)
 *                        Int32    -2147483648     (INT32_MIN)
 *                        Uint32   4294967295      (UINT32_MAX)
 *                        Int64    -9223372036854775808 (INT64_MIN)
 *                        Uint64   18446744073709551615 (UINT64_MAX)
 *                        String   "hello from C"
 *                        Bytes    00 01 02 ff
 *                        Msgpack  81 a1 61 01     ({"a": 1})
 *                        Version  SBX_COMMS_PROTOCOL_VERSION (1)
 *   bench-sink N SIZE  receives N Bytes messages of SIZE bytes, then sends Uint32 N as the ack
 *   bench-pingpong N   N times: receives a Uint32 v and sends v + 1
 *
 * Exit status: 0 on success, 1 on a Comms error (named on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sbx/comms.h"

static int fail(const char *what, int rc) {
  fprintf(stderr, "comms_peer: %s: %s (%s)\n", what, sbx_comms_strerror(rc), strerror(-rc));
  return 1;
}

static int run_echo(sbx_comms *c) {
  for (;;) {
    uint32_t tag;
    void *data;
    uint64_t len;
    int fd;
    int rc = sbx_comms_recv_any(c, &tag, &data, &len, &fd);
    if (rc == -EPIPE) return 0;
    if (rc < 0) return fail("echo: recv", rc);
    if (fd >= 0) {
      rc = sbx_comms_send_fd(c, fd);
      close(fd);
    } else {
      rc = sbx_comms_send_tlv(c, tag, data, len);
      free(data);
    }
    if (rc < 0) return fail("echo: send", rc);
  }
}

static int run_pipe_write(sbx_comms *c) {
  static const char msg[] = "hello from C\n";
  int fd;
  ssize_t n;
  int rc = sbx_comms_recv_fd(c, &fd);
  if (rc < 0) return fail("pipe-write: recv_fd", rc);
  n = write(fd, msg, sizeof msg - 1);
  close(fd);
  if (n != (ssize_t)(sizeof msg - 1)) {
    fprintf(stderr, "comms_peer: pipe-write: write: %s\n", n < 0 ? strerror(errno) : "short");
    return 1;
  }
  return 0;
}

static int run_types(sbx_comms *c) {
  static const unsigned char bytes[] = {0x00, 0x01, 0x02, 0xff};
  static const unsigned char msgpack[] = {0x81, 0xa1, 0x61, 0x01};
  int rc = 0;
  /* Stops at the first failure: the && chain keeps the order of the comment above. */
  (void)((rc = sbx_comms_send_bool(c, true)) < 0 || (rc = sbx_comms_send_int8(c, INT8_MIN)) < 0 ||
         (rc = sbx_comms_send_uint8(c, UINT8_MAX)) < 0 ||
         (rc = sbx_comms_send_int16(c, INT16_MIN)) < 0 ||
         (rc = sbx_comms_send_uint16(c, UINT16_MAX)) < 0 ||
         (rc = sbx_comms_send_int32(c, INT32_MIN)) < 0 ||
         (rc = sbx_comms_send_uint32(c, UINT32_MAX)) < 0 ||
         (rc = sbx_comms_send_int64(c, INT64_MIN)) < 0 ||
         (rc = sbx_comms_send_uint64(c, UINT64_MAX)) < 0 ||
         (rc = sbx_comms_send_string(c, "hello from C")) < 0 ||
         (rc = sbx_comms_send_bytes(c, bytes, sizeof bytes)) < 0 ||
         (rc = sbx_comms_send_msgpack(c, msgpack, sizeof msgpack)) < 0 ||
         (rc = sbx_comms_send_version(c)) < 0);
  return rc < 0 ? fail("types: send", rc) : 0;
}

static int parse_count(const char *s, unsigned long *out) {
  char *end;
  errno = 0;
  *out = strtoul(s, &end, 10);
  return errno == 0 && end != s && *end == '\0' && s[0] != '-' ? 0 : -1;
}

static int run_bench_sink(sbx_comms *c, unsigned long n, unsigned long size) {
  /* One reused buffer: the benchmark measures the channel, not malloc. */
  void *buf = malloc(size > 0 ? size : 1);
  unsigned long i;
  int rc = 0;
  if (buf == NULL) return fail("bench-sink: malloc", -ENOMEM);
  sbx_comms_set_max_message_size(c, size);
  for (i = 0; i < n && rc == 0; i++) {
    uint32_t tag;
    uint64_t len;
    rc = sbx_comms_recv_tlv_into(c, &tag, buf, size, &len);
    if (rc == 0 && (tag != SBX_TAG_BYTES || len != size)) rc = -EBADMSG;
  }
  free(buf);
  if (rc < 0) return fail("bench-sink: recv", rc);
  rc = sbx_comms_send_uint32(c, (uint32_t)n);
  return rc < 0 ? fail("bench-sink: send ack", rc) : 0;
}

static int run_bench_pingpong(sbx_comms *c, unsigned long n) {
  unsigned long i;
  for (i = 0; i < n; i++) {
    uint32_t v;
    int rc = sbx_comms_recv_uint32(c, &v);
    if (rc < 0) return fail("bench-pingpong: recv", rc);
    rc = sbx_comms_send_uint32(c, v + 1);
    if (rc < 0) return fail("bench-pingpong: send", rc);
  }
  return 0;
}

static int usage(void) {
  fprintf(stderr,
          "Usage: comms_peer echo | pipe-write | types | bench-sink N SIZE | "
          "bench-pingpong N\n");
  return 2;
}

int main(int argc, char **argv) {
  sbx_comms c;
  unsigned long n, size;
  int fd;
  if (argc < 2) return usage();
  fd = sbx_comms_default_fd();
  if (fd < 0) return fail("comms fd ($" SBX_COMMS_FD_ENV " or 1023)", fd);
  sbx_comms_init(&c, fd);
  if (strcmp(argv[1], "echo") == 0 && argc == 2) return run_echo(&c);
  if (strcmp(argv[1], "pipe-write") == 0 && argc == 2) return run_pipe_write(&c);
  if (strcmp(argv[1], "types") == 0 && argc == 2) return run_types(&c);
  if (strcmp(argv[1], "bench-sink") == 0 && argc == 4 && parse_count(argv[2], &n) == 0 &&
      parse_count(argv[3], &size) == 0)
    return run_bench_sink(&c, n, size);
  if (strcmp(argv[1], "bench-pingpong") == 0 && argc == 3 && parse_count(argv[2], &n) == 0)
    return run_bench_pingpong(&c, n);
  return usage();
}
