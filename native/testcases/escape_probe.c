/*
 * escape_probe: one escape attempt per run, named by argv[1] (extra arguments after it), for the
 * escape suite (test/escape/). It reports what the kernel answered and exits 0; a call the
 * filter denies never returns (the monitor kills the sandbox), so such a test sees no output
 * after the line "NAME: calling".
 *
 * Output lines: "NAME: ok", "NAME: errno ENAME", or "NAME: <value>" for measurements. Exit 2 on
 * bad usage. Tests compare these lines exactly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

static int report(const char *name, long rc) {
  if (rc < 0)
    printf("%s: errno %s\n", name, errname(errno));
  else
    printf("%s: ok\n", name);
  fflush(stdout);
  return 0;
}

/* Said before a call the filter may deny: the test then sees exactly this line and nothing more. */
static void calling(const char *name) {
  printf("%s: calling\n", name);
  fflush(stdout);
}

static int usage(void) {
  fprintf(stderr, "usage: escape_probe NAME [ARGS]\n");
  return 2;
}

static int arg_int(int argc, char **argv, int i) {
  if (i >= argc) exit(usage());
  return atoi(argv[i]);
}

/* --- ttys ------------------------------------------------------------------------------------ */

/* With ctty, makes `fd` (a pty slave) the controlling terminal of a new session first (the control
 * run outside a sandbox: TIOCSTI needs it; inside, TIOCSCTTY itself is denied); then pushes a byte
 * into its input queue with TIOCSTI (cmd | high: the kernel reads the cmd as 32 bits). */
static int pty_tiocsti(const char *name, int fd, unsigned long high, int ctty) {
  if (ctty) {
    if (setsid() < 0 && errno != EPERM) return report("setsid", -1);
    if (ioctl(fd, TIOCSCTTY, 0) < 0) return report("tiocsctty", -1);
    printf("tiocsctty: ok\n");
  }
  calling(name);
  char c = 'x';
  return report(name, syscall(SYS_ioctl, fd, high | TIOCSTI, &c));
}

/* --- the sandbox's init (pid 1) --------------------------------------------------------------- */

static int try_open(const char *label, const char *path, int flags) {
  int fd = open(path, flags);
  if (fd >= 0) {
    char buf[64];
    ssize_t n = (flags & O_ACCMODE) == O_WRONLY ? 0 : read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) return report(label, -1);
  }
  return report(label, fd);
}

static int init_access(void) {
  char buf[256];
  try_open("open /proc/1/mem rw", "/proc/1/mem", O_RDWR);
  try_open("read /proc/1/environ", "/proc/1/environ", O_RDONLY);
  try_open("read /proc/1/maps", "/proc/1/maps", O_RDONLY);
  report("readlink /proc/1/root", readlink("/proc/1/root", buf, sizeof buf));
  report("readlink /proc/1/exe", readlink("/proc/1/exe", buf, sizeof buf));
  report("opendir /proc/1/fd", open("/proc/1/fd", O_RDONLY | O_DIRECTORY));
  long word = 0;
  struct iovec local = {&word, sizeof word};
  struct iovec remote = {(void *)0x400000, sizeof word};
  report("process_vm_readv 1", syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0));
  long pidfd = syscall(SYS_pidfd_open, 1, 0);
  report("pidfd_open 1", pidfd);
  if (pidfd >= 0) report("pidfd_getfd 1", syscall(SYS_pidfd_getfd, pidfd, 1021, 0));
  return 0;
}

/* The escape the init must not allow: pid 1 runs without the seccomp filter, so code written into
 * it through /proc/1/mem runs unfiltered. The code calls unshare(CLONE_NEWUSER), a violation for
 * any filtered process, and exits with 43 (it worked) or 44 (it ran, the kernel refused): either
 * exit code of the sandbox proves code execution outside the filter. */
