/*
 * net.c: the child's new network namespace starts with `lo` down; bring it up so that the
 * sandboxee can talk to itself over 127.0.0.1 (and nothing else: no other interface exists).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child.h"

int net_lo_up_in_child(struct child_ctx *ctx) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return child_fail(ctx, "socket", errno, "AF_INET, SOCK_DGRAM", NULL);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
    int err = errno;
    close(s);
    return child_fail(ctx, "ioctl", err, "lo, SIOCGIFFLAGS", NULL);
  }
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
    int err = errno;
    close(s);
    return child_fail(ctx, "ioctl", err, "lo, SIOCSIFFLAGS, IFF_UP", NULL);
  }
  close(s);
  return 0;
}
