/*
 * test_types.c: every message type round-trips between two processes, with its extreme values.
 * The child sends a fixed sequence and then receives the same sequence back from the parent, so
 * both directions of the socket are covered by the same checks.
 */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define BIG (1u << 20) /* 1 MiB strings and bytes */

static const unsigned char msgpack_map[] = {0x81, 0xa1, 0x61, 0x01}; /* {"a": 1} */

static char *big_string(void) {
  char *s = malloc(BIG + 1);
  size_t i;
  if (s == NULL) return NULL;
  for (i = 0; i < BIG; i++) s[i] = (char)('a' + i % 26);
  s[BIG] = '\0';
  return s;
}

static unsigned char *big_bytes(void) {
  unsigned char *b = malloc(BIG);
  size_t i;
  if (b == NULL) return NULL;
  for (i = 0; i < BIG; i++)
    b[i] = (unsigned char)(i * 7 + (i >> 8)); /* every byte value, NULs included */
  return b;
}

static int send_all(sbx_comms *c) {
  static const char with_nul[] = {'a', '\0', 'b'};
  char *s = big_string();
  unsigned char *b = big_bytes();
  CHECK(s != NULL && b != NULL);
  CHECK_OK(sbx_comms_send_bool(c, false));
  CHECK_OK(sbx_comms_send_bool(c, true));
  CHECK_OK(sbx_comms_send_int8(c, INT8_MIN));
  CHECK_OK(sbx_comms_send_int8(c, INT8_MAX));
  CHECK_OK(sbx_comms_send_uint8(c, 0));
  CHECK_OK(sbx_comms_send_uint8(c, UINT8_MAX));
  CHECK_OK(sbx_comms_send_int16(c, INT16_MIN));
  CHECK_OK(sbx_comms_send_int16(c, INT16_MAX));
  CHECK_OK(sbx_comms_send_uint16(c, 0));
  CHECK_OK(sbx_comms_send_uint16(c, UINT16_MAX));
  CHECK_OK(sbx_comms_send_int32(c, INT32_MIN));
  CHECK_OK(sbx_comms_send_int32(c, INT32_MAX));
  CHECK_OK(sbx_comms_send_uint32(c, 0));
  CHECK_OK(sbx_comms_send_uint32(c, UINT32_MAX));
  CHECK_OK(sbx_comms_send_int64(c, INT64_MIN));
  CHECK_OK(sbx_comms_send_int64(c, INT64_MAX));
  CHECK_OK(sbx_comms_send_uint64(c, 0));
  CHECK_OK(sbx_comms_send_uint64(c, UINT64_MAX));
  CHECK_OK(sbx_comms_send_string(c, ""));
  CHECK_OK(sbx_comms_send_string(c, s));
  CHECK_OK(sbx_comms_send_tlv(c, SBX_TAG_STRING, with_nul, sizeof with_nul));
  CHECK_OK(sbx_comms_send_bytes(c, NULL, 0));
  CHECK_OK(sbx_comms_send_bytes(c, b, BIG));
  CHECK_OK(sbx_comms_send_msgpack(c, msgpack_map, sizeof msgpack_map));
  CHECK_OK(sbx_comms_send_tlv(c, 1, "one", 3));
  CHECK_OK(sbx_comms_send_tlv(c, 0x7fffffffu, NULL, 0));
  CHECK_OK(sbx_comms_send_tlv(c, 42, "into", 4));
  CHECK_OK(sbx_comms_send_tlv(c, 43, b, BIG));
  CHECK_OK(sbx_comms_send_version(c));
  free(s);
  free(b);
  return 0;
}

