/*
 * named_fds_peer: a C sandboxee of test/named-fds.test.ts. For each name in argv it looks the fd
 * up (libsbx_client) and prints "<name>: fd <n>" or "<name>: <errno name>"; from "greeting" it
 * reads and prints what is there, to "reply" it writes a line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sbx/client.h>
#include <sbx/comms.h>

/* "log": records through sbx_client_log; "log-bad-tag", "log-garbage": what a hostile sandboxee
 * could write on the log channel instead. */
static int log_mode(const char *mode) {
  int fd = sbx_client_get_mapped_fd("sbx.log");
  if (!strcmp(mode, "log")) {
    printf("info: %d\n", sbx_client_log(SBX_LOG_INFO, "hello %s %d", "from C", 42));
    printf("warn: %d\n", sbx_client_log(SBX_LOG_WARN, "careful"));
    printf("error: %d\n", sbx_client_log(SBX_LOG_ERROR, "%s", "broken"));
    printf("debug: %d\n", sbx_client_log(SBX_LOG_DEBUG, "details"));
    printf("bad level: %d\n", sbx_client_log(9, "x"));
    return 0;
  }
  if (fd < 0) {
    printf("no log fd: %d\n", fd);
    return 0;
  }
  sbx_comms c;
  sbx_comms_init(&c, fd);
  if (!strcmp(mode, "log-bad-tag")) {
    printf("sent: %d\n", sbx_comms_send_tlv(&c, 7, "\1hi", 3));
  } else if (!strcmp(mode, "log-garbage")) {
    static const unsigned char junk[12] = {0x10, 0x53, 0,    0,    0xff, 0xff,
                                           0xff, 0xff, 0xff, 0xff, 0,    0};
    printf("sent: %zd\n", write(fd, junk, sizeof junk)); /* a header announcing ~2^48 bytes */
  }
  /* After a protocol error the executor closed its end: further records fail. */
  sbx_client_log(SBX_LOG_INFO, "after");
  printf("after: %d\n", sbx_client_log(SBX_LOG_INFO, "after"));
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && !strncmp(argv[1], "log", 3)) return log_mode(argv[1]);
  for (int i = 1; i < argc; i++) {
    const char *name = argv[i];
    int fd = sbx_client_get_mapped_fd(name);
    if (fd < 0) {
      printf("%s: %s has=%d\n", name, strerrorname_np(-fd), sbx_client_has_mapped_fd(name));
      continue;
    }
    printf("%s: fd %d has=%d\n", name, fd, sbx_client_has_mapped_fd(name));
    if (!strcmp(name, "greeting")) {
      char buf[64];
      ssize_t n = read(fd, buf, sizeof buf - 1);
      buf[n > 0 ? n : 0] = '\0';
      printf("greeting says: %s\n", buf);
    } else if (!strcmp(name, "reply")) {
      const char msg[] = "hello from C\n";
      if (write(fd, msg, sizeof msg - 1) < 0) printf("reply: write %s\n", strerrorname_np(errno));
    }
  }
  return 0;
}
