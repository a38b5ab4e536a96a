#define _GNU_SOURCE
#include "oplist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

void ol_init(struct oplist *o) { memset(o, 0, sizeof *o); }

void ol_free(struct oplist *o) {
  free(o->buf);
  memset(o, 0, sizeof *o);
}

static void put(struct oplist *o, const void *data, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n) cap *= 2;
    uint8_t *b = realloc(o->buf, cap);
    if (b == NULL) {
      perror("oplist");
      abort();
    }
    o->buf = b;
    o->cap = cap;
  }
  if (n > 0) memcpy(o->buf + o->len, data, n);
  o->len += n;
}

static void put_u32(struct oplist *o, uint32_t v) {
  uint8_t b[4];
  for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
  put(o, b, 4);
}

static void put_u64(struct oplist *o, uint64_t v) {
  put_u32(o, (uint32_t)v);
  put_u32(o, (uint32_t)(v >> 32));
}

static void header(struct oplist *o, uint32_t op, uint64_t n) {
  put_u32(o, op);
  put_u64(o, n);
}

void ol_raw(struct oplist *o, uint32_t op, const void *data, size_t n) {
  header(o, op, n);
  put(o, data, n);
}

void ol_u32(struct oplist *o, uint32_t op, uint32_t v) {
  header(o, op, 4);
  put_u32(o, v);
}

void ol_u64(struct oplist *o, uint32_t op, uint64_t v) {
  header(o, op, 8);
  put_u64(o, v);
}

void ol_str(struct oplist *o, uint32_t op, const char *s) { ol_raw(o, op, s, strlen(s)); }

void ol_id_map(struct oplist *o, uint32_t in_uid, uint32_t out_uid, uint32_t in_gid,
               uint32_t out_gid) {
  header(o, SBX_OP_ID_MAP, 16);
  put_u32(o, in_uid);
  put_u32(o, out_uid);
  put_u32(o, in_gid);
  put_u32(o, out_gid);
}

void ol_bind(struct oplist *o, uint32_t flags, const char *src, const char *dst) {
  header(o, SBX_OP_BIND, 8 + strlen(src) + strlen(dst));
  put_u32(o, flags);
  put_u32(o, (uint32_t)strlen(src));
  put(o, src, strlen(src));
  put(o, dst, strlen(dst));
}

void ol_tmpfs(struct oplist *o, uint64_t size, uint32_t mode, const char *dst) {
  header(o, SBX_OP_TMPFS, 12 + strlen(dst));
  put_u64(o, size);
  put_u32(o, mode);
  put(o, dst, strlen(dst));
}

void ol_mkdir(struct oplist *o, uint32_t mode, const char *path) {
  header(o, SBX_OP_MKDIR, 4 + strlen(path));
  put_u32(o, mode);
  put(o, path, strlen(path));
}

void ol_symlink(struct oplist *o, const char *target, const char *linkpath) {
  header(o, SBX_OP_SYMLINK, 4 + strlen(target) + strlen(linkpath));
  put_u32(o, (uint32_t)strlen(target));
  put(o, target, strlen(target));
  put(o, linkpath, strlen(linkpath));
}

void ol_rlimit(struct oplist *o, uint32_t resource, uint64_t soft, uint64_t hard) {
  header(o, SBX_OP_RLIMIT, 20);
  put_u32(o, resource);
  put_u64(o, soft);
  put_u64(o, hard);
}
