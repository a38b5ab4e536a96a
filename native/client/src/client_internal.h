/* client_internal.h: helpers shared by the files of libsbx_client (not installed). */
#ifndef SBX_CLIENT_INTERNAL_H
#define SBX_CLIENT_INTERNAL_H

/* The lowest free fd number (what the next new fd gets), or -errno. `any_open_fd` is borrowed. */
int sbx_client_lowest_free_fd(int any_open_fd);

#endif /* SBX_CLIENT_INTERNAL_H */
