/*
 * c-comms: a parent and a forked child talk over libsbx_comms.
 * The parent sends a string and a Uint64; the child answers with the string's length and
 * sends back the write end of a pipe, through which the parent then receives a line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/comms.h>

static int fail(const char *who, const char *what, int rc) {
  fprintf(stderr, "c-comms %s: %s: %s\n", who, what, sbx_comms_strerror(rc));
  return 1;
}

/* Child: receives the greeting and a number, replies, and hands the parent a pipe to read. */
static int child(sbx_comms *c) {
  char *greeting;
  uint64_t n;
  int p[2], rc;
  if ((rc = sbx_comms_recv_string(c, &greeting, NULL)) < 0) return fail("child", "recv_string", rc);
  if ((rc = sbx_comms_recv_uint64(c, &n)) < 0) return fail("child", "recv_uint64", rc);
  printf("child: got \"%s\" and %llu\n", greeting, (unsigned long long)n);
  fflush(stdout);
  rc = sbx_comms_send_uint64(c, n + strlen(greeting));
  free(greeting);
  if (rc < 0) return fail("child", "send_uint64", rc);
  if (pipe(p) < 0) return 1;
  if ((rc = sbx_comms_send_fd(c, p[0])) < 0) /* borrows p[0]: still ours to close */
    return fail("child", "send_fd", rc);
  close(p[0]);
  if (write(p[1], "written by the child\n", 21) != 21) return 1;
  close(p[1]);
  return 0;
}

static int parent(sbx_comms *c) {
  uint64_t answer;
  char line[64];
  ssize_t n;
  int fd, rc;
  if ((rc = sbx_comms_send_string(c, "hello child")) < 0) return fail("parent", "send_string", rc);
  if ((rc = sbx_comms_send_uint64(c, 1000)) < 0) return fail("parent", "send_uint64", rc);
  if ((rc = sbx_comms_recv_uint64(c, &answer)) < 0) return fail("parent", "recv_uint64", rc);
  if ((rc = sbx_comms_recv_fd(c, &fd)) < 0) /* the received fd is ours to close */
    return fail("parent", "recv_fd", rc);
  n = read(fd, line, sizeof line - 1);
  close(fd);
  if (n <= 0) return 1;
  line[n] = '\0';
  printf("parent: got %llu and a pipe that says: %s", (unsigned long long)answer, line);
  return answer == 1011 ? 0 : 1;
}

int main(void) {
  int fds[2], status, rc;
  sbx_comms c;
  pid_t pid;
  if ((rc = sbx_comms_socketpair(fds)) < 0) return fail("parent", "socketpair", rc);
  pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    close(fds[0]);
    sbx_comms_init(&c, fds[1]);
    _exit(child(&c));
  }
  close(fds[1]);
  sbx_comms_init(&c, fds[0]);
  rc = parent(&c);
  sbx_comms_close(&c);
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  return rc;
}
