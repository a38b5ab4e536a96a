// stack_probe: a sandboxee with a known call chain, for the stack-trace tests
// (test/stack-trace.test.ts). main -> outer_frame -> middle_frame -> deep_<mode>:
//   violate: calls ptrace(), which every sbx policy denies (a violation three frames deep);
//   sleep:   sleeps forever in nanosleep (for timeout, kill and on-demand traces);
//   loop:    points its frame pointer at a frame that names itself as its caller, then calls
//            ptrace(): a hostile stack that never ends (x86_64; elsewhere as violate);
//   exit:    exits at once (for a trace asked of a process that is ending).
#define _GNU_SOURCE
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static void deep_violation(void) { syscall(SYS_ptrace, 0, 0, 0, 0); }

__attribute__((noinline)) static void deep_loop(void) {
#if defined(__x86_64__)
  static unsigned long frame[2];
  frame[0] = (unsigned long)frame;           // saved frame pointer: this very frame
  frame[1] = (unsigned long)&deep_loop + 8;  // return address: inside deep_loop again
  // The call never returns (a violation): the frame pointer need not be restored.
  __asm__ volatile("mov %0, %%rbp\n\tmov $101, %%eax\n\txor %%edi, %%edi\n\tsyscall"
                   :
                   : "r"(frame)
                   : "rax", "rdi", "rcx", "r11", "memory");
#endif
  deep_violation();
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
  if (strcmp(mode, "loop") == 0) deep_loop();
}

__attribute__((noinline)) static void outer_frame(const char *mode) {
  middle_frame(mode);
  __asm__ volatile("" ::: "memory");  // keeps this frame (no tail call)
}

int main(int argc, char **argv) {
  outer_frame(argc > 1 ? argv[1] : "exit");
  return 0;
}
