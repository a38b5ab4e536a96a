/*
 * named_fds.c: the sandboxee's lookup of fds the executor mapped under a name. The executor writes
 * the table into $SBX_FD_MAPPINGS ("name=fd,name=fd"); names are 1..64 of [A-Za-z0-9_.-].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sbx/client.h>

#define FD_MAPPINGS_ENV "SBX_FD_MAPPINGS"
#define FD_NAME_MAX     64
#define FD_NUMBER_MAX   9999999 /* 7 digits, as the executor writes them */

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

/* Parses one "name=fd" entry of [p, end): its name span and fd; false when malformed. */
static bool parse_entry(const char *p, const char *end, size_t *name_len, int *fd) {
  size_t n = 0;
  while (p + n < end && name_char(p[n])) n++;
  if (n == 0 || n > FD_NAME_MAX || p + n == end || p[n] != '=') return false;
  const char *d = p + n + 1;
  if (d == end) return false;
  long v = 0;
  for (; d < end; d++) {
    if (*d < '0' || *d > '9') return false;
    v = v * 10 + (*d - '0');
    if (v > FD_NUMBER_MAX) return false;
  }
  *name_len = n;
  *fd = (int)v;
  return true;
}

int sbx_client_get_mapped_fd(const char *name) {
  if (name == NULL || name[0] == '\0') return -EINVAL;
  const char *table = getenv(FD_MAPPINGS_ENV);
  if (table == NULL || table[0] == '\0') return -ENOENT;
  size_t want = strlen(name);
  int found = -ENOENT;
  for (const char *p = table;;) {
    const char *end = strchr(p, ',');
    if (end == NULL) end = p + strlen(p);
    size_t len;
    int fd;
    if (!parse_entry(p, end, &len, &fd)) return -EINVAL; /* a bad table is refused whole */
    if (found < 0 && len == want && memcmp(p, name, len) == 0) found = fd;
    if (*end == '\0') break;
    p = end + 1;
  }
  return found;
}

bool sbx_client_has_mapped_fd(const char *name) { return sbx_client_get_mapped_fd(name) >= 0; }
