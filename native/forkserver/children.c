/*
 * children.c: bookkeeping and reaping of the sandboxees (forkserver side).
 */
#define _GNU_SOURCE
#include "children.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"
#include "le.h"

int children_reserve(struct fs_children *c) {
  if (c->n < c->cap) return 0;
  size_t cap = c->cap ? 2 * c->cap : 16;
  struct fs_child *v = realloc(c->v, cap * sizeof *v);
  if (v == NULL) return -ENOMEM;
  c->v = v;
  c->cap = cap;
  return 0;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void children_add(struct fs_children *c, uint64_t request_id, pid_t pid, int pidfd, uint64_t walltime_ms,
                  int kill_signal) {
  c->v[c->n++] = (struct fs_child){request_id, pid, pidfd, walltime_ms ? now_ms() + walltime_ms : 0, false, kill_signal, 0};
}

/* How long a pid namespace's init has to kill and reap its tree after SIGTERM (init.c). */
#define ESCALATE_AFTER_MS 1000

int children_enforce_walltime(struct fs_children *c) {
  uint64_t now = now_ms(), next = 0;
  for (size_t i = 0; i < c->n; i++) {
    struct fs_child *ch = &c->v[i];
    if (ch->escalate_ms != 0 && ch->escalate_ms <= now) {
      pidfd_send_signal(ch->pidfd, SIGKILL, NULL, 0);
      ch->escalate_ms = 0;
    } else if (ch->escalate_ms != 0 && (next == 0 || ch->escalate_ms < next)) {
      next = ch->escalate_ms;
    }
    if (ch->deadline_ms == 0) continue;
    if (ch->deadline_ms <= now) {
      /* The child is its sandbox's init (or the whole sandbox): its death ends the tree. Both
       * inits end the tree themselves on SIGTERM, reaping it (init.c: so its rusage counts);
       * SIGKILL follows for an init that is not gone by then (a subreaper init is not hurried:
       * without a pid namespace only it can end the tree). */
      pidfd_send_signal(ch->pidfd, SIGTERM, NULL, 0);
      if (ch->kill_signal == SIGKILL) {
        ch->escalate_ms = now + ESCALATE_AFTER_MS;
        if (next == 0 || ch->escalate_ms < next) next = ch->escalate_ms;
      }
      ch->timed_out = true;
      ch->deadline_ms = 0;
    } else if (next == 0 || ch->deadline_ms < next) {
      next = ch->deadline_ms;
    }
  }
  if (next == 0) return -1;
  uint64_t wait = next - now;
  return wait > 60000 ? 60000 : (int)wait;
}

static uint64_t tv_us(struct timeval tv) {
  return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* SBX_FS_EXITED: u64 request_id | u32 pid | i32 wait_status | u64 utime_us | u64 stime_us |
 * u64 maxrss_kib | u32 flags */
static int send_exited(sbx_comms *comms, const struct fs_child *ch, int status,
                       const struct rusage *ru) {
  uint8_t msg[44];
  put_u64(msg, ch->request_id);
  put_u32(msg + 8, (uint32_t)ch->pid);
  put_u32(msg + 12, (uint32_t)status);
  put_u64(msg + 16, tv_us(ru->ru_utime));
  put_u64(msg + 24, tv_us(ru->ru_stime));
  put_u64(msg + 32, (uint64_t)ru->ru_maxrss); /* KiB on Linux */
  put_u32(msg + 40, ch->timed_out ? SBX_EXITED_WALLTIME : 0);
  return sbx_comms_send_tlv(comms, SBX_FS_EXITED, msg, sizeof msg);
}

int children_reap(struct fs_children *c, sbx_comms *comms) {
  for (;;) {
    int status;
    struct rusage ru;
    pid_t pid = wait4(-1, &status, WNOHANG, &ru);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return 0; /* 0: none left that exited; ECHILD: no children at all */
    size_t i = 0;
    while (i < c->n && c->v[i].pid != pid) i++;
    if (i == c->n) continue; /* an orphan we inherited as subreaper: nothing to report */
    struct fs_child ch = c->v[i];
    c->v[i] = c->v[--c->n];
    close(ch.pidfd);
    int r = send_exited(comms, &ch, status, &ru);
    if (r < 0) return r;
  }
}

void children_kill_all(struct fs_children *c) {
  for (size_t i = 0; i < c->n; i++) pidfd_send_signal(c->v[i].pidfd, c->v[i].kill_signal, NULL, 0);
  for (size_t i = 0; i < c->n; i++) {
    siginfo_t si;
    while (waitid(P_PIDFD, (id_t)c->v[i].pidfd, &si, WEXITED) < 0 && errno == EINTR) {
    }
    close(c->v[i].pidfd);
  }
  c->n = 0;
}

void children_free(struct fs_children *c) {
  free(c->v);
  c->v = NULL;
  c->n = c->cap = 0;
}
