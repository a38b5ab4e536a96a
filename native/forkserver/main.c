/*
 * main.c: sbx-forkserver, the global forkserver (docs/architecture.md, protocol.h).
 *
 * Started by the executor with its comms socket on fd 3. Single-threaded: one poll() over the
 * comms socket (spawn requests) and a signalfd for SIGCHLD (reaping). It lives exactly as long
 * as the executor: PDEATHSIG, and EOF on comms, both end it, and it takes its sandboxees along.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol.h"
#include "child.h"
#include "server.h"
#include "userns.h"

/* Slots beyond this many are not watched for readiness (pool sizes are capped lower in TS). */
#define SBX_POOL_POLL_MAX 64

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("sbx-forkserver: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* clone() copies only the calling thread; a forkserver with other threads (a preloaded
 * library, a sanitizer) would hand its children locks held by threads that do not exist. */
static void check_single_threaded(void) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) die("opendir(/proc/self/task): %s (Hint: /proc must be mounted)", strerror(errno));
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  if (n != 1) die("%d threads at start; the forkserver must be single-threaded", n);
}

/* Default dispositions for everything (an ignored signal would be inherited by every
 * sandboxee through execve); SIGCHLD goes to the signalfd, SIGPIPE becomes EPIPE. Children
 * unblock both before exec. */
static int setup_signals(void) {
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL); /* EINVAL for glibc's own: fine */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGPIPE);
  sigaddset(&set, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) die("sigprocmask: %s", strerror(errno));
  sigdelset(&set, SIGPIPE);
  int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) die("signalfd(SIGCHLD, SIGTERM): %s", strerror(errno));
  return fd;
}

