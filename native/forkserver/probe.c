/*
 * probe.c: `sbx-forkserver --probe` (for `sbx doctor`): which isolation modes this host allows,
 * asked the way a spawn would ask. Prints two lines and exits 0:
 *   namespaces ok | namespaces <call>: <strerror>
 *   landlock <ABI>                 (0: none)
 * The namespaces probe clones a child into the namespaces a sandbox uses and has it make its
 * mount tree private: a host may let clone(CLONE_NEWUSER) through yet leave the child without
 * capabilities in it (AppArmor's restrict_unprivileged_userns), which only that step shows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

int probe_main(void) {
  unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                        CLONE_NEWUTS | CLONE_NEWCGROUP;
  pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0UL, 0UL, 0UL, 0UL);
  if (pid == 0) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(errno & 0x7f);
    _exit(0);
  }
  if (pid < 0) {
    printf(
        "namespaces clone(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWIPC|"
        "CLONE_NEWUTS|CLONE_NEWCGROUP): %s\n",
        strerror(errno));
  } else {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
      printf("namespaces ok\n");
    else if (WIFEXITED(status))
      printf("namespaces mount(/, MS_REC|MS_PRIVATE) in a new user namespace: %s\n",
             strerror(WEXITSTATUS(status)));
    else
      printf("namespaces probe child killed by signal %d\n", WTERMSIG(status));
  }
  printf("landlock %d\n", landlock_probe());
  return 0;
}
