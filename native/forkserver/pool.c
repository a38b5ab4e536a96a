/*
 * pool.c: the spawn pool (pool.h). Forkserver side: key, template, slots, refill, stats; and the
 * slot's own life between its clone and its request.
 */
#define _GNU_SOURCE
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sbx/comms.h>

#include "child.h"
#include "clone.h"
#include "mount_watch.h"
#include "protocol.h"
#include "server.h"
#include "userns.h"
#include "le.h"

#define HEADER_SIZE 12u

static uint64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* What child_run_frozen reads: these ops are what a slot has already applied. */
static bool op_is_frozen(uint32_t op) {
  switch (op) {
    case SBX_OP_NAMESPACES:
    case SBX_OP_HOSTNAME:
    case SBX_OP_ID_MAP:
    case SBX_OP_BIND:
    case SBX_OP_TMPFS:
    case SBX_OP_PROC:
    case SBX_OP_DEV:
    case SBX_OP_MKDIR:
    case SBX_OP_SYMLINK:
    case SBX_OP_USER_LIMIT: return true;
    default: return false;
  }
}

static bool in_range(const struct fs_pool *pool, uint32_t uid) {
  return pool->id_count > 0 && uid >= pool->id_first && uid - pool->id_first < pool->id_count;
}

/* The frozen ops of a (validated) op list, copied in order into a new allocation with `extra`
 * bytes to spare at the end. An ID_MAP to a uid of the executor's range is keyed without its
 * outside ids: a slot brings its own (pool.h). */
static uint8_t *frozen_key(const struct fs_pool *pool, const uint8_t *buf, size_t len, size_t extra,
                           size_t *out_len) {
  uint8_t *key = malloc(len + extra);
  if (key == NULL) return NULL;
  size_t off = 0, k = 0;
  while (len - off >= HEADER_SIZE) {
    uint32_t op = rd_u32(buf + off);
    uint64_t n = rd_u64(buf + off + 4);
    if (n > len - off - HEADER_SIZE) break;
    size_t whole = HEADER_SIZE + (size_t)n;
    if (op_is_frozen(op)) {
      memcpy(key + k, buf + off, whole);
      if (op == SBX_OP_ID_MAP && n == 16 && in_range(pool, rd_u32(key + k + HEADER_SIZE + 4))) {
        put_u32(key + k + HEADER_SIZE + 4, 0);
        put_u32(key + k + HEADER_SIZE + 12, 0);
      }
      k += whole;
    }
    off += whole;
  }
  *out_len = k;
  return key;
}

static size_t put_op(uint8_t *p, uint32_t op, const void *data, size_t n) {
  put_u32(p, op);
  put_u64(p + 4, n);
  memcpy(p + HEADER_SIZE, data, n);
  return HEADER_SIZE + n;
}

/* Parses the key as a request: the required ops get placeholders the frozen half never reads. */
static int parse_template(const uint8_t *key, size_t key_len, struct sbx_request *out, char *err,
                          size_t errlen) {
  uint8_t head[3 * HEADER_SIZE + 8 + 1 + 4];
  uint8_t zero[8] = {0};
  size_t h = put_op(head, SBX_OP_REQUEST_ID, zero, 8);
  h += put_op(head + h, SBX_OP_EXEC_PATH, "/", 1);
  h += put_op(head + h, SBX_OP_ARG, "slot", 4);
  uint8_t *buf = malloc(h + key_len);
  if (buf == NULL) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  memcpy(buf, head, h);
  memcpy(buf + h, key, key_len);
  int r = sbx_request_parse(buf, h + key_len, out, err, errlen);
  free(buf);
  return r;
}

static bool same_bind(const struct sbx_mount_op *op, const struct fs_bind_id *id) {
  struct stat st;
  bool present = stat(op->src, &st) == 0;
  if (present != id->present) return false;
  return !present || (id->dev == (uint64_t)st.st_dev && id->ino == (uint64_t)st.st_ino);
}

/* The related mountinfo lines (mount_watch.h) for the template's BIND sources (and /dev for a
 * DEV op, whose nodes are binds of the host's), as they are now; NULL on error. The sources are
 * taken with symlinks resolved where they resolve. */
