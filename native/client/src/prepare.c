/*
 * prepare.c: sbx_client_prepare(), what glibc would otherwise look up by opening a file at a
 * random later moment, after the filter is on (a policy without open would report it):
 *   - the first time free() shrinks a thread's heap, malloc opens /proc/sys/vm/overcommit_memory
 *     (arena.c, check_may_shrink_heap). A trim threshold above any thread heap (64 MiB) means heap
 *     tops are never shrunk, so the open never comes; memory is still reused, whole heaps and
 *     mmap()ed blocks are still returned.
 *   - the first time more threads allocate than there are arenas to test (8), malloc counts the
 *     CPUs to size its arena limit (get_nprocs(): /sys/devices/system/cpu/online). Node hits it
 *     when its threadpool runs work on every thread. The limit is set here to what glibc would
 *     compute (8 per CPU on 64-bit), unless the program chose one (MALLOC_ARENA_MAX, tunables).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <sys/sysinfo.h>
#endif

#include "sbx/client.h"

static int g_prepared = 0;

#ifdef __GLIBC__
static int arena_max_chosen(void) {
  const char *tunables = getenv("GLIBC_TUNABLES");
  return getenv("MALLOC_ARENA_MAX") != NULL ||
         (tunables != NULL && strstr(tunables, "glibc.malloc.arena_max") != NULL);
}
#endif

void sbx_client_prepare(void) {
  if (__atomic_exchange_n(&g_prepared, 1, __ATOMIC_ACQ_REL)) return;
#ifdef __GLIBC__
  (void)mallopt(M_TRIM_THRESHOLD, 1 << 30);
  if (!arena_max_chosen()) {
    int cpus = get_nprocs();
    (void)mallopt(M_ARENA_MAX, (cpus > 0 ? cpus : 1) * (sizeof(long) == 4 ? 2 : 8));
  }
#endif
}
