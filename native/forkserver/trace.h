/*
 * trace.h: CLOCK_MONOTONIC marks at the end of each step of one request (SBX_OP_TRACE), kept in a
 * fixed array (the child may not allocate) and sent as SBX_SETUP_TRACE (protocol.h). Callers
 * mark only when the request asked: no clock is read otherwise.
 */
#ifndef SBX_FORKSERVER_TRACE_H
#define SBX_FORKSERVER_TRACE_H

#include <stdint.h>
#include <time.h>

#include "protocol.h"

struct fs_trace {
  uint32_t n;
  struct {
    uint32_t step; /* enum sbx_step */
    uint64_t ns;   /* CLOCK_MONOTONIC at its end */
  } e[SBX_TRACE_MAX];
};

static inline void fs_trace_mark(struct fs_trace *t, uint32_t step) {
  if (t->n >= SBX_TRACE_MAX) return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  t->e[t->n].step = step;
  t->e[t->n].ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  t->n++;
}

#endif