static int init_inject(void) {
  int mem = open("/proc/1/mem", O_RDWR);
  if (mem < 0) return report("init-inject", -1);
  /* /proc/1/syscall: "nr arg1..arg6 sp pc" while pid 1 sits in wait4 */
  char line[512] = {0};
  int sfd = open("/proc/1/syscall", O_RDONLY);
  if (sfd < 0 || read(sfd, line, sizeof line - 1) <= 0) return report("init-inject syscall", -1);
  close(sfd);
  char *last = strrchr(line, ' ');
  if (!last) return 3;
  unsigned long pc = strtoul(last + 1, NULL, 16);
  static const unsigned char code[] = {
      0xb8, 0x10, 0x01, 0x00, 0x00, /* mov eax, 272 (unshare) */
      0xbf, 0x00, 0x00, 0x00, 0x10, /* mov edi, CLONE_NEWUSER */
      0x0f, 0x05,                   /* syscall */
      0x48, 0x85, 0xc0,             /* test rax, rax */
      0x75, 0x07,                   /* jnz fail */
      0xbf, 0x2b, 0x00, 0x00, 0x00, /* mov edi, 43 */
      0xeb, 0x05,                   /* jmp out */
      0xbf, 0x2c, 0x00, 0x00, 0x00, /* fail: mov edi, 44 */
      0xb8, 0xe7, 0x00, 0x00, 0x00, /* out: mov eax, 231 (exit_group) */
      0x0f, 0x05,                   /* syscall */
  };
  if (pwrite(mem, code, sizeof code, (off_t)pc) != (ssize_t)sizeof code)
    return report("init-inject write", -1);
  printf("init-inject: wrote %zu bytes at 0x%lx\n", sizeof code, pc);
  fflush(stdout);
  /* Wake pid 1: an orphan reparented to it exits. */
  pid_t a = fork();
  if (a == 0) {
    if (fork() == 0) {
      usleep(50 * 1000);
      _exit(0);
    }
    _exit(0);
  }
  waitpid(a, NULL, 0);
  sleep(5);
  printf("init-inject: pid 1 did not run the code\n");
  return 0;
}

/* --- mounts, roots ---------------------------------------------------------------------------- */