static void init(struct fs_server *srv, int *sigfd) {
  /* PDEATHSIG, then make sure the parent did not die before it was armed. SIGTERM, handled in the
   * loop (setup_signals blocks it for the signalfd): the executor's death is an orderly shutdown
   * that ends every tree even where a sandbox's init does not cooperate (children.h). */
  pid_t ppid = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0)
    die("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
  if (getppid() != ppid) exit(1);
  srv->executor_pid = ppid;

  int type = 0;
  socklen_t tlen = sizeof type;
  if (getsockopt(SBX_FS_COMMS_FD, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM)
    die("fd %d is not a stream socket (%s): this program is started by @sbx/executor, which "
        "passes its comms socket there",
        SBX_FS_COMMS_FD, errno ? strerror(errno) : "wrong type");
  check_single_threaded();

  /* Nothing but stdio and comms is ours to keep; our children's fd tables start from this. */
  close_range(SBX_FS_COMMS_FD + 1, ~0U, 0);
  if (fcntl(SBX_FS_COMMS_FD, F_SETFD, FD_CLOEXEC) < 0) die("fcntl(F_SETFD): %s", strerror(errno));
  /* Out of the executor's process group: a Ctrl-C meant for the executor is its business. */
  (void)setsid();
  if (chdir("/") < 0) die("chdir(/): %s", strerror(errno));
  /* The child copies fds above 1022 + its highest target before placing them: make room. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  /* Orphans of sandboxees without a pid namespace come to us, not to the host's init. */
  (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  *sigfd = setup_signals();
  sbx_comms_init(&srv->comms, SBX_FS_COMMS_FD);
  srv->self_pidfd = pidfd_open(getpid(), 0);
  if (srv->self_pidfd < 0)
    die("pidfd_open(self): %s (Hint: Linux >= 5.3 is needed)", strerror(errno));
  srv->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (srv->devnull_fd < 0) die("open(/dev/null): %s", strerror(errno));
  srv->may_setgroups = userns_parent_may_setgroups();
  (void)landlock_probe(); /* once: every child masks its ruleset by this ABI */
}

__attribute__((noreturn)) static void shutdown_and_exit(struct fs_server *srv, int code) {
  pool_free(&srv->pool);
  children_kill_all(&srv->children, &srv->pool);
  children_free(&srv->children);
  exit(code);
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--probe") == 0) return probe_main();
  if (argc > 1) {
    fprintf(stderr,
            "usage: %s [--probe]\n(started by @sbx/executor with its comms socket on fd %d; "
            "protocol: native/forkserver/protocol.h)\n",
            argv[0], SBX_FS_COMMS_FD);
    return 2;
  }
  struct fs_server srv;
  memset(&srv, 0, sizeof srv);
  int sigfd;
  init(&srv, &sigfd);

  for (;;) {
    /* sigfd, comms, the mount-table watch, then one entry per pool slot (readiness and deaths). */
    struct pollfd p[3 + SBX_POOL_POLL_MAX] = {{.fd = sigfd, .events = POLLIN},
                                              {.fd = SBX_FS_COMMS_FD, .events = POLLIN}};
    struct pollfd *mounts = &p[2];
    *mounts = (struct pollfd){.fd = pool_mounts_fd(&srv.pool), .events = POLLPRI};
    size_t nslots = pool_pollfds(&srv.pool, p + 3, SBX_POOL_POLL_MAX);
    /* A refill is due: look at what is there and come back at once (or when its wait ends). */
    int defer = pool_wants_refill(&srv.pool) ? pool_refill_delay_ms(&srv.pool, srv.children.n) : -1;
    int timeout = children_enforce_walltime(&srv.children);
    if (defer == 0)
      timeout = 0;
    else if (defer > 0 && (timeout < 0 || defer < timeout))
      timeout = defer;
    if (poll(p, 3 + nslots, timeout) < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "sbx-forkserver: poll: %s\n", strerror(errno));
      shutdown_and_exit(&srv, 1);
    }
    pool_handle_events(&srv.pool, p + 3, nslots);
    if (mounts->revents & (POLLPRI | POLLERR)) pool_mounts_changed(&srv.pool);
    /* Refill off the request path: one slot per turn of the loop, and only when no request is
     * waiting (a request that comes meanwhile is served before the next slot is cloned). */
    if (!(p[1].revents & (POLLIN | POLLHUP | POLLERR)) && pool_wants_refill(&srv.pool) &&
        pool_refill_delay_ms(&srv.pool, srv.children.n) == 0)
      pool_refill_one(&srv);
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si[16];
      bool term = false;
      ssize_t got;
      while ((got = read(sigfd, si, sizeof si)) > 0)
        for (size_t i = 0; i < (size_t)got / sizeof si[0]; i++) term |= si[i].ssi_signo == SIGTERM;
      if (term)
        shutdown_and_exit(&srv, 0); /* the executor died (PDEATHSIG), or we were asked to stop */
      bool sweep = false;
      int r = children_reap(&srv.children, &srv.comms, &srv.pool, &sweep);
      if (sweep) children_sweep(&srv.children, &srv.pool);
      if (r < 0) {
        bool gone = r == -EPIPE || r == -ECONNRESET; /* the executor is done */
        if (!gone) fprintf(stderr, "sbx-forkserver: send EXITED: %s\n", sbx_comms_strerror(r));
        shutdown_and_exit(&srv, gone ? 0 : 1);
      }
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      uint32_t tag;
      void *data = NULL;
      uint64_t len = 0;
      int r = sbx_comms_recv_tlv(&srv.comms, &tag, &data, &len);
      if (r == -EPIPE || r == -ECONNRESET) shutdown_and_exit(&srv, 0); /* the executor is done */
      if (r < 0) {
        fprintf(stderr, "sbx-forkserver: receive: %s\n", sbx_comms_strerror(r));
        shutdown_and_exit(&srv, 1);
      }
      if (tag == SBX_FS_POOL) {
        /* u32 size, optionally followed by the sandbox id range and list (pool_configure). */
        const uint8_t *d = data;
        uint32_t size =
            len >= 4 ? d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24
                     : UINT32_MAX;
        if (size > SBX_POOL_POLL_MAX || (len != 4 && len < 12))
          fprintf(stderr,
                  "sbx-forkserver: ignoring a POOL message (want a u32 size <= %d, then optionally "
                  "ids)\n",
                  SBX_POOL_POLL_MAX);
        else if (len == 4)
          pool_set_size(&srv.pool, size);
        else if ((r = pool_configure(&srv.pool, d, (size_t)len)) < 0)
          fprintf(stderr, "sbx-forkserver: ignoring a POOL message: %s\n", strerror(-r));
        free(data);
        continue;
      }
      if (tag == SBX_FS_POOL_STATS) {
        free(data);
        uint8_t stats[48 + sizeof srv.pool.last_error];
        r = sbx_comms_send_tlv(&srv.comms, SBX_FS_POOL_STATS, stats, pool_stats(&srv.pool, stats));
        if (r < 0) shutdown_and_exit(&srv, r == -EPIPE || r == -ECONNRESET ? 0 : 1);
        continue;
      }
      if (tag == SBX_FS_SET_WALLTIME) {
        if (len == 16) {
          const uint8_t *d = data;
          uint64_t v[2] = {0, 0};
          for (int k = 0; k < 2; k++)
            for (int b = 7; b >= 0; b--) v[k] = v[k] << 8 | d[8 * k + b];
          children_set_walltime(&srv.children, v[0], v[1]);
        } else {
          fprintf(stderr, "sbx-forkserver: ignoring a SET_WALLTIME message (want 16 bytes)\n");
        }
        free(data);
        continue;
      }
      if (tag != SBX_FS_SPAWN) {
        fprintf(stderr, "sbx-forkserver: ignoring a message with tag 0x%x (%s)\n", (unsigned)tag,
                sbx_comms_tag_name(tag));
        free(data);
        continue;
      }
      r = spawn_handle(&srv, data, (size_t)len);
      free(data);
      if (r < 0) {
        bool gone = r == -EPIPE || r == -ECONNRESET;
        if (!gone) fprintf(stderr, "sbx-forkserver: reply: %s\n", sbx_comms_strerror(r));
        shutdown_and_exit(&srv, gone ? 0 : 1);
      }
    }
  }
}
