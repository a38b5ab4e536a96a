/*
 * test_named_fds.c: sbx_client_get_mapped_fd / sbx_client_has_mapped_fd against tables set in
 * the environment: lookups, absent names, and malformed tables refused whole. TAP lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <sbx/client.h>

#include "check.h"

#define CHECK_RC(expr, want) CHECK_RC_NAMED(expr, want, strerror_neg)

static const char *strerror_neg(int rc) { return rc < 0 ? strerror(-rc) : "fd"; }

static int lookups(void) {
  unsetenv("SBX_FD_MAPPINGS");
  CHECK_RC(sbx_client_get_mapped_fd("data"), -ENOENT);
  CHECK(!sbx_client_has_mapped_fd("data"));
  setenv("SBX_FD_MAPPINGS", "data=1019,log.out=1018,a-b_c=7", 1);
  CHECK_RC(sbx_client_get_mapped_fd("data"), 1019);
  CHECK_RC(sbx_client_get_mapped_fd("log.out"), 1018);
  CHECK_RC(sbx_client_get_mapped_fd("a-b_c"), 7);
  CHECK(sbx_client_has_mapped_fd("data"));
  CHECK_RC(sbx_client_get_mapped_fd("dat"), -ENOENT); /* a prefix is not the name */
  CHECK_RC(sbx_client_get_mapped_fd("data=1019"), -ENOENT);
  CHECK_RC(sbx_client_get_mapped_fd(""), -EINVAL);
  CHECK_RC(sbx_client_get_mapped_fd(NULL), -EINVAL);
  return 0;
}

static int malformed(void) {
  static const char *const bad[] = {
      "data",    "data=",         "=3",      "data=3,",    "data=3,,x=4", "da ta=3",
      "data=-1", "data=12345678", "data=3x", "data=3;x=4", ",data=3",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("SBX_FD_MAPPINGS", bad[i], 1);
    if (sbx_client_get_mapped_fd("data") != -EINVAL) {
      fprintf(stderr, "table \"%s\" was not refused\n", bad[i]);
      return 1;
    }
  }
  /* A name longer than 64 characters is malformed too. */
  char longer[80];
  memset(longer, 'n', 65);
  snprintf(longer + 65, sizeof longer - 65, "=3");
  setenv("SBX_FD_MAPPINGS", longer, 1);
  CHECK_RC(sbx_client_get_mapped_fd("n"), -EINVAL);
  return 0;
}

int main(void) {
  int failed = 0, n = 0;
  struct {
    const char *name;
    int (*fn)(void);
  } tests[] = {{"lookups", lookups}, {"malformed tables are refused whole", malformed}};
  printf("1..%zu\n", sizeof tests / sizeof tests[0]);
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int r = tests[i].fn();
    printf("%s %d - %s\n", r ? "not ok" : "ok", ++n, tests[i].name);
    failed |= r;
  }
  return failed;
}