static char *related_mounts(const struct fs_pool *pool, size_t *len) {
  const char **paths = calloc(pool->tmpl.nmounts + 1, sizeof *paths);
  char **resolved = calloc(pool->tmpl.nmounts + 1, sizeof *resolved);
  char *snap = NULL;
  size_t n = 0;
  if (paths != NULL && resolved != NULL) {
    for (size_t i = 0; i < pool->tmpl.nmounts; i++) {
      const struct sbx_mount_op *op = &pool->tmpl.mounts[i];
      if (op->op == SBX_OP_DEV) {
        paths[n++] = "/dev"; /* its nodes are binds of the host's /dev/null... */
        continue;
      }
      if (op->op != SBX_OP_BIND) continue;
      resolved[n] = realpath(op->src, NULL);
      paths[n] = resolved[n] != NULL ? resolved[n] : op->src;
      n++;
    }
    snap = mount_watch_snapshot(paths, n, len);
  }
  for (size_t i = 0; resolved != NULL && i < n; i++) free(resolved[i]);
  free(resolved);
  free((void *)paths);
  return snap;
}

/* Records the template's BIND sources as they are now, and the mounts related to them. false:
 * out of memory (or no mount table to read). */
static bool record_binds(struct fs_pool *pool) {
  free(pool->mounts_seen);
  pool->mounts_seen = related_mounts(pool, &pool->mounts_seen_len);
  if (pool->mounts_seen == NULL) return false;
  free(pool->binds);
  pool->binds = NULL;
  pool->nbinds = 0;
  size_t n = 0;
  for (size_t i = 0; i < pool->tmpl.nmounts; i++) n += pool->tmpl.mounts[i].op == SBX_OP_BIND;
  pool->binds = calloc(n + 1, sizeof *pool->binds);
  if (pool->binds == NULL) return false;
  for (size_t i = 0; i < pool->tmpl.nmounts; i++) {
    const struct sbx_mount_op *op = &pool->tmpl.mounts[i];
    if (op->op != SBX_OP_BIND) continue;
    struct stat st;
    struct fs_bind_id *id = &pool->binds[pool->nbinds++];
    id->present = stat(op->src, &st) == 0;
    id->dev = id->present ? (uint64_t)st.st_dev : 0;
    id->ino = id->present ? (uint64_t)st.st_ino : 0;
  }
  return true;
}

static bool binds_unchanged(const struct fs_pool *pool) {
  size_t b = 0;
  for (size_t i = 0; i < pool->tmpl.nmounts; i++) {
    const struct sbx_mount_op *op = &pool->tmpl.mounts[i];
    if (op->op == SBX_OP_BIND && !same_bind(op, &pool->binds[b++])) return false;
  }
  return true;
}

static void release_id_of(struct fs_pool *pool, pid_t pid) {
  for (size_t i = 0; i < pool->nids; i++)
    if (pool->ids[i].user == pid) pool->ids[i].user = 0;
}

void pool_reaped(struct fs_pool *pool, pid_t pid) { release_id_of(pool, pid); }

static void kill_slot(struct fs_pool *pool, struct fs_slot *s) {
  release_id_of(pool, s->pid);
  fs_kill_and_reap(s->pidfd);
  close(s->pidfd);
  if (s->sock >= 0) close(s->sock);
  if (s->cgroup != NULL) {
    (void)rmdir(s->cgroup); /* empty now: its only process was reaped above */
    free(s->cgroup);
    s->cgroup = NULL;
  }
}

static void remove_at(struct fs_pool *pool, size_t i) { pool->v[i] = pool->v[--pool->n]; }

static void kill_all(struct fs_pool *pool) {
  for (size_t i = 0; i < pool->n; i++) kill_slot(pool, &pool->v[i]);
  pool->recycled += pool->n;
  pool->n = 0;
}

void pool_set_size(struct fs_pool *pool, uint32_t size) {
  pool->size = size;
  while (pool->n > size) {
    kill_slot(pool, &pool->v[pool->n - 1]);
    pool->n--;
    pool->recycled++;
  }
  pool->broken = false; /* the caller asked again: try again */
}

