/*
 * test_stress.c: 100k small messages each way at the same time. Each process sends from a
 * thread while its main thread receives, so both socket buffers are full at once and ordering,
 * framing and partial reads are exercised under load.
 */
#include <pthread.h>
#include <string.h>

#include "test_util.h"

#define COUNT 100000u

typedef struct {
  sbx_comms c; /* its own struct on the shared fd: send and recv touch no common state */
  int rc;
} sender;

static void *send_thread(void *arg) {
  sender *s = arg;
  uint32_t i;
  s->rc = 0;
  for (i = 0; i < COUNT && s->rc == 0; i++) {
    /* Alternate a scalar and a short variable-length message to vary the framing. */
    if (i % 2 == 0) {
      s->rc = sbx_comms_send_uint32(&s->c, i);
    } else {
      char text[16];
      int n = snprintf(text, sizeof text, "m%u", (unsigned)i);
      s->rc = sbx_comms_send_tlv(&s->c, 100, text, (uint64_t)n);
    }
  }
  return NULL;
}

static int exchange(sbx_comms *c) {
  sender s;
  pthread_t t;
  uint32_t i;
  sbx_comms_init(&s.c, c->fd);
  CHECK(pthread_create(&t, NULL, send_thread, &s) == 0);
  for (i = 0; i < COUNT; i++) {
    if (i % 2 == 0) {
      uint32_t v;
      CHECK_OK(sbx_comms_recv_uint32(c, &v));
      CHECK(v == i);
    } else {
      char want[16], got[16];
      uint32_t tag;
      uint64_t len;
      int n = snprintf(want, sizeof want, "m%u", (unsigned)i);
      CHECK_OK(sbx_comms_recv_tlv_into(c, &tag, got, sizeof got, &len));
      CHECK(tag == 100 && len == (uint64_t)n && memcmp(got, want, (size_t)n) == 0);
    }
  }
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_OK(s.rc);
  return sbx_comms_barrier(c);
}

int main(void) {
  static const test_case cases[] = {
      {"100k messages each way concurrently arrive intact and in order", exchange, exchange},
  };
  return run_cases(cases, sizeof cases / sizeof cases[0]);
}
