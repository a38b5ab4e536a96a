/*
 * sbx/buffer.h: shared memory between an executor and a sandboxee (docs/wire-protocol.md, "Buffer (shared memory)").
 *
 * A buffer is a memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING) of a fixed size, mapped
 * PROT_READ | PROT_WRITE, MAP_SHARED. Its fd travels over Comms (SCM_RIGHTS); the peer maps the
 * same pages: handing over N bytes costs the same for every N (no copy).
 *
 * Safety against a hostile peer. A shared file that shrinks under a mapping makes every access
 * past the new end fault with SIGBUS. So the size of every buffer is frozen with
 * F_SEAL_SHRINK | F_SEAL_GROW before anything maps it:
 *   - sbx_buffer_create() seals its own memfd before mapping it, so a peer that receives the fd
 *     can never resize it (ftruncate fails with EPERM) even if it does not use this library;
 *   - sbx_buffer_from_fd() (and so sbx_buffer_recv()) accepts only a memfd on the kernel's
 *     internal tmpfs, re-applies both seals (a no-op when present) and only then reads its size
 *     and maps it. A peer that set F_SEAL_SEAL without those seals is refused (-EPERM).
 * A peer can still write the contents at any time: treat them as untrusted input, copy what
 * you validate. Write seals cannot be added by the peer while a writable mapping exists (the
 * kernel answers EBUSY); a memfd that already carries F_SEAL_WRITE or F_SEAL_FUTURE_WRITE, or an
 * fd opened read-only, cannot be mapped writable and is refused (-EACCES).
 *
 * Size 0 is valid: a buffer with no mapping (data is NULL).
 *
 * Wire framing (docs/wire-protocol.md): sbx_buffer_send() sends a Uint64 message (the size in
 * bytes), then an Fd message carrying the memfd. sbx_buffer_recv() receives both and checks the
 * announced size against the file's real size after sealing.
 *
 * Conventions (as libsbx_comms): 0 or a negative errno, never abort, never print. Errors:
 *   -EINVAL       bad argument (NULL, negative fd, size above the off_t range)
 *   -EMEDIUMTYPE  the fd is not a memfd: a regular file, a pipe, a socket, a hugetlbfs memfd, a
 *                 linked tmpfs file (checks: F_GET_SEALS works, st_nlink == 0, S_IFREG, tmpfs)
 *   -ERANGE       wrong size: the file's size differs from expected_size (or from the size the
 *                 peer announced, for sbx_buffer_recv())
 *   -EPERM        the seals cannot be added (F_SEAL_SEAL without F_SEAL_SHRINK|F_SEAL_GROW; a
 *                 memfd created without MFD_ALLOW_SEALING is such a file)
 *   -EACCES       the memfd cannot be mapped writable (write-sealed, or opened read-only)
 *   -ENOMEM       mmap failed (address space)
 *   -ENOSYS       no memfd_create (Linux < 3.17)
 *   any other     the errno of the failing call (fstat, ftruncate, memfd_create, ...), or for
 *                 send/recv one of the errors of sbx/comms.h
 * Every function leaves no fd or mapping behind on failure.
 */
#ifndef SBX_BUFFER_H
#define SBX_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include <sbx/comms.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SBX_CLIENT_BUILDING)
#define SBX_BUFFER_API __attribute__((visibility("default")))
#else
#define SBX_BUFFER_API
#endif

/* expected_size value of sbx_buffer_from_fd() / sbx_buffer_recv(): any size is accepted. */
#define SBX_BUFFER_ANY_SIZE ((uint64_t)-1)

/* One mapped buffer. The struct lives where the caller wants (no allocation); fields are
 * read-only for the caller. An empty (size 0) buffer has data NULL and a valid fd. */
typedef struct sbx_buffer {
  int fd;      /* the memfd, owned by the buffer (FD_CLOEXEC); -1 once closed */
  void *data;  /* the shared mapping, size bytes; NULL when size is 0 or closed */
  size_t size; /* in bytes */
} sbx_buffer;

/* A new sealed memfd of `size` bytes (zero-filled, sparse: pages are allocated on first touch),
 * mapped read-write. */
SBX_BUFFER_API int sbx_buffer_create(size_t size, sbx_buffer *buf);

/* Maps a memfd that came from elsewhere (checks, seals, then maps: see above). `expected_size`
 * is the size it must have, or SBX_BUFFER_ANY_SIZE. On success the buffer owns `fd`; on failure
 * the caller still owns it. */
SBX_BUFFER_API int sbx_buffer_from_fd(int fd, uint64_t expected_size, sbx_buffer *buf);

/* Unmaps and closes. Idempotent (a closed or zeroed-then-closed buffer is a no-op). Returns 0 or
 * -errno from munmap/close (the buffer is closed either way). */
SBX_BUFFER_API int sbx_buffer_close(sbx_buffer *buf);

/* Sends the buffer: Uint64 size, then Fd (the fd is borrowed; the sender keeps its mapping). */
SBX_BUFFER_API int sbx_buffer_send(sbx_comms *c, const sbx_buffer *buf);

/* Receives a buffer sent with sbx_buffer_send() (or by the Node side's sendBuffer()) and maps it
 * with sbx_buffer_from_fd(). `expected_size`: SBX_BUFFER_ANY_SIZE, or the size the caller
 * requires (-ERANGE otherwise, the fd is still consumed and closed). On any failure the received
 * fd is closed. */
SBX_BUFFER_API int sbx_buffer_recv(sbx_comms *c, sbx_buffer *buf, uint64_t expected_size);

/* A static description of an error code of this header. */
SBX_BUFFER_API const char *sbx_buffer_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* SBX_BUFFER_H */
