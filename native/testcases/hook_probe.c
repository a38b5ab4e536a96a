/* hook_probe: a sandboxee for the notify hooks (test/notify.test.ts, bench/notify.mjs).
 *
 *   hook_probe call TAG...   for each TAG, getpid() with TAG in arg 0 (getpid ignores its
 *                            arguments; the filter and the handler see the register) and prints
 *                            "getpid(TAG): ok" or "getpid(TAG): errno N"; then "done".
 *   hook_probe threads N TAG N threads call getpid(TAG) at once; prints "threads: N ok", "done".
 *   hook_probe bench N       N getpid() calls with arg 0 = 1, then N with arg 0 = 2; prints
 *                            {"tag1Ns": ns per call, "tag2Ns": ns per call} (wall clock), so a
 *                            policy that hooks one tag times hooked against plain calls in one run.
 *   hook_probe sleep MS      sleeps MS milliseconds (in steps of 10 ms), prints "done".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long hooked_getpid(long tag) { return syscall(SYS_getpid, tag, 0, 0, 0, 0, 0); }

static void *thread_main(void *arg) {
  long tag = (long)(intptr_t)arg;
  return (void *)(intptr_t)(hooked_getpid(tag) > 0);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc >= 3 && strcmp(argv[1], "call") == 0) {
    for (int i = 2; i < argc; i++) {
      long tag = strtol(argv[i], NULL, 0);
      long r = hooked_getpid(tag);
      if (r > 0)
        printf("getpid(%ld): ok\n", tag);
      else
        printf("getpid(%ld): errno %d\n", tag, errno);
    }
    printf("done\n");
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "threads") == 0) {
    int n = atoi(argv[2]);
    long tag = strtol(argv[3], NULL, 0);
    if (n < 1 || n > 64) return 2;
    pthread_t t[64];
    for (int i = 0; i < n; i++)
      if (pthread_create(&t[i], NULL, thread_main, (void *)(intptr_t)tag) != 0) return 3;
    int ok = 0;
    for (int i = 0; i < n; i++) {
      void *r = NULL;
      pthread_join(t[i], &r);
      ok += (int)(intptr_t)r;
    }
    printf("threads: %d ok\ndone\n", ok);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "bench") == 0) {
    long n = atol(argv[2]);
    if (n < 1) return 2;
    uint64_t ns[2];
    for (int tag = 1; tag <= 2; tag++) {
      uint64_t t0 = now_ns();
      for (long i = 0; i < n; i++) hooked_getpid(tag);
      ns[tag - 1] = now_ns() - t0;
    }
    printf("{\"tag1Ns\": %.1f, \"tag2Ns\": %.1f}\n", (double)ns[0] / n, (double)ns[1] / n);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "sleep") == 0) {
    long ms = atol(argv[2]);
    for (long i = 0; i < ms; i += 10) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    printf("done\n");
    return 0;
  }
  fprintf(stderr, "usage: hook_probe call TAG... | threads N TAG | bench N | sleep MS\n");
  return 2;
}
