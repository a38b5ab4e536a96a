/* syscall_loop: per-syscall cost under a seccomp filter (bench/syscall.mjs).
 *
 *   syscall_loop [FILTER|-] [CALLS] [ROUNDS] [CPU]
 *
 * FILTER is a file of raw struct sock_filter records (8 bytes each, as compilePolicy() emits
 * them); "-" or no argument runs without a filter. The filter is installed with
 * PR_SET_NO_NEW_PRIVS + seccomp(SECCOMP_SET_MODE_FILTER, 0) (no listener), then the program times
 * CALLS calls each of getppid() (a verdict the kernel's action cache can hold) and
 * getpriority(PRIO_PROCESS, 0) (a verdict that depends on an argument, so the filter runs on
 * every call), ROUNDS times, and prints the best (lowest) and the median round's ns/call of each
 * as one line of JSON. Rounds are timed in this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so
 * time spent preempted by other load does not count; the best round is the least disturbed.
 * After the filter is on it makes only getppid, getpriority, clock_gettime (CPU-time clocks are
 * not in the vDSO), write and exit_group, so the filter has to allow just those.
 * CPU (default -1: none) pins the process to that CPU first, so that runs compared with each
 * other share one CPU (on a VM the vCPUs can differ in speed from moment to moment).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_INSNS  4096
#define MAX_ROUNDS 64

static struct sock_filter insns[MAX_INSNS];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "syscall_loop: %s: %s\n", what, strerror(errno));
  exit(2);
}

static long read_filter(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  size_t bytes = fread(insns, 1, sizeof insns, f);
  int extra = fgetc(f);
  if (ferror(f)) die(path);
  fclose(f);
  if (extra != EOF) {
    fprintf(stderr, "syscall_loop: %s: more than %d instructions\n", path, MAX_INSNS);
    exit(2);
  }
  if (bytes == 0 || bytes % sizeof insns[0] != 0) {
    fprintf(stderr,
            "syscall_loop: %s: %zu bytes is not a whole number of 8-byte sock_filter records\n",
            path, bytes);
    exit(2);
  }
  return (long)(bytes / sizeof insns[0]);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Sorts v; the median. */
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof v[0], cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One timed loop of `calls` calls; returns ns per call. `sink` keeps the results live. */
static volatile long sink;

static double time_getppid(long calls) {
  uint64_t t0 = now_ns();
  for (long i = 0; i < calls; i++) sink += syscall(SYS_getppid);
  return (double)(now_ns() - t0) / (double)calls;
}

static double time_getpriority(long calls) {
  uint64_t t0 = now_ns();
  for (long i = 0; i < calls; i++) sink += syscall(SYS_getpriority, 0 /* PRIO_PROCESS */, 0);
  return (double)(now_ns() - t0) / (double)calls;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "-";
  long calls = argc > 2 ? strtol(argv[2], NULL, 10) : 200000;
  int rounds = argc > 3 ? atoi(argv[3]) : 3;
  int cpu = argc > 4 ? atoi(argv[4]) : -1;
  if (calls <= 0 || rounds <= 0 || rounds > MAX_ROUNDS || cpu >= CPU_SETSIZE) {
    fprintf(stderr, "usage: syscall_loop [FILTER|-] [CALLS>0] [ROUNDS 1..%d] [CPU]\n", MAX_ROUNDS);
    return 2;
  }
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
  }

  long n = 0;
  if (strcmp(path, "-") != 0) {
    n = read_filter(path);
    struct sock_fprog prog = {(unsigned short)n, insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("prctl(PR_SET_NO_NEW_PRIVS)");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
      die("seccomp(SECCOMP_SET_MODE_FILTER)");
  }

  /* Both calls must succeed under the filter (a wrong verdict would be a kill or an errno). */
  errno = 0;
  long prio = syscall(SYS_getpriority, 0, 0);
  if (prio < 0 || syscall(SYS_getppid) <= 0) {
    char msg[128];
    int len =
        snprintf(msg, sizeof msg,
                 "syscall_loop: getpriority/getppid failed under the filter (errno %d)\n", errno);
    if (len > 0) (void)!write(2, msg, (size_t)len);
    return 3;
  }

  /* Warm-up: caches, branch predictors, CPU frequency. */
  time_getppid(calls / 10 + 1);
  time_getpriority(calls / 10 + 1);

  double ppid[MAX_ROUNDS], prio_ns[MAX_ROUNDS];
  for (int r = 0; r < rounds; r++) {
    ppid[r] = time_getppid(calls);
    prio_ns[r] = time_getpriority(calls);
  }

  double ppid_med = median(ppid, rounds), prio_med = median(prio_ns, rounds);
  char out[320];
  int len = snprintf(
      out, sizeof out,
      "{\"insns\":%ld,\"calls\":%ld,\"rounds\":%d,\"getppid_ns\":%.2f,\"getpriority_ns\":%.2f,"
      "\"getppid_median_ns\":%.2f,\"getpriority_median_ns\":%.2f}\n",
      n, calls, rounds, ppid[0], prio_ns[0], ppid_med, prio_med);
  if (len <= 0 || write(1, out, (size_t)len) != len) return 2;
  return 0;
}