static void print_id(const char *label, const char *path) {
  struct stat st;
  if (stat(path, &st) < 0)
    printf("%s: errno %s\n", label, errname(errno));
  else
    printf("%s: %lu:%lu\n", label, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
}

/* Every way up from "/" ends at the sandbox's own root. */
static int dotdot(void) {
  print_id("/", "/");
  print_id("/../../..", "/../../..");
  print_id("/proc/self/root/..", "/proc/self/root/..");
  print_id("/tmp/../..", "/tmp/../..");
  if (chdir("/tmp") == 0) {
    for (int i = 0; i < 64; i++) (void)chdir("..");
    print_id("cwd after 64 chdir ..", ".");
    char cwd[256];
    printf("getcwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
  }
  int root = open("/", O_RDONLY | O_DIRECTORY);
  int up = openat(root, "../../../..", O_RDONLY | O_DIRECTORY);
  struct stat a, b;
  fstat(root, &a);
  fstat(up, &b);
  printf("openat(/, ../../../..) is /: %s\n",
         a.st_dev == b.st_dev && a.st_ino == b.st_ino ? "yes" : "no");
  fflush(stdout);
  return 0;
}

/* The classic chroot escape: chroot into a subdirectory while keeping a cwd outside it, then
 * walk up. Needs CAP_SYS_CHROOT, which the sandboxee lacks. */
static int chroot_escape(void) {
  mkdir("/tmp/jail", 0755);
  if (chdir("/") < 0) return 3;
  if (report("chroot", chroot("/tmp/jail")) != 0) return 0;
  return 0;
}

/* --- resources -------------------------------------------------------------------------------- */

static void *park(void *arg) {
  (void)arg;
  pause();
  return NULL;
}

static int threads(void) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int n = 0, rc = 0;
  for (; n < 100000; n++) {
    pthread_t t;
    rc = pthread_create(&t, &attr, park, NULL);
    if (rc != 0) break;
  }
  printf("threads: %d created, then %s\n", n, rc ? errname(rc) : "none");
  fflush(stdout);
  _exit(0);
}

static int memory(void) {
  size_t mib = 0;
  for (; mib < 1 << 20; mib++) {
    char *p = malloc(1 << 20);
    if (!p) break;
    memset(p, 1, 1 << 20);
  }
  printf("memory: %zu MiB, then %s\n", mib, errname(errno));
  fflush(stdout);
  return 0;
}

static int fill(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return report("fill open", -1);
  static char chunk[1 << 16];
  memset(chunk, 'x', sizeof chunk);
  unsigned long long total = 0;
  for (;;) {
    ssize_t n = write(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    total += (unsigned long long)n;
  }
  printf("fill: %llu bytes, then %s\n", total, errname(errno));
  fflush(stdout);
  return 0;
}

static int files(const char *dir, int max) {
  int n = 0;
  char path[512];
  for (; n < max; n++) {
    snprintf(path, sizeof path, "%s/f%d", dir, n);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) break;
    close(fd);
  }
  printf("files: %d created, then %s\n", n, n < max ? errname(errno) : "none");
  fflush(stdout);
  return 0;
}

/* Every process forks forever; failures (EAGAIN at RLIMIT_NPROC) are retried. */
__attribute__((noreturn)) static void fork_bomb(void) {
  printf("fork-bomb: started\n");
  fflush(stdout);
  for (;;) {
    if (fork() < 0) usleep(1000);
  }
}

static int core(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_CORE, &rl);
  printf("RLIMIT_CORE: %llu %llu\n", (unsigned long long)rl.rlim_cur,
         (unsigned long long)rl.rlim_max);
  struct rlimit up = {RLIM_INFINITY, RLIM_INFINITY};
  report("raise RLIMIT_CORE", setrlimit(RLIMIT_CORE, &up));
  printf("dumpable: %d\n", prctl(PR_GET_DUMPABLE));
  fflush(stdout);
  abort();
}

/* --- signals ---------------------------------------------------------------------------------- */

/* kill(-1, SIGKILL) reaches every process the caller may signal: inside the sandbox only. */
static int kill_all(void) {
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  usleep(50 * 1000);
  report("kill -1", kill(-1, SIGKILL));
  int st = 0;
  waitpid(child, &st, 0);
  printf("own child: %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? "killed" : "alive");
  fflush(stdout);
  return 0;
}

/* --- per-user kernel counters ------------------------------------------------------------------ */

/* After filling a counter: says so, then waits (until killed) so that the charge stays while the
 * test looks at the host. */
__attribute__((noreturn)) static void hold(void) {
  printf("held\n");
  fflush(stdout);
  for (;;) pause();
}

/* Queues SIGRTMIN to itself (blocked) until the kernel refuses: RLIMIT_SIGPENDING, charged up
 * the user namespace chain. */
static int sigqueue_fill(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &set, NULL);
  long n = 0;
  int e = 0;
  for (; n < 400000; n++) {
    union sigval v = {.sival_int = (int)n};
    if (sigqueue(getpid(), SIGRTMIN, v) < 0) {
      e = errno;
      break;
    }
  }
  printf("sigqueue-fill: %ld %s\n", n, e ? errname(e) : "none");
  hold();
}

/* One timer_create and one sigqueue, as a host process would. */
static int sigqueue_one(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &set, NULL);
  struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
  timer_t t;
  report("timer_create", timer_create(CLOCK_MONOTONIC, &sev, &t));
  union sigval v = {.sival_int = 1};
  return report("sigqueue", sigqueue(getpid(), SIGRTMIN, v));
}

/* inotify instances until the kernel refuses (max_inotify_instances of each user namespace up
 * the chain). */
static int inotify_fill(void) {
  long n = 0;
  int e = 0;
  for (; n < 100000; n++) {
    if (inotify_init1(IN_CLOEXEC) < 0) {
      e = errno;
      break;
    }
  }
  printf("inotify-fill: %ld %s\n", n, e ? errname(e) : "none");
  hold();
}

