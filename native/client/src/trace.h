/*
 * trace.h: the child's half of a custom-fork request's trace (docs/architecture.md, "Tracing a
 * fork request"). Off unless the executor asked for it on the request. Timestamps are
 * CLOCK_MONOTONIC nanoseconds (the vDSO: no system call, so they may be taken under the filter);
 * the executor reads them from the child's TRACE message after GO and the forkserver's FORKED.
 * Stage numbers are wire values: packages/executor/src/forkserver/fork-trace.ts mirrors them.
 */
#ifndef SBX_CLIENT_TRACE_H
#define SBX_CLIENT_TRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sbx_trace_stage {
  /* forkserver (in FORKED) */
  SBX_TRACE_FS_REQUEST = 1, /* the request and its fds received */
  SBX_TRACE_FS_ASSIGNED,    /* the fds sent to a waiting spare */
  SBX_TRACE_FS_FORKED,      /* fork() returned in the forkserver */
  SBX_TRACE_FS_CHILD_READY, /* the child reported its isolation done */
  SBX_TRACE_FS_PREPARED,    /* the runtime's prepare hook done (Node: DOFORK, workers parked) */
  /* child (in TRACE) */
  SBX_TRACE_CHILD_FORKED = 16, /* fork() returned 0 (for a spare: ahead of the request) */
  SBX_TRACE_CHILD_ISOLATED,    /* setsid, capabilities, NO_NEW_PRIVS, Landlock domain */
  SBX_TRACE_CHILD_RUNTIME,     /* the runtime's post-fork repair (Node: uv_loop_fork) */
  SBX_TRACE_CHILD_ASSIGNED,    /* a spare received its request's fds */
  SBX_TRACE_CHILD_FDS,         /* the request's fds in place */
  SBX_TRACE_CHILD_JS,          /* Node: back in JS, the child's fix-ups done */
  SBX_TRACE_CHILD_ME_HERE,     /* sandboxMeHere() entered */
  SBX_TRACE_CHILD_HELLO,       /* HELLO sent */
  SBX_TRACE_CHILD_POLICY,      /* the policy received */
  SBX_TRACE_CHILD_NNP,         /* NO_NEW_PRIVS set */
  SBX_TRACE_CHILD_FILTER,      /* seccomp(TSYNC|NEW_LISTENER) returned: every thread filtered */
  SBX_TRACE_CHILD_INSTALLED,   /* INSTALLED (the listener's number) sent */
  SBX_TRACE_CHILD_GO,          /* GO received: sandboxMeHere() returns */
  SBX_TRACE_CHILD_LOOP         /* Node: uv_loop_fork() and the kick done, before the JS fix-ups */
};

#define SBX_TRACE_MAX 24u
/* One record on the wire: u32 stage | u32 0 | u64 ns (little-endian). */
#define SBX_TRACE_RECORD_SIZE 16u
/* client -> executor after GO, when traced: u32 count | u32 0 | count records. */
#define SBX_CLIENT_TAG_TRACE 0x00005315u

uint64_t sbx_trace_now(void);
/* Traced from now on in this process (a child of a traced request), with no stages yet. */
void sbx_trace_start(void);
int sbx_trace_enabled(void);
/* Records `stage` now (no-op when off; at most SBX_TRACE_MAX stages are kept). */
void sbx_trace_mark(uint32_t stage);
void sbx_trace_mark_at(uint32_t stage, uint64_t ns);
/* The stages so far: copies at most `max`, returns how many there are. */
unsigned sbx_trace_get(uint32_t *stages, uint64_t *ns, unsigned max);
/* Encodes `n` records (u32 count | u32 0 | records) into buf; returns the bytes written. */
size_t sbx_trace_encode(unsigned char *buf, size_t cap, const uint32_t *stages, const uint64_t *ns,
                        unsigned n);

#ifdef __cplusplus
}
#endif

#endif /* SBX_CLIENT_TRACE_H */
