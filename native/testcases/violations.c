/*
 * violations: tries one forbidden (or policy-relevant) thing, named by argv[1], and reports what
 * the kernel answered. Used by the policy tests: a syscall the filter denies never returns (the
 * monitor kills the sandbox), an errno rule returns -1 with that errno, and "ok" means the call
 * went through. Output: one line "<name>: ok" or "<name>: errno <E>" then exit 0; exit 2 on
 * bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

static int report(const char *name, long rc) {
  if (rc < 0)
    printf("%s: errno %s\n", name, strerrorname_np(errno));
  else
    printf("%s: ok\n", name);
  fflush(stdout);
  return 0;
}

static void *thread_ptrace(void *arg) {
  (void)arg;
  report("thread-ptrace", syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0));
  return NULL;
}

/* i386 getpid (20) through the 32-bit entry point. */
static long int80_getpid(void) {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
  return ret;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: violations NAME\n");
    return 2;
  }
  const char *w = argv[1];
  if (!strcmp(w, "none")) return report(w, 0);
  if (!strcmp(w, "ptrace")) return report(w, syscall(SYS_ptrace, 0, 0, 0, 0));
  if (!strcmp(w, "bpf")) return report(w, syscall(SYS_bpf, 0, NULL, 0));
  if (!strcmp(w, "unshare-user")) return report(w, unshare(CLONE_NEWUSER));
  if (!strcmp(w, "unshare-net")) return report(w, unshare(CLONE_NEWNET));
  if (!strcmp(w, "clone-newuser"))
    return report(w, syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
  if (!strcmp(w, "clone3")) {
    uint64_t args[11] = {0};
    args[4] = SIGCHLD; /* exit_signal */
    long rc = syscall(SYS_clone3, args, sizeof args);
    if (rc == 0) _exit(0);
    return report(w, rc);
  }
  if (!strcmp(w, "keyctl")) return report(w, syscall(SYS_keyctl, 0, 0, 0, 0, 0));
  if (!strcmp(w, "add_key")) return report(w, syscall(SYS_add_key, "user", "k", "v", 1, -3));
  if (!strcmp(w, "perf_event_open")) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    return report(w, syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
  }
  if (!strcmp(w, "userfaultfd")) return report(w, syscall(SYS_userfaultfd, 0));
  if (!strcmp(w, "open_by_handle_at"))
    return report(w, syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0));
  if (!strcmp(w, "mount")) return report(w, mount("none", "/tmp", "tmpfs", 0, NULL));
  if (!strcmp(w, "umount")) return report(w, umount2("/usr", MNT_DETACH));
  if (!strcmp(w, "tiocsti")) {
    char c = 'x';
    return report(w, ioctl(0, TIOCSTI, &c));
  }
  if (!strcmp(w, "tiocsti-high")) {
    /* The kernel compares the cmd as 32 bits: high bits must not slip past the filter. */
    char c = 'x';
    return report(w, syscall(SYS_ioctl, 0, 0xdead000000000000UL | TIOCSTI, &c));
  }
  if (!strcmp(w, "tioclinux")) {
    char sub = 6;
    return report(w, ioctl(0, TIOCLINUX, &sub));
  }
  if (!strcmp(w, "seccomp-listener")) {
    struct sock_filter allow = BPF_STMT(0x06 /* BPF_RET|BPF_K */, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    return report(
        w, syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
  }
  if (!strcmp(w, "int80")) return report(w, int80_getpid());
  if (!strcmp(w, "x32")) return report(w, syscall(0x40000000 | 39 /* getpid */));
  if (!strcmp(w, "io_uring")) {
    char params[120];
    memset(params, 0, sizeof params);
    return report(w, syscall(SYS_io_uring_setup, 4, params));
  }
  if (!strcmp(w, "uname")) {
    char buf[400];
    return report(w, syscall(SYS_uname, buf));
  }
  if (!strcmp(w, "sysinfo")) {
    char buf[256];
    return report(w, syscall(SYS_sysinfo, buf));
  }
  if (!strcmp(w, "write-fd1")) return report(w, write(1, "", 0));
  if (!strcmp(w, "write-fd2")) return report(w, write(2, "x", 1));
  if (!strcmp(w, "thread-ptrace")) {
    pthread_t t;
    if (pthread_create(&t, NULL, thread_ptrace, NULL) != 0) return 3;
    pthread_join(t, NULL);
    return 0;
  }
  if (!strcmp(w, "getpid")) return report(w, getpid());
  fprintf(stderr, "violations: unknown test %s\n", w);
  return 2;
}
