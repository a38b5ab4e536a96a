/*
 * pool.h: the spawn pool. Slots are children cloned ahead of demand into the namespaces of a
 * template layout, with the frozen half of the setup done (child_run_frozen: ids, mount tree,
 * pivot_root, hostname, lo), each blocked on its own socket. A SPAWN request whose frozen ops are
 * byte-for-byte the template's is handed to a ready slot (the op list and its fds travel on the
 * slot's socket; the slot runs child_run_request and execs); any other request is served on
 * demand and becomes the new template (the slots of the old one are killed).
 *
 * The key is the request's frozen ops (NAMESPACES, HOSTNAME, ID_MAP, HOST_IDS and the mount
 * ops, in op order) compared exactly: no hash, so no collision can hand a slot to another layout.
 * A slot's binds are what the host paths were when it was prepared. So a slot is used only while
 * every BIND source still is the same inode (or still absent), checked with stat() at each
 * take, and while the mounts at, above or under those sources are unchanged (a poll on
 * /proc/self/mountinfo, then a look at the related lines, mount_watch.h): otherwise every slot
 * is recycled and the request is served on demand. Unrelated mounts keep the slots.
 *
 * A request's CGROUP: only the directory it is in is part of the key. Moving a process between
 * cgroups (cgroup.procs) waits for an RCU grace period (milliseconds), so a slot is cloned
 * straight into a fresh cgroup of its own next to the request's (CLONE_INTO_CGROUP, named
 * sbx-<executor pid>-p<n> like the executor's own), and SPAWNED tells the executor to use that
 * one instead of the empty one it made ("cgroup=<path>" in the reply's message).
 *
 * Host ids (a root executor leases one uid per sandbox, executor sandbox-ids.ts): the executor
 * gives the pool a range and a list of leased ids with SBX_FS_POOL. An ID_MAP whose outside uid is
 * in that range is keyed without its outside ids, and each slot is cloned with an id of the list
 * of its own (its user namespace mapped to, and owned by, that uid). A slot's id stays taken until
 * the sandbox it became is reaped; SPAWNED says "uid=<id>" so that the executor knows which uid the
 * sandbox has (and drops the one it leased for the request). Without a free id no slot is cloned.
 */
#ifndef SBX_FORKSERVER_POOL_H
#define SBX_FORKSERVER_POOL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "request.h"

struct fs_server;

struct fs_slot {
  pid_t pid;
  int pidfd;    /* owned until the slot is handed out */
  int sock;     /* forkserver's end of the slot's socket */
  bool ready;   /* the slot said SBX_FS_SLOT_READY */
  char *cgroup; /* its own cgroup (created with it, removed when it is killed unused), or NULL */
  uint32_t uid; /* its host uid when it took one from the pool's id list, else SBX_OWNER_SELF */
};

/* An id of the pool's list and who has it: 0 free, else the pid of the slot (or the sandbox it
 * became, until reaped). */
struct fs_pool_id {
  uint32_t uid;
  pid_t user;
};

/* What a BIND source was when the template was adopted (stat, symlinks followed). */
struct fs_bind_id {
  uint64_t dev, ino;
  bool present;
};

