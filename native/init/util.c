#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static __attribute__((noreturn)) void vdie(int code, int with_errno, const char *fmt, va_list ap) {
  int err = errno;
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  // Keep it one line whatever the spec contained.
  for (char *c = msg; *c; c++)
    if (*c == '\n' || *c == '\r') *c = ' ';
  char line[1200];
  int n;
  if (with_errno) n = snprintf(line, sizeof line, "ufs-init: %s: %s\n", msg, strerror(err));
  else n = snprintf(line, sizeof line, "ufs-init: %s\n", msg);
  if (n > (int)sizeof line - 1) {
    n = (int)sizeof line - 1;
    line[n - 1] = '\n';
  }
  (void)write_all(2, line, (size_t)n);
  _exit(code);
}

void die_code(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdie(code, 0, fmt, ap);
}

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdie(EXIT_SETUP, 0, fmt, ap);
}

void die_errno(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdie(EXIT_SETUP, 1, fmt, ap);
}

void close_fds_from(int lowfd) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0) return;
#endif
  struct rlimit rl;
  long max = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) max = (long)rl.rlim_cur;
  for (long fd = lowfd; fd < max; fd++) close((int)fd);
}

int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}
