/*
 * test_util.h: the small harness shared by the Comms C tests. Each test case runs across two
 * real processes (fork + socketpair); results are printed as TAP lines.
 */
#ifndef SBX_COMMS_TEST_UTIL_H
#define SBX_COMMS_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sbx/comms.h"

/* Fails the current function (returns 1) when `cond` is false, naming the line. */
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                                \
    }                                                                          \
  } while (0)

/* Fails unless `expr` returns `want`; prints both as Comms error names. */
#define CHECK_RC(expr, want)                                                                    \
  do {                                                                                          \
    int check_rc_ = (expr);                                                                     \
    if (check_rc_ != (want)) {                                                                  \
      fprintf(stderr, "%s:%d: %s returned %d (%s), want %d (%s)\n", __FILE__, __LINE__, #expr,  \
              check_rc_, sbx_comms_strerror(check_rc_), (int)(want), sbx_comms_strerror(want)); \
      return 1;                                                                                 \
    }                                                                                           \
  } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, 0)

/* One side of a test case: returns 0 on success. */
typedef int (*side_fn)(sbx_comms *c);

/* Runs `child` in a forked process and `parent` here, over a fresh socketpair. Each side holds
 * only its own end. Passes when both return 0 (the child's result is its exit status). */
int run_pair(side_fn parent, side_fn child);

typedef struct test_case {
  const char *name;
  side_fn parent;
  side_fn child;
} test_case;

/* Runs every case and prints TAP; returns the process exit status (0 when all passed). */
int run_cases(const test_case *cases, size_t n);

/* Receives and drops messages until the peer closes: 0 on -EPIPE, else the error. */
int wait_for_eof(sbx_comms *c);

/* Number of open fds of this process (/proc/self/fd), for leak checks. */
int count_fds(void);

/* Writes a header, then `payload_len` bytes, with `nfds` fds as SCM_RIGHTS: a hand-made message
 * for tests that play a broken or hostile peer. `announced` is the header's length field. */
int raw_send(int fd, uint32_t tag, uint64_t announced, const void *payload, size_t payload_len,
             const int *fds, size_t nfds);
/* write() of exactly `len` bytes, with `nfds` fds attached. */
int raw_write(int fd, const void *data, size_t len, const int *fds, size_t nfds);

#endif /* SBX_COMMS_TEST_UTIL_H */