struct fs_pool {
  uint32_t size;            /* slots wanted; 0 = no pool */
  struct fs_bind_id *binds; /* one per BIND op of the template, in op order */
  size_t nbinds;
  int mounts_fd;     /* /proc/self/mountinfo: POLLPRI when the host's mount table changes */
  char *mounts_seen; /* the mountinfo lines related to the BIND sources (mount_watch.h) */
  size_t mounts_seen_len;
  uint8_t *key; /* frozen ops of the template, then "cgroup parent" (below); NULL: none yet */
  char *cgroup_parent;    /* the template's cgroups were made in this directory; NULL: none */
  uint64_t cgroup_serial; /* names the slots' cgroups */
  size_t key_len;
  struct sbx_request tmpl; /* the key parsed (with placeholders for the required ops) */
  bool broken;             /* a slot of this template failed: no refill until it changes */
  uint64_t handed_over_ms; /* CLOCK_MONOTONIC ms of the last hand-over (pool_refill_delay_ms) */
  struct fs_slot *v;
  size_t n, cap;
  uint32_t id_first, id_count; /* the executor's sandbox id range (0 count: none) */
  struct fs_pool_id *ids;      /* leased ids for slots (SBX_FS_POOL) */
  bool tmpl_ranged;            /* the template's ID_MAP maps to the range: its outside ids in tmpl
                                  are 0 (keyed without them), each slot takes one of ids instead */
  size_t nids;
  uint64_t hits, misses, recycled, prepared;
  uint32_t failures;
  char last_error[256];
};

/* SBX_FS_POOL: sets the size (extra slots are killed; 0 kills all). */
void pool_set_size(struct fs_pool *pool, uint32_t size);
/* SBX_FS_POOL with ids: u32 size | u32 id_first | u32 id_count | u32 uid[] (gid = uid): the whole
 * list, which only grows (the executor never drops a leased id while the forkserver lives), so an
 * id a running sandbox has stays taken. Then as pool_set_size. 0, or -EINVAL / -ENOMEM. */
int pool_configure(struct fs_pool *pool, const uint8_t *msg, size_t len);
/* A child of the forkserver was reaped: its pool id (if any) is free again. */
void pool_reaped(struct fs_pool *pool, pid_t pid);

/* For a parsed SPAWN request (buf/len its op list): when a ready slot matches, moves it to *slot,
 * counts a hit and returns true. Otherwise counts a miss (pool on) and, for a poolable request
 * of another layout, makes it the template (killing the old slots). */
bool pool_take(struct fs_pool *pool, const uint8_t *buf, size_t len, const struct sbx_request *req,
               struct fs_slot *slot);

/* Hands the request to a slot taken with pool_take: the op list, the request's fds in order,
 * then exec_fd. Closes the slot's socket. 0, or -errno (the slot is then killed and reaped). */
int pool_hand_over(struct fs_pool *pool, struct fs_slot *slot, const uint8_t *buf, size_t len,
                   const int *fds, size_t nfds, int exec_fd);

/* True when a slot should be prepared now (pool on, template known, not full, not broken). */
bool pool_wants_refill(const struct fs_pool *pool);
/* A refill clones and sets up a whole slot, which competes for the CPU with a sandbox that has
 * just started: while `running` sandboxes run and at least half the slots (and one) are still
 * ready, the refill waits until SBX_POOL_REFILL_DEFER_MS after the last hand-over. The ms left to
 * wait; 0: refill now. */
#define SBX_POOL_REFILL_DEFER_MS 25
int pool_refill_delay_ms(const struct fs_pool *pool, size_t running);
/* Clones and releases one slot (the slot builds its mount tree on its own). */
void pool_refill_one(struct fs_server *srv);

/* The mount-table watch for main.c's poll (-1 before the first template); on POLLPRI call
 * pool_mounts_changed. */
int pool_mounts_fd(const struct fs_pool *pool);
void pool_mounts_changed(struct fs_pool *pool);

/* Poll entries for the slots (one per slot, in pool->v order); returns how many were written
 * (at most max). */
size_t pool_pollfds(const struct fs_pool *pool, struct pollfd *p, size_t max);
/* Handles the poll results of pool_pollfds (count entries): readiness, and slots that died. */
void pool_handle_events(struct fs_pool *pool, const struct pollfd *p, size_t count);

/* SBX_FS_POOL_STATS reply payload into buf (at least 48 + 256 bytes); returns its length. */
size_t pool_stats(const struct fs_pool *pool, uint8_t *buf);

/* Kills and reaps every slot and frees the pool. */
void pool_free(struct fs_pool *pool);

#endif
