/*
 * oplist.h: a small builder for SBX_FS_SPAWN op lists (protocol.h), for the C tests and the
 * bench. Aborts on allocation failure (test code).
 */
#ifndef SBX_FORKSERVER_TESTS_OPLIST_H
#define SBX_FORKSERVER_TESTS_OPLIST_H

#include <stddef.h>
#include <stdint.h>

struct oplist {
  uint8_t *buf;
  size_t len, cap;
};

void ol_init(struct oplist *o);
void ol_free(struct oplist *o);
/* One op with a raw payload. */
void ol_raw(struct oplist *o, uint32_t op, const void *data, size_t n);
void ol_u32(struct oplist *o, uint32_t op, uint32_t v);
void ol_u64(struct oplist *o, uint32_t op, uint64_t v);
void ol_str(struct oplist *o, uint32_t op, const char *s);
void ol_id_map(struct oplist *o, uint32_t in_uid, uint32_t out_uid, uint32_t in_gid,
               uint32_t out_gid);
void ol_bind(struct oplist *o, uint32_t flags, const char *src, const char *dst);
void ol_tmpfs(struct oplist *o, uint64_t size, uint32_t mode, const char *dst);
void ol_mkdir(struct oplist *o, uint32_t mode, const char *path);
void ol_symlink(struct oplist *o, const char *target, const char *linkpath);
void ol_rlimit(struct oplist *o, uint32_t resource, uint64_t soft, uint64_t hard);

#endif
