/*
 * fs_request_test.c: sbx_request_parse on its own: a full valid request, one refusal per rule
 * (the message must name the op), and a mutation loop that must never crash or leak (run it
 * with -DSBX_SANITIZE=ON to make that strict).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "oplist.h"
#include "protocol.h"
#include "request.h"

static int failures;

#define EXPECT(cond, ...)                                        \
  do {                                                           \
    if (!(cond)) {                                               \
      failures++;                                                \
      fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                              \
      fputc('\n', stderr);                                       \
    }                                                            \
  } while (0)

static void base(struct oplist *o) {
  ol_init(o);
  ol_u64(o, SBX_OP_REQUEST_ID, 77);
  ol_str(o, SBX_OP_EXEC_PATH, "/usr/bin/true");
  ol_str(o, SBX_OP_ARG, "true");
}

static void full(struct oplist *o) {
  base(o);
  ol_str(o, SBX_OP_ARG, "");
  ol_str(o, SBX_OP_ARG, "x y");
  ol_str(o, SBX_OP_ENV, "A=1");
  ol_str(o, SBX_OP_ENV, "B=");
  ol_str(o, SBX_OP_CWD, "/tmp");
  ol_u32(o, SBX_OP_NAMESPACES, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS);
  ol_str(o, SBX_OP_HOSTNAME, "box");
  ol_id_map(o, 1000, 65534, 1001, 65533);
  ol_bind(o, SBX_BIND_RW | SBX_BIND_OPTIONAL, "/usr", "/usr");
  ol_tmpfs(o, 4096, 01777, "/tmp");
  ol_str(o, SBX_OP_PROC, "/proc");
  ol_str(o, SBX_OP_DEV, "/dev");
  ol_mkdir(o, 0700, "/a/b");
  ol_symlink(o, "usr/bin", "/bin");
  ol_rlimit(o, RLIMIT_NOFILE, 64, 128);
  ol_rlimit(o, RLIMIT_CORE, 0, 0);
  ol_u32(o, SBX_OP_FD, 1);
  ol_raw(o, SBX_OP_SETUP_SOCKET, NULL, 0);
  ol_u32(o, SBX_OP_FD, 1023);
  uint8_t insn[16] = {0x06, 0, 0, 0, 0, 0, 0xff, 0x7f, 0x06, 0, 0, 0, 0, 0, 0, 0};
  ol_raw(o, SBX_OP_SECCOMP, insn, sizeof insn);
  ol_u32(o, SBX_OP_SECCOMP_FLAGS, SBX_SECCOMP_LISTENER);
  ol_str(o, SBX_OP_CGROUP, "/sys/fs/cgroup/x");
}

static void test_full_request(void) {
  struct oplist o;
  full(&o);
  struct sbx_request r;
  char err[256];
  int rc = sbx_request_parse(o.buf, o.len, &r, err, sizeof err);
  EXPECT(rc == 0, "rc %d: %s", rc, err);
  if (rc == 0) {
    EXPECT(r.request_id == 77, "id");
    EXPECT(strcmp(r.exec_path, "/usr/bin/true") == 0, "path");
    EXPECT(r.argc == 3 && strcmp(r.argv[1], "") == 0 && strcmp(r.argv[2], "x y") == 0 &&
               r.argv[3] == NULL,
           "argv");
    EXPECT(r.envc == 2 && strcmp(r.envp[1], "B=") == 0 && r.envp[2] == NULL, "envp");
    EXPECT(strcmp(r.cwd, "/tmp") == 0 && strcmp(r.hostname, "box") == 0, "cwd/hostname");
    EXPECT(r.has_id_map && r.inside_uid == 1000 && r.outside_uid == 65534 && r.inside_gid == 1001 &&
               r.outside_gid == 65533,
           "id map");
    EXPECT(r.nmounts == 6, "nmounts %zu", r.nmounts);
    EXPECT(r.mounts[0].op == SBX_OP_BIND && strcmp(r.mounts[0].src, "/usr") == 0 &&
               r.mounts[0].flags == (SBX_BIND_RW | SBX_BIND_OPTIONAL),
           "bind");
    EXPECT(r.mounts[1].op == SBX_OP_TMPFS && r.mounts[1].size == 4096 && r.mounts[1].flags == 01777,
           "tmpfs");
    EXPECT(r.mounts[5].op == SBX_OP_SYMLINK && strcmp(r.mounts[5].src, "usr/bin") == 0 &&
               strcmp(r.mounts[5].dst, "/bin") == 0,
           "symlink");
    EXPECT(r.nrlimits == 2 && r.rlimits[0].resource == RLIMIT_NOFILE && r.rlimits[0].hard == 128,
           "rlimits");
    EXPECT(r.fd_count == 3 && r.fd_ops[0].target == 1 &&
               r.fd_ops[1].target == SBX_FD_OP_SETUP_SOCKET && r.fd_ops[2].target == 1023,
           "fd ops");
    EXPECT(r.filter_len == 2 && r.filter[0].code == 6 && r.filter[0].k == 0x7fff0000, "filter");
    EXPECT(r.seccomp_flags == SBX_SECCOMP_LISTENER && strcmp(r.cgroup, "/sys/fs/cgroup/x") == 0,
           "flags/cgroup");
  }
  sbx_request_free(&r);
  ol_free(&o);

  /* defaults */
  base(&o);
  rc = sbx_request_parse(o.buf, o.len, &r, err, sizeof err);
  EXPECT(rc == 0 && strcmp(r.cwd, "/") == 0 && r.namespaces == 0 && r.filter == NULL &&
             r.envp[0] == NULL,
         "defaults: %d %s", rc, err);
  sbx_request_free(&r);
  ol_free(&o);
}

