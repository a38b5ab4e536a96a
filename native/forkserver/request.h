/*
 * request.h: one SBX_FS_SPAWN request, parsed and validated from its op list (protocol.h).
 *
 * The parser does no I/O and never trusts a length: it is the forkserver's attack surface towards
 * a buggy executor and is fuzzed on its own. Everything the child needs later is copied into one
 * allocation (NUL-terminated strings, argv/envp arrays, op arrays), so that the child of clone()
 * only reads memory and never allocates.
 */
#ifndef SBX_FORKSERVER_REQUEST_H
#define SBX_FORKSERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/filter.h>

/* Limits of the parser (the kernel would refuse larger values anyway). */
#define SBX_REQ_PATH_MAX           4096      /* a path, including its terminator */
#define SBX_REQ_HOSTNAME_MAX       64        /* HOST_NAME_MAX */
#define SBX_REQ_FILTER_MAX         4096      /* BPF_MAXINSNS */
#define SBX_REQ_FD_TARGET_MAX      (1 << 20) /* fs.nr_open's default: targets are 0 .. 2^20-1 */
#define SBX_REQ_LANDLOCK_PATHS_MAX 1024      /* LANDLOCK PATH rules in one request */

/* A mount-tree op, kept in op order (the child runs them in this order). */
struct sbx_mount_op {
  uint32_t op;     /* SBX_OP_BIND, _TMPFS, _PROC, _DEV, _MKDIR or _SYMLINK */
  uint32_t flags;  /* BIND: SBX_BIND_*; TMPFS, MKDIR: the mode */
  uint64_t size;   /* TMPFS: bytes, 0 = kernel default */
  const char *src; /* BIND: host path; SYMLINK: the link's target; else NULL */
  const char *dst; /* path inside the sandbox (absolute, no "..") */
};

/* A Landlock path rule (SBX_OP_LANDLOCK, kind SBX_LANDLOCK_PATH). */
struct sbx_landlock_path {
  uint64_t access;  /* LANDLOCK_ACCESS_FS_* bits */
  const char *path; /* inside the new root */
};

struct sbx_rlimit_op {
  uint32_t resource;
  uint64_t soft, hard;
};

/* An fd-consuming op, in op order: the i-th received Fd message belongs to fd_ops[i]. */
#define SBX_FD_OP_SETUP_SOCKET (-1)
struct sbx_fd_op {
  int target; /* the fd number in the child, or SBX_FD_OP_SETUP_SOCKET */
};

struct sbx_request {
  /* Set by the parser even when it fails (best effort, from the well-framed ops), so that the
   * error reply can carry the request id and the announced fds can still be drained. */
  uint64_t request_id;
  bool has_request_id;
  size_t fd_count; /* number of Fd messages that follow the request */

  /* Valid only after a successful parse. */
  const char *exec_path;
  char **argv; /* argc entries plus NULL */
  size_t argc;
  char **envp; /* envc entries plus NULL */
  size_t envc;
  const char *cwd; /* "/" when absent */
  uint32_t namespaces;
  const char *hostname; /* NULL when absent */
  bool has_id_map;
  uint32_t inside_uid, outside_uid, inside_gid, outside_gid;
  struct sbx_mount_op *mounts;
  size_t nmounts;
  struct sbx_rlimit_op *rlimits;
  size_t nrlimits;
  struct sock_filter *filter; /* NULL when absent */
  size_t filter_len;          /* in instructions */
  uint32_t seccomp_flags;
  struct sbx_fd_op *fd_ops;                            /* fd_count entries */
  const char *cgroup;                                  /* NULL when absent */
  uint64_t walltime_ms;                                /* 0: none */
  bool has_landlock;                                   /* a LANDLOCK CONFIG op was given */
  uint64_t landlock_fs, landlock_net, landlock_scoped; /* handled fs / net rights, scopes */
  struct sbx_landlock_path *landlock_paths;
  size_t nlandlock_paths;
  bool has_host_ids; /* SBX_OP_HOST_IDS: become host_uid/host_gid (no user namespace) */
  uint32_t host_uid, host_gid;
  bool reaper;              /* SBX_OP_REAPER: a subreaper init kills the tree (no pid namespace) */
  bool no_pool;             /* SBX_OP_NO_POOL: on demand, and the spawn pool is left as it is */
  bool trace;               /* SBX_OP_TRACE: timestamps per step (SBX_SETUP_TRACE) */
  uint32_t user_limit_set;  /* SBX_OP_USER_LIMIT: bit per SBX_USER_LIMIT_* index given */
  uint32_t user_limits[16]; /* its value (index < SBX_USER_LIMIT_MAX) */

  void *arena; /* the single allocation everything above points into */
};

/*
 * Parses the op list in buf[0..len). Returns 0 and fills *out (release it with
 * sbx_request_free), or returns -EINVAL (invalid request: err holds a message naming the op)
 * or -ENOMEM (err says so). On failure out->arena is NULL, and only request_id,
 * has_request_id and fd_count are meaningful. err may be NULL when errlen is 0.
 */
int sbx_request_parse(const uint8_t *buf, size_t len, struct sbx_request *out, char *err,
                      size_t errlen);

/* Releases what sbx_request_parse allocated. Safe on a zeroed or failed request. */
void sbx_request_free(struct sbx_request *req);

/* The setup socket among the request's received fds (fds[i] for fd op i), or -1 without one. */
int sbx_request_setup_fd(const struct sbx_request *req, const int *fds);

/* "BIND", "TMPFS", ... for messages; "unknown" for anything else. */
const char *sbx_op_name(uint32_t op);

#endif
