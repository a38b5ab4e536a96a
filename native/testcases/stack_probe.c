// stack_probe: a sandboxee with a known call chain, for the stack-trace tests
// (test/stack-trace.test.ts). main -> outer_frame -> middle_frame -> deep_<mode>:
//   violate: calls ptrace(), which every sbx policy denies (a violation three frames deep);
//   sleep:   sleeps forever in nanosleep (for timeout, kill and on-demand traces);
//   exit:    exits at once (for a trace asked of a process that is ending).
#define _GNU_SOURCE
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static void deep_violation(void) {
  syscall(SYS_ptrace, 0, 0, 0, 0);
}

__attribute__((noinline)) static void deep_sleep(void) {
  for (;;) {
    struct timespec ts = {3600, 0};
    nanosleep(&ts, NULL);
  }
}

__attribute__((noinline)) static void middle_frame(const char *mode) {
  if (strcmp(mode, "violate") == 0) deep_violation();
  if (strcmp(mode, "sleep") == 0) deep_sleep();
}

__attribute__((noinline)) static void outer_frame(const char *mode) {
  middle_frame(mode);
  __asm__ volatile("" ::: "memory");  // keeps this frame (no tail call)
}

int main(int argc, char **argv) {
  outer_frame(argc > 1 ? argv[1] : "exit");
  return 0;
}
