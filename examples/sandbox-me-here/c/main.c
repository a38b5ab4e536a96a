/*
 * sandbox-me-here/c: a C program that sandboxes itself after its initialisation, then counts
 * the words of untrusted text that arrives over Comms (fd 1023) and sends the count back.
 * run.sh builds it against an installed libsbx_client and runs it through ../run-c.mjs.
 *
 * Before sbx_client_sandbox_me_here() the program may do anything its namespaces allow (here:
 * nothing much); afterwards only what the executor's policy allows. The text "open /etc/passwd"
 * makes it try to open a file, which the policy forbids: the executor reports a VIOLATION.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sbx/client.h>
#include <sbx/comms.h>

static uint64_t count_words(const char *s) {
  uint64_t n = 0;
  int in_word = 0;
  for (; *s != '\0'; s++) {
    if (isspace((unsigned char)*s)) {
      in_word = 0;
    } else if (!in_word) {
      in_word = 1;
      n++;
    }
  }
  return n;
}

int main(void) {
  char err[512];
  sbx_comms c;
  int rc, fd = sbx_comms_default_fd();
  if (fd < 0) {
    fprintf(stderr, "sandboxee: no comms fd: %s\n", sbx_comms_strerror(fd));
    return 1;
  }
  sbx_comms_init(&c, fd);
  printf("sandboxee: initialised, sandboxing myself\n");
  fflush(stdout);

  rc = sbx_client_sandbox_me_here(err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "sandboxee: sbx_client_sandbox_me_here: %s\n", err);
    return 1;
  }
  printf("sandboxee: sandboxed\n");
  fflush(stdout);

  for (;;) {
    char *text;
    rc = sbx_comms_recv_string(&c, &text, NULL);
    if (rc == -EPIPE) break; /* the runner is done */
    if (rc < 0) {
      fprintf(stderr, "sandboxee: recv: %s\n", sbx_comms_strerror(rc));
      return 1;
    }
    if (strcmp(text, "open /etc/passwd") == 0) open("/etc/passwd", O_RDONLY); /* never returns */
    rc = sbx_comms_send_uint64(&c, count_words(text));
    free(text);
    if (rc < 0) return 1;
  }
  printf("sandboxee: done\n");
  return 0;
}
