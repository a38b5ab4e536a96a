/*
 * check.h: what the libsbx_client C tests share: CHECK macros that fail the current function
 * (return 1) naming the line, and little-endian field access for hand-built protocol messages.
 */
#ifndef SBX_CLIENT_TEST_CHECK_H
#define SBX_CLIENT_TEST_CHECK_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../src/le.h" /* put_u32/put_u64/get_u32/get_u64: the library's own */

/* Fails unless `cond`; errno is printed as a hint (it may be stale). */
#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s (errno %s)\n", __FILE__, __LINE__, #cond, \
              strerror(errno));                                                          \
      return 1;                                                                          \
    }                                                                                    \
  } while (0)

/* Fails unless `expr` returns `want`; both are shown through `name` (a *_strerror function). */
#define CHECK_RC_NAMED(expr, want, name)                                                       \
  do {                                                                                         \
    int check_rc_ = (expr);                                                                    \
    if (check_rc_ != (want)) {                                                                 \
      fprintf(stderr, "%s:%d: %s returned %d (%s), want %d (%s)\n", __FILE__, __LINE__, #expr, \
              check_rc_, name(check_rc_), (int)(want), name(want));                            \
      return 1;                                                                                \
    }                                                                                          \
  } while (0)

#endif