int pool_configure(struct fs_pool *pool, const uint8_t *msg, size_t len) {
  if (len < 12 || (len - 12) % 4 != 0) return -EINVAL;
  uint32_t size = rd_u32(msg), first = rd_u32(msg + 4), count = rd_u32(msg + 8);
  size_t n = (len - 12) / 4;
  if (count == 0 || first == 0 || (uint64_t)first + count > UINT32_MAX || n > 4096) return -EINVAL;
  struct fs_pool_id *ids = calloc(n + 1, sizeof *ids);
  if (ids == NULL) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    ids[i].uid = rd_u32(msg + 12 + 4 * i);
    if (ids[i].uid - first >= count) {
      free(ids);
      return -EINVAL;
    }
    for (size_t j = 0; j < pool->nids; j++)
      if (pool->ids[j].uid == ids[i].uid) ids[i].user = pool->ids[j].user;
  }
  bool same_range = pool->id_first == first && pool->id_count == count;
  free(pool->ids);
  pool->ids = ids;
  pool->nids = n;
  pool->id_first = first;
  pool->id_count = count;
  if (!same_range) { /* the template was keyed for another range: start over */
    kill_all(pool);
    free(pool->key);
    pool->key = NULL;
    sbx_request_free(&pool->tmpl);
    pool->tmpl_ranged = false;
  }
  pool_set_size(pool, size);
  return 0;
}

/* A free id of the pool's list for a new slot, or SBX_OWNER_SELF when the template does not map
 * to the range (its ids are used as they are). *none: the template wants one and none is free. */
static uint32_t free_id(const struct fs_pool *pool, bool *none) {
  *none = false;
  if (!pool->tmpl_ranged) return SBX_OWNER_SELF;
  for (size_t i = 0; i < pool->nids; i++)
    if (pool->ids[i].user == 0) return pool->ids[i].uid;
  *none = true;
  return SBX_OWNER_SELF;
}

static void take_id(struct fs_pool *pool, uint32_t uid, pid_t pid) {
  for (size_t i = 0; i < pool->nids; i++)
    if (pool->ids[i].uid == uid && pool->ids[i].user == 0) {
      pool->ids[i].user = pid;
      return;
    }
}

/* The directory a cgroup path is in ("" for none), as a malloc'd string. */
static char *parent_dir(const char *path) {
  if (path == NULL) return strdup("");
  const char *slash = strrchr(path, '/');
  size_t n = slash != NULL && slash != path ? (size_t)(slash - path) : 1;
  return strndup(path, n);
}

bool pool_take(struct fs_pool *pool, const uint8_t *buf, size_t len, const struct sbx_request *req,
               struct fs_slot *slot) {
  if (req->no_pool) return false;
  /* With the pool off the template is still followed, so that turning it on warms at once. */
  if (pool->size > 0) pool->misses++; /* undone below on a hit */
  size_t key_len;
  char *cg_parent = parent_dir(req->cgroup);
  uint8_t *key =
      cg_parent != NULL ? frozen_key(pool, buf, len, strlen(cg_parent) + 1, &key_len) : NULL;
  if (key == NULL) {
    free(cg_parent);
    return false;
  }
  /* The key ends with the cgroup parent (NUL included): slots in cgroups serve only requests
   * that want one there. */
  memcpy(key + key_len, cg_parent, strlen(cg_parent) + 1);
  key_len += strlen(cg_parent) + 1;
  if (pool->key != NULL && key_len == pool->key_len && memcmp(key, pool->key, key_len) == 0) {
    free(key);
    free(cg_parent);
    if (pool->binds != NULL && !binds_unchanged(pool)) {
      /* A bound host path was replaced (or appeared, or went): the slots show the old one. */
      kill_all(pool);
      if (!record_binds(pool)) pool->broken = true;
      return false;
    }
    for (size_t i = 0; i < pool->n; i++) {
      if (!pool->v[i].ready) continue;
      *slot = pool->v[i];
      remove_at(pool, i);
      pool->misses--;
      pool->hits++;
      return true;
    }
    return false; /* same layout, no slot ready yet: on demand */
  }
  /* Another layout: it becomes the template (the pool warms for the layout used last). */
  kill_all(pool);
  pool->tmpl_ranged = req->has_id_map && in_range(pool, req->outside_uid);
  free(pool->key);
  sbx_request_free(&pool->tmpl);
  pool->key = key;
  pool->key_len = key_len;
  free(pool->cgroup_parent);
  pool->cgroup_parent = cg_parent[0] != '\0' ? cg_parent : NULL;
  if (pool->cgroup_parent == NULL) free(cg_parent);
  pool->broken = false;
  char err[256];
  if (parse_template(key, key_len - (pool->cgroup_parent ? strlen(pool->cgroup_parent) : 0) - 1,
                     &pool->tmpl, err, sizeof err) < 0) {
    snprintf(pool->last_error, sizeof pool->last_error, "template: %.200s", err);
    pool->failures++;
    pool->broken = true;
  } else if (!record_binds(pool)) {
    pool->broken = true;
  }
  if (pool->mounts_fd <= 0) pool->mounts_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  return false;
}