static int recv_all(sbx_comms *c) {
  bool bo;
  int8_t i8;
  uint8_t u8;
  int16_t i16;
  uint16_t u16;
  int32_t i32;
  uint32_t u32, tag;
  int64_t i64;
  uint64_t u64, len;
  char *str, *s = big_string();
  unsigned char *b = big_bytes();
  void *data;
  size_t n;
  char into[8];

  CHECK(s != NULL && b != NULL);
  CHECK_OK(sbx_comms_recv_bool(c, &bo));
  CHECK(bo == false);
  CHECK_OK(sbx_comms_recv_bool(c, &bo));
  CHECK(bo == true);
  CHECK_OK(sbx_comms_recv_int8(c, &i8));
  CHECK(i8 == INT8_MIN);
  CHECK_OK(sbx_comms_recv_int8(c, &i8));
  CHECK(i8 == INT8_MAX);
  CHECK_OK(sbx_comms_recv_uint8(c, &u8));
  CHECK(u8 == 0);
  CHECK_OK(sbx_comms_recv_uint8(c, &u8));
  CHECK(u8 == UINT8_MAX);
  CHECK_OK(sbx_comms_recv_int16(c, &i16));
  CHECK(i16 == INT16_MIN);
  CHECK_OK(sbx_comms_recv_int16(c, &i16));
  CHECK(i16 == INT16_MAX);
  CHECK_OK(sbx_comms_recv_uint16(c, &u16));
  CHECK(u16 == 0);
  CHECK_OK(sbx_comms_recv_uint16(c, &u16));
  CHECK(u16 == UINT16_MAX);
  CHECK_OK(sbx_comms_recv_int32(c, &i32));
  CHECK(i32 == INT32_MIN);
  CHECK_OK(sbx_comms_recv_int32(c, &i32));
  CHECK(i32 == INT32_MAX);
  CHECK_OK(sbx_comms_recv_uint32(c, &u32));
  CHECK(u32 == 0);
  CHECK_OK(sbx_comms_recv_uint32(c, &u32));
  CHECK(u32 == UINT32_MAX);
  CHECK_OK(sbx_comms_recv_int64(c, &i64));
  CHECK(i64 == INT64_MIN);
  CHECK_OK(sbx_comms_recv_int64(c, &i64));
  CHECK(i64 == INT64_MAX);
  CHECK_OK(sbx_comms_recv_uint64(c, &u64));
  CHECK(u64 == 0);
  CHECK_OK(sbx_comms_recv_uint64(c, &u64));
  CHECK(u64 == UINT64_MAX);

  CHECK_OK(sbx_comms_recv_string(c, &str, &n));
  CHECK(n == 0 && str != NULL && str[0] == '\0');
  free(str);
  CHECK_OK(sbx_comms_recv_string(c, &str, &n));
  CHECK(n == BIG && strcmp(str, s) == 0);
  free(str);
  CHECK_OK(sbx_comms_recv_string(c, &str, &n));
  CHECK(n == 3 && memcmp(str, "a\0b", 4) == 0); /* whole, and still NUL-terminated */
  free(str);

  CHECK_OK(sbx_comms_recv_bytes(c, &data, &n));
  CHECK(n == 0 && data == NULL);
  CHECK_OK(sbx_comms_recv_bytes(c, &data, &n));
  CHECK(n == BIG && memcmp(data, b, BIG) == 0);
  free(data);
  CHECK_OK(sbx_comms_recv_msgpack(c, &data, &n));
  CHECK(n == sizeof msgpack_map && memcmp(data, msgpack_map, n) == 0);
  free(data);

  CHECK_OK(sbx_comms_recv_expect(c, 1, &data, &len));
  CHECK(len == 3 && memcmp(data, "one", 3) == 0);
  free(data);
  CHECK_OK(sbx_comms_recv_tlv(c, &tag, &data, &len));
  CHECK(tag == 0x7fffffffu && len == 0 && data == NULL);
  CHECK(sbx_comms_last_tag(c) == 0x7fffffffu);
  CHECK_OK(sbx_comms_recv_tlv_into(c, &tag, into, sizeof into, &len));
  CHECK(tag == 42 && len == 4 && memcmp(into, "into", 4) == 0);
  CHECK_OK(sbx_comms_recv_tlv(c, &tag, &data, &len));
  CHECK(tag == 43 && len == BIG && memcmp(data, b, BIG) == 0);
  free(data);

  CHECK_OK(sbx_comms_recv_version(c, &u32));
  CHECK(u32 == SBX_COMMS_PROTOCOL_VERSION);
  free(s);
  free(b);
  return 0;
}

static int child(sbx_comms *c) {
  if (send_all(c) != 0) return 1;
  return recv_all(c);
}

static int parent(sbx_comms *c) {
  if (recv_all(c) != 0) return 1;
  return send_all(c);
}

int main(void) {
  static const test_case cases[] = {
      {"every type round-trips child -> parent -> child", parent, child},
  };
  return run_cases(cases, sizeof cases / sizeof cases[0]);
}
