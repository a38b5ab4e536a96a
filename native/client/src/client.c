/*
 * client.c: sbx_client_sandbox_me_here(), the sandboxee's half of the handshake (sbx/client.h).
 *
 * Runs in the sandboxee, inside its namespaces, while it is still unfiltered. Once seccomp()
 * has returned, only the calls the policy allows may follow, plus what the executor's compiler
 * adds for this mode: sendto() without an address and read() on the handshake fd, close() of the
 * listener's number. The listener is not passed (sendmsg with SCM_RIGHTS would need a rule that a
 * datagram socket put at the handshake's number could use to send anywhere): the client says its
 * number and the executor takes it with pidfd_getfd(). So nothing after the install allocates:
 * the policy and the replies are read into a static buffer, which the BUSY state guards against
 * concurrent callers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sbx/comms.h>

#include "client_internal.h"
#include "trace.h"
#include "sbx/client.h"
#include "le.h"

enum client_state { STATE_IDLE = 0, STATE_BUSY, STATE_FILTERED, STATE_SANDBOXED };

static int g_state = STATE_IDLE;
/* The policy, then the executor's reply; only touched in the BUSY state. */
static unsigned char g_buf[SBX_CLIENT_MAX_POLICY_BYTES + 1]; /* + a NUL for ERROR */

struct errbuf {
  char *s;
  size_t len;
};