int pool_hand_over(struct fs_pool *pool, struct fs_slot *slot, const uint8_t *buf, size_t len,
                   const int *fds, size_t nfds, int exec_fd) {
  sbx_comms c;
  sbx_comms_init(&c, slot->sock);
  int r = sbx_comms_send_tlv(&c, SBX_FS_SPAWN, buf, len);
  for (size_t i = 0; r == 0 && i < nfds; i++) r = sbx_comms_send_fd(&c, fds[i]);
  if (r == 0) r = sbx_comms_send_fd(&c, exec_fd);
  if (r < 0) {
    kill_slot(pool, slot);
    return r;
  }
  close(slot->sock);
  slot->sock = -1;
  pool->handed_over_ms = monotonic_ms();
  return 0;
}

int pool_refill_delay_ms(const struct fs_pool *pool, size_t running) {
  size_t ready = 0;
  for (size_t i = 0; i < pool->n; i++) ready += pool->v[i].ready ? 1 : 0;
  /* Fewer than half the slots ready: a burst is under way, keep up with it. */
  if (running == 0 || ready == 0 || 2 * ready < pool->size) return 0;
  uint64_t now = monotonic_ms(), until = pool->handed_over_ms + SBX_POOL_REFILL_DEFER_MS;
  return now >= until ? 0 : (int)(until - now);
}

bool pool_wants_refill(const struct fs_pool *pool) {
  bool none;
  return pool->size > 0 && pool->key != NULL && !pool->broken && pool->n < pool->size &&
         (free_id(pool, &none), !none);
}

/* ---- the slot (child side) ---- */

/* Closes every fd but the sorted, distinct `keep` ones. */
static void close_all_but(int *keep, size_t n) {
  for (size_t i = 1; i < n; i++) { /* insertion sort, n is tiny */
    int v = keep[i];
    size_t j = i;
    for (; j > 0 && keep[j - 1] > v; j--) keep[j] = keep[j - 1];
    keep[j] = v;
  }
  unsigned next = 0;
  for (size_t i = 0; i < n; i++) {
    if (keep[i] < 0) continue;
    unsigned k = (unsigned)keep[i];
    if (k > next) syscall(SYS_close_range, next, k - 1, 0);
    next = k + 1;
  }
  syscall(SYS_close_range, next, ~0U, 0);
}

/* The slot: frozen half, ready, wait, then the request half (never returns). The forkserver is
 * single-threaded, so unlike the on-demand child the slot may allocate once its request comes
 * (parse, fd arrays): no lock can be held by a thread that does not exist. */
__attribute__((noreturn)) static void slot_main(struct fs_server *srv, int sock, int release_fd) {
  /* First: nothing of the forkserver's but what the slot needs (other slots' sockets, comms). */
  int keep[] = {0, 1, 2, sock, release_fd, srv->self_pidfd, srv->devnull_fd};
  close_all_but(keep, sizeof keep / sizeof keep[0]);
  struct child_ctx ctx = {
      .req = &srv->pool.tmpl,
      .release_fd = release_fd,
      .forkserver_pidfd = srv->self_pidfd,
      .devnull_fd = srv->devnull_fd,
      .may_setgroups = srv->may_setgroups,
      .setup_fd = sock, /* a failure of the frozen half is reported to the forkserver */
      .listener_fd = -1,
  };
  child_run_frozen(&ctx);
  /* While it waits nobody may read or ptrace it; the request half gets back what it had. */
  int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  (void)prctl(PR_SET_NAME, "sbx-slot", 0, 0, 0);
  sbx_comms c;
  sbx_comms_init(&c, sock);
  if (sbx_comms_send_tlv(&c, SBX_FS_SLOT_READY, NULL, 0) < 0) _exit(127);

  uint32_t tag;
  void *data = NULL;
  uint64_t len = 0;
  int r = sbx_comms_recv_tlv(&c, &tag, &data, &len);
  if (r < 0 || tag != SBX_FS_SPAWN) _exit(r == -EPIPE || r == -ECONNRESET ? 0 : 127); /* recycled */
  static struct sbx_request req;
  if (sbx_request_parse(data, (size_t)len, &req, NULL, 0) < 0) _exit(127);
  free(data);
  int *fds = calloc(req.fd_count + 1, sizeof *fds);
  int *scratch = calloc(req.fd_count + 8, sizeof *scratch);
  if (fds == NULL || scratch == NULL) _exit(127);
  for (size_t i = 0; i <= req.fd_count; i++)
    if (sbx_comms_recv_fd(&c, &fds[i]) < 0) _exit(127);
  struct fs_trace trace = {.n = 0};
  if (req.trace) fs_trace_mark(&trace, SBX_STEP_POOL); /* the slot has its request */
  close(sock);
  if (dumpable >= 0) (void)prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
  int setup_fd = sbx_request_setup_fd(&req, fds);
  struct child_ctx run = {
      .req = &req,
      .fds = fds,
      .scratch = scratch,
      .exec_fd = fds[req.fd_count],
      .forkserver_pidfd = srv->self_pidfd,
      .devnull_fd = srv->devnull_fd,
      .may_setgroups = srv->may_setgroups,
      .setup_fd = setup_fd,
      .listener_fd = -1,
      .trace = trace,
  };
  child_run_request(&run);
}

