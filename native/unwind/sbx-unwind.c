// sbx-unwind: prints the stack of one thread of a sandboxee, symbolized with elfutils' libdwfl.
//
// It parses memory and ELF files a hostile program controls, so it confines itself before it
// reads any of them (docs/security.md, "Stack traces"):
//   1. pins the target (pidfd + /proc/<tgid> directory) and checks that its user namespace is the
//      one the executor named (a recycled pid never makes it join the host's namespaces);
//   2. joins the target's user and mount namespaces, takes the target's uid and gid, drops every
//      capability and the supplementary groups, sets NO_NEW_PRIVS and non-dumpable, tight rlimits:
//      from here on it has exactly the target's rights over the target's files and processes;
//   3. ptrace-stops the thread (PTRACE_SEIZE + PTRACE_INTERRUPT; optionally SIGSTOPs its process
//      first), reads its registers and opens its maps;
//   4. installs the seccomp filter the executor compiled for it (a PolicyBuilder policy, hex in
//      argv: process_vm_readv pinned to this thread, no ptrace, files opened read-only), and only
//      then parses the maps and ELF files and walks the stack.
// Output: tab-separated lines on stdout (comm, exe, reg, frame, error). Exit 0, or 2 on failure.
// The executor bounds its run time and kills it; the kernel then detaches the tracee.
#define _GNU_SOURCE
#include <ctype.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>
#if defined(__aarch64__)
#include <elf.h>
#include <asm/ptrace.h>
#endif

#define MAX_PROGRAM 4096

struct target {
  pid_t tid;
  pid_t tgid;
  int procfd;  // /proc/<tgid>, opened in the host's procfs before any namespace is joined
  unsigned max_frames;
  unsigned frames;
  Dwarf_Word regs[33];  // DWARF numbering
  unsigned nregs;
  Dwarf_Word pc;
  // Frames no ELF symbol covers (JIT code): named from the perf map afterwards.
  unsigned n_unnamed;
  unsigned unnamed_index[64];
  Dwarf_Addr unnamed_pc[64];
};

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("error\t", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  fflush(stdout);
  exit(2);
}

// Strings from the target (comm, paths, symbols) never break the line format.
static void put_clean(const char *s, size_t max) {
  for (size_t i = 0; s && s[i] && i < max; i++) {
    unsigned char c = (unsigned char)s[i];
    fputc(c < 0x20 || c == 0x7f ? '?' : c, stdout);
  }
}

static long read_status_field(int dirfd, const char *file, const char *key) {
  int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  size_t klen = strlen(key);
  for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, key, klen) == 0) return strtol(line + klen, NULL, 10);
  }
  return -1;
}

static void pin_target(struct target *t, dev_t ns_dev, ino_t ns_ino) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d", (int)t->tid);
  int tiddir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (tiddir < 0) fail("open %s: %s", path, strerror(errno));
  t->tgid = (pid_t)read_status_field(tiddir, "status", "Tgid:");
  close(tiddir);
  if (t->tgid <= 0) fail("no Tgid for thread %d (gone?)", (int)t->tid);
  int pidfd = (int)syscall(SYS_pidfd_open, t->tgid, 0);
  if (pidfd < 0) fail("pidfd_open(%d): %s", (int)t->tgid, strerror(errno));
  snprintf(path, sizeof path, "/proc/%d", (int)t->tgid);
  t->procfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (t->procfd < 0) fail("open %s: %s", path, strerror(errno));
  snprintf(path, sizeof path, "task/%d", (int)t->tid);
  struct stat st;
  if (fstatat(t->procfd, path, &st, 0) != 0)
    fail("thread %d is not in process %d", t->tid, t->tgid);
  if (fstatat(t->procfd, "ns/user", &st, 0) != 0) fail("stat ns/user: %s", strerror(errno));
  if (st.st_dev != ns_dev || st.st_ino != ns_ino)
    fail("process %d is not in the sandbox's user namespace", (int)t->tgid);
  struct stat own;
  if (stat("/proc/self/ns/user", &own) == 0 && own.st_ino == st.st_ino && own.st_dev == st.st_dev)
    fail("process %d shares the executor's user namespace: refusing to unwind it", (int)t->tgid);
  // The /proc directory is the pinned process's, unless it was reaped after pidfd_open.
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0) fail("process %d is gone", t->tgid);

  // 2. The target's namespaces and identity, and nothing more.
  if (setns(pidfd, CLONE_NEWUSER | CLONE_NEWNS) != 0)
    fail("setns into the sandbox: %s", strerror(errno));
  long uid = read_status_field(t->procfd, "status", "Uid:");
  long gid = read_status_field(t->procfd, "status", "Gid:");
  if (uid < 0 || gid < 0) fail("cannot read the target's uid/gid");
  if (setgroups(0, NULL) != 0 && getgroups(0, NULL) != 0) fail("setgroups: %s", strerror(errno));
  if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0)
    fail("setresgid(%ld): %s", gid, strerror(errno));
  if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0)
    fail("setresuid(%ld): %s", uid, strerror(errno));
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &hdr, data) != 0) fail("capset: %s", strerror(errno));
  for (int cap = 0; cap <= 63; cap++) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs: %s", strerror(errno));
  // Same uid as the target: non-dumpable, so that the target cannot ptrace its unwinder.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) fail("dumpable: %s", strerror(errno));
  struct rlimit lim = {0, 0};
  setrlimit(RLIMIT_CORE, &lim);
  setrlimit(RLIMIT_FSIZE, &lim);
  lim.rlim_cur = lim.rlim_max = 256;
  setrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max = 1024UL << 20;
  setrlimit(RLIMIT_AS, &lim);
  lim.rlim_cur = lim.rlim_max = 5;
  setrlimit(RLIMIT_CPU, &lim);
  // Sending the stop needs the target's uid (just taken); nothing else signals after this.
  if (getenv("SBX_UNWIND_STOP") && syscall(SYS_pidfd_send_signal, pidfd, SIGSTOP, NULL, 0) != 0)
    fail("SIGSTOP: %s", strerror(errno));
  close(pidfd);
}

