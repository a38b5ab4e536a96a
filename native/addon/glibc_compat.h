/*
 * glibc_compat.h: force-included into every addon source (CMakeLists.txt), so that the prebuilt
 * addon loads on glibc 2.28 and later although it is built against a newer one. glibc 2.34 moved
 * pthread_create and pthread_join from libpthread into libc under a new symbol version; the old
 * version still exists in both, so the references are pinned to it (on an older glibc, the
 * libpthread that Node loads provides it). test/check-glibc.mjs fails the build when a shipped
 * binary needs a GLIBC_ version above 2.28 (or a libstdc++ newer than GCC 8's, glibc 2.28's era).
 */
#ifndef SBX_GLIBC_COMPAT_H
#define SBX_GLIBC_COMPAT_H

#if defined(__x86_64__)
#define SBX_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define SBX_GLIBC_BASE "GLIBC_2.17"
#endif

#ifdef SBX_GLIBC_BASE
__asm__(".symver pthread_create,pthread_create@" SBX_GLIBC_BASE);
__asm__(".symver pthread_join,pthread_join@" SBX_GLIBC_BASE);
/* glibc 2.32 and 2.34 moved these into libc with new versions; the base versions are the same
 * functions (dlsym: in libdl.so.2 before 2.34, which every Node binary loads). */
__asm__(".symver pthread_sigmask,pthread_sigmask@" SBX_GLIBC_BASE);
__asm__(".symver dlsym,dlsym@" SBX_GLIBC_BASE);
#endif

/* GCC 12's libstdc++ gave condition_variable::wait a new version (GLIBCXX_3.4.30); the original
 * (3.4.11, in every libstdc++ since GCC 4.4) is the same function. */
#ifdef __cplusplus
__asm__(
    ".symver _ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE,"
    "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE@GLIBCXX_3.4.11");
#endif

#endif
