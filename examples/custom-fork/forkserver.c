/*
 * forkserver.c: a C forkserver for custom-fork mode (examples/custom-fork/README.md).
 *
 * Started by startForkServer(); it "initialises" once (here: builds a table), then
 * serves fork requests. Each child sandboxes itself (sandbox-me-here on its own handshake fd),
 * reads one String from its Comms channel and answers "<pid> <table[len % 16]> <text>".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sbx/comms.h>
#include <sbx/forking_client.h>

static unsigned table[16];

int main(void) {
  for (unsigned i = 0; i < 16; i++) table[i] = i * i; /* the warm state every child shares */

  char err[256];
  sbx_forking_client *fc;
  int rc = sbx_forking_client_open(&fc, -1, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "forkserver: %s\n", err);
    return 2;
  }
  for (;;) {
    pid_t pid = sbx_forking_client_wait_and_fork(fc, NULL, err, sizeof err);
    if (pid == 0) break; /* the child */
    if (pid < 0) {
      if (pid == -EPIPE) return 0; /* the executor is done with us */
      fprintf(stderr, "forkserver: %s\n", err);
      return 1;
    }
  }
  sbx_forking_client_free(fc);

  /* The child: sandboxed from here on. */
  if ((rc = sbx_client_sandbox_me_here(err, sizeof err)) < 0) {
    fprintf(stderr, "child: sandboxMeHere: %s\n", err);
    return 3;
  }
  sbx_comms comms;
  sbx_comms_init(&comms, SBX_COMMS_DEFAULT_FD);
  char *text = NULL;
  size_t len = 0;
  if ((rc = sbx_comms_recv_string(&comms, &text, &len)) < 0) return 4;
  if (strcmp(text, "violate") == 0) {
    /* a syscall the policy does not allow: the monitor reports it */
    (void)mkdir("/tmp/x", 0700);
  }
  char reply[320];
  int n = snprintf(reply, sizeof reply, "%d %u %.256s", (int)getpid(), table[len % 16], text);
  free(text);
  (void)n;
  if ((rc = sbx_comms_send_string(&comms, reply)) < 0) return 5;
  return 0;
}
