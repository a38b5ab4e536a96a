/*
 * request.c: parser of the SBX_FS_SPAWN op list (protocol.h). No I/O, no globals.
 *
 * Two passes over the same code: the first validates every op and counts what has to be stored,
 * the second copies into one allocation sized by the first. The second pass fails only on a
 * duplicate FD target (the array it is checked against exists only then).
 */
#define _GNU_SOURCE
#include "request.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "protocol.h"
#include "le.h"

#define HEADER_SIZE 12u
#define FD_OPS_MAX  1024u /* far above any real sandbox; keeps the duplicate check cheap */

/* The namespaces a request may ask for. */
#define ALLOWED_NAMESPACES                                                               \
  ((uint32_t)(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | \
              CLONE_NEWUTS | CLONE_NEWCGROUP))

static const char *const op_names[SBX_OP_MAX] = {
    [SBX_OP_INVALID] = "INVALID",
    [SBX_OP_REQUEST_ID] = "REQUEST_ID",
    [SBX_OP_EXEC_PATH] = "EXEC_PATH",
    [SBX_OP_ARG] = "ARG",
    [SBX_OP_ENV] = "ENV",
    [SBX_OP_CWD] = "CWD",
    [SBX_OP_NAMESPACES] = "NAMESPACES",
    [SBX_OP_HOSTNAME] = "HOSTNAME",
    [SBX_OP_ID_MAP] = "ID_MAP",
    [SBX_OP_BIND] = "BIND",
    [SBX_OP_TMPFS] = "TMPFS",
    [SBX_OP_PROC] = "PROC",
    [SBX_OP_DEV] = "DEV",
    [SBX_OP_MKDIR] = "MKDIR",
    [SBX_OP_SYMLINK] = "SYMLINK",
    [SBX_OP_RLIMIT] = "RLIMIT",
    [SBX_OP_SECCOMP] = "SECCOMP",
    [SBX_OP_SECCOMP_FLAGS] = "SECCOMP_FLAGS",
    [SBX_OP_FD] = "FD",
    [SBX_OP_SETUP_SOCKET] = "SETUP_SOCKET",
    [SBX_OP_CGROUP] = "CGROUP",
    [SBX_OP_LANDLOCK] = "LANDLOCK",
    [SBX_OP_WALLTIME] = "WALLTIME",
    [SBX_OP_HOST_IDS] = "HOST_IDS",
    [SBX_OP_REAPER] = "REAPER",
    [SBX_OP_NO_POOL] = "NO_POOL",
    [SBX_OP_USER_LIMIT] = "USER_LIMIT",
    [SBX_OP_TRACE] = "TRACE",
};

const char *sbx_op_name(uint32_t op) {
  if (op < SBX_OP_MAX && op_names[op] != NULL) return op_names[op];
  return "unknown";
}

/* Ops that may appear at most once. */
static bool op_is_single(uint32_t op) {
  switch (op) {
    case SBX_OP_REQUEST_ID:
    case SBX_OP_EXEC_PATH:
    case SBX_OP_CWD:
    case SBX_OP_NAMESPACES:
    case SBX_OP_HOSTNAME:
    case SBX_OP_ID_MAP:
    case SBX_OP_DEV:
    case SBX_OP_SECCOMP:
    case SBX_OP_SECCOMP_FLAGS:
    case SBX_OP_SETUP_SOCKET:
    case SBX_OP_CGROUP:
    case SBX_OP_WALLTIME:
    case SBX_OP_HOST_IDS:
    case SBX_OP_REAPER:
    case SBX_OP_NO_POOL:
    case SBX_OP_TRACE: return true;
    default: return false;
  }
}

struct parser {
  const uint8_t *buf;
  size_t len;
  struct sbx_request *out;
  char *err;
  size_t errlen;
  bool fill; /* second pass: store into the arena */

  /* where the current op starts (for messages) */
  uint32_t op;
  size_t op_off;