static void fail(struct fs_pool *pool, const char *what, int err) {
  snprintf(pool->last_error, sizeof pool->last_error, "%s: %s", what, strerror(err));
  pool->failures++;
  pool->broken = true;
}

static void fail_with(struct fs_pool *pool, const struct fs_failure *f) {
  snprintf(pool->last_error, sizeof pool->last_error, "%.200s", f->msg);
  pool->failures++;
  pool->broken = true;
}

void pool_refill_one(struct fs_server *srv) {
  struct fs_pool *pool = &srv->pool;
  if (pool->n == pool->cap) {
    size_t cap = pool->cap ? 2 * pool->cap : 8;
    struct fs_slot *v = realloc(pool->v, cap * sizeof *v);
    if (v == NULL) return;
    pool->v = v;
    pool->cap = cap;
  }
  int s[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0) {
    fail(pool, "socketpair", errno);
    return;
  }
  char *cgroup = NULL;
  int cgroup_fd = -1;
  if (pool->cgroup_parent != NULL) {
    char name[64];
    snprintf(name, sizeof name, "/sbx-%d-p%llu", (int)srv->executor_pid,
             (unsigned long long)++pool->cgroup_serial);
    cgroup = malloc(strlen(pool->cgroup_parent) + strlen(name) + 1);
    if (cgroup != NULL) {
      strcpy(cgroup, pool->cgroup_parent);
      strcat(cgroup, name);
    }
    if (cgroup == NULL || mkdir(cgroup, 0755) < 0 ||
        (cgroup_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
      int e = cgroup == NULL ? ENOMEM : errno;
      if (cgroup != NULL) (void)rmdir(cgroup);
      free(cgroup);
      fail(pool, "slot cgroup", e);
      close(s[0]);
      close(s[1]);
      return;
    }
  }
  bool none;
  uint32_t uid = free_id(pool, &none); /* pool_wants_refill saw one */
  const struct sbx_request *t = &pool->tmpl;
  struct fs_clone_spec spec = {
      .namespaces = t->namespaces,
      .cgroup_fd = cgroup_fd,
      .userns_owner = uid != SBX_OWNER_SELF ? uid : userns_owner_for(t),
      .inside_uid = t->inside_uid,
      .outside_uid = uid != SBX_OWNER_SELF ? uid : t->outside_uid,
      .inside_gid = t->inside_gid,
      .outside_gid = uid != SBX_OWNER_SELF ? uid : t->outside_gid,
      .may_setgroups = srv->may_setgroups,
  };
  struct fs_clone child;
  struct fs_failure f;
  pid_t pid = fs_clone(&spec, &child, &f);
  if (pid == 0) {
    close(s[0]);
    slot_main(srv, s[1], child.release_fd);
  }
  close(s[1]);
  if (pid < 0) {
    fail_with(pool, &f);
    close(s[0]);
    if (cgroup_fd >= 0) close(cgroup_fd);
    if (cgroup != NULL) (void)rmdir(cgroup);
    free(cgroup);
    return;
  }
  struct fs_slot slot = {
      .pid = pid, .pidfd = child.pidfd, .sock = s[0], .ready = false, .cgroup = cgroup, .uid = uid};
  if (uid != SBX_OWNER_SELF) take_id(pool, uid, pid);
  /* The maps, and the cgroup where the legacy clone could not start it there: off the request
   * path, in the slot's own time. */
  int r = fs_clone_release(&spec, &child, &f);
  if (cgroup_fd >= 0) close(cgroup_fd);
  if (r < 0) {
    fail_with(pool, &f);
    kill_slot(pool, &slot);
    return;
  }
  pool->v[pool->n++] = slot;
  pool->prepared++;
}

int pool_mounts_fd(const struct fs_pool *pool) {
  return pool->key != NULL && pool->mounts_fd > 0 ? pool->mounts_fd : -1;
}

void pool_mounts_changed(struct fs_pool *pool) {
  /* The poll that reported the change has re-armed the watch (proc_mounts' event count). A
   * change that touches no mount related to the template's binds keeps the slots. */
  if (pool->key != NULL && pool->mounts_seen != NULL) {
    size_t len = 0;
    char *now = related_mounts(pool, &len);
    bool same =
        now != NULL && len == pool->mounts_seen_len && memcmp(now, pool->mounts_seen, len) == 0;
    free(now);
    if (same) return;
  }
  kill_all(pool);
  if (pool->key != NULL && !record_binds(pool)) pool->broken = true;
}

size_t pool_pollfds(const struct fs_pool *pool, struct pollfd *p, size_t max) {
  size_t n = pool->n < max ? pool->n : max;
  for (size_t i = 0; i < n; i++) p[i] = (struct pollfd){.fd = pool->v[i].sock, .events = POLLIN};
  return n;
}

void pool_handle_events(struct fs_pool *pool, const struct pollfd *p, size_t count) {
  /* Backwards: remove_at moves the last slot into the hole, which was already looked at. */
  for (size_t i = count; i-- > 0;) {
    if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    struct fs_slot *s = &pool->v[i];
    sbx_comms c;
    sbx_comms_init(&c, s->sock);
    sbx_comms_set_max_message_size(&c, 4096);
    uint32_t tag = 0;
    void *data = NULL;
    uint64_t len = 0;
    int r = (p[i].revents & POLLIN) ? sbx_comms_recv_tlv(&c, &tag, &data, &len) : -EPIPE;
    if (r == 0 && tag == SBX_FS_SLOT_READY && !s->ready) {
      s->ready = true;
      free(data);
      continue;
    }
    /* A failure report, or the slot died (killed from outside, or its frozen setup failed). */
    if (r == 0 && tag == SBX_SETUP_FAILED && len >= SBX_SETUP_FAILED_HEADER) {
      snprintf(pool->last_error, sizeof pool->last_error, "slot: %.*s",
               (int)(len - SBX_SETUP_FAILED_HEADER), (const char *)data + SBX_SETUP_FAILED_HEADER);
      pool->broken = true; /* this layout fails in a slot: on demand reports it to each request */
    } else if (!s->ready) {
      snprintf(pool->last_error, sizeof pool->last_error, "slot: died during its setup");
      pool->broken = true;
    }
    if (!s->ready) pool->failures++;
    free(data);
    kill_slot(pool, s);
    remove_at(pool, i);
  }
}

size_t pool_stats(const struct fs_pool *pool, uint8_t *buf) {
  uint32_t ready = 0;
  for (size_t i = 0; i < pool->n; i++) ready += pool->v[i].ready;
  put_u32(buf, pool->size);
  put_u32(buf + 4, ready);
  put_u32(buf + 8, (uint32_t)pool->n - ready);
  put_u32(buf + 12, pool->failures);
  put_u64(buf + 16, pool->hits);
  put_u64(buf + 24, pool->misses);
  put_u64(buf + 32, pool->recycled);
  put_u64(buf + 40, pool->prepared);
  size_t m = strlen(pool->last_error);
  memcpy(buf + 48, pool->last_error, m);
  return 48 + m;
}

void pool_free(struct fs_pool *pool) {
  for (size_t i = 0; i < pool->n; i++) kill_slot(pool, &pool->v[i]);
  free(pool->cgroup_parent);
  free(pool->v);
  free(pool->key);
  free(pool->binds);
  free(pool->mounts_seen);
  free(pool->ids);
  if (pool->mounts_fd > 0) close(pool->mounts_fd);
  sbx_request_free(&pool->tmpl);
  memset(pool, 0, sizeof *pool);
}