static void stop_thread(struct target *t) {
  if (ptrace(PTRACE_SEIZE, t->tid, 0, 0) != 0)
    fail("PTRACE_SEIZE(%d): %s", t->tid, strerror(errno));
  if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) != 0) fail("PTRACE_INTERRUPT: %s", strerror(errno));
  int status;
  for (;;) {
    pid_t r = waitpid(t->tid, &status, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("waitpid(%d): %s", t->tid, strerror(errno));
    if (WIFSTOPPED(status)) break;
    fail("thread %d ended while being stopped", t->tid);
  }
#if defined(__x86_64__)
  struct user_regs_struct r;
  if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) != 0) fail("PTRACE_GETREGS: %s", strerror(errno));
  // DWARF order: rax rdx rcx rbx rsi rdi rbp rsp r8..r15, then the return address column (rip).
  Dwarf_Word dw[17] = {r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
                       r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip};
  memcpy(t->regs, dw, sizeof dw);
  t->nregs = 17;
  t->pc = r.rip;
  static const char *names[] = {"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8",
                                "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip"};
  for (unsigned i = 0; i < 17; i++) printf("reg\t%s\t0x%" PRIx64 "\n", names[i], (uint64_t)dw[i]);
  printf("reg\teflags\t0x%llx\nreg\torig_rax\t0x%llx\n", r.eflags, r.orig_rax);
#elif defined(__aarch64__)
  struct user_pt_regs r;
  struct iovec iov = {&r, sizeof r};
  if (ptrace(PTRACE_GETREGSET, t->tid, NT_PRSTATUS, &iov) != 0)
    fail("PTRACE_GETREGSET: %s", strerror(errno));
  for (unsigned i = 0; i < 31; i++) t->regs[i] = r.regs[i];
  t->regs[31] = r.sp;
  t->nregs = 32;
  t->pc = r.pc;
  for (unsigned i = 0; i < 31; i++) printf("reg\tx%u\t0x%llx\n", i, r.regs[i]);
  printf("reg\tsp\t0x%llx\nreg\tpc\t0x%llx\nreg\tpstate\t0x%llx\n", r.sp, r.pc, r.pstate);
#else
#error "sbx-unwind: registers of this architecture are not implemented"
#endif
}

static int hexval(int c) {
  return isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

static void install_filter(const char *hex) {
  static unsigned char bytes[MAX_PROGRAM * sizeof(struct sock_filter)];
  size_t len = strlen(hex);
  if (len % 16 != 0 || len / 2 > sizeof bytes) fail("bad filter program (%zu hex digits)", len);
  for (size_t i = 0; i < len / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) fail("bad filter program (not hex)");
    bytes[i] = (unsigned char)(hi << 4 | lo);
  }
  struct sock_fprog prog = {(unsigned short)(len / 16), (struct sock_filter *)bytes};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
    fail("seccomp: %s", strerror(errno));
}