  /* counts from the first pass; cursors in the second */
  size_t nargs, nenv, nmounts, nrlimits, nfd_ops, str_bytes, filter_len;
  char *str_cursor;
  uint64_t seen;            /* bit per single op already seen */
  uint32_t rlimit_seen;     /* bit per RLIMIT_* resource */
  uint32_t user_limit_seen; /* bit per SBX_USER_LIMIT_* index */
  size_t nlandlock_paths;
  bool landlock_config;         /* a LANDLOCK CONFIG op was seen */
  uint64_t landlock_fs;         /* its handled fs rights */
  uint64_t landlock_path_union; /* every right a PATH rule grants */
  uint32_t namespaces;          /* values the cross-op checks need */
  uint32_t seccomp_flags;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *p, const char *fmt, ...) {
  if (p->errlen > 0) {
    int n = snprintf(p->err, p->errlen, "%s (op %u at offset %zu): ", sbx_op_name(p->op),
                     (unsigned)p->op, p->op_off);
    if (n >= 0 && (size_t)n < p->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return -EINVAL;
}

/* A message that concerns the whole request rather than one op. */
__attribute__((format(printf, 2, 3))) static int fail_request(struct parser *p, const char *fmt,
                                                              ...) {
  if (p->errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* Takes a string of n bytes at s: refuses NUL bytes and strings of max bytes or more (max 0 =
 * unbounded). Counts it in the first pass, copies it NUL-terminated in the second. */
static int take_string(struct parser *p, const uint8_t *s, size_t n, size_t max, const char *what,
                       const char **res) {
  if (memchr(s, 0, n) != NULL) return fail(p, "%s contains a NUL byte", what);
  if (max != 0 && n >= max) return fail(p, "%s is %zu bytes long (limit %zu)", what, n, max - 1);
  if (!p->fill) {
    p->str_bytes += n + 1;
    *res = NULL;
    return 0;
  }
  char *d = p->str_cursor;
  memcpy(d, s, n);
  d[n] = '\0';
  p->str_cursor += n + 1;
  *res = d;
  return 0;
}

/* A path on the host (binary, bind source, cgroup): absolute. */
static int take_host_path(struct parser *p, const uint8_t *s, size_t n, const char *what,
                          const char **res) {
  if (n == 0) return fail(p, "%s is empty", what);
  if (s[0] != '/') return fail(p, "%s \"%.*s\" is not absolute", what, (int)(n < 200 ? n : 200), s);
  return take_string(p, s, n, SBX_REQ_PATH_MAX, what, res);
}

/* A path inside the sandbox that the child creates or mounts on: absolute, not "/" itself and
 * without ".." components (no way out of the new root while it is being built). */
static int take_inside_path(struct parser *p, const uint8_t *s, size_t n, const char *what,
                            const char **res) {
  int r = take_host_path(p, s, n, what, res);
  if (r < 0) return r;
  bool has_component = false;
  size_t i = 0;
  while (i < n) {
    while (i < n && s[i] == '/') i++;
    size_t start = i;
    while (i < n && s[i] != '/') i++;
    size_t clen = i - start;
    if (clen > 0) has_component = true;
    if (clen == 2 && s[start] == '.' && s[start + 1] == '.')
      return fail(p, "%s \"%.*s\" contains a \"..\" component", what, (int)(n < 200 ? n : 200), s);
  }
  if (!has_component) return fail(p, "%s must not be \"/\"", what);
  return 0;
}

static int need_len(struct parser *p, size_t have, size_t want) {
  if (have != want) return fail(p, "payload is %zu bytes, expected %zu", have, want);
  return 0;
}

static int need_min(struct parser *p, size_t have, size_t min) {
  if (have < min)
    return fail(p, "payload is %zu bytes, shorter than the %zu-byte minimum", have, min);
  return 0;
}

static int parse_mount_op(struct parser *p, const uint8_t *d, size_t n) {
  struct sbx_mount_op m = {.op = p->op};
  int r;
  switch (p->op) {
    case SBX_OP_BIND: {
      if ((r = need_min(p, n, 8)) < 0) return r;
      m.flags = rd_u32(d);
      uint32_t src_len = rd_u32(d + 4);
      if (m.flags & ~(SBX_BIND_RW | SBX_BIND_DEV | SBX_BIND_OPTIONAL))
        return fail(p, "unknown flags 0x%x", (unsigned)m.flags);
      if (src_len > n - 8)
        return fail(p, "source length %u exceeds the %zu bytes left", (unsigned)src_len, n - 8);
      if ((r = take_host_path(p, d + 8, src_len, "source", &m.src)) < 0) return r;
      if ((r = take_inside_path(p, d + 8 + src_len, n - 8 - src_len, "destination", &m.dst)) < 0)
        return r;
      break;
    }
    case SBX_OP_TMPFS:
      if ((r = need_min(p, n, 12)) < 0) return r;
      m.size = rd_u64(d);
      m.flags = rd_u32(d + 8);
      if (m.flags > 07777) return fail(p, "mode 0%o has bits outside 07777", (unsigned)m.flags);
      if ((r = take_inside_path(p, d + 12, n - 12, "destination", &m.dst)) < 0) return r;
      break;
    case SBX_OP_PROC:
    case SBX_OP_DEV:
      if ((r = take_inside_path(p, d, n, "destination", &m.dst)) < 0) return r;
      break;
    case SBX_OP_MKDIR:
      if ((r = need_min(p, n, 4)) < 0) return r;
      m.flags = rd_u32(d);
      if (m.flags > 07777) return fail(p, "mode 0%o has bits outside 07777", (unsigned)m.flags);
      if ((r = take_inside_path(p, d + 4, n - 4, "path", &m.dst)) < 0) return r;
      break;
    case SBX_OP_SYMLINK: {
      if ((r = need_min(p, n, 4)) < 0) return r;
      uint32_t target_len = rd_u32(d);
      if (target_len > n - 4)
        return fail(p, "target length %u exceeds the %zu bytes left", (unsigned)target_len, n - 4);
      if (target_len == 0) return fail(p, "target is empty");
      if ((r = take_string(p, d + 4, target_len, SBX_REQ_PATH_MAX, "target", &m.src)) < 0) return r;
      if ((r = take_inside_path(p, d + 4 + target_len, n - 4 - target_len, "link path", &m.dst)) <
          0)
        return r;
      break;
    }
    default: return fail(p, "not a mount op"); /* unreachable */
  }
  if (p->fill) p->out->mounts[p->nmounts] = m;
  p->nmounts++;
  return 0;
}

/* Landlock ABI 7's rights: 16 fs bits, 2 net bits, 2 scopes (unknown bits are EINVAL there too). */
#define LANDLOCK_FS_KNOWN    0xffffull
#define LANDLOCK_NET_KNOWN   0x3ull
#define LANDLOCK_SCOPE_KNOWN 0x3ull

/* A path a rule names: absolute, "/" allowed, no ".." (it is only opened, never created). */
static int take_rule_path(struct parser *p, const uint8_t *s, size_t n, const char **res) {
  int r = take_host_path(p, s, n, "path", res);
  if (r < 0) return r;
  size_t i = 0;
  while (i < n) {
    while (i < n && s[i] == '/') i++;
    size_t start = i;
    while (i < n && s[i] != '/') i++;
    if (i - start == 2 && s[start] == '.' && s[start + 1] == '.')
      return fail(p, "path \"%.*s\" contains a \"..\" component", (int)(n < 200 ? n : 200), s);
  }
  return 0;
}

static int parse_landlock(struct parser *p, const uint8_t *d, size_t n) {
  struct sbx_request *o = p->out;
  int r;
  if ((r = need_min(p, n, 4)) < 0) return r;
  uint32_t kind = rd_u32(d);
  if (kind == SBX_LANDLOCK_CONFIG) {
    if ((r = need_len(p, n, 28)) < 0) return r;
    if (p->landlock_config) return fail(p, "CONFIG may appear only once");
    p->landlock_config = true;
    uint64_t fs = rd_u64(d + 4), net = rd_u64(d + 12), scoped = rd_u64(d + 20);
    if (fs & ~LANDLOCK_FS_KNOWN)
      return fail(p, "unknown fs rights 0x%llx", (unsigned long long)(fs & ~LANDLOCK_FS_KNOWN));
    if (net & ~LANDLOCK_NET_KNOWN)
      return fail(p, "unknown net rights 0x%llx", (unsigned long long)(net & ~LANDLOCK_NET_KNOWN));
    if (scoped & ~LANDLOCK_SCOPE_KNOWN)
      return fail(p, "unknown scopes 0x%llx", (unsigned long long)(scoped & ~LANDLOCK_SCOPE_KNOWN));
    p->landlock_fs = fs;
    if (p->fill) {
      o->has_landlock = true;
      o->landlock_fs = fs;
      o->landlock_net = net;
      o->landlock_scoped = scoped;
    }
    return 0;
  }
  if (kind == SBX_LANDLOCK_PATH) {
    if ((r = need_min(p, n, 12)) < 0) return r;
    uint64_t access = rd_u64(d + 4);
    if (access == 0) return fail(p, "PATH rule grants no right");
    if (access & ~LANDLOCK_FS_KNOWN)
      return fail(p, "unknown fs rights 0x%llx", (unsigned long long)(access & ~LANDLOCK_FS_KNOWN));
    if (p->nlandlock_paths >= SBX_REQ_LANDLOCK_PATHS_MAX)
      return fail(p, "more than %d PATH rules", SBX_REQ_LANDLOCK_PATHS_MAX);
    const char *s;
    if ((r = take_rule_path(p, d + 12, n - 12, &s)) < 0) return r;
    p->landlock_path_union |= access;
    if (p->fill)
      o->landlock_paths[p->nlandlock_paths] =
          (struct sbx_landlock_path){.access = access, .path = s};
    p->nlandlock_paths++;
    return 0;
  }
  return fail(p, "unknown kind %u", (unsigned)kind);
}

static int parse_op(struct parser *p, const uint8_t *d, size_t n) {
  struct sbx_request *o = p->out;
  const char *s;
  int r;

  if (p->op == SBX_OP_INVALID || p->op >= SBX_OP_MAX) return fail(p, "unknown op");
  if (op_is_single(p->op)) {
    if (p->seen & ((uint64_t)1 << p->op)) return fail(p, "may appear only once");
    p->seen |= (uint64_t)1 << p->op;
  }

  switch (p->op) {
    case SBX_OP_REQUEST_ID:
      if ((r = need_len(p, n, 8)) < 0) return r;
      if (p->fill) o->request_id = rd_u64(d);
      return 0;
    case SBX_OP_EXEC_PATH:
      if ((r = take_host_path(p, d, n, "path", &s)) < 0) return r;
      if (p->fill) o->exec_path = s;
      return 0;
    case SBX_OP_ARG:
      if ((r = take_string(p, d, n, 0, "argument", &s)) < 0) return r;
      if (p->fill) o->argv[p->nargs] = (char *)s;
      p->nargs++;
      return 0;
    case SBX_OP_ENV: {
      const uint8_t *eq = memchr(d, '=', n);
      if (eq == NULL || eq == d)
        return fail(p, "\"%.*s\" is not KEY=VALUE", (int)(n < 200 ? n : 200), d);
      if ((r = take_string(p, d, n, 0, "variable", &s)) < 0) return r;
      if (p->fill) o->envp[p->nenv] = (char *)s;
      p->nenv++;
      return 0;
    }
    case SBX_OP_CWD:
      if ((r = take_host_path(p, d, n, "directory", &s)) < 0) return r;
      if (p->fill) o->cwd = s;
      return 0;
    case SBX_OP_NAMESPACES: {
      if ((r = need_len(p, n, 4)) < 0) return r;
      uint32_t ns = rd_u32(d);
      if (ns & ~ALLOWED_NAMESPACES)
        return fail(p, "flags 0x%x are not CLONE_NEW* namespaces this forkserver creates",
                    (unsigned)(ns & ~ALLOWED_NAMESPACES));
      p->namespaces = ns;
      if (p->fill) o->namespaces = ns;
      return 0;
    }
    case SBX_OP_HOSTNAME:
      if (n == 0) return fail(p, "hostname is empty");
      if ((r = take_string(p, d, n, SBX_REQ_HOSTNAME_MAX + 1, "hostname", &s)) < 0) return r;
      if (p->fill) o->hostname = s;
      return 0;
    case SBX_OP_ID_MAP:
      if ((r = need_len(p, n, 16)) < 0) return r;
      for (int i = 0; i < 4; i++)
        if (rd_u32(d + 4 * i) == UINT32_MAX) return fail(p, "id 4294967295 is not a valid id");
      if (p->fill) {
        o->has_id_map = true;
        o->inside_uid = rd_u32(d);
        o->outside_uid = rd_u32(d + 4);
        o->inside_gid = rd_u32(d + 8);
        o->outside_gid = rd_u32(d + 12);
      }
      return 0;
    case SBX_OP_BIND:
    case SBX_OP_TMPFS:
    case SBX_OP_PROC:
    case SBX_OP_DEV:
    case SBX_OP_MKDIR:
    case SBX_OP_SYMLINK: return parse_mount_op(p, d, n);
    case SBX_OP_RLIMIT: {
      if ((r = need_len(p, n, 20)) < 0) return r;
      uint32_t res = rd_u32(d);
      uint64_t soft = rd_u64(d + 4), hard = rd_u64(d + 12);
      if (res >= RLIMIT_NLIMITS) return fail(p, "resource %u is not an RLIMIT_*", (unsigned)res);
      if (p->rlimit_seen & (1u << res)) return fail(p, "resource %u is given twice", (unsigned)res);
      p->rlimit_seen |= 1u << res;
      if (soft > hard)
        return fail(p, "soft limit %llu is above the hard limit %llu", (unsigned long long)soft,
                    (unsigned long long)hard);
      if (p->fill) o->rlimits[p->nrlimits] = (struct sbx_rlimit_op){res, soft, hard};
      p->nrlimits++;
      return 0;
    }
    case SBX_OP_SECCOMP:
      if (n == 0 || n % 8 != 0)
        return fail(p, "payload is %zu bytes, not a non-empty multiple of 8 (struct sock_filter)",
                    n);
      if (n / 8 > SBX_REQ_FILTER_MAX)
        return fail(p, "%zu instructions exceed BPF_MAXINSNS (%d)", n / 8, SBX_REQ_FILTER_MAX);
      p->filter_len = n / 8;
      if (p->fill) {
        for (size_t i = 0; i < n / 8; i++) {
          const uint8_t *q = d + 8 * i;
          o->filter[i].code = (uint16_t)(q[0] | q[1] << 8);
          o->filter[i].jt = q[2];
          o->filter[i].jf = q[3];
          o->filter[i].k = rd_u32(q + 4);
        }
        o->filter_len = n / 8;
      }
      return 0;
    case SBX_OP_SECCOMP_FLAGS: {
      if ((r = need_len(p, n, 4)) < 0) return r;
      uint32_t f = rd_u32(d);
      if (f & ~SBX_SECCOMP_LISTENER) return fail(p, "unknown flags 0x%x", (unsigned)f);
      p->seccomp_flags = f;
      if (p->fill) o->seccomp_flags = f;
      return 0;
    }
    case SBX_OP_FD: {
      if ((r = need_len(p, n, 4)) < 0) return r;
      uint32_t t = rd_u32(d);
      if (t >= SBX_REQ_FD_TARGET_MAX)
        return fail(p, "target fd %u is above the limit %d", (unsigned)t,
                    SBX_REQ_FD_TARGET_MAX - 1);
      if (t == SBX_SETUP_FD_TARGET || t == SBX_EXEC_FD_TARGET)
        return fail(p, "target fd %u is reserved for the setup socket and the exec fd",
                    (unsigned)t);
      if (p->nfd_ops >= FD_OPS_MAX) return fail(p, "more than %u fd ops", FD_OPS_MAX);
      if (p->fill) { /* duplicates: only the second pass has the array to look in */
        for (size_t i = 0; i < p->nfd_ops; i++)
          if (o->fd_ops[i].target == (int)t)
            return fail(p, "target fd %u is given twice", (unsigned)t);
        o->fd_ops[p->nfd_ops].target = (int)t;
      }
      p->nfd_ops++;
      return 0;
    }
    case SBX_OP_SETUP_SOCKET:
      if ((r = need_len(p, n, 0)) < 0) return r;
      if (p->fill) o->fd_ops[p->nfd_ops].target = SBX_FD_OP_SETUP_SOCKET;
      p->nfd_ops++;
      return 0;
    case SBX_OP_CGROUP:
      if ((r = take_host_path(p, d, n, "cgroup directory", &s)) < 0) return r;
      if (p->fill) o->cgroup = s;
      return 0;
    case SBX_OP_WALLTIME:
      if ((r = need_len(p, n, 8)) < 0) return r;
      if (p->fill) o->walltime_ms = rd_u64(d);
      return 0;
    case SBX_OP_LANDLOCK: return parse_landlock(p, d, n);
    case SBX_OP_HOST_IDS:
      if ((r = need_len(p, n, 8)) < 0) return r;
      for (int i = 0; i < 2; i++)
        if (rd_u32(d + 4 * i) == UINT32_MAX) return fail(p, "id 4294967295 is not a valid id");
      if (p->fill) {
        o->has_host_ids = true;
        o->host_uid = rd_u32(d);
        o->host_gid = rd_u32(d + 4);
      }
      return 0;
    case SBX_OP_REAPER:
      if ((r = need_len(p, n, 0)) < 0) return r;
      if (p->fill) o->reaper = true;
      return 0;
    case SBX_OP_NO_POOL:
      if ((r = need_len(p, n, 0)) < 0) return r;
      if (p->fill) o->no_pool = true;
      return 0;
    case SBX_OP_TRACE:
      if ((r = need_len(p, n, 0)) < 0) return r;
      if (p->fill) o->trace = true;
      return 0;
    case SBX_OP_USER_LIMIT: {
      if ((r = need_len(p, n, 12)) < 0) return r;
      uint32_t i = rd_u32(d);
      if (i >= SBX_USER_LIMIT_MAX)
        return fail(p, "index %u is not an SBX_USER_LIMIT_*", (unsigned)i);
      if (p->user_limit_seen & (1u << i)) return fail(p, "index %u is given twice", (unsigned)i);
      p->user_limit_seen |= 1u << i;
      uint64_t v = rd_u64(d + 4);
      if (v > INT32_MAX) return fail(p, "value %llu is above INT_MAX", (unsigned long long)v);
      if (p->fill) {
        o->user_limit_set |= 1u << i;
        o->user_limits[i] = (uint32_t)v;
      }
      return 0;
    }
    default: return fail(p, "unknown op");
  }
}

/* One pass over all ops. */
static int walk(struct parser *p) {
  size_t off = 0;
  p->nargs = p->nenv = p->nmounts = p->nrlimits = p->nfd_ops = p->nlandlock_paths = 0;
  p->landlock_config = false;
  p->landlock_path_union = 0;
  p->seen = 0;
  p->rlimit_seen = 0;
  p->user_limit_seen = 0;
  while (off < p->len) {
    p->op_off = off;
    p->op = SBX_OP_INVALID;
    if (p->len - off < HEADER_SIZE)
      return fail_request(p, "truncated op header at offset %zu (%zu bytes left, 12 needed)", off,
                          p->len - off);
    p->op = rd_u32(p->buf + off);
    uint64_t n = rd_u64(p->buf + off + 4);
    if (n > p->len - off - HEADER_SIZE)
      return fail(p, "length %llu exceeds the %zu bytes left", (unsigned long long)n,
                  p->len - off - HEADER_SIZE);
    int r = parse_op(p, p->buf + off + HEADER_SIZE, (size_t)n);
    if (r < 0) return r;
    off += HEADER_SIZE + (size_t)n;
  }
  return 0;
}

/* Checks that concern several ops; runs after the first pass. */
static int check_request(struct parser *p) {
#define SEEN(op) ((p->seen & ((uint64_t)1 << (op))) != 0)
  if (!SEEN(SBX_OP_REQUEST_ID)) return fail_request(p, "missing required op REQUEST_ID");
  if (!SEEN(SBX_OP_EXEC_PATH)) return fail_request(p, "missing required op EXEC_PATH");
  if (p->nargs == 0) return fail_request(p, "missing required op ARG (argv[0])");
  if (SEEN(SBX_OP_HOSTNAME) && !(p->namespaces & CLONE_NEWUTS))
    return fail_request(p, "op HOSTNAME needs CLONE_NEWUTS in op NAMESPACES");
  if (SEEN(SBX_OP_ID_MAP) && !(p->namespaces & CLONE_NEWUSER))
    return fail_request(p, "op ID_MAP needs CLONE_NEWUSER in op NAMESPACES");
  if (!SEEN(SBX_OP_ID_MAP) && (p->namespaces & CLONE_NEWUSER))
    return fail_request(p, "CLONE_NEWUSER in op NAMESPACES needs op ID_MAP");
  if (p->nmounts > 0 && !(p->namespaces & CLONE_NEWNS))
    return fail_request(p,
                        "mount ops (BIND, TMPFS, PROC, DEV, MKDIR, SYMLINK) need CLONE_NEWNS "
                        "in op NAMESPACES");
  if (SEEN(SBX_OP_SECCOMP_FLAGS) && !SEEN(SBX_OP_SECCOMP))
    return fail_request(p, "op SECCOMP_FLAGS without op SECCOMP");
  if ((p->seccomp_flags & SBX_SECCOMP_LISTENER) && !SEEN(SBX_OP_SETUP_SOCKET))
    return fail_request(p,
                        "SBX_SECCOMP_LISTENER in op SECCOMP_FLAGS needs op SETUP_SOCKET (the "
                        "listener fd number travels on it)");
  if (SEEN(SBX_OP_HOST_IDS) && (p->namespaces & CLONE_NEWUSER))
    return fail_request(
        p, "op HOST_IDS cannot be combined with CLONE_NEWUSER (op ID_MAP sets the ids there)");
  if (p->user_limit_seen != 0 && !(p->namespaces & CLONE_NEWUSER))
    return fail_request(p,
                        "op USER_LIMIT needs CLONE_NEWUSER in op NAMESPACES (the limits are the "
                        "sandbox's user namespace's)");
  if (SEEN(SBX_OP_REAPER) && (p->namespaces & CLONE_NEWPID))
    return fail_request(p,
                        "op REAPER cannot be combined with CLONE_NEWPID (the namespace's init "
                        "kills the tree there)");
  if (p->nlandlock_paths > 0 && !p->landlock_config)
    return fail_request(p, "LANDLOCK PATH rules without a LANDLOCK CONFIG");
  if (p->landlock_path_union & ~p->landlock_fs)
    return fail_request(p, "LANDLOCK PATH rules grant fs rights 0x%llx that CONFIG does not handle",
                        (unsigned long long)(p->landlock_path_union & ~p->landlock_fs));
  return 0;
#undef SEEN
}

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Framing-only pass: request id and fd count, for the error reply of a request that fails. */
static void scan_framing(const uint8_t *buf, size_t len, struct sbx_request *out) {
  size_t off = 0;
  while (len - off >= HEADER_SIZE) {
    uint32_t op = rd_u32(buf + off);
    uint64_t n = rd_u64(buf + off + 4);
    if (n > len - off - HEADER_SIZE) break;
    if (op == SBX_OP_FD || op == SBX_OP_SETUP_SOCKET) out->fd_count++;
    if (op == SBX_OP_REQUEST_ID && n == 8 && !out->has_request_id) {
      out->request_id = rd_u64(buf + off + HEADER_SIZE);
      out->has_request_id = true;
    }
    off += HEADER_SIZE + (size_t)n;
  }
}

int sbx_request_parse(const uint8_t *buf, size_t len, struct sbx_request *out, char *err,
                      size_t errlen) {
  if (errlen > 0) err[0] = '\0';
  memset(out, 0, sizeof *out);
  if (buf == NULL && len > 0) {
    if (errlen > 0) snprintf(err, errlen, "no request buffer");
    return -EINVAL;
  }
  if (buf != NULL) scan_framing(buf, len, out);

  struct parser p = {.buf = buf, .len = len, .out = out, .err = err, .errlen = errlen};
  int r = walk(&p);
  if (r < 0) return r;

  if ((r = check_request(&p)) < 0) return r;

  /* Size the arena: pointer arrays, op arrays, filter, then the strings. */
  size_t off_argv = 0;
  size_t off_envp = off_argv + align8((p.nargs + 1) * sizeof(char *));
  size_t off_mounts = off_envp + align8((p.nenv + 1) * sizeof(char *));
  size_t off_rlimits = off_mounts + align8(p.nmounts * sizeof(struct sbx_mount_op));
  size_t off_filter = off_rlimits + align8(p.nrlimits * sizeof(struct sbx_rlimit_op));
  size_t off_fd_ops = off_filter + align8(p.filter_len * sizeof(struct sock_filter));
  size_t off_landlock = off_fd_ops + align8(p.nfd_ops * sizeof(struct sbx_fd_op));
  size_t off_strings = off_landlock + align8(p.nlandlock_paths * sizeof(struct sbx_landlock_path));
  size_t total = off_strings + p.str_bytes;

  char *arena = calloc(1, total > 0 ? total : 1);
  if (arena == NULL) {
    if (errlen > 0) snprintf(err, errlen, "out of memory for a %zu-byte request", total);
    return -ENOMEM;
  }
  uint64_t request_id = out->request_id;
  size_t fd_count = out->fd_count;
  out->arena = arena;
  out->argv = (char **)(void *)(arena + off_argv);
  out->envp = (char **)(void *)(arena + off_envp);
  out->mounts = (struct sbx_mount_op *)(void *)(arena + off_mounts);
  out->rlimits = (struct sbx_rlimit_op *)(void *)(arena + off_rlimits);
  out->filter = p.filter_len > 0 ? (struct sock_filter *)(void *)(arena + off_filter) : NULL;
  out->fd_ops = (struct sbx_fd_op *)(void *)(arena + off_fd_ops);
  out->landlock_paths = (struct sbx_landlock_path *)(void *)(arena + off_landlock);
  p.str_cursor = arena + off_strings;
  p.fill = true;
  r = walk(&p);
  if (r < 0) {
    /* a duplicate FD target */
    sbx_request_free(out);
    out->request_id = request_id;
    out->has_request_id = true;
    out->fd_count = fd_count;
    return r;
  }
  out->argc = p.nargs;
  out->argv[p.nargs] = NULL;
  out->envc = p.nenv;
  out->envp[p.nenv] = NULL;
  out->nmounts = p.nmounts;
  out->nrlimits = p.nrlimits;
  out->fd_count = p.nfd_ops;
  out->nlandlock_paths = p.nlandlock_paths;
  if (out->cwd == NULL) out->cwd = "/";
  return 0;
}

void sbx_request_free(struct sbx_request *req) {
  if (req == NULL) return;
  free(req->arena);
  memset(req, 0, sizeof *req);
}

int sbx_request_setup_fd(const struct sbx_request *req, const int *fds) {
  for (size_t i = 0; i < req->fd_count; i++)
    if (req->fd_ops[i].target == SBX_FD_OP_SETUP_SOCKET) return fds[i];
  return -1;
}
