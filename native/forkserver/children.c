/*
 * children.c: bookkeeping and reaping of the sandboxees (forkserver side).
 */
#define _GNU_SOURCE
#include "children.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"
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

void children_add(struct fs_children *c, uint64_t request_id, pid_t pid, int pidfd,
                  uint64_t walltime_ms, int kill_signal, const char *cgroup) {
  c->v[c->n++] =
      (struct fs_child){request_id, pid,         pidfd, walltime_ms ? now_ms() + walltime_ms : 0,
                        false,      kill_signal, 0,     cgroup != NULL ? strdup(cgroup) : NULL};
}

/* cgroup.kill: every process in the sandbox's cgroup, wherever it was reparented. */
static void kill_cgroup(const char *dir) {
  if (dir == NULL) return;
  char path[4200];
  snprintf(path, sizeof path, "%s/cgroup.kill", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)!write(fd, "1", 1);
  close(fd);
}

/* SIGTERM first: both inits end and reap their tree on it (init.c, reaper.c), so the tree's
 * rusage reaches the exit report; SIGKILL and cgroup.kill follow after the grace, so an init that
 * does not cooperate (stopped, out of fds) still cannot keep its tree alive. */
static void end_child(struct fs_child *ch, uint64_t now) {
  pidfd_send_signal(ch->pidfd, SIGTERM, NULL, 0);
  if (ch->escalate_ms == 0) ch->escalate_ms = now + SBX_KILL_GRACE_MS;
}

/* The init did not end its tree in time: SIGKILL it, and its cgroup. */
static void escalate(struct fs_child *ch) {
  pidfd_send_signal(ch->pidfd, SIGKILL, NULL, 0);
  kill_cgroup(ch->cgroup);
  ch->escalate_ms = 0;
}

int children_enforce_walltime(struct fs_children *c) {
  uint64_t now = now_ms(), next = 0;
  for (size_t i = 0; i < c->n; i++) {
    struct fs_child *ch = &c->v[i];
    if (ch->escalate_ms != 0 && ch->escalate_ms <= now) escalate(ch);
    if (ch->deadline_ms != 0 && ch->deadline_ms <= now) {
      /* The child is its sandbox's init (or the whole sandbox): its death ends the tree. Both
       * inits end the tree themselves on SIGTERM, then exit (or are escalated after the grace). */
      end_child(ch, now);
      ch->timed_out = true;
      ch->deadline_ms = 0;
    }
    uint64_t due[2] = {ch->deadline_ms, ch->escalate_ms};
    for (int k = 0; k < 2; k++)
      if (due[k] != 0 && (next == 0 || due[k] < next)) next = due[k];
  }
  if (next == 0) return -1;
  uint64_t wait = next - now;
  return wait > 60000 ? 60000 : (int)wait;
}

void children_set_walltime(struct fs_children *c, uint64_t request_id, uint64_t walltime_ms) {
  for (size_t i = 0; i < c->n; i++) {
    struct fs_child *ch = &c->v[i];
    if (ch->request_id != request_id || ch->timed_out) continue;
    ch->deadline_ms = walltime_ms ? now_ms() + walltime_ms : 0;
  }
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

int children_reap(struct fs_children *c, sbx_comms *comms, struct fs_pool *pool, bool *sweep) {
  for (;;) {
    int status;
    struct rusage ru;
    pid_t pid = wait4(-1, &status, WNOHANG, &ru);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return 0; /* 0: none left that exited; ECHILD: no children at all */
    pool_reaped(pool, pid);
    size_t i = 0;
    while (i < c->n && c->v[i].pid != pid) i++;
    if (i == c->n) { /* an orphan we inherited as subreaper: nothing to report */
      *sweep = true;
      continue;
    }
    struct fs_child ch = c->v[i];
    c->v[i] = c->v[--c->n];
    close(ch.pidfd);
    if (ch.kill_signal != SIGKILL) *sweep = true;
    /* Whatever the init left in its cgroup goes too (a pid namespace's init took its own along). */
    kill_cgroup(ch.cgroup);
    free(ch.cgroup);
    int r = send_exited(comms, &ch, status, &ru);
    if (r < 0) return r;
  }
}

static bool tracked(const struct fs_children *c, const struct fs_pool *pool, pid_t pid) {
  for (size_t i = 0; i < c->n; i++)
    if (c->v[i].pid == pid) return true;
  for (size_t i = 0; i < pool->n; i++)
    if (pool->v[i].pid == pid) return true;
  return false;
}

void children_sweep(const struct fs_children *c, const struct fs_pool *pool) {
  char path[64], list[8192];
  snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, list, sizeof list - 1);
  close(fd);
  if (n <= 0) return;
  list[n] = '\0';
  for (char *p = list; *p != '\0';) {
    char *end;
    long pid = strtol(p, &end, 10);
    if (end == p) break;
    p = end;
    if (pid <= 0 || tracked(c, pool, (pid_t)pid)) continue;
    /* Our child, so it stays ours (a zombie at worst) until we reap it: no pid reuse here. */
    kill((pid_t)pid, SIGKILL);
  }
}

void children_kill_all(struct fs_children *c, const struct fs_pool *pool) {
  uint64_t now = now_ms();
  for (size_t i = 0; i < c->n; i++) end_child(&c->v[i], now);
  /* Give subreaper inits their grace, then SIGKILL whatever is left. */
  for (size_t i = 0; i < c->n; i++) {
    siginfo_t si;
    for (;;) {
      memset(&si, 0, sizeof si);
      int r = waitid(P_PIDFD, (id_t)c->v[i].pidfd, &si, WEXITED | WNOHANG);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 || si.si_pid != 0) break; /* reaped (or not ours any more) */
      if (c->v[i].escalate_ms == 0 || now_ms() >= c->v[i].escalate_ms) {
        escalate(&c->v[i]);
        while (waitid(P_PIDFD, (id_t)c->v[i].pidfd, &si, WEXITED) < 0 && errno == EINTR) {}
        break;
      }
      usleep(5000);
    }
    kill_cgroup(c->v[i].cgroup);
    free(c->v[i].cgroup);
    close(c->v[i].pidfd);
  }
  c->n = 0;
  /* Leftovers of trees whose init died: kill and reap until none is left. */
  for (;;) {
    children_sweep(c, pool);
    int status;
    pid_t p = waitpid(-1, &status, __WALL);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) break; /* ECHILD */
  }
}

void children_free(struct fs_children *c) {
  for (size_t i = 0; i < c->n; i++) free(c->v[i].cgroup);
  free(c->v);
  c->v = NULL;
  c->n = c->cap = 0;
}
