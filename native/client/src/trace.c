/*
 * trace.c: timestamps of one traced custom-fork request in this process (trace.h). Plain
 * globals: a child is single-threaded until it returns to its runtime, and sandboxMeHere() is
 * guarded by its own BUSY state.
 */
#define _GNU_SOURCE
#include "trace.h"

#include <time.h>

#include "le.h"

static int g_on;
static unsigned g_n;
static uint32_t g_stage[SBX_TRACE_MAX];
static uint64_t g_ns[SBX_TRACE_MAX];

uint64_t sbx_trace_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sbx_trace_start(void) {
  g_on = 1;
  g_n = 0;
}

int sbx_trace_enabled(void) { return g_on; }

void sbx_trace_mark_at(uint32_t stage, uint64_t ns) {
  if (!g_on || g_n >= SBX_TRACE_MAX) return;
  g_stage[g_n] = stage;
  g_ns[g_n] = ns;
  g_n++;
}

void sbx_trace_mark(uint32_t stage) {
  if (g_on) sbx_trace_mark_at(stage, sbx_trace_now());
}

unsigned sbx_trace_get(uint32_t *stages, uint64_t *ns, unsigned max) {
  for (unsigned i = 0; i < g_n && i < max; i++) {
    stages[i] = g_stage[i];
    ns[i] = g_ns[i];
  }
  return g_n;
}

size_t sbx_trace_encode(unsigned char *buf, size_t cap, const uint32_t *stages, const uint64_t *ns,
                        unsigned n) {
  if (cap < 8) return 0;
  if (n > (cap - 8) / SBX_TRACE_RECORD_SIZE) n = (unsigned)((cap - 8) / SBX_TRACE_RECORD_SIZE);
  put_u32(buf, n);
  put_u32(buf + 4, 0);
  for (unsigned i = 0; i < n; i++) {
    unsigned char *r = buf + 8 + (size_t)i * SBX_TRACE_RECORD_SIZE;
    put_u32(r, stages[i]);
    put_u32(r + 4, 0);
    put_u64(r + 8, ns[i]);
  }
  return 8 + (size_t)n * SBX_TRACE_RECORD_SIZE;
}
