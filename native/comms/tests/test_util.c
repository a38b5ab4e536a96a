/*
 * test_util.c: fork/socketpair harness, fd counting and raw message writers for the tests.
 */
#define _GNU_SOURCE
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

int run_pair(side_fn parent, side_fn child) {
  int fds[2];
  int rc, status;
  pid_t pid;
  sbx_comms c;

  if (sbx_comms_socketpair(fds) < 0) {
    perror("socketpair");
    return 1;
  }
  fflush(NULL); /* no buffered output duplicated into the child */
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    close(fds[0]);
    sbx_comms_init(&c, fds[1]);
    rc = child != NULL ? child(&c) : 0;
    fflush(NULL);
    _exit(rc == 0 ? 0 : 1);
  }
  close(fds[1]);
  sbx_comms_init(&c, fds[0]);
  rc = parent(&c);
  /* Closing first lets a child blocked on us see EOF instead of hanging the test. */
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("waitpid");
      return 1;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "child failed (status 0x%x)\n", (unsigned)status);
    rc = 1;
  }
  return rc;
}

int run_cases(const test_case *cases, size_t n) {
  size_t i;
  int failed = 0;
  printf("1..%zu\n", n);
  for (i = 0; i < n; i++) {
    int rc = run_pair(cases[i].parent, cases[i].child);
    printf("%sok %zu - %s\n", rc == 0 ? "" : "not ", i + 1, cases[i].name);
    fflush(stdout);
    failed |= rc != 0;
  }
  return failed ? 1 : 0;
}

int wait_for_eof(sbx_comms *c) {
  for (;;) {
    uint32_t tag;
    void *data;
    uint64_t len;
    int fd;
    int rc = sbx_comms_recv_any(c, &tag, &data, &len, &fd);
    if (rc == -EPIPE) return 0;
    if (rc < 0) return rc;
    free(data);
    if (fd >= 0) close(fd);
  }
}

int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  if (d == NULL) return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the directory's own fd */
}

int raw_write(int fd, const void *data, size_t len, const int *fds, size_t nfds) {
  char control[CMSG_SPACE(sizeof(int) * 64)];
  struct iovec iov;
  struct msghdr m;
  size_t done = 0;

  memset(&m, 0, sizeof m);
  memset(control, 0, sizeof control);
  if (nfds > 64) return -EINVAL;
  if (nfds > 0) {
    struct cmsghdr *cm;
    m.msg_control = control;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
  }
  while (done < len) {
    ssize_t n;
    iov.iov_base = (char *)data + done;
    iov.iov_len = len - done;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    n = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (n < 0) return -errno;
    done += (size_t)n;
    m.msg_control = NULL;
    m.msg_controllen = 0;
  }
  return 0;
}

int raw_send(int fd, uint32_t tag, uint64_t announced, const void *payload, size_t payload_len,
             const int *fds, size_t nfds) {
  unsigned char *buf = malloc(12 + payload_len);
  size_t i;
  int rc;
  if (buf == NULL) return -ENOMEM;
  for (i = 0; i < 4; i++) buf[i] = (unsigned char)(tag >> (8 * i));
  for (i = 0; i < 8; i++) buf[4 + i] = (unsigned char)(announced >> (8 * i));
  if (payload_len > 0) memcpy(buf + 12, payload, payload_len);
  rc = raw_write(fd, buf, 12 + payload_len, fds, nfds);
  free(buf);
  return rc;
}