// The main program is opened through /proc/<tgid>/exe: the very file that runs, which the
// forkserver exec'd by fd and which need not be in the sandbox's view. Other modules are opened by
// the path the target mapped them from, in its mount namespace.
static int g_procfd = -1;
static char g_exe[4096];

static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
                    char **file_name, Elf **elfp) {
  if (!name || name[0] != '/') return -1;
  int fd = g_exe[0] && strcmp(name, g_exe) == 0 ? openat(g_procfd, "exe", O_RDONLY | O_CLOEXEC)
                                                : open(name, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) *file_name = strdup(name);
  return fd;
}

// Symbols and unwind data come from the mapped files themselves (.symtab/.dynsym, .eh_frame).
// No separate debuginfo: libdw's standard lookup would dlopen libdebuginfod from the sandbox's
// view, which the policy forbids anyway (no PROT_EXEC mapping after the filter).
static int no_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                        const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                        char **debuginfo_file_name) {
  return -1;
}

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp) {
  if (*thread_argp) return 0;
  *thread_argp = arg;
  return ((struct target *)arg)->tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp) {
  *thread_argp = arg;
  return tid == ((struct target *)arg)->tid;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg) {
  struct target *t = arg;
  struct iovec local = {result, sizeof *result}, remote = {(void *)(uintptr_t)addr, sizeof *result};
  return process_vm_readv(t->tid, &local, 1, &remote, 1, 0) == (ssize_t)sizeof *result;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg) {
  struct target *t = arg;
  if (!dwfl_thread_state_registers(thread, 0, t->nregs, t->regs)) return false;
  dwfl_thread_state_register_pc(thread, t->pc);
  return true;
}

static int on_frame(Dwfl_Frame *state, void *arg) {
  struct target *t = arg;
  Dwarf_Addr pc;
  bool activation;
  if (!dwfl_frame_pc(state, &pc, &activation)) return DWARF_CB_ABORT;
  // A return address points after the call: look up the call itself.
  Dwarf_Addr lookup = activation ? pc : pc - 1;
  Dwfl *dwfl = dwfl_thread_dwfl(dwfl_frame_thread(state));
  Dwfl_Module *mod = dwfl_addrmodule(dwfl, lookup);
  const char *sym = NULL, *modname = NULL;
  GElf_Off offset = 0;
  GElf_Sym s;
  if (mod) {
    sym = dwfl_module_addrinfo(mod, lookup, &offset, &s, NULL, NULL, NULL);
    modname = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  }
  if (!sym && t->n_unnamed < sizeof t->unnamed_pc / sizeof t->unnamed_pc[0]) {
    t->unnamed_index[t->n_unnamed] = t->frames;
    t->unnamed_pc[t->n_unnamed++] = lookup;
  }
  printf("frame\t0x%" PRIx64 "\t", (uint64_t)pc);
  put_clean(modname, 512);
  fputc('\t', stdout);
  put_clean(sym, 512);
  printf("\t%" PRIu64 "\n", sym ? (uint64_t)offset : 0);
  return ++t->frames >= t->max_frames ? DWARF_CB_ABORT : DWARF_CB_OK;
}