/* Appends op bytes after the base request and expects -EINVAL with `needle` in the message. */
typedef void (*add_fn)(struct oplist *);

static void refuse(const char *what, add_fn add, bool with_base, const char *needle) {
  struct oplist o;
  if (with_base)
    base(&o);
  else
    ol_init(&o);
  add(&o);
  struct sbx_request r;
  char err[512];
  int rc = sbx_request_parse(o.buf, o.len, &r, err, sizeof err);
  EXPECT(rc == -EINVAL, "%s: rc %d", what, rc);
  EXPECT(strstr(err, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, needle);
  EXPECT(r.arena == NULL, "%s: arena kept", what);
  sbx_request_free(&r);
  ol_free(&o);
}

static void a_unknown(struct oplist *o) { ol_raw(o, 99, "x", 1); }
static void a_zero_op(struct oplist *o) { ol_raw(o, 0, NULL, 0); }
static void a_dup_path(struct oplist *o) { ol_str(o, SBX_OP_EXEC_PATH, "/bin/x"); }
static void a_nul(struct oplist *o) { ol_raw(o, SBX_OP_ARG, "a\0b", 3); }
static void a_short_ns(struct oplist *o) { ol_raw(o, SBX_OP_NAMESPACES, "\1\0", 2); }
static void a_long_ns(struct oplist *o) { ol_raw(o, SBX_OP_NAMESPACES, "\0\0\0\0\0", 5); }
static void a_bad_ns(struct oplist *o) { ol_u32(o, SBX_OP_NAMESPACES, 0x100 /* CLONE_VM */); }
static void a_host_no_uts(struct oplist *o) { ol_str(o, SBX_OP_HOSTNAME, "h"); }
static void a_userns_no_map(struct oplist *o) { ol_u32(o, SBX_OP_NAMESPACES, CLONE_NEWUSER); }
static void a_mount_no_ns(struct oplist *o) { ol_str(o, SBX_OP_PROC, "/proc"); }
static void a_dotdot(struct oplist *o) {
  ol_u32(o, SBX_OP_NAMESPACES, CLONE_NEWNS);
  ol_tmpfs(o, 0, 0755, "/tmp/../../etc");
}
static void a_root_dst(struct oplist *o) {
  ol_u32(o, SBX_OP_NAMESPACES, CLONE_NEWNS);
  ol_bind(o, 0, "/usr", "//");
}
static void a_relative_src(struct oplist *o) {
  ol_u32(o, SBX_OP_NAMESPACES, CLONE_NEWNS);
  ol_bind(o, 0, "usr", "/usr");
}
static void a_bind_srclen(struct oplist *o) {
  uint8_t p[12] = {0, 0, 0, 0, 200, 0, 0, 0, '/', 'a', '/', 'b'};
  ol_raw(o, SBX_OP_BIND, p, sizeof p);
}
static void a_bind_flags(struct oplist *o) {
  ol_u32(o, SBX_OP_NAMESPACES, CLONE_NEWNS);
  ol_bind(o, 0x80, "/usr", "/usr");
}
static void a_symlink_empty(struct oplist *o) { ol_symlink(o, "", "/x"); }
static void a_mode(struct oplist *o) { ol_mkdir(o, 010000, "/x"); }
static void a_rlimit_res(struct oplist *o) { ol_rlimit(o, 99, 1, 1); }
static void a_rlimit_order(struct oplist *o) { ol_rlimit(o, RLIMIT_CPU, 5, 4); }
static void a_rlimit_dup(struct oplist *o) {
  ol_rlimit(o, RLIMIT_CPU, 1, 1);
  ol_rlimit(o, RLIMIT_CPU, 2, 2);
}
static void a_filter_len(struct oplist *o) { ol_raw(o, SBX_OP_SECCOMP, "1234567", 7); }
static void a_filter_empty(struct oplist *o) { ol_raw(o, SBX_OP_SECCOMP, NULL, 0); }
static void a_flags_no_filter(struct oplist *o) { ol_u32(o, SBX_OP_SECCOMP_FLAGS, 0); }
static void a_listener_no_setup(struct oplist *o) {
  ol_raw(o, SBX_OP_SECCOMP, "\x06\0\0\0\0\0\xff\x7f", 8);
  ol_u32(o, SBX_OP_SECCOMP_FLAGS, SBX_SECCOMP_LISTENER);
}
static void a_fd_reserved(struct oplist *o) { ol_u32(o, SBX_OP_FD, SBX_EXEC_FD_TARGET); }
static void a_fd_dup(struct oplist *o) {
  ol_u32(o, SBX_OP_FD, 4);
  ol_u32(o, SBX_OP_FD, 4);
}
static void a_fd_huge(struct oplist *o) { ol_u32(o, SBX_OP_FD, 1u << 30); }
static void a_setup_payload(struct oplist *o) { ol_raw(o, SBX_OP_SETUP_SOCKET, "x", 1); }
static void a_landlock(struct oplist *o) { ol_raw(o, SBX_OP_LANDLOCK, NULL, 0); }
static void ll_config(struct oplist *o, uint64_t fs, uint64_t net, uint64_t scoped) {
  uint8_t b[28];
  uint32_t kind = SBX_LANDLOCK_CONFIG;
  memcpy(b, &kind, 4), memcpy(b + 4, &fs, 8), memcpy(b + 12, &net, 8), memcpy(b + 20, &scoped, 8);
  ol_raw(o, SBX_OP_LANDLOCK, b, sizeof b);
}
static void ll_path(struct oplist *o, uint64_t access, const char *path) {
  uint8_t b[64];
  uint32_t kind = SBX_LANDLOCK_PATH;
  size_t n = strlen(path);
  memcpy(b, &kind, 4), memcpy(b + 4, &access, 8), memcpy(b + 12, path, n);
  ol_raw(o, SBX_OP_LANDLOCK, b, 12 + n);
}
static void a_ll_kind(struct oplist *o) { ol_u32(o, SBX_OP_LANDLOCK, 7); }
static void a_ll_config_len(struct oplist *o) { ol_raw(o, SBX_OP_LANDLOCK, "\1\0\0\0\0\0\0\0", 8); }
static void a_ll_config_twice(struct oplist *o) { ll_config(o, 1, 0, 0), ll_config(o, 1, 0, 0); }
static void a_ll_fs_bits(struct oplist *o) { ll_config(o, 1u << 16, 0, 0); }
static void a_ll_net_bits(struct oplist *o) { ll_config(o, 1, 4, 0); }
static void a_ll_scope_bits(struct oplist *o) { ll_config(o, 1, 0, 4); }
static void a_ll_no_config(struct oplist *o) { ll_path(o, 1, "/usr"); }
static void a_ll_unhandled(struct oplist *o) { ll_config(o, 1, 0, 0), ll_path(o, 3, "/usr"); }
static void a_ll_no_access(struct oplist *o) { ll_config(o, 1, 0, 0), ll_path(o, 0, "/usr"); }
static void a_ll_relative(struct oplist *o) { ll_config(o, 1, 0, 0), ll_path(o, 1, "usr"); }
static void a_ll_dotdot(struct oplist *o) { ll_config(o, 1, 0, 0), ll_path(o, 1, "/usr/../etc"); }
static void a_ll_empty(struct oplist *o) { ll_config(o, 1, 0, 0), ll_path(o, 1, ""); }
static void a_env(struct oplist *o) { ol_str(o, SBX_OP_ENV, "=x"); }
static void a_truncated(struct oplist *o) { ol_raw(o, SBX_OP_ARG, "abc", 3), o->len -= 1; }
static void a_header(struct oplist *o) { ol_raw(o, SBX_OP_ARG, NULL, 0), o->len -= 3; }
static void a_long_host(struct oplist *o) {
  ol_u32(o, SBX_OP_NAMESPACES, CLONE_NEWUTS);
  ol_str(o, SBX_OP_HOSTNAME,
         "0123456789012345678901234567890123456789012345678901234567890123456789");
}
static void a_nothing(struct oplist *o) { (void)o; }
static void a_only_id(struct oplist *o) { ol_u64(o, SBX_OP_REQUEST_ID, 5); }

static void host_ids(struct oplist *o, uint32_t uid, uint32_t gid) {
  uint8_t b[8];
  memcpy(b, &uid, 4);
  memcpy(b + 4, &gid, 4);
  ol_raw(o, SBX_OP_HOST_IDS, b, sizeof b);
}
static void a_host_ids_len(struct oplist *o) { ol_u32(o, SBX_OP_HOST_IDS, 65534); }
static void a_host_ids_bad(struct oplist *o) { host_ids(o, 0xffffffffu, 1); }
static void a_host_ids_userns(struct oplist *o) {
  ol_u32(o, SBX_OP_NAMESPACES, CLONE_NEWUSER);
  uint32_t m[4] = {1000, 1000, 1000, 1000};
  ol_raw(o, SBX_OP_ID_MAP, m, sizeof m);
  host_ids(o, 65534, 65534);
}
static void a_reaper_payload(struct oplist *o) { ol_u32(o, SBX_OP_REAPER, 1); }
static void a_reaper_pidns(struct oplist *o) {
  ol_u32(o, SBX_OP_NAMESPACES, CLONE_NEWPID);
  ol_raw(o, SBX_OP_REAPER, NULL, 0);
}

/* Landlock isolation's ops: host ids and a subreaper init, without namespaces. */
static void test_landlock_isolation_request(void) {
  struct oplist o;
  base(&o);
  host_ids(&o, 65534, 65533);
  ol_raw(&o, SBX_OP_REAPER, NULL, 0);
  struct sbx_request r;
  char err[256];
  int rc = sbx_request_parse(o.buf, o.len, &r, err, sizeof err);
  EXPECT(rc == 0, "isolation: rc %d: %s", rc, err);
  if (rc == 0) {
    EXPECT(r.has_host_ids && r.host_uid == 65534 && r.host_gid == 65533 && r.reaper &&
               !r.has_id_map && r.namespaces == 0,
           "host ids / reaper");
  }
  sbx_request_free(&r);
  ol_free(&o);
}

static void test_landlock_request(void) {
  struct oplist o;
  base(&o);
  ll_path(&o, 0x5, "/usr"); /* before CONFIG: the order does not matter */
  ll_config(&o, 0xffff, 0x3, 0x3);
  ll_path(&o, 0x8, "/");
  struct sbx_request r;
  char err[256];
  int rc = sbx_request_parse(o.buf, o.len, &r, err, sizeof err);
  EXPECT(rc == 0, "landlock: rc %d: %s", rc, err);
  if (rc == 0) {
    EXPECT(
        r.has_landlock && r.landlock_fs == 0xffff && r.landlock_net == 3 && r.landlock_scoped == 3,
        "landlock config");
    EXPECT(r.nlandlock_paths == 2 && r.landlock_paths[0].access == 5 &&
               strcmp(r.landlock_paths[0].path, "/usr") == 0 && r.landlock_paths[1].access == 8 &&
               strcmp(r.landlock_paths[1].path, "/") == 0,
           "landlock paths");
  }
  sbx_request_free(&r);
  ol_free(&o);
}

static void test_refusals(void) {
  refuse("unknown op", a_unknown, true, "unknown (op 99 at offset");
  refuse("op 0", a_zero_op, true, "INVALID (op 0");
  refuse("duplicate single op", a_dup_path, true,
         "EXEC_PATH (op 2 at offset 61): may appear only once");
  refuse("NUL in a string", a_nul, true, "ARG (op 3 at offset 61): argument contains a NUL byte");
  refuse("short payload", a_short_ns, true,
         "NAMESPACES (op 6 at offset 61): payload is 2 bytes, expected 4");
  refuse("oversized payload", a_long_ns, true, "payload is 5 bytes, expected 4");
  refuse("non-namespace clone flag", a_bad_ns, true, "flags 0x100");
  refuse("hostname without uts", a_host_no_uts, true, "HOSTNAME needs CLONE_NEWUTS");
  refuse("userns without map", a_userns_no_map, true, "needs op ID_MAP");
  refuse("mount without mount ns", a_mount_no_ns, true, "need CLONE_NEWNS");
  refuse("dot-dot", a_dotdot, true,
         "TMPFS (op 10 at offset 77): destination \"/tmp/../../etc\" contains a \"..\"");
  refuse("root as destination", a_root_dst, true, "must not be \"/\"");
  refuse("relative source", a_relative_src, true, "source \"usr\" is not absolute");
  refuse("bind source length", a_bind_srclen, true, "source length 200 exceeds");
  refuse("bind flags", a_bind_flags, true, "unknown flags 0x80");
  refuse("empty symlink target", a_symlink_empty, true, "target is empty");
  refuse("mode bits", a_mode, true, "mode 010000");
  refuse("rlimit resource", a_rlimit_res, true, "resource 99");
  refuse("rlimit soft > hard", a_rlimit_order, true, "soft limit 5 is above the hard limit 4");
  refuse("rlimit twice", a_rlimit_dup, true, "resource 0 is given twice");
  refuse("filter length", a_filter_len, true, "not a non-empty multiple of 8");
  refuse("empty filter", a_filter_empty, true, "SECCOMP");
  refuse("flags without filter", a_flags_no_filter, true, "SECCOMP_FLAGS without op SECCOMP");
  refuse("listener without setup socket", a_listener_no_setup, true, "needs op SETUP_SOCKET");
  refuse("reserved fd", a_fd_reserved, true, "target fd 1022 is reserved");
  refuse("fd twice", a_fd_dup, true, "target fd 4 is given twice");
  refuse("fd above limit", a_fd_huge, true, "above the limit");
  refuse("setup socket payload", a_setup_payload, true, "SETUP_SOCKET");
  refuse("landlock", a_landlock, true, "LANDLOCK (op 21");
  refuse("landlock kind", a_ll_kind, true, "unknown kind 7");
  refuse("landlock config length", a_ll_config_len, true, "expected 28");
  refuse("landlock config twice", a_ll_config_twice, true, "CONFIG may appear only once");
  refuse("landlock fs bits", a_ll_fs_bits, true, "unknown fs rights 0x10000");
  refuse("landlock net bits", a_ll_net_bits, true, "unknown net rights 0x4");
  refuse("landlock scope bits", a_ll_scope_bits, true, "unknown scopes 0x4");
  refuse("landlock path without config", a_ll_no_config, true, "without a LANDLOCK CONFIG");
  refuse("landlock unhandled right", a_ll_unhandled, true,
         "rights 0x2 that CONFIG does not handle");
  refuse("landlock rule without rights", a_ll_no_access, true, "grants no right");
  refuse("landlock relative path", a_ll_relative, true, "is not absolute");
  refuse("landlock dot-dot", a_ll_dotdot, true, "contains a \"..\"");
  refuse("landlock empty path", a_ll_empty, true, "path is empty");
  refuse("host ids length", a_host_ids_len, true,
         "HOST_IDS (op 23 at offset 61): payload is 4 bytes, expected 8");
  refuse("host ids value", a_host_ids_bad, true, "id 4294967295 is not a valid id");
  refuse("host ids with a user namespace", a_host_ids_userns, true,
         "HOST_IDS cannot be combined with CLONE_NEWUSER");
  refuse("reaper payload", a_reaper_payload, true,
         "REAPER (op 24 at offset 61): payload is 4 bytes, expected 0");
  refuse("reaper with a pid namespace", a_reaper_pidns, true,
         "REAPER cannot be combined with CLONE_NEWPID");
  refuse("env without key", a_env, true, "is not KEY=VALUE");
  refuse("truncated payload", a_truncated, true, "length 3 exceeds the 2 bytes left");
  refuse("truncated header", a_header, true, "truncated op header at offset 61");
  refuse("long hostname", a_long_host, true, "hostname is 70 bytes long (limit 64)");
  refuse("empty request", a_nothing, false, "missing required op REQUEST_ID");
  refuse("only an id", a_only_id, false, "missing required op EXEC_PATH");
}

static void test_failure_keeps_id_and_fd_count(void) {
  struct oplist o;
  base(&o);
  ol_u32(&o, SBX_OP_FD, 3);
  ol_raw(&o, SBX_OP_SETUP_SOCKET, NULL, 0);
  ol_raw(&o, 99, NULL, 0);
  ol_u32(&o, SBX_OP_FD, 4);
  struct sbx_request r;
  char err[256];
  int rc = sbx_request_parse(o.buf, o.len, &r, err, sizeof err);
  EXPECT(rc == -EINVAL && r.has_request_id && r.request_id == 77 && r.fd_count == 3,
         "rc %d id %llu fds %zu", rc, (unsigned long long)r.request_id, r.fd_count);
  sbx_request_free(&r);
  ol_free(&o);
  /* no buffer at all, and a zero-sized error buffer */
  rc = sbx_request_parse(NULL, 0, &r, NULL, 0);
  EXPECT(rc == -EINVAL && r.fd_count == 0, "empty: %d", rc);
}

/* Mutations of a valid request: flips, truncations, insertions, length-field damage. */
static void test_mutations(void) {
  struct oplist o;
  full(&o);
  srand(12345);
  size_t ok = 0, refused = 0;
  uint8_t *m = malloc(o.len + 64);
  for (int it = 0; it < 200000; it++) {
    size_t n = o.len;
    memcpy(m, o.buf, n);
    int kind = rand() % 4;
    int times = 1 + rand() % 4;
    for (int t = 0; t < times; t++) {
      size_t at = (size_t)rand() % n;
      if (kind == 0)
        m[at] ^= (uint8_t)(1u << (rand() % 8));
      else if (kind == 1)
        m[at] = (uint8_t)rand();
      else if (kind == 2)
        n = at;
      else if (n + 1 < o.len + 64) { /* insert a byte */
        memmove(m + at + 1, m + at, n - at);
        m[at] = (uint8_t)rand();
        n++;
      }
      if (n == 0) break;
    }
    struct sbx_request r;
    char err[128];
    int rc = sbx_request_parse(m, n, &r, err, sizeof err);
    if (rc == 0) {
      ok++;
      EXPECT(r.argv[r.argc] == NULL && r.envp[r.envc] == NULL, "terminators");
      for (size_t i = 0; i < r.nmounts; i++) EXPECT(r.mounts[i].dst[0] == '/', "dst");
    } else {
      refused++;
      EXPECT(rc == -EINVAL && err[0] != '\0', "rc %d, message \"%s\"", rc, err);
    }
    sbx_request_free(&r);
  }
  free(m);
  ol_free(&o);
  fprintf(stderr, "# mutations: %zu parsed, %zu refused\n", ok, refused);
}

int main(void) {
  test_full_request();
  test_refusals();
  test_landlock_request();
  test_landlock_isolation_request();
  test_failure_keeps_id_and_fd_count();
  test_mutations();
  if (failures) {
    printf("FAIL: %d checks\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
