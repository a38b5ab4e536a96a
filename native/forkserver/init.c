/*
 * init.c: a small init for the sandbox's pid namespace (as Sandbox2's S2-INIT-PROC). Without it
 * the target would be pid 1, which the kernel shields from every signal whose action is the
 * default: SIGXFSZ from RLIMIT_FSIZE, SIGTERM, SIGINT... would be ignored, and orphans would be
 * reparented to the target. So the child forks once more: pid 1 stays here and only reaps; pid 2
 * goes on to the filter and execveat. When pid 2 ends, init sends its raw wait status on the
 * setup socket (SBX_INIT_STATUS), kills and reaps every other process of the namespace, and
 * exits with the same code (128 + signal for a signal).
 *
 * SIGTERM from outside the namespace (the walltime, Sandbox.kill(), a violation) ends the tree
 * the same way. Init reaps every process itself rather than dying first, so that their rusage
 * adds up in init's own: the forkserver's wait4() of init then reports the cpu and peak memory
 * of the whole tree, killed runs included. SIGTERM stays blocked from the clone on (spawn.c), so
 * none is lost before init waits for it; the forkserver and the executor follow up with SIGKILL
 * should init not be gone after a grace period.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/comms.h>

#include "child.h"
#include "protocol.h"

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE 2
#endif

/* The status, then the rusage of everything init reaped (the whole tree but init itself): with it
 * the executor can give the Result without waiting for the forkserver's wait4 of init. */
void init_send_status(int setup, int status) {
  if (setup < 0) return;
  sbx_comms c;
  sbx_comms_init(&c, setup);
  unsigned char msg[4 + 3 * 8] = {0};
  int32_t raw = status;
  memcpy(msg, &raw, sizeof raw);
  struct rusage ru;
  if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
    uint64_t v[3] = {(uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec,
                     (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec,
                     (uint64_t)ru.ru_maxrss};
    memcpy(msg + 4, v, sizeof v);
  }
  (void)sbx_comms_send_tlv(&c, SBX_INIT_STATUS, msg, sizeof msg);
}

/* SIGKILLs every other process of the namespace and reaps them all (their rusage adds up in
 * init's). Killed again after each reap: a fork racing the first kill cannot escape. Records the
 * target's status if it is among them. */
static void end_tree(pid_t target, int *target_status, int *have_target) {
  for (;;) {
    (void)kill(-1, SIGKILL);
    int status;
    pid_t p = waitpid(-1, &status, __WALL);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) return; /* ECHILD: nothing left */
    if (p == target && !*have_target) {
      *target_status = status;
      *have_target = 1;
    }
  }
}

/* Pid 1: holds nothing of the sandboxee's (its pipes must see EOF when the target closes them),
 * reaps every process, and reports the target's status. SIGCHLD and SIGTERM are blocked (the
 * signals step of child.c) and taken with sigwaitinfo. Never returns. */
__attribute__((noreturn)) static void run_init(struct child_ctx *ctx, pid_t target) {
  /* First of all: not dumpable. Init runs without the sandbox's seccomp filter and is a fork of
   * the forkserver (the executor's environment, its heap, the setup socket). With the executor's
   * own uid (an unprivileged executor maps 1000 to it, so no uid change made init non-dumpable)
   * the sandboxee could otherwise read /proc/1/environ, take fds with pidfd_getfd, and write code
   * into init through /proc/1/mem that then runs outside the filter (test/escape/init.test.ts). */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) _exit(127);
  (void)prctl(PR_SET_NAME, "sbx-init", 0, 0, 0);
  int setup = ctx->setup_fd;
  if (setup > 0) syscall(SYS_close_range, 0, (unsigned)setup - 1, 0);
  syscall(SYS_close_range, (unsigned)setup + 1, ~0U, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  int status = 0, have_target = 0;
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    /* Only a SIGTERM from outside the namespace (si_pid 0 here; kill() from inside shows the
     * sender's pid, and a queued signal cannot claim SI_USER) ends the tree. */
    if (sig == SIGTERM && si.si_code == SI_USER && si.si_pid == 0) break;
    pid_t p;
    int st;
    while ((p = waitpid(-1, &st, __WALL | WNOHANG)) > 0) {
      if (p == target) {
        status = st;
        have_target = 1;
      }
    }
    if (have_target) break;
    if (p < 0 && errno == ECHILD) _exit(0);
  }
  end_tree(target, &status, &have_target);
  if (!have_target) _exit(128 + SIGKILL);
  init_send_status(setup, status);
  /* Mirror the target for whoever only sees init's status (the forkserver's EXITED). */
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* The target (pid 2) sends its own pidfd first: the executor takes the seccomp listener from
 * this process, not from init (before exec from the forkserver's filter, or later from the
 * sandboxee's sandboxMeHere()). */
int init_send_target_pidfd(struct child_ctx *ctx) {
  long pidfd = syscall(SYS_pidfd_open, getpid(), 0);
  if (pidfd < 0) return child_fail(ctx, "pidfd_open", errno, "self", NULL);
  sbx_comms c;
  sbx_comms_init(&c, ctx->setup_fd);
  int r = sbx_comms_send_fd(&c, (int)pidfd);
  close((int)pidfd);
  if (r < 0) return child_fail(ctx, "send", -r, "setup socket, target pidfd", NULL);
  return 0;
}

int init_split_in_child(struct child_ctx *ctx) {
  pid_t target = fork();
  if (target < 0) return child_fail(ctx, "fork", errno, "init and target", NULL);
  if (target > 0) run_init(ctx, target);
  /* pid 2: no signal blocked (init's SIGCHLD and SIGTERM were), PDEATHSIG ties it to init
   * (which dies with the forkserver). */
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
    return child_fail(ctx, "sigprocmask", errno, "SIG_SETMASK, {}", NULL);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    return child_fail(ctx, "prctl", errno, "PR_SET_PDEATHSIG, SIGKILL", NULL);
  if (getppid() != 1) _exit(127); /* init is already gone */
  if (ctx->setup_fd >= 0) return init_send_target_pidfd(ctx);
  return 0;
}