/* Writes the message (truncated to the buffer) and returns rc. No allocation, no syscall. */
static int fail(const struct errbuf *e, int rc, const char *fmt, ...) {
  if (e->s != NULL && e->len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->s, e->len, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* A Comms failure on the handshake channel, as this library's documented codes. */
static int comms_fail(const struct errbuf *e, int rc, const char *what) {
  if (rc == -EPIPE || rc == -ECONNRESET)
    return fail(e, rc, "%s: the executor closed the handshake channel (%s): it died or gave up",
                what, sbx_comms_strerror(rc));
  if (rc == -EPROTO || rc == -EBADMSG || rc == -EMSGSIZE)
    return fail(e, -EPROTO, "%s: the executor broke the handshake protocol (%s)", what,
                sbx_comms_strerror(rc));
  return fail(e, rc, "%s: %s", what, sbx_comms_strerror(rc));
}

/* After the install: INSTALLED (the listener's number), after HELLO when `hello` is given (the
 * policy came before it: one write, so the executor wakes once for both), with sendto() and no
 * address, the one write the filter lets through on the handshake fd (MSG_NOSIGNAL: a gone
 * executor is EPIPE, not a signal). */
static int send_installed(int fd, const unsigned char *hello, int listener,
                          const struct errbuf *e) {
  unsigned char msg[2 * SBX_COMMS_HEADER_SIZE + SBX_CLIENT_HELLO_SIZE + 4], *p = msg;
  size_t off = 0, total;
  if (hello != NULL) {
    put_u32(p, SBX_CLIENT_TAG_HELLO);
    put_u64(p + 4, SBX_CLIENT_HELLO_SIZE);
    memcpy(p + SBX_COMMS_HEADER_SIZE, hello, SBX_CLIENT_HELLO_SIZE);
    p += SBX_COMMS_HEADER_SIZE + SBX_CLIENT_HELLO_SIZE;
  }
  put_u32(p, SBX_CLIENT_TAG_INSTALLED);
  put_u64(p + 4, 4);
  put_u32(p + SBX_COMMS_HEADER_SIZE, (uint32_t)listener);
  total = (size_t)(p - msg) + SBX_COMMS_HEADER_SIZE + 4;
  while (off < total) {
    ssize_t n = sendto(fd, msg + off, total - off, MSG_NOSIGNAL, NULL, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return comms_fail(e, -errno, "telling the executor where the listener is");
    off += (size_t)n;
  }
  return 0;
}

/* True when the executor's POLICY is already waiting on the channel (it sends it before HELLO
 * when the program does not depend on HELLO): the client can then install first and send HELLO
 * with INSTALLED. */
static bool policy_waiting(int fd) {
  unsigned char h[SBX_COMMS_HEADER_SIZE];
  ssize_t n;
  do n = recv(fd, h, sizeof h, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof h && get_u32(h) == SBX_CLIENT_TAG_POLICY;
}

/* A traced request: the child's timestamps to the executor, after GO (sendto without an
 * address, as INSTALLED; best effort: the trace is a diagnosis, the sandbox does not depend on
 * it). Uses g_buf, which the BUSY state still guards. */
static void send_trace(int fd) {
  uint32_t stages[SBX_TRACE_MAX];
  uint64_t ns[SBX_TRACE_MAX];
  unsigned n = sbx_trace_get(stages, ns, SBX_TRACE_MAX);
  if (n > SBX_TRACE_MAX) n = SBX_TRACE_MAX;
  size_t len = sbx_trace_encode(g_buf + SBX_COMMS_HEADER_SIZE, sizeof g_buf - SBX_COMMS_HEADER_SIZE,
                                stages, ns, n);
  put_u32(g_buf, SBX_CLIENT_TAG_TRACE);
  put_u64(g_buf + 4, len);
  size_t off = 0, total = SBX_COMMS_HEADER_SIZE + len;
  while (off < total) {
    ssize_t w = sendto(fd, g_buf + off, total - off, MSG_NOSIGNAL, NULL, 0);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += (size_t)w;
  }
}

/* read() until `len` bytes came: 0, -EPIPE at end of stream, or -errno. */
static int read_full(int fd, unsigned char *p, size_t len) {
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return -EPIPE;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* After the install: the executor's GO (or ERROR), read with read() into g_buf. */
static int recv_go(int fd, const struct errbuf *e) {
  const char *what = "waiting for the executor's go-ahead";
  unsigned char h[SBX_COMMS_HEADER_SIZE];
  uint32_t tag, hi;
  uint64_t len;
  int rc = read_full(fd, h, sizeof h);
  if (rc < 0) return comms_fail(e, rc, what);
  tag = get_u32(h);
  hi = get_u32(h + 8);
  len = (uint64_t)get_u32(h + 4) | (uint64_t)hi << 32;
  if (len > sizeof g_buf - 1)
    return fail(e, -EPROTO, "%s: the executor sent %llu bytes (at most %zu here)", what,
                (unsigned long long)len, sizeof g_buf - 1);
  if ((rc = read_full(fd, g_buf, (size_t)len)) < 0) return comms_fail(e, rc, what);
  if (tag == SBX_CLIENT_TAG_ERROR) {
    g_buf[len] = '\0';
    return fail(e, -ECANCELED, "the executor refused: %s", (const char *)g_buf);
  }
  if (tag != SBX_CLIENT_TAG_GO || len != 0)
    return fail(e, -EPROTO,
                "%s: the executor sent %s (0x%08x, %llu bytes) where the protocol wants GO", what,
                sbx_comms_tag_name(tag), tag, (unsigned long long)len);
  return 0;
}

/* Reads the executor's next message into g_buf: `want` (0 for none), or ERROR. */
static int recv_reply(sbx_comms *c, uint32_t want, uint64_t *len, const struct errbuf *e,
                      const char *what) {
  uint32_t tag = 0;
  int rc = sbx_comms_recv_tlv_into(c, &tag, g_buf, sizeof g_buf - 1, len);
  if (rc < 0) return comms_fail(e, rc, what);
  if (tag == SBX_CLIENT_TAG_ERROR) {
    g_buf[*len] = '\0';
    return fail(e, -ECANCELED, "the executor refused: %s", (const char *)g_buf);
  }
  if (tag != want)
    return fail(e, -EPROTO, "%s: the executor sent %s (0x%08x) where the protocol wants 0x%08x",
                what, sbx_comms_tag_name(tag), tag, want);
  return 0;
}

/* Everything before the install: is this a sandbox-me-here sandboxee, can the kernel do it. */
static int check_channel(int fd, const struct errbuf *e) {
  struct stat st;
  int type = 0, domain = 0;
  socklen_t len = sizeof type;
  if (fd < 0 || fstat(fd, &st) < 0)
    return fail(e, -EBADF,
                "fd %d (%s) is not open: this process was not started by an sbx executor in "
                "sandbox-me-here mode (enableSandboxBeforeExec: false)",
                fd, SBX_CLIENT_FD_ENV);
  if (!S_ISSOCK(st.st_mode) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
      type != SOCK_STREAM ||
      (len = sizeof domain, getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len)) < 0 ||
      domain != AF_UNIX)
    return fail(e, -ENOTSOCK,
                "fd %d (%s) is not a unix stream socket: this process was not started by an sbx "
                "executor in sandbox-me-here mode (enableSandboxBeforeExec: false)",
                fd, SBX_CLIENT_FD_ENV);
  return 0;
}

static int install(const struct sock_fprog *prog, bool tsync, const struct errbuf *e) {
  unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER;
  long fd;
  if (tsync) flags |= SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  sbx_client_prepare(); /* done already when the program called it earlier */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return fail(e, -errno, "prctl(PR_SET_NO_NEW_PRIVS, 1): %s", strerror(errno));
  sbx_trace_mark(SBX_TRACE_CHILD_NNP);
  fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog);
  if (fd >= 0) return (int)fd;
  switch (errno) {
    case EINVAL:
      return fail(e, -EINVAL,
                  "seccomp(SECCOMP_SET_MODE_FILTER, %s): the kernel rejected the policy (%u "
                  "instructions): Invalid argument",
                  tsync ? "TSYNC|NEW_LISTENER|TSYNC_ESRCH" : "NEW_LISTENER", prog->len);
    case ESRCH:
      return fail(e, -ESRCH,
                  "seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): a thread of this process could not "
                  "be synchronised (it installed a seccomp filter of its own)");
    default:
      return fail(e, -errno, "seccomp(SECCOMP_SET_MODE_FILTER, %s): %s",
                  tsync ? "TSYNC|NEW_LISTENER|TSYNC_ESRCH" : "NEW_LISTENER", strerror(errno));
  }
}

static int handshake(int fd, unsigned flags, const struct errbuf *e, bool *filtered) {
  sbx_comms c;
  unsigned char hello[SBX_CLIENT_HELLO_SIZE];
  uint64_t len = 0;
  unsigned support;
  int threads, hint, listener, rc;
  bool tsync;
  struct sock_fprog prog;
  bool early;

  sbx_trace_mark(SBX_TRACE_CHILD_ME_HERE);
  if ((rc = check_channel(fd, e)) < 0) return rc;
  support = sbx_client_kernel_support();
  if (flags & SBX_CLIENT_ASSUME_NO_TSYNC) support &= ~SBX_CLIENT_KERNEL_TSYNC_LISTENER;
  if (!(support & SBX_CLIENT_KERNEL_LISTENER))
    return fail(e, -ENOSYS,
                "the kernel lacks seccomp user notification (SECCOMP_FILTER_FLAG_NEW_LISTENER, "
                "Linux 5.0), which the executor's monitor needs");
  tsync = (support & SBX_CLIENT_KERNEL_TSYNC_LISTENER) != 0;
  /* Counted only where it matters: with TSYNC every thread gets the filter anyway (and a cold
   * procfs read is a tenth of the whole call). */
  threads = tsync ? -1 : sbx_client_thread_count();
  if (!tsync && threads != 1) {
    if (threads < 0)
      return fail(e, -EOPNOTSUPP,
                  "cannot count this process's threads (/proc/self/task: %s), and the kernel "
                  "cannot put a filter with a listener on all threads "
                  "(SECCOMP_FILTER_FLAG_TSYNC_ESRCH needs Linux 5.7)",
                  strerror(-threads));
    return fail(e, -EOPNOTSUPP,
                "this process has %d threads, and the kernel cannot put a filter with a listener "
                "on all of them (SECCOMP_FILTER_FLAG_TSYNC_ESRCH needs Linux 5.7): call it "
                "before any thread starts",
                threads);
  }
  hint = sbx_client_lowest_free_fd(fd);

  sbx_comms_init(&c, fd);
  put_u32(hello, SBX_CLIENT_PROTOCOL_VERSION);
  put_u32(hello + 4, threads < 0 ? SBX_CLIENT_NO_FD : (uint32_t)threads);
  put_u32(hello + 8, tsync ? SBX_CLIENT_HELLO_TSYNC : 0);
  put_u32(hello + 12, hint < 0 ? SBX_CLIENT_NO_FD : (uint32_t)hint);
  early = policy_waiting(fd);
  if (!early) {
    if ((rc = sbx_comms_send_tlv(&c, SBX_CLIENT_TAG_HELLO, hello, sizeof hello)) < 0)
      return comms_fail(e, rc, "sending HELLO");
    sbx_trace_mark(SBX_TRACE_CHILD_HELLO);
  }
  if ((rc = recv_reply(&c, SBX_CLIENT_TAG_POLICY, &len, e, "receiving the policy")) < 0) return rc;
  sbx_trace_mark(SBX_TRACE_CHILD_POLICY);
  if (len == 0 || len % sizeof(struct sock_filter) != 0)
    return fail(e, -EPROTO,
                "the executor sent a policy of %llu bytes (not a whole number of "
                "8-byte instructions)",
                (unsigned long long)len);

  prog.len = (unsigned short)(len / sizeof(struct sock_filter));
  prog.filter = (struct sock_filter *)(void *)g_buf;
  listener = install(&prog, tsync, e);
  if (listener < 0) return listener;
  *filtered = true;
  sbx_trace_mark(SBX_TRACE_CHILD_FILTER);

  /* From here on: only sendto (no address) and read on fd, and close(listener). The listener
   * stays open until the executor has taken its copy (GO, or an end). */
  rc = send_installed(fd, early ? hello : NULL, listener, e);
  if (rc == 0 && early) sbx_trace_mark(SBX_TRACE_CHILD_HELLO);
  if (rc == 0) sbx_trace_mark(SBX_TRACE_CHILD_INSTALLED);
  if (rc == 0) rc = recv_go(fd, e);
  close(listener);
  if (rc == 0 && sbx_trace_enabled()) {
    sbx_trace_mark(SBX_TRACE_CHILD_GO);
    send_trace(fd);
  }
  return rc;
}

int sbx_client_sandbox_me_here_fd(int fd, unsigned flags, char *err, size_t errlen) {
  struct errbuf e = {err, errlen};
  int expected = STATE_IDLE, rc;
  bool filtered = false;
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (!__atomic_compare_exchange_n(&g_state, &expected, STATE_BUSY, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    if (expected == STATE_SANDBOXED)
      return fail(&e, -EALREADY,
                  "this process is already sandboxed (sandboxMeHere() succeeded "
                  "earlier)");
    if (expected == STATE_FILTERED)
      return fail(&e, -EALREADY,
                  "an earlier sandboxMeHere() installed the filter and then "
                  "failed; the process cannot be sandboxed again and should exit");
    return fail(&e, -EALREADY, "another thread is in sandboxMeHere() right now");
  }
  rc = handshake(fd, flags, &e, &filtered);
  __atomic_store_n(&g_state,
                   rc == 0    ? STATE_SANDBOXED
                   : filtered ? STATE_FILTERED
                              : STATE_IDLE,
                   __ATOMIC_RELEASE);
  return rc;
}

int sbx_client_default_fd(void) {
  const char *s = getenv(SBX_CLIENT_FD_ENV);
  char *end;
  long v;
  if (s == NULL || *s == '\0') return SBX_CLIENT_FD;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < 0 || v > 0x7fffffffL) return -EBADF;
  return (int)v;
}

int sbx_client_sandbox_me_here(char *err, size_t errlen) {
  int fd = sbx_client_default_fd();
  if (fd < 0) {
    struct errbuf e = {err, errlen};
    return fail(&e, -EBADF, "%s=\"%s\" is not a file descriptor number", SBX_CLIENT_FD_ENV,
                getenv(SBX_CLIENT_FD_ENV));
  }
  return sbx_client_sandbox_me_here_fd(fd, 0, err, errlen);
}

bool sbx_client_is_sandboxed(void) {
  return __atomic_load_n(&g_state, __ATOMIC_ACQUIRE) == STATE_SANDBOXED;
}

bool sbx_client_filter_installed(void) {
  int s = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
  return s == STATE_SANDBOXED || s == STATE_FILTERED;
}

const char *sbx_client_strerror(int err) {
  switch (err) {
    case 0: return "success";
    case -EBADF: return "not started in sandbox-me-here mode (no handshake fd)";
    case -ENOTSOCK:
      return "not started in sandbox-me-here mode (the handshake fd is no unix stream socket)";
    case -EALREADY: return "already sandboxed";
    case -EOPNOTSUPP: return "several threads and no TSYNC with a listener in this kernel";
    case -ESRCH: return "a thread could not be synchronised";
    case -ENOSYS: return "the kernel lacks seccomp user notification";
    case -EPIPE:
    case -ECONNRESET: return "the executor closed the handshake channel";
    case -ECANCELED: return "the executor refused";
    case -EPROTO: return "the executor broke the handshake protocol";
    case -EINVAL: return "the kernel rejected the policy";
    default: return err < 0 ? strerror(-err) : "unknown";
  }
}
