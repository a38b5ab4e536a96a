/*
 * seccomp_oracle: builds a seccomp filter with libseccomp from a small rule list and prints the
 * BPF program libseccomp generates, so the TypeScript tests can run it through sbx's evaluator
 * and compare its verdicts with sbx's own compiler for every syscall number.
 * Runs outside any sandbox (a test tool); it never loads the filter.
 *
 * stdin, one rule per line ('#' starts a comment; numbers are decimal or 0x hex):
 *   default kill | default allow | default errno E    (first line that says default wins; default kill)
 *   allow NR                                          always allow syscall NR
 *   errno NR E                                        fail syscall NR with -E
 *   arg-eq NR IDX VALUE                               allow NR when 64-bit argument IDX == VALUE
 *                                                     (several arg-eq lines on one NR are ORed)
 * stdout: one line per instruction, "code jt jf k" in decimal, in program order.
 * Exit: 0 on success, 2 on bad input (message on stderr), 1 when libseccomp fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int parse_u64(const char *s, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0') return -1;
  *out = (uint64_t)v;
  return 0;
}

static int fail_input(int line, const char *what) {
  fprintf(stderr, "seccomp_oracle: line %d: %s\n", line, what);
  return 2;
}

int main(void) {
  char buf[512];
  uint32_t def = SCMP_ACT_KILL_PROCESS;
  int have_default = 0;
  /* Rules are kept as text until the default is known (seccomp_init needs it first). */
  size_t cap = 64, n = 0;
  char(*lines)[512] = malloc(cap * sizeof *lines);
  int *lineno = malloc(cap * sizeof *lineno);
  if (!lines || !lineno) return 1;
  int ln = 0;
  while (fgets(buf, sizeof buf, stdin)) {
    ln++;
    char *hash = strchr(buf, '#');
    if (hash) *hash = '\0';
    char w0[32] = "", w1[64] = "", w2[64] = "", w3[64] = "";
    int words = sscanf(buf, "%31s %63s %63s %63s", w0, w1, w2, w3);
    if (words <= 0) continue;
    if (strcmp(w0, "default") == 0) {
      if (have_default) continue;
      have_default = 1;
      if (strcmp(w1, "kill") == 0)
        def = SCMP_ACT_KILL_PROCESS;
      else if (strcmp(w1, "allow") == 0)
        def = SCMP_ACT_ALLOW;
      else if (strcmp(w1, "errno") == 0 && words == 3) {
        uint64_t e;
        if (parse_u64(w2, &e) != 0 || e > 4095) return fail_input(ln, "bad errno");
        def = SCMP_ACT_ERRNO((uint16_t)e);
      } else
        return fail_input(ln, "default is kill, allow or errno E");
      continue;
    }
    if (n == cap) {
      cap *= 2;
      void *nl = realloc(lines, cap * sizeof *lines);
      void *nn = realloc(lineno, cap * sizeof *lineno);
      if (!nl || !nn) return 1;
      lines = nl;
      lineno = nn;
    }
    memcpy(lines[n], buf, sizeof buf);
    lineno[n] = ln;
    n++;
  }

  scmp_filter_ctx ctx = seccomp_init(def);
  if (!ctx) {
    fprintf(stderr, "seccomp_oracle: seccomp_init failed\n");
    return 1;
  }
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc != 0) {
    fprintf(stderr, "seccomp_oracle: seccomp_attr_set(ACT_BADARCH): %s\n", strerror(-rc));
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    char w0[32] = "", w1[64] = "", w2[64] = "", w3[64] = "";
    int words = sscanf(lines[i], "%31s %63s %63s %63s", w0, w1, w2, w3);
    uint64_t nr, a, b;
    if (words < 2 || parse_u64(w1, &nr) != 0 || nr > 0x3fffffff)
      return fail_input(lineno[i], "expected a rule and a syscall number");
    if (strcmp(w0, "allow") == 0 && words == 2) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, (int)nr, 0);
    } else if (strcmp(w0, "errno") == 0 && words == 3) {
      if (parse_u64(w2, &a) != 0 || a > 4095) return fail_input(lineno[i], "bad errno");
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint16_t)a), (int)nr, 0);
    } else if (strcmp(w0, "arg-eq") == 0 && words == 4) {
      if (parse_u64(w2, &a) != 0 || a > 5 || parse_u64(w3, &b) != 0)
        return fail_input(lineno[i], "arg-eq NR IDX VALUE");
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, (int)nr, 1,
                            SCMP_CMP((unsigned int)a, SCMP_CMP_EQ, (scmp_datum_t)b));
    } else {
      return fail_input(lineno[i], "unknown rule (allow, errno, arg-eq)");
    }
    if (rc != 0) {
      fprintf(stderr, "seccomp_oracle: line %d: seccomp_rule_add: %s\n", lineno[i], strerror(-rc));
      return 1;
    }
  }

  int fd = memfd_create("seccomp_oracle", MFD_CLOEXEC);
  if (fd < 0) {
    perror("seccomp_oracle: memfd_create");
    return 1;
  }
  rc = seccomp_export_bpf(ctx, fd);
  if (rc != 0) {
    fprintf(stderr, "seccomp_oracle: seccomp_export_bpf: %s\n", strerror(-rc));
    return 1;
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0 || size % 8 != 0 || lseek(fd, 0, SEEK_SET) != 0) {
    fprintf(stderr, "seccomp_oracle: exported program has a bad size\n");
    return 1;
  }
  for (off_t off = 0; off < size; off += 8) {
    unsigned char insn[8];
    if (read(fd, insn, sizeof insn) != (ssize_t)sizeof insn) {
      perror("seccomp_oracle: read");
      return 1;
    }
    uint16_t code;
    uint32_t k;
    memcpy(&code, insn, 2);
    memcpy(&k, insn + 4, 4);
    printf("%u %u %u %" PRIu32 "\n", (unsigned)code, (unsigned)insn[2], (unsigned)insn[3], k);
  }
  close(fd);
  seccomp_release(ctx);
  free(lines);
  free(lineno);
  return 0;
}
