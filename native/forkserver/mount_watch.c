/*
 * mount_watch.c: the mountinfo lines that concern a set of bind sources (mount_watch.h).
 */
#define _GNU_SOURCE
#include "mount_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The whole of /proc/self/mountinfo (NUL-terminated), or NULL. */
static char *read_mountinfo(size_t *len) {
  int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 16384, n = 0;
  char *buf = malloc(cap);
  while (buf != NULL) {
    if (cap - n < 4096) {
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) break;
      buf = bigger;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r == 0) {
      close(fd);
      buf[n] = '\0';
      *len = n;
      return buf;
    }
    n += (size_t)r;
  }
  int err = errno;
  free(buf);
  close(fd);
  errno = err ? err : ENOMEM;
  return NULL;
}

/* Whether `a` is `b` or one of its ancestors ("/" is everyone's). */
static bool at_or_above(const char *a, size_t alen, const char *b, size_t blen) {
  if (alen == 1 && a[0] == '/') return true;
  if (alen > blen || memcmp(a, b, alen) != 0) return false;
  return alen == blen || b[alen] == '/';
}

/* Whether the mount point (mountinfo's 5th field, escaped) relates to one of the paths. */
static bool related(const char *mp, size_t mplen, const char *const *paths, size_t npaths) {
  if (memchr(mp, '\\', mplen) != NULL) return true; /* escaped: do not guess */
  for (size_t i = 0; i < npaths; i++) {
    size_t plen = strlen(paths[i]);
    if (at_or_above(mp, mplen, paths[i], plen) || at_or_above(paths[i], plen, mp, mplen))
      return true;
  }
  return false;
}

char *mount_watch_snapshot(const char *const *paths, size_t npaths, size_t *len) {
  size_t total;
  char *info = read_mountinfo(&total);
  if (info == NULL) return NULL;
  /* Related lines are copied to the front of the same buffer (never past where they are read). */
  size_t out = 0;
  for (char *line = info; line < info + total;) {
    char *end = memchr(line, '\n', (size_t)(info + total - line));
    size_t linelen = end != NULL ? (size_t)(end - line) + 1 : (size_t)(info + total - line);
    /* Fields: id parent major:minor root mountpoint ... */
    const char *f = line;
    const char *stop = line + linelen;
    for (int skip = 0; skip < 4 && f < stop; skip++) {
      const char *sp = memchr(f, ' ', (size_t)(stop - f));
      f = sp != NULL ? sp + 1 : stop;
    }
    const char *sp = f < stop ? memchr(f, ' ', (size_t)(stop - f)) : NULL;
    bool keep = sp == NULL || related(f, (size_t)(sp - f), paths, npaths); /* malformed: keep */
    if (keep) {
      memmove(info + out, line, linelen);
      out += linelen;
    }
    line += linelen;
  }
  *len = out;
  return info;
}