/* fds in flight in a unix socket (SCM_RIGHTS, never received) until the kernel refuses: the
 * per-user count that sendmsg compares with RLIMIT_NOFILE ("Too many references"). */
static int inflight_fill(void) {
  int s[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, s) < 0) return report("socketpair", -1);
  enum { PER_MSG = 250 };
  char cbuf[CMSG_SPACE(PER_MSG * sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  char byte = 'x';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(PER_MSG * sizeof(int));
  int *fdp = (int *)CMSG_DATA(cm);
  for (int i = 0; i < PER_MSG; i++) fdp[i] = s[0];
  long n = 0;
  int e = 0;
  for (int m = 0; m < 64; m++) {
    if (sendmsg(s[0], &mh, 0) < 0) {
      e = errno;
      break;
    }
    n += PER_MSG;
  }
  printf("inflight-fill: %ld %s\n", n, e ? errname(e) : "none");
  hold();
}

/* Creates SysV shared memory segments (or message queues) until the kernel refuses; they outlive
 * the process. In landlock isolation they are the host's, bounded host-wide (shmmni, msgmni). */
static int sysv_fill(const char *kind, long max) {
  int msg = !strcmp(kind, "msg");
  long n = 0;
  int e = 0;
  for (; n < max; n++) {
    int id = msg ? msgget(IPC_PRIVATE, IPC_CREAT | 0600) : shmget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    if (id < 0) {
      e = errno;
      break;
    }
  }
  printf("sysv-fill %s: %ld %s\n", kind, n, e ? errname(e) : "none");
  return 0;
}

/* Creates (make) or looks up (find) a SysV shm segment, message queue and semaphore set with key
 * `key`, mode 0600, and the POSIX message queue "/sbx-probe-KEY"; prints one result per kind. */
static int ipc_objects(int make, int key) {
  int flags = make ? IPC_CREAT | IPC_EXCL | 0600 : 0;
  char mq[64];
  snprintf(mq, sizeof mq, "sbx-probe-%d", key); /* the syscall takes the name without '/' */
  long shm = shmget((key_t)key, make ? 1 : 0, flags);
  int shm_err = errno;
  long msg = msgget((key_t)key, flags);
  int msg_err = errno;
  long sem = semget((key_t)key, make ? 1 : 0, flags);
  int sem_err = errno;
  long q = syscall(SYS_mq_open, mq, make ? O_CREAT | O_EXCL | O_RDWR : O_RDWR, 0600, NULL);
  int q_err = errno;
  printf("ipc-%s: shm %s msg %s sem %s mq %s\n", make ? "make" : "find",
         shm >= 0 ? "ok" : errname(shm_err), msg >= 0 ? "ok" : errname(msg_err),
         sem >= 0 ? "ok" : errname(sem_err), q >= 0 ? "ok" : errname(q_err));
  return 0;
}

/* Writes up to `mib` MiB into one memfd (SIGXFSZ ignored: the write fails with EFBIG instead). */
static int memfd_fill(long mib) {
  signal(SIGXFSZ, SIG_IGN);
  calling("memfd_create");
  int fd = (int)syscall(SYS_memfd_create, "fill", 0);
  if (fd < 0) return report("memfd_create", -1);
  static char chunk[1 << 20];
  memset(chunk, 'x', sizeof chunk);
  long done = 0;
  int e = 0;
  for (; done < mib; done++) {
    if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) {
      e = errno;
      break;
    }
  }
  printf("memfd-fill: %ld MiB %s\n", done, e ? errname(e) : "none");
  close(fd);
  return 0;
}

/* --- seccomp ---------------------------------------------------------------------------------- */

/* The sandboxee adds its own filter (no listener): allowed, and it can only restrict. The extra
 * filter answers `ret` for getppid and allows everything else. */
