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

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
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