static void report_name(int procfd) {
  char buf[4096];
  int fd = openat(procfd, "comm", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  if (n > 0) {
    buf[n] = 0;
    if (buf[n - 1] == '\n') buf[n - 1] = 0;
    fputs("comm\t", stdout);
    put_clean(buf, 64);
    fputc('\n', stdout);
  }
  n = readlinkat(procfd, "exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = 0;
    memcpy(g_exe, buf, (size_t)n + 1);
    fputs("exe\t", stdout);
    put_clean(buf, sizeof buf);
    fputc('\n', stdout);
  }
}

// The last NSpid of /proc/<tgid>/status: the process's pid in its own pid namespace.
static long own_ns_pid(int procfd) {
  int fd = openat(procfd, "status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *line = strstr(buf, "\nNSpid:");
  if (!line) return -1;
  char *end = strchr(line + 1, '\n');
  if (end) *end = 0;
  char *last = strrchr(line, '\t');
  return last ? strtol(last + 1, NULL, 10) : -1;
}

// JIT frames (Node with --perf-basic-prof): V8 lists its code objects in /tmp/perf-<pid>.map
// ("START SIZE NAME" in hex, later lines supersede earlier ones), in the sandbox's /tmp. The file
// is the sandboxee's: read with bounds, names printed sanitized.
static void name_jit_frames(struct target *t) {
  if (t->n_unnamed == 0) return;
  long nspid = own_ns_pid(t->procfd);
  if (nspid <= 0) return;
  char path[64];
  snprintf(path, sizeof path, "/tmp/perf-%ld.map", nspid);
  FILE *map = fopen(path, "re");
  if (!map) return;
  static char line[1024], names[64][256];
  bool named[64] = {false};
  for (unsigned long lines = 0; lines < 4000000 && fgets(line, sizeof line, map); lines++) {
    char *rest;
    unsigned long long start = strtoull(line, &rest, 16), size = strtoull(rest, &rest, 16);
    if (*rest != ' ') continue;
    char *nl = strchr(rest, '\n');
    if (nl) *nl = 0;
    for (unsigned i = 0; i < t->n_unnamed; i++) {
      if (t->unnamed_pc[i] >= start && t->unnamed_pc[i] - start < size) {
        snprintf(names[i], sizeof names[i], "%s", rest + 1);
        named[i] = true;
      }
    }
  }
  fclose(map);
  for (unsigned i = 0; i < t->n_unnamed; i++) {
    if (!named[i]) continue;
    printf("jit\t%u\t", t->unnamed_index[i]);
    put_clean(names[i], sizeof names[i]);
    fputc('\n', stdout);
  }
}

int main(int argc, char **argv) {
  // sbx-unwind TID NSDEV NSINO MAXFRAMES FILTERHEX [PROBE-PATH]
  if (argc < 6 || argc > 7)
    fail("usage: sbx-unwind TID USERNS-DEV USERNS-INO MAX-FRAMES FILTER-HEX [PROBE-PATH]");
  struct target t = {0};
  t.tid = (pid_t)strtol(argv[1], NULL, 10);
  t.max_frames = (unsigned)strtoul(argv[4], NULL, 10);
  if (t.tid <= 0 || t.max_frames == 0) fail("bad TID or MAX-FRAMES");
  pin_target(&t, (dev_t)strtoull(argv[2], NULL, 10), (ino_t)strtoull(argv[3], NULL, 10));
  stop_thread(&t);
  FILE *maps = NULL;
  int mapsfd = openat(t.procfd, "maps", O_RDONLY | O_CLOEXEC);
  if (mapsfd >= 0) maps = fdopen(mapsfd, "r");
  if (!maps) fail("open maps: %s", strerror(errno));
  install_filter(argv[5]);
  if (argc == 7) {
    // Test hook (test/stack-trace.test.ts): show what the confined unwinder can open.
    int fd = open(argv[6], O_RDONLY | O_CLOEXEC);
    printf("probe\t%s\n", fd >= 0 ? "opened" : strerrorname_np(errno));
    fflush(stdout);
  }
  g_procfd = t.procfd;
  report_name(t.procfd);

  static const Dwfl_Callbacks callbacks = {
      .find_elf = find_elf,
      .find_debuginfo = no_debuginfo,
  };
  static const Dwfl_Thread_Callbacks thread_callbacks = {
      .next_thread = next_thread,
      .get_thread = get_thread,
      .memory_read = memory_read,
      .set_initial_registers = set_initial_registers,
  };
  Dwfl *dwfl = dwfl_begin(&callbacks);
  if (!dwfl) fail("dwfl_begin: %s", dwfl_errmsg(-1));
  dwfl_report_begin(dwfl);
  if (dwfl_linux_proc_maps_report(dwfl, maps) != 0) fail("maps: %s", dwfl_errmsg(-1));
  fclose(maps);
  dwfl_report_end(dwfl, NULL, NULL);
  if (!dwfl_attach_state(dwfl, NULL, t.tgid, &thread_callbacks, &t))
    fail("dwfl_attach_state: %s", dwfl_errmsg(-1));
  int rc = dwfl_getthread_frames(dwfl, t.tid, on_frame, &t);
  if (rc == -1 && t.frames == 0) fail("unwinding: %s", dwfl_errmsg(-1));
  if (rc == -1) {
    // libdw reports the end of some stacks as an error: say it, with the frames found.
    const char *msg = dwfl_errmsg(-1);
    fputs("end\t", stdout);
    put_clean(msg, 200);
    fputc('\n', stdout);
  }
  dwfl_end(dwfl);
  name_jit_frames(&t);
  // The thread is detached (and resumes, unless its process was SIGSTOPped) when this exits:
  // ptrace itself is not in the policy.
  fflush(stdout);
  return 0;
}
