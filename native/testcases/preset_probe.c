/*
 * preset_probe: makes the calls behind one PolicyBuilder preset, named by argv[1], and reports
 * each one the kernel answered: "<call>: ok" or "<call>: errno <E>" (a call the filter refuses
 * never returns: the monitor ends the sandbox). Used by test/presets-sandbox2.test.ts; each
 * family has an allowed form and a form with a refused argument. Exit 0, or 2 on bad usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

static void report(const char *name, long rc) {
  if (rc < 0)
    printf("%s: errno %s\n", name, strerrorname_np(errno));
  else
    printf("%s: ok\n", name);
  fflush(stdout);
}

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static void *anon_page(int prot) {
  void *p = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static int files(void) {
  report("mkdir", mkdir("/tmp/d", 0700));
  int fd = open("/tmp/d/f", O_CREAT | O_WRONLY, 0600);
  report("open", fd);
  if (fd >= 0) close(fd);
  report("chmod", chmod("/tmp/d/f", 0644));
  report("chown", chown("/tmp/d/f", getuid(), getgid()));
  report("utime", utime("/tmp/d/f", NULL));
  report("link", link("/tmp/d/f", "/tmp/d/g"));
  report("symlink", symlink("f", "/tmp/d/s"));
  char buf[64];
  report("readlink", readlink("/tmp/d/s", buf, sizeof buf));
  report("rename", rename("/tmp/d/g", "/tmp/d/h"));
  DIR *d = opendir("/tmp/d");
  long n = -1;
  if (d != NULL) {
    n = 0;
    while (readdir(d) != NULL) n++;
    closedir(d);
  }
  printf("entries: %ld\n", n);
  report("unlink", unlink("/tmp/d/h"));
  unlink("/tmp/d/s");
  unlink("/tmp/d/f");
  report("rmdir", rmdir("/tmp/d"));
  return 0;
}

static int events(void) {
  int efd = eventfd(0, EFD_CLOEXEC);
  report("eventfd", efd);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  report("epoll_create1", ep);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = efd};
  report("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
  report("epoll_wait", epoll_wait(ep, &ev, 1, 0));
  struct pollfd p = {.fd = efd, .events = POLLIN};
  report("poll", poll(&p, 1, 0));
  fd_set set;
  FD_ZERO(&set);
  FD_SET(efd, &set);
  struct timeval tv = {0, 0};
  report("select", select(efd + 1, &set, NULL, NULL, &tv));
  int in = inotify_init1(IN_CLOEXEC);
  report("inotify_init1", in);
  int w = inotify_add_watch(in, "/tmp", IN_CREATE);
  report("inotify_add_watch", w);
  report("inotify_rm_watch", inotify_rm_watch(in, w));
  return 0;
}

static int processes(void) {
  pid_t pid = fork();
  if (pid == 0) _exit(7);
  report("fork", pid);
  int status = 0;
  report("wait4", wait4(pid, &status, 0, NULL));
  printf("child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  report("getpgid", getpgid(0));
  report("getpgrp", getpgrp());
  return 0;
}

static int signals(void) {
  struct sigaction sa = {.sa_handler = on_signal};
  report("sigaction", sigaction(SIGUSR1, &sa, NULL));
  sigset_t set;
  sigemptyset(&set);
  report("sigprocmask", sigprocmask(SIG_SETMASK, &set, NULL));
  report("kill", kill(getpid(), SIGUSR1));
  printf("handled: %d\n", got_signal == SIGUSR1);
  report("tgkill", syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), 0));
  return 0;
}

static int timers(void) {
  report("alarm", alarm(100));
  alarm(0);
  struct itimerval it = {0};
  report("setitimer", setitimer(ITIMER_REAL, &it, NULL));
  struct sigevent sev = {.sigev_notify = SIGEV_NONE};
  timer_t t;
  report("timer_create", timer_create(CLOCK_MONOTONIC, &sev, &t));
  struct itimerspec ts = {.it_value = {100, 0}};
  report("timer_settime", timer_settime(t, 0, &ts, NULL));
  report("timer_gettime", timer_gettime(t, &ts));
  report("timer_getoverrun", timer_getoverrun(t));
  report("timer_delete", timer_delete(t));
  return 0;
}

static int futex_op(int op) {
  static uint32_t word;
  return (int)syscall(SYS_futex, &word, op, 1, NULL, NULL, 0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: preset_probe NAME [ARG]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* every line out before a refused call ends the probe */
  const char *w = argv[1];
  long arg = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
  struct rlimit rl;
  if (!strcmp(w, "none"))
    report(w, 0);
  else if (!strcmp(w, "files"))
    return files();
  else if (!strcmp(w, "events"))
    return events();
  else if (!strcmp(w, "processes"))
    return processes();
  else if (!strcmp(w, "signals"))
    return signals();
  else if (!strcmp(w, "timers"))
    return timers();
  else if (!strcmp(w, "dup")) {
    report("dup", dup(1));
    report("dup2", dup2(1, 10));
    report("dup3", dup3(1, 11, O_CLOEXEC));
  } else if (!strcmp(w, "pipe")) {
    int p[2];
    report("pipe2", pipe2(p, O_CLOEXEC));
  } else if (!strcmp(w, "kill-pid"))
    report(w, kill((pid_t)arg, SIGKILL));
  else if (!strcmp(w, "tcgets")) {
    struct termios t;
    report(w, ioctl(0, TCGETS, &t));
  } else if (!strcmp(w, "tiocgwinsz")) {
    struct winsize ws;
    report(w, ioctl(0, TIOCGWINSZ, &ws));
  } else if (!strcmp(w, "getrlimit"))
    report(w, getrlimit(RLIMIT_NOFILE, &rl));
  else if (!strcmp(w, "setrlimit-self")) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    report(w, setrlimit(RLIMIT_NOFILE, &rl));
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("nofile: %lu %lu\n", (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
  } else if (!strcmp(w, "setrlimit-soft-to-hard")) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    report(w, setrlimit(RLIMIT_NOFILE, &rl));
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("nofile: %lu %lu\n", (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
  } else if (!strcmp(w, "setrlimit-raise")) {
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_max += 1;
    report(w, setrlimit(RLIMIT_NOFILE, &rl));
  } else if (!strcmp(w, "setrlimit-other")) {
    struct rlimit nl = {64, 64};
    report(w, syscall(SYS_prlimit64, (pid_t)arg, RLIMIT_NOFILE, &nl, NULL));
  } else if (!strcmp(w, "nofile")) {
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("nofile: %lu %lu\n", (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
  } else if (!strcmp(w, "getrandom")) {
    char b[8];
    report(w, getrandom(b, sizeof b, (unsigned)arg));
  } else if (!strcmp(w, "prctl-name"))
    report(w, prctl(PR_SET_NAME, "probe", 0, 0, 0));
  else if (!strcmp(w, "prctl-dumpable"))
    report(w, prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
  else if (!strcmp(w, "prctl-vma")) {
    void *p = anon_page(PROT_READ | PROT_WRITE);
    report(w, prctl(PR_SET_VMA, arg, (unsigned long)p, 4096, (unsigned long)"probe"));
  } else if (!strcmp(w, "mprotect")) {
    void *p = anon_page(PROT_READ | PROT_WRITE);
    report(w, mprotect(p, 4096, (int)arg));
  } else if (!strcmp(w, "mmap"))
    report(w, anon_page((int)arg) ? 0 : -1);
  else if (!strcmp(w, "mlock")) {
    void *p = anon_page(PROT_READ | PROT_WRITE);
    report("mlock", mlock(p, 4096));
    report("munlock", munlock(p, 4096));
  } else if (!strcmp(w, "madvise")) {
    void *p = anon_page(PROT_READ | PROT_WRITE);
    report(w, madvise(p, 4096, (int)arg));
  } else if (!strcmp(w, "futex"))
    report(w, futex_op((int)arg));
  else if (!strcmp(w, "membarrier"))
    report(w, syscall(SYS_membarrier, (int)arg, 0, -1));
  else if (!strcmp(w, "getcpu")) {
    unsigned cpu;
    report(w, syscall(SYS_getcpu, &cpu, NULL, NULL));
  } else {
    fprintf(stderr, "preset_probe: unknown probe %s\n", w);
    return 2;
  }
  return 0;
}
