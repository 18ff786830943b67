// Shared helpers for ufs-init: error exits with Contract 6's codes and messages, fds.
#ifndef UFS_INIT_UTIL_H
#define UFS_INIT_UTIL_H

#include <stddef.h>
#include <sys/types.h>

#define EXIT_SETUP 125       // ufs-init itself failed
#define EXIT_CANNOT_EXEC 126 // the command exists but cannot be run
#define EXIT_NOT_FOUND 127   // the command does not exist

// Prints "ufs-init: <msg>" (one line) to stderr and exits with code.
__attribute__((noreturn, format(printf, 2, 3))) void die_code(int code, const char *fmt, ...);
// Exit 125 with "ufs-init: <msg>".
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
// Exit 125 with "ufs-init: <msg>: <strerror(errno)>".
__attribute__((noreturn, format(printf, 1, 2))) void die_errno(const char *fmt, ...);

// Closes every fd >= lowfd (close_range, or one by one where it is missing).
void close_fds_from(int lowfd);

// write(2) until done; -1 on error.
int write_all(int fd, const void *buf, size_t len);

#endif
