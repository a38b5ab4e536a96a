/*
 * fs_probe.c: runs inside test sandboxes and prints what it sees, one line on stdout.
 *   ids            "uid gid ngroups"
 *   stat PATH      "ok" or the errno name
 *   mode PATH      lstat's st_mode in octal: "40700"
 *   write PATH     creates PATH and writes a byte: "ok" or the errno name
 *   net            the interfaces of /proc/net/dev and lo's state: "lo UP"
 *   fds            the open fds, ascending: "0 1 2 5"
 *   status         capabilities, no_new_privs, signal mask and dispositions, session, umask:
 *                  "SigBlk=... SigIgn=... CapPrm=... CapEff=... CapBnd=... CapAmb=... NoNewPrivs=1
 *                  sid=1 umask=22"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int print_errno(int err) {
  const char *name = strerrorname_np(err);
  printf("%s\n", name ? name : "?");
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "ids") == 0) {
    printf("%u %u %d\n", (unsigned)getuid(), (unsigned)getgid(), getgroups(0, NULL));
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "stat") == 0) {
    struct stat st;
    if (stat(argv[2], &st) < 0) return print_errno(errno);
    printf("ok\n");
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "mode") == 0) {
    struct stat st;
    if (lstat(argv[2], &st) < 0) return print_errno(errno);
    printf("%o\n", (unsigned)st.st_mode);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "write") == 0) {
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return print_errno(errno);
    if (write(fd, "x", 1) != 1) return print_errno(errno);
    close(fd);
    printf("ok\n");
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "read") == 0) {
    int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0) return print_errno(errno);
    close(fd);
    printf("ok\n");
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "append") == 0) { /* an existing file, no O_CREAT/O_TRUNC */
    int fd = open(argv[2], O_WRONLY | O_CLOEXEC);
    if (fd < 0) return print_errno(errno);
    if (write(fd, "x\n", 2) != 2) return print_errno(errno);
    close(fd);
    printf("ok\n");
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "kill") == 0) { /* signal 0 to a pid */
    if (kill((pid_t)atoi(argv[2]), 0) < 0) return print_errno(errno);
    printf("ok\n");
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "net") == 0) {
    FILE *f = fopen("/proc/net/dev", "r");
    if (f == NULL) return print_errno(errno);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
      if (++n <= 2) continue; /* two header lines */
      char *colon = strchr(line, ':');
      if (colon == NULL) continue;
      *colon = '\0';
      char *name = line + strspn(line, " ");
      int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      struct ifreq ifr;
      memset(&ifr, 0, sizeof ifr);
      snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
      int up = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
      if (s >= 0) close(s);
      printf("%s%s %s", n > 3 ? " " : "", name, up ? "UP" : "DOWN");
    }
    printf("\n");
    fclose(f);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "fds") == 0) {
    int first = 1;
    for (int fd = 0; fd < 2048; fd++) {
      if (fcntl(fd, F_GETFD) < 0) continue;
      printf(first ? "%d" : " %d", fd);
      first = 0;
    }
    printf("\n");
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "status") == 0) {
    static const char *const keys[] = {"CapPrm",     "CapEff", "CapBnd", "CapAmb",
                                       "NoNewPrivs", "SigBlk", "SigIgn"};
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return print_errno(errno);
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
      for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t k = strlen(keys[i]);
        if (strncmp(line, keys[i], k) == 0 && line[k] == ':') {
          char *v = line + k + 1;
          v += strspn(v, " \t");
          v[strcspn(v, "\n")] = '\0';
          printf("%s=%s ", keys[i], v);
        }
      }
    }
    fclose(f);
    mode_t m = umask(0);
    printf("sid=%d umask=%o\n", (int)getsid(0), (unsigned)m);
    return 0;
  }
  fprintf(stderr, "usage: fs_probe ids|stat PATH|mode PATH|write PATH|net|fds|status\n");
  return 2;
}