static int seccomp_add(const char *name, unsigned int ret) {
  struct sock_filter insns[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0 /* offsetof(struct seccomp_data, nr) */),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, ret),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {4, insns};
  return report(name, syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *w = argv[1];
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* ttys: argv[2] is the fd of a pty slave */
  int ctty = argc > 3 && !strcmp(argv[3], "ctty");
  if (!strcmp(w, "pty-tiocsti")) return pty_tiocsti(w, arg_int(argc, argv, 2), 0, ctty);
  if (!strcmp(w, "pty-tiocsti-high"))
    return pty_tiocsti(w, arg_int(argc, argv, 2), 0xffffffff00000000UL, ctty);
  /* pty-ioctl NAME FD: one terminal ioctl that takes, breaks or hangs up the terminal */
  if (!strcmp(w, "pty-ioctl") && argc > 3) {
    const char *n = argv[2];
    int fd = arg_int(argc, argv, 3);
    int ldisc = 27; /* N_NULL */
    if (!strcmp(n, "tiocsetd")) {
      calling(n);
      return report(n, ioctl(fd, TIOCSETD, &ldisc));
    }
    if (!strcmp(n, "tiocsctty")) {
      setsid();
      calling(n);
      return report(n, ioctl(fd, TIOCSCTTY, 0));
    }
    if (!strcmp(n, "tiocvhangup")) {
      calling(n);
      return report(n, ioctl(fd, TIOCVHANGUP, 0));
    }
    if (!strcmp(n, "tiocexcl")) {
      calling(n);
      return report(n, ioctl(fd, TIOCEXCL, 0));
    }
    if (!strcmp(n, "tioccons")) {
      calling(n);
      return report(n, ioctl(fd, TIOCCONS, 0));
    }
    return usage();
  }
  /* pty-getd FD: the line discipline of the terminal */
  if (!strcmp(w, "pty-getd")) {
    int ldisc = -1;
    if (ioctl(arg_int(argc, argv, 2), TIOCGETD, &ldisc) < 0) return report("tiocgetd", -1);
    printf("ldisc: %d\n", ldisc);
    return 0;
  }
  if (!strcmp(w, "pty-tioclinux")) {
    int fd = arg_int(argc, argv, 2);
    char sub = 6; /* TIOCL_GETSHIFTSTATE */
    calling(w);
    return report(w, syscall(SYS_ioctl, fd, 0x1234567800000000UL | TIOCLINUX, &sub));
  }
  if (!strcmp(w, "tty")) {
    report("open /dev/tty", open("/dev/tty", O_RDWR));
    printf("sid is pid: %s\n", getsid(0) == getpid() ? "yes" : "no");
    return 0;
  }

  /* the init */
  if (!strcmp(w, "init-access")) return init_access();
  if (!strcmp(w, "init-inject")) return init_inject();

  /* mounts: each is denied by the filter (or answered by an errno rule) */
  if (!strcmp(w, "remount-rw")) {
    calling(w);
    report(w, mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL));
    return report("write /usr", open("/usr/sbx-escape", O_WRONLY | O_CREAT, 0644));
  }
  if (!strcmp(w, "umount")) {
    calling(w);
    return report(w, umount2("/usr", MNT_DETACH));
  }
  if (!strcmp(w, "mount_setattr")) {
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_clr = MOUNT_ATTR_RDONLY;
    calling(w);
    return report(w, syscall(SYS_mount_setattr, AT_FDCWD, "/usr", 0, &attr, sizeof attr));
  }
  if (!strcmp(w, "open_tree")) {
    calling(w);
    return report(w, syscall(SYS_open_tree, AT_FDCWD, "/usr", OPEN_TREE_CLONE));
  }
  if (!strcmp(w, "fsopen")) {
    calling(w);
    return report(w, syscall(SYS_fsopen, "tmpfs", 0));
  }
  if (!strcmp(w, "pivot_root")) {
    calling(w);
    return report(w, syscall(SYS_pivot_root, "/tmp", "/tmp"));
  }
  if (!strcmp(w, "move_mount")) {
    calling(w);
    return report(w, syscall(SYS_move_mount, AT_FDCWD, "/usr", AT_FDCWD, "/tmp", 0));
  }
  if (!strcmp(w, "dotdot")) return dotdot();
  if (!strcmp(w, "chroot")) return chroot_escape();
  if (!strcmp(w, "setns-mnt")) {
    int fd = open("/proc/self/ns/mnt", O_RDONLY);
    if (fd < 0) return report(w, -1);
    return report(w, setns(fd, CLONE_NEWNS));
  }

  /* namespaces: high bits in the flags do not hide CLONE_NEWUSER */
  if (!strcmp(w, "unshare-user-high")) {
    calling(w);
    return report(w, syscall(SYS_unshare, (1UL << 40) | CLONE_NEWUSER));
  }
  if (!strcmp(w, "unshare-mnt")) {
    calling(w);
    return report(w, unshare(CLONE_NEWNS));
  }

  /* keyrings and io_uring, the members policy.test.ts does not try */
  if (!strcmp(w, "request_key")) {
    calling(w);
    return report(w, syscall(SYS_request_key, "user", "sbx", NULL, 0));
  }
  if (!strcmp(w, "io_uring_enter"))
    return report(w, syscall(SYS_io_uring_enter, 0, 1, 0, 0, NULL, 0));
  if (!strcmp(w, "io_uring_register"))
    return report(w, syscall(SYS_io_uring_register, 0, 0, NULL, 0));

  /* /proc and /sys: argv[2] a path, written with "1" */
  if (!strcmp(w, "write")) {
    const char *path = argc > 2 ? argv[2] : NULL;
    if (!path) return usage();
    int fd = open(path, O_WRONLY);
    if (fd < 0) return report(path, -1);
    return report(path, write(fd, "1\n", 2));
  }

  /* signals */
  if (!strcmp(w, "sigqueue-fill")) return sigqueue_fill();
  if (!strcmp(w, "sigqueue-one")) return sigqueue_one();
  if (!strcmp(w, "inotify-fill")) return inotify_fill();
  if (!strcmp(w, "inotify-one")) return report("inotify_init1", inotify_init1(IN_CLOEXEC));
  if (!strcmp(w, "inflight-fill")) return inflight_fill();
  if (!strcmp(w, "ipc-make")) return ipc_objects(1, arg_int(argc, argv, 2));
  if (!strcmp(w, "ipc-find")) return ipc_objects(0, arg_int(argc, argv, 2));
  if (!strcmp(w, "sysv-fill") && argc > 3) return sysv_fill(argv[2], arg_int(argc, argv, 3));
  if (!strcmp(w, "memfd-fill")) return memfd_fill(arg_int(argc, argv, 2));
  if (!strcmp(w, "kill-all")) return kill_all();
  if (!strcmp(w, "kill")) return report(w, kill(arg_int(argc, argv, 2), SIGKILL));

  /* seccomp */
  if (!strcmp(w, "seccomp-allow-then-ptrace")) {
    seccomp_add("seccomp allow-all", SECCOMP_RET_ALLOW);
    calling("ptrace");
    return report("ptrace", syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0));
  }
  if (!strcmp(w, "seccomp-errno")) {
    seccomp_add("seccomp getppid-errno", SECCOMP_RET_ERRNO | EPERM);
    return report("getppid", syscall(SYS_getppid));
  }

  /* resources */
  if (!strcmp(w, "threads")) return threads();
  if (!strcmp(w, "memory")) return memory();
  if (!strcmp(w, "fill")) return argc > 2 ? fill(argv[2]) : usage();
  if (!strcmp(w, "files")) return argc > 3 ? files(argv[2], atoi(argv[3])) : usage();
  if (!strcmp(w, "fork-bomb")) fork_bomb();
  if (!strcmp(w, "core")) return core();

  fprintf(stderr, "escape_probe: unknown test %s\n", w);
  return 2;
}
