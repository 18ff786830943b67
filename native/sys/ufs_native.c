// ufs_native: the system calls Node lacks (typed in src/sys/index.ts). Every function is
// synchronous, acts on the path itself (never follows a final symlink) and, on failure, throws
// an Error shaped like Node's fs errors: code (errno name), errno (negative), syscall, path
// (and dest for renameat2), message "ENODATA: no data available, lgetxattr '/x'".
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <time.h>
#include <unistd.h>

// ---- errors -------------------------------------------------------------------------------

static const char *errno_name(int e) {
  switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
    E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(ENOTBLK) E(EBUSY) E(EEXIST) E(EXDEV)
    E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG)
    E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE) E(EDEADLK)
    E(ENAMETOOLONG) E(ENOLCK) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOMSG) E(EIDRM) E(ENOSTR)
    E(ENODATA) E(ETIME) E(ENOSR) E(EREMOTE) E(ENOLINK) E(EPROTO) E(EMULTIHOP) E(EBADMSG)
    E(EOVERFLOW) E(EILSEQ) E(EUSERS) E(ENOTSOCK) E(EDESTADDRREQ) E(EMSGSIZE) E(EPROTOTYPE)
    E(ENOPROTOOPT) E(EPROTONOSUPPORT) E(EOPNOTSUPP) E(EAFNOSUPPORT) E(EADDRINUSE)
    E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH) E(ENETRESET) E(ECONNABORTED) E(ECONNRESET)
    E(ENOBUFS) E(EISCONN) E(ENOTCONN) E(ETIMEDOUT) E(ECONNREFUSED) E(EHOSTUNREACH)
    E(EALREADY) E(EINPROGRESS) E(ESTALE) E(EDQUOT) E(ECANCELED) E(EOWNERDEAD)
    E(ENOTRECOVERABLE) E(ENOMEDIUM) E(EMEDIUMTYPE) E(EUCLEAN)
#undef E
    default: return NULL;
  }
}

// Node's wording (libuv's: "no data available", "file already exists"); strerror's in lower
// case for what libuv does not know.
static void errno_message(int e, char *out, size_t size) {
  char name[64];
  uv_err_name_r(-e, name, sizeof(name));
  if (strncmp(name, "Unknown", 7) != 0) {
    uv_strerror_r(-e, out, size);
    return;
  }
  char buf[256];
  const char *s = strerror_r(e, buf, sizeof(buf));
  snprintf(out, size, "%s", s);
  if (out[0] != '\0' && !(out[0] == 'I' && out[1] == '/')) out[0] = (char) tolower((unsigned char) out[0]);
}

// Throws the error for errno `e` of `syscall` on `path` (and `dest`, for two-path calls).
static napi_value throw_errno(napi_env env, int e, const char *syscall, const char *path, const char *dest) {
  const char *name = errno_name(e);
  char code_buf[32];
  if (name == NULL) {
    snprintf(code_buf, sizeof(code_buf), "E%d", e);
    name = code_buf;
  }
  char desc[256];
  errno_message(e, desc, sizeof(desc));

  size_t len = strlen(name) + strlen(desc) + strlen(syscall) + (path ? strlen(path) : 0) + (dest ? strlen(dest) : 0) + 32;
  char *msg = malloc(len);
  if (msg == NULL) {
    napi_throw_error(env, name, desc);
    return NULL;
  }
  if (path != NULL && dest != NULL) snprintf(msg, len, "%s: %s, %s '%s' -> '%s'", name, desc, syscall, path, dest);
  else if (path != NULL) snprintf(msg, len, "%s: %s, %s '%s'", name, desc, syscall, path);
  else snprintf(msg, len, "%s: %s, %s", name, desc, syscall);

  napi_value err, v_msg, v_code, v_errno, v_syscall, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &v_msg);
  free(msg);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v_code);
  napi_create_error(env, v_code, v_msg, &err);
  napi_create_int32(env, -e, &v_errno);
  napi_set_named_property(env, err, "errno", v_errno);
  napi_set_named_property(env, err, "code", v_code);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v_syscall);
  napi_set_named_property(env, err, "syscall", v_syscall);
  if (path != NULL) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, err, "path", v);
  }
  if (dest != NULL) {
    napi_create_string_utf8(env, dest, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, err, "dest", v);
  }
  napi_throw(env, err);
  return NULL;
}

// ---- arguments ----------------------------------------------------------------------------

static napi_value throw_type(napi_env env, const char *fn, const char *what) {
  char msg[160];
  snprintf(msg, sizeof(msg), "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

// A string argument, malloc'd (NUL-terminated); NULL (with a TypeError thrown) otherwise.
// A Buffer argument gives its bytes as they are (file names are bytes, not UTF-8).
static char *arg_string(napi_env env, napi_value v, const char *fn, const char *what) {
  napi_valuetype t;
  size_t len;
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) == napi_ok && is_buffer) {
    void *data;
    if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) {
      throw_type(env, fn, what);
      return NULL;
    }
    if (memchr(data, 0, len) != NULL) {
      throw_type(env, fn, "paths must not contain NUL bytes");
      return NULL;
    }
    char *b = malloc(len + 1);
    if (b == NULL) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return NULL;
    }
    memcpy(b, data, len);
    b[len] = 0;
    return b;
  }
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    throw_type(env, fn, what);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) { // an embedded NUL would silently shorten the path
    free(s);
    throw_type(env, fn, "strings must not contain NUL bytes");
    return NULL;
  }
  return s;
}

static int arg_int64(napi_env env, napi_value v, int64_t *out, const char *fn, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_int64(env, v, out) != napi_ok) {
    throw_type(env, fn, what);
    return 0;
  }
  return 1;
}

#define ARGS(n) \
  napi_value argv[n]; \
  size_t argc = n; \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL); \
  if (argc < n) return throw_type(env, FN, "expected " #n " arguments");

// ---- xattrs -------------------------------------------------------------------------------

// lgetxattr(file, name): Buffer. Sized by a query; retried if the value grew in between.
#define FN "lgetxattr"
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  ARGS(2)
  napi_value result = NULL;
  char *file = arg_string(env, argv[0], FN, "file must be a string");
  char *name = file ? arg_string(env, argv[1], FN, "name must be a string") : NULL;
  if (file == NULL || name == NULL) goto out;
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = lgetxattr(file, name, NULL, 0);
    if (size < 0) {
      throw_errno(env, errno, FN, file, NULL);
      goto out;
    }
    char *buf = malloc(size > 0 ? (size_t) size : 1);
    if (buf == NULL) {
      throw_errno(env, ENOMEM, FN, file, NULL);
      goto out;
    }
    ssize_t got = lgetxattr(file, name, buf, (size_t) size);
    if (got < 0) {
      int e = errno;
      free(buf);
      if (e == ERANGE) continue;
      throw_errno(env, e, FN, file, NULL);
      goto out;
    }
    napi_create_buffer_copy(env, (size_t) got, buf, NULL, &result);
    free(buf);
    goto out;
  }
  throw_errno(env, ERANGE, FN, file, NULL);
out:
  free(file);
  free(name);
  return result;
}
#undef FN

// lsetxattr(file, name, value: Buffer, flags).
#define FN "lsetxattr"
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  ARGS(4)
  char *file = NULL, *name = NULL;
  void *data = NULL;
  size_t len = 0;
  bool is_buffer = false;
  int64_t flags = 0;
  file = arg_string(env, argv[0], FN, "file must be a string");
  if (file == NULL) goto out;
  name = arg_string(env, argv[1], FN, "name must be a string");
  if (name == NULL) goto out;
  if (napi_is_buffer(env, argv[2], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    throw_type(env, FN, "value must be a Buffer");
    goto out;
  }
  if (!arg_int64(env, argv[3], &flags, FN, "flags must be a number")) goto out;
  if (lsetxattr(file, name, len ? data : "", len, (int) flags) < 0) throw_errno(env, errno, FN, file, NULL);
out:
  free(file);
  free(name);
  return NULL;
}
#undef FN

// llistxattr(file): string[] (names as the kernel lists them).
#define FN "llistxattr"
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  ARGS(1)
  napi_value result = NULL;
  char *file = arg_string(env, argv[0], FN, "file must be a string");
  if (file == NULL) return NULL;
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = llistxattr(file, NULL, 0);
    if (size < 0) {
      throw_errno(env, errno, FN, file, NULL);
      goto out;
    }
    char *buf = malloc(size > 0 ? (size_t) size : 1);
    if (buf == NULL) {
      throw_errno(env, ENOMEM, FN, file, NULL);
      goto out;
    }
    ssize_t got = llistxattr(file, buf, (size_t) size);
    if (got < 0) {
      int e = errno;
      free(buf);
      if (e == ERANGE) continue;
      throw_errno(env, e, FN, file, NULL);
      goto out;
    }
    napi_create_array(env, &result);
    uint32_t n = 0;
    for (ssize_t pos = 0; pos < got;) {
      size_t len = strnlen(buf + pos, (size_t) (got - pos));
      if (len > 0) {
        napi_value name;
        napi_create_string_utf8(env, buf + pos, len, &name);
        napi_set_element(env, result, n++, name);
      }
      pos += (ssize_t) len + 1;
    }
    free(buf);
    goto out;
  }
  throw_errno(env, ERANGE, FN, file, NULL);
out:
  free(file);
  return result;
}
#undef FN

// lremovexattr(file, name).
#define FN "lremovexattr"
static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  ARGS(2)
  char *file = arg_string(env, argv[0], FN, "file must be a string");
  char *name = file ? arg_string(env, argv[1], FN, "name must be a string") : NULL;
  if (file != NULL && name != NULL && lremovexattr(file, name) < 0) throw_errno(env, errno, FN, file, NULL);
  free(file);
  free(name);
  return NULL;
}
#undef FN

// ---- nodes, times, renames ----------------------------------------------------------------

// mknod(file, mode, dev): mode includes the type (S_IFIFO, S_IFCHR, ...); dev as from stat's
// rdev (glibc's makedev encoding).
#define FN "mknod"
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  ARGS(3)
  int64_t mode, dev;
  char *file = arg_string(env, argv[0], FN, "file must be a string");
  if (file == NULL) return NULL;
  if (arg_int64(env, argv[1], &mode, FN, "mode must be a number") &&
      arg_int64(env, argv[2], &dev, FN, "dev must be a number")) {
    if (mknod(file, (mode_t) mode, (dev_t) dev) < 0) throw_errno(env, errno, FN, file, NULL);
  }
  free(file);
  return NULL;
}
#undef FN

// utimensat(file, atimeSec, atimeNsec, mtimeSec, mtimeNsec): AT_SYMLINK_NOFOLLOW, so a symlink
// gets its own times. nsec may be UTIME_NOW or UTIME_OMIT (then sec is ignored).
#define FN "utimensat"
static napi_value js_utimensat(napi_env env, napi_callback_info info) {
  ARGS(5)
  int64_t v[4];
  char *file = arg_string(env, argv[0], FN, "file must be a string");
  if (file == NULL) return NULL;
  for (int i = 0; i < 4; i++) {
    if (!arg_int64(env, argv[i + 1], &v[i], FN, "times must be numbers")) goto out;
  }
  struct timespec ts[2] = { { (time_t) v[0], (long) v[1] }, { (time_t) v[2], (long) v[3] } };
  if (utimensat(AT_FDCWD, file, ts, AT_SYMLINK_NOFOLLOW) < 0) throw_errno(env, errno, FN, file, NULL);
out:
  free(file);
  return NULL;
}
#undef FN

// renameat2(from, to, flags): RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT. Through
// syscall(2), which works whatever the glibc version.
#define FN "renameat2"
static napi_value js_renameat2(napi_env env, napi_callback_info info) {
  ARGS(3)
  int64_t flags;
  char *from = arg_string(env, argv[0], FN, "from must be a string");
  char *to = from ? arg_string(env, argv[1], FN, "to must be a string") : NULL;
  if (from != NULL && to != NULL && arg_int64(env, argv[2], &flags, FN, "flags must be a number")) {
    if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, (unsigned int) flags) < 0) {
      throw_errno(env, errno, FN, from, to);
    }
  }
  free(from);
  free(to);
  return NULL;
}
#undef FN

// ---- locks and processes ------------------------------------------------------------------

// flock(fd, op): LOCK_SH, LOCK_EX, LOCK_UN, with LOCK_NB; returns false when LOCK_NB would
// block (EWOULDBLOCK), true when done.
#define FN "flock"
static napi_value js_flock(napi_env env, napi_callback_info info) {
  ARGS(2)
  int64_t fd, op;
  if (!arg_int64(env, argv[0], &fd, FN, "fd must be a number") || !arg_int64(env, argv[1], &op, FN, "op must be a number")) return NULL;
  int r;
  do r = flock((int) fd, (int) op); while (r < 0 && errno == EINTR);
  napi_value result;
  if (r < 0) {
    if (errno == EWOULDBLOCK && (op & LOCK_NB)) {
      napi_get_boolean(env, false, &result);
      return result;
    }
    return throw_errno(env, errno, FN, NULL, NULL);
  }
  napi_get_boolean(env, true, &result);
  return result;
}
#undef FN

// Blocking calls on one of libuv's pool threads, settled as a promise on the loop.
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int kind; // 0: flock, 1: waitpid
  int64_t a, b;
  int err;
  int status;
} blocking_t;

static void blocking_execute(napi_env env, void *data) {
  blocking_t *w = data;
  int r;
  if (w->kind == 0) {
    do r = flock((int) w->a, (int) w->b); while (r < 0 && errno == EINTR);
  } else {
    do r = waitpid((pid_t) w->a, &w->status, __WALL); while (r < 0 && errno == EINTR);
  }
  w->err = r < 0 ? errno : 0;
}

static void blocking_complete(napi_env env, napi_status status, void *data) {
  blocking_t *w = data;
  napi_value v;
  if (w->err != 0) {
    // Built as throw_errno builds it, then taken back as a value for the rejection.
    throw_errno(env, w->err, w->kind == 0 ? "flock" : "waitpid", NULL, NULL);
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_reject_deferred(env, w->deferred, err);
  } else if (w->kind == 0) {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, w->deferred, v);
  } else {
    // { code, signal }: the exit status, or the number of the signal that ended it.
    napi_value code, sig;
    napi_create_object(env, &v);
    if (WIFSIGNALED(w->status)) {
      napi_get_null(env, &code);
      napi_create_int32(env, WTERMSIG(w->status), &sig);
    } else {
      napi_create_int32(env, WEXITSTATUS(w->status), &code);
      napi_get_null(env, &sig);
    }
    napi_set_named_property(env, v, "code", code);
    napi_set_named_property(env, v, "signal", sig);
    napi_resolve_deferred(env, w->deferred, v);
  }
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value start_blocking(napi_env env, int kind, int64_t a, int64_t b) {
  blocking_t *w = calloc(1, sizeof(*w));
  if (w == NULL) return throw_errno(env, ENOMEM, kind == 0 ? "flock" : "waitpid", NULL, NULL);
  w->kind = kind;
  w->a = a;
  w->b = b;
  napi_value promise, name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, kind == 0 ? "ufs_flock" : "ufs_waitpid", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, blocking_execute, blocking_complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

// flockWait(fd, op): Promise<void>, flock(2) without LOCK_NB, waiting on a pool thread.
#define FN "flockWait"
static napi_value js_flock_wait(napi_env env, napi_callback_info info) {
  ARGS(2)
  int64_t fd, op;
  if (!arg_int64(env, argv[0], &fd, FN, "fd must be a number") || !arg_int64(env, argv[1], &op, FN, "op must be a number")) return NULL;
  return start_blocking(env, 0, fd, op & ~LOCK_NB);
}
#undef FN

// waitpid(pid): Promise<{code, signal}>, reaping a child that libuv does not know (one
// reparented to us as a subreaper), waiting on a pool thread.
#define FN "waitpid"
static napi_value js_waitpid(napi_env env, napi_callback_info info) {
  ARGS(1)
  int64_t pid;
  if (!arg_int64(env, argv[0], &pid, FN, "pid must be a number")) return NULL;
  if (pid <= 0) return throw_type(env, FN, "pid must be positive");
  return start_blocking(env, 1, pid, 0);
}
#undef FN

// setChildSubreaper(on): orphans of our descendants are reparented to us (PR_SET_CHILD_SUBREAPER).
#define FN "setChildSubreaper"
static napi_value js_set_child_subreaper(napi_env env, napi_callback_info info) {
  ARGS(1)
  bool on;
  if (napi_get_value_bool(env, argv[0], &on) != napi_ok) return throw_type(env, FN, "on must be a boolean");
  if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) < 0) return throw_errno(env, errno, "prctl", NULL, NULL);
  return NULL;
}
#undef FN

// umount2(target, flags): MNT_DETACH (2) for a lazy unmount. Needs CAP_SYS_ADMIN.
#define FN "umount2"
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  ARGS(2)
  int64_t flags;
  char *target = arg_string(env, argv[0], FN, "target must be a string");
  if (target == NULL) return NULL;
  if (arg_int64(env, argv[1], &flags, FN, "flags must be a number") && umount2(target, (int) flags) < 0) {
    throw_errno(env, errno, FN, target, NULL);
  }
  free(target);
  return NULL;
}
#undef FN

// openTreeClone(path): a file descriptor (close-on-exec) on a detached copy of the mount at
// `path` (open_tree(2), OPEN_TREE_CLONE; kernel 5.2). Paths under /proc/self/fd/FD reach the
// same file system, and the mount at `path` is not busy for them: it can still be unmounted,
// the file system then lives on until FD is closed. Needs CAP_SYS_ADMIN.
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#define FN "openTreeClone"
static napi_value js_open_tree_clone(napi_env env, napi_callback_info info) {
  ARGS(1)
  char *target = arg_string(env, argv[0], FN, "path must be a string");
  if (target == NULL) return NULL;
  int fd = (int) syscall(SYS_open_tree, AT_FDCWD, target, OPEN_TREE_CLONE | O_CLOEXEC);
  napi_value out = NULL;
  if (fd < 0) throw_errno(env, errno, FN, target, NULL);
  else napi_create_int32(env, fd, &out);
  free(target);
  return out;
}
#undef FN

// ---- spawning without fork ----------------------------------------------------------------
// spawnWait(file, argv, env, stdinNull, setsid): starts `file` with posix_spawn (glibc's is
// a vfork-style clone: no copy of this process's page tables, which Node's fork-based spawn
// pays for, ~10 ms here) and returns { pid, exited: Promise<{ code, signal }> }. stdout and
// stderr are ours or files; stdin ours, /dev/null or a file. The child gets every signal's default action and
// an empty mask, as libuv's children do. Its end is watched through a pidfd polled on the
// event loop (no thread waits), and it is reaped here: libuv does not know it.

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_deferred deferred;
  napi_async_context actx;
  napi_ref resource;
  pid_t pid;
  int pidfd;
} child_t;

static void child_closed(uv_handle_t *h) {
  free(h->data);
}

static void child_settle(child_t *c, int status) {
  napi_env env = c->env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  napi_value resource, v, code, sig;
  napi_get_reference_value(env, c->resource, &resource);
  napi_callback_scope scope;
  // A callback scope: the promise's reactions run when it closes, as after any libuv callback.
  napi_open_callback_scope(env, resource, c->actx, &scope);
  napi_create_object(env, &v);
  if (WIFSIGNALED(status)) {
    napi_get_null(env, &code);
    napi_create_int32(env, WTERMSIG(status), &sig);
  } else {
    napi_create_int32(env, WEXITSTATUS(status), &code);
    napi_get_null(env, &sig);
  }
  napi_set_named_property(env, v, "code", code);
  napi_set_named_property(env, v, "signal", sig);
  napi_resolve_deferred(env, c->deferred, v);
  napi_close_callback_scope(env, scope);
  napi_async_destroy(env, c->actx);
  napi_delete_reference(env, c->resource);
  napi_close_handle_scope(env, hs);
}

static void child_readable(uv_poll_t *h, int status, int events) {
  child_t *c = h->data;
  int st = 0;
  pid_t r;
  do r = waitpid(c->pid, &st, WNOHANG | __WALL); while (r < 0 && errno == EINTR);
  if (r == 0) return; // not yet
  if (r < 0) st = 0xff00; // reaped elsewhere: status unknown (255)
  uv_poll_stop(h);
  close(c->pidfd);
  child_settle(c, st);
  uv_close((uv_handle_t *) h, child_closed);
}

static void free_strings(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

// A JS array of strings as a NULL-terminated vector; NULL with an exception pending otherwise.
static char **arg_strings(napi_env env, napi_value arr, const char *fn, const char *what) {
  uint32_t n;
  bool is_array = false;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array || napi_get_array_length(env, arr, &n) != napi_ok) {
    throw_type(env, fn, what);
    return NULL;
  }
  char **v = calloc(n + 1, sizeof(char *));
  if (v == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    if (napi_get_element(env, arr, i, &e) != napi_ok || (v[i] = arg_string(env, e, fn, what)) == NULL) {
      free_strings(v);
      return NULL;
    }
  }
  return v;
}

// The optional sixth argument, [stdin, stdout, stderr], names files for those that are not
// ours (null keeps ours): stdin opened for reading, stdout and stderr made anew (mode 0600).
static int arg_redirects(napi_env env, napi_value v, char *out[3]) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_undefined) return 1;
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array || napi_get_array_length(env, v, &n) != napi_ok || n != 3) {
    throw_type(env, "spawnWait", "stdio must be an array of three paths or nulls");
    return 0;
  }
  for (uint32_t i = 0; i < 3; i++) {
    napi_value e;
    napi_get_element(env, v, i, &e);
    if (napi_typeof(env, e, &t) != napi_ok) return 0;
    if (t == napi_null || t == napi_undefined) continue;
    if ((out[i] = arg_string(env, e, "spawnWait", "stdio entries must be paths or nulls")) == NULL) return 0;
  }
  return 1;
}

#define FN "spawnWait"
static napi_value js_spawn_wait(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  size_t argc = 6;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return throw_type(env, FN, "expected 5 arguments");
  if (argc < 6) napi_get_undefined(env, &argv[5]);
  char *redirect[3] = { NULL, NULL, NULL };
  if (!arg_redirects(env, argv[5], redirect)) {
    for (int i = 0; i < 3; i++) free(redirect[i]);
    return NULL;
  }
  bool stdin_null = false, new_session = false;
  if (napi_get_value_bool(env, argv[3], &stdin_null) != napi_ok || napi_get_value_bool(env, argv[4], &new_session) != napi_ok) {
    return throw_type(env, FN, "stdinNull and setsid must be booleans");
  }
  char *file = arg_string(env, argv[0], FN, "file must be a string");
  if (file == NULL) return NULL;
  char **args = arg_strings(env, argv[1], FN, "argv must be an array of strings");
  char **envp = args ? arg_strings(env, argv[2], FN, "env must be an array of strings") : NULL;
  napi_value result = NULL;
  if (args == NULL || envp == NULL) goto out;

  posix_spawnattr_t attr;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_init(&fa);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
  if (new_session) flags |= POSIX_SPAWN_SETSID;
  posix_spawnattr_setflags(&attr, flags);
  // Node marks its stdio close-on-exec once it used them; dup2 onto itself clears that in
  // the child (POSIX 2017, glibc 2.29+).
  if (redirect[0]) posix_spawn_file_actions_addopen(&fa, 0, redirect[0], O_RDONLY, 0);
  else if (stdin_null) posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  else posix_spawn_file_actions_adddup2(&fa, 0, 0);
  for (int i = 1; i < 3; i++) {
    if (redirect[i]) posix_spawn_file_actions_addopen(&fa, i, redirect[i], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    else posix_spawn_file_actions_adddup2(&fa, i, i);
  }
  pid_t pid;
  int err = posix_spawn(&pid, file, &fa, &attr, args, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    throw_errno(env, err, "posix_spawn", file, NULL);
    goto out;
  }

  child_t *c = calloc(1, sizeof(*c));
  int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
  uv_loop_t *loop;
  if (c == NULL || pidfd < 0 || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &c->poll, pidfd) != 0) {
    // Cannot watch it: it must not run unwatched.
    int e = c == NULL ? ENOMEM : pidfd < 0 ? errno : EIO;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, __WALL);
    if (pidfd >= 0) close(pidfd);
    free(c);
    throw_errno(env, e, "pidfd_open", file, NULL);
    goto out;
  }
  c->env = env;
  c->pid = pid;
  c->pidfd = pidfd;
  c->poll.data = c;
  napi_value promise, resource, name, pidv;
  napi_create_promise(env, &c->deferred, &promise);
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &c->resource);
  napi_create_string_utf8(env, "ufs_spawn", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &c->actx);
  uv_poll_start(&c->poll, UV_READABLE, child_readable);
  napi_create_object(env, &result);
  napi_create_int32(env, pid, &pidv);
  napi_set_named_property(env, result, "pid", pidv);
  napi_set_named_property(env, result, "exited", promise);
out:
  free(file);
  free_strings(args);
  free_strings(envp);
  for (int i = 0; i < 3; i++) free(redirect[i]);
  return result;
}
#undef FN

// ---- network namespaces -------------------------------------------------------------------
// bindNetns(file): a new network namespace kept alive by a bind mount on `file` (which must
// exist), as `ip netns add` keeps one under /run/netns, without starting `ip`. The namespace
// is made on a thread of its own: unshare(CLONE_NEWNET) moves only the calling thread, so the
// event loop's thread never leaves the host's namespace. The directory of `file` is made a
// shared mount first (as ip does), so the bind's removal reaches copies of it that other
// mount namespaces hold and the namespace really goes with `umount2(file, MNT_DETACH)`.

typedef struct {
  const char *file;
  int err;
  const char *syscall;
} netns_job_t;

static void *netns_thread(void *data) {
  netns_job_t *j = data;
  if (unshare(CLONE_NEWNET) < 0) {
    j->err = errno;
    j->syscall = "unshare";
  } else if (mount("/proc/thread-self/ns/net", j->file, "none", MS_BIND, NULL) < 0) {
    j->err = errno;
    j->syscall = "mount";
  }
  return NULL;
}

static int make_shared_dir(const char *dir) {
  if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0) return 0;
  if (errno != EINVAL) return -1;
  // Not a mount point of its own yet: bind it onto itself, then share it.
  if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0) return -1;
  return mount("", dir, "none", MS_SHARED | MS_REC, NULL);
}

#define FN "bindNetns"
static napi_value js_bind_netns(napi_env env, napi_callback_info info) {
  ARGS(1)
  char *file = arg_string(env, argv[0], FN, "file must be a string");
  if (file == NULL) return NULL;
  char *dir = strdup(file);
  char *slash = dir ? strrchr(dir, '/') : NULL;
  if (slash == NULL || slash == dir) {
    free(dir);
    free(file);
    return throw_type(env, FN, "file must be an absolute path below a directory");
  }
  *slash = 0;
  if (make_shared_dir(dir) < 0) {
    throw_errno(env, errno, "mount", dir, NULL);
  } else {
    netns_job_t job = { file, 0, NULL };
    pthread_t t;
    int e = pthread_create(&t, NULL, netns_thread, &job);
    if (e != 0) throw_errno(env, e, "pthread_create", file, NULL);
    else {
      pthread_join(t, NULL);
      if (job.err != 0) throw_errno(env, job.err, job.syscall, file, NULL);
    }
  }
  free(dir);
  free(file);
  return NULL;
}
#undef FN

// ---- memory ---------------------------------------------------------------------------------
// unmapCleanCode(file): drops from this process's page tables the pages of `file`'s
// read-only private mappings that hold nothing of their own (no anonymous page: never written,
// never relocated), and returns what malloc keeps free to the system. For a long-lived
// process that ran a large program once (a monitor after its start), this is most of its
// resident size. The pages stay in the page cache, shared with every other process of the
// same binary; what this process touches again is mapped back by a minor fault.
// Returns the kB no longer resident in those mappings.
#define FN "unmapCleanCode"
static napi_value js_unmap_clean_code(napi_env env, napi_callback_info info) {
  ARGS(1)
  char *file = arg_string(env, argv[0], FN, "file must be a string");
  if (file == NULL) return NULL;
  FILE *f = fopen("/proc/self/smaps", "re");
  if (f == NULL) {
    free(file);
    return throw_errno(env, errno, "open", "/proc/self/smaps", NULL);
  }
  // Collected first, advised after: madvise while reading smaps would change what it lists.
  struct { uintptr_t start, end; long rss; } ranges[64];
  int n = 0;
  char line[4352];
  uintptr_t start = 0, end = 0;
  int candidate = 0;
  long rss = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    unsigned long a, b, off;
    char perms[8], dev[16], path[4096];
    unsigned long inode;
    path[0] = 0;
    int k = sscanf(line, "%lx-%lx %7s %lx %15s %lu %4095s", &a, &b, perms, &off, dev, &inode, path);
    if (k >= 6) { // a mapping's header line (field lines do not parse as hex ranges)
      start = a;
      end = b;
      candidate = k == 7 && strcmp(path, file) == 0 && perms[1] == '-' && perms[3] == 'p';
      rss = 0;
      continue;
    }
    if (!candidate) continue;
    long v;
    if (sscanf(line, "Rss: %ld kB", &v) == 1) rss = v;
    else if (sscanf(line, "Anonymous: %ld kB", &v) == 1) {
      if (v == 0 && rss > 0 && n < 64) {
        ranges[n].start = start;
        ranges[n].end = end;
        ranges[n].rss = rss;
        n++;
      }
      candidate = 0;
    }
  }
  fclose(f);
  free(file);
  long dropped = 0;
  for (int i = 0; i < n; i++) {
    if (madvise((void *) ranges[i].start, ranges[i].end - ranges[i].start, MADV_DONTNEED) == 0) dropped += ranges[i].rss;
  }
  malloc_trim(0);
  napi_value result;
  napi_create_int64(env, dropped, &result);
  return result;
}
#undef FN

// ---- lstat and fstat -----------------------------------------------------------------------
// lstatInto(path, nums: Float64Array, bigs: BigInt64Array) -> 0 or the errno: lstat(2) of a
// byte-string path (one character per byte), written where the caller reads it: nums gets
// dev, mode, nlink, uid, gid, rdev, blksize; bigs gets ino, size, blocks and the three times
// in ns. For the union's resolution, which lstats every entry of every listing: no Buffer for
// the path, no Stats object of eighteen bigints, no exception for a missing name.
// fstatInto(fd, nums, bigs): the same for fstat(2).

// The caller's arrays for stats: a Float64Array and a BigInt64Array with room for at least
// one; `entries` (if given) gets how many stats they hold.
static bool stat_arrays(napi_env env, napi_value a1, napi_value a2, double **nums, int64_t **bigs, size_t *entries) {
  napi_typedarray_type t1, t2;
  size_t n1, n2;
  void *d1, *d2;
  if (napi_get_typedarray_info(env, a1, &t1, &n1, &d1, NULL, NULL) != napi_ok || t1 != napi_float64_array || n1 < 7 ||
      napi_get_typedarray_info(env, a2, &t2, &n2, &d2, NULL, NULL) != napi_ok || t2 != napi_bigint64_array || n2 < 6) {
    return false;
  }
  *nums = d1;
  *bigs = d2;
  if (entries) *entries = n1 / 7 < n2 / 6 ? n1 / 7 : n2 / 6;
  return true;
}

// A byte-string path argument (one character per byte) into `path`: false if it is not a
// string; else *err is 0, or ENAMETOOLONG or EINVAL for a path no syscall could take.
static bool path_arg(napi_env env, napi_value v, char path[PATH_MAX + 1], int *err) {
  size_t len;
  if (napi_get_value_string_latin1(env, v, path, PATH_MAX + 1, &len) != napi_ok) return false;
  *err = len >= PATH_MAX ? ENAMETOOLONG : memchr(path, 0, len) != NULL ? EINVAL : 0;
  return true;
}

static void stat_fill(const struct stat *st, double *nums, int64_t *bigs) {
  nums[0] = (double) st->st_dev;
  nums[1] = st->st_mode;
  nums[2] = (double) st->st_nlink;
  nums[3] = st->st_uid;
  nums[4] = st->st_gid;
  nums[5] = (double) st->st_rdev;
  nums[6] = (double) st->st_blksize;
  bigs[0] = (int64_t) st->st_ino;
  bigs[1] = st->st_size;
  bigs[2] = st->st_blocks;
  bigs[3] = (int64_t) st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec;
  bigs[4] = (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  bigs[5] = (int64_t) st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

// 0 or the errno, as lstatInto and fstatInto return it; the fields written on success.
static napi_value stat_result(napi_env env, int err, const struct stat *st, double *nums, int64_t *bigs) {
  if (err == 0) stat_fill(st, nums, bigs);
  napi_value result;
  napi_create_int32(env, err, &result);
  return result;
}

#define FN "lstatInto"
static napi_value js_lstat_into(napi_env env, napi_callback_info info) {
  ARGS(3)
  char path[PATH_MAX + 1];
  int err;
  double *nums;
  int64_t *bigs;
  if (!path_arg(env, argv[0], path, &err) || !stat_arrays(env, argv[1], argv[2], &nums, &bigs, NULL)) {
    return throw_type(env, FN, "expected (path: string, Float64Array(7), BigInt64Array(6))");
  }
  struct stat st;
  if (!err && fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) != 0) err = errno;
  return stat_result(env, err, &st, nums, bigs);
}
#undef FN

#define FN "fstatInto"
static napi_value js_fstat_into(napi_env env, napi_callback_info info) {
  ARGS(3)
  int32_t fd;
  double *nums;
  int64_t *bigs;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || !stat_arrays(env, argv[1], argv[2], &nums, &bigs, NULL)) {
    return throw_type(env, FN, "expected (fd: number, Float64Array(7), BigInt64Array(6))");
  }
  struct stat st;
  int err = fstat(fd, &st) == 0 ? 0 : errno;
  return stat_result(env, err, &st, nums, bigs);
}
#undef FN

// ---- whole directories ------------------------------------------------------------------------
// readdirNames(dir) -> string | errno: the names of a directory but "." and "..", sorted by
// strcmp as node's readdirSync gives them (a commit's tar lists a directory in this order),
// joined by NUL into one byte string (one character per byte); or the errno (positive) when
// it cannot be read. node's readdirSync with byte names makes a Buffer, and the union a
// string of it, per name: a walk of a big tree lists every directory of it.
// lstatNamesInto(dir, names, nums, bigs, errs) -> 0 or errno: fstatat(AT_SYMLINK_NOFOLLOW) of
// each of the NUL-joined `names` in `dir`, entry i written at nums[7i..], bigs[6i..] as
// lstatInto writes them, and its errno (0 on success) at errs[i]; the errno returned is
// opening `dir`'s. One call and one open per directory for the stats a readdirplus sends.

// Per thread: a union may be served on a worker thread of its own.
static _Thread_local char *names_buf, *joined_buf;
static _Thread_local size_t names_cap, joined_cap;
static _Thread_local size_t *name_at;
static _Thread_local size_t name_at_cap;

static bool grow(void **buf, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return true;
  size_t n = *cap ? *cap : 16384 / size;
  while (n < need) n *= 2;
  void *b = realloc(*buf, n * size);
  if (!b) return false;
  *buf = b;
  *cap = n;
  return true;
}

// Buffers grown for a huge directory are not kept.
static void names_shrink(void) {
  if (names_cap + joined_cap + name_at_cap * sizeof(size_t) > (1u << 20)) {
    free(names_buf);
    free(joined_buf);
    free(name_at);
    names_buf = joined_buf = NULL;
    name_at = NULL;
    names_cap = joined_cap = name_at_cap = 0;
  }
}

static int by_name(const void *a, const void *b) {
  return strcmp(names_buf + *(const size_t *) a, names_buf + *(const size_t *) b);
}

#define FN "readdirNames"
static napi_value js_readdir_names(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) return throw_type(env, FN, "expected (dir: string, noAtime?: boolean)");
  bool no_atime = false;
  if (argc > 1) napi_get_value_bool(env, argv[1], &no_atime);
  char path[PATH_MAX + 1];
  int err;
  if (!path_arg(env, argv[0], path, &err)) return throw_type(env, FN, "expected (dir: string, noAtime?: boolean)");
  DIR *dir = NULL;
  if (!err) {
    int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    int fd = open(path, flags | (no_atime ? O_NOATIME : 0));
    if (fd < 0 && no_atime && errno == EPERM) fd = open(path, flags); // O_NOATIME: owner or CAP_FOWNER only
    if (fd < 0 || !(dir = fdopendir(fd))) {
      err = errno;
      if (fd >= 0) close(fd);
    }
  }
  size_t used = 0, count = 0;
  while (dir) {
    errno = 0;
    struct dirent *e = readdir(dir);
    if (!e) {
      err = errno;
      break;
    }
    const char *n = e->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    size_t nl = strlen(n) + 1;
    if (!grow((void **) &names_buf, &names_cap, used + nl, 1) || !grow((void **) &name_at, &name_at_cap, count + 1, sizeof(size_t))) {
      err = ENOMEM;
      break;
    }
    memcpy(names_buf + used, n, nl);
    name_at[count++] = used;
    used += nl;
  }
  if (dir) closedir(dir);
  napi_value result;
  if (!err && count > 0 && !grow((void **) &joined_buf, &joined_cap, used, 1)) err = ENOMEM;
  if (err) {
    napi_create_int32(env, err, &result);
  } else {
    qsort(name_at, count, sizeof(size_t), by_name);
    size_t out = 0;
    for (size_t i = 0; i < count; i++) {
      const char *n = names_buf + name_at[i];
      size_t nl = strlen(n);
      if (i > 0) joined_buf[out++] = '\0';
      memcpy(joined_buf + out, n, nl);
      out += nl;
    }
    napi_create_string_latin1(env, count ? joined_buf : "", out, &result);
  }
  names_shrink();
  return result;
}
#undef FN

#define FN "lstatNamesInto"
static napi_value js_lstat_names_into(napi_env env, napi_callback_info info) {
  ARGS(5)
  char path[PATH_MAX + 1];
  int err;
  size_t nlen, room, n3;
  double *nums;
  int64_t *bigs;
  napi_typedarray_type t3;
  void *d3;
  if (!path_arg(env, argv[0], path, &err) ||
      napi_get_value_string_latin1(env, argv[1], NULL, 0, &nlen) != napi_ok ||
      !stat_arrays(env, argv[2], argv[3], &nums, &bigs, &room) ||
      napi_get_typedarray_info(env, argv[4], &t3, &n3, &d3, NULL, NULL) != napi_ok || t3 != napi_int32_array) {
    return throw_type(env, FN, "expected (dir: string, names: string, Float64Array, BigInt64Array, Int32Array)");
  }
  if (n3 < room) room = n3;
  if (!grow((void **) &names_buf, &names_cap, nlen + 1, 1)) return throw_errno(env, ENOMEM, "lstat", path, NULL);
  napi_get_value_string_latin1(env, argv[1], names_buf, nlen + 1, &nlen);
  napi_value result;
  int dfd = -1;
  if (!err && (dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) err = errno;
  int32_t *errs = d3;
  size_t i = 0;
  for (size_t at = 0; dfd >= 0 && at <= nlen && nlen > 0 && i < room; i++) {
    size_t end = at;
    while (end < nlen && names_buf[end] != '\0') end++;
    names_buf[end] = '\0';
    struct stat st;
    if (fstatat(dfd, names_buf + at, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      stat_fill(&st, nums + i * 7, bigs + i * 6);
      errs[i] = 0;
    } else {
      errs[i] = errno;
    }
    at = end + 1;
  }
  if (dfd >= 0) close(dfd);
  names_shrink();
  napi_create_int32(env, err, &result);
  return result;
}
#undef FN

// ---- directory read-ahead -------------------------------------------------------------------
// warmDirs(paths): reads each directory and lstats its entries on a thread of our own, and
// goes on into its subdirectories (WARM_DEPTH levels), so that the kernel's dentry and inode
// caches (and the disk blocks under them) are filled by the time the union lists them. The
// union's serving thread answers every request in turn and its own lstats are synchronous
// (src/unionfs/hostfs.ts): without this, a walk of a cold tree waits for the disk once per
// directory block and inode, on that one thread, between the walker's round trips.
// A depth-first walk (find, tar, du, cp -a) lists next the children of the directory it
// listed last, so the newest directories go first (a stack), and this thread, which makes no
// round trips, runs ahead of it. Bounded: a full stack drops its oldest entries, and a
// directory warmed lately is skipped. Nothing is written: O_NOATIME where the kernel allows it
// (the owner or CAP_FOWNER); the lstat results are not kept.
#define WARM_MAX 4096
#define WARM_DEPTH 3
#define WARM_SEEN 16384
struct warm_item {
  char *path;
  int depth; // levels still to go below this directory
};
static struct {
  pthread_mutex_t lock;
  pthread_cond_t more;
  struct warm_item items[WARM_MAX]; // a ring: `base` is the oldest, `base + count - 1` the newest
  size_t base, count;
  uint64_t seen[WARM_SEEN]; // hashes of directories warmed lately (direct-mapped)
  bool started;
} warm = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { { NULL, 0 } }, 0, 0, { 0 }, false };

static uint64_t warm_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (unsigned char) *s) * 0x100000001b3ULL;
  return h | 1; // 0 marks an empty slot
}

// With warm.lock held. Takes `path`.
static void warm_push(char *path, int depth) {
  if (warm.count == WARM_MAX) { // full: the oldest request goes
    free(warm.items[warm.base].path);
    warm.base = (warm.base + 1) % WARM_MAX;
    warm.count--;
  }
  warm.items[(warm.base + warm.count) % WARM_MAX] = (struct warm_item) { path, depth };
  warm.count++;
}

static void warm_dir(const char *path, int depth) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return;
  }
  size_t plen = strlen(path);
  char *subdirs[256];
  int n_sub = 0;
  struct dirent *e;
  struct stat st;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    if (fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (depth <= 0 || n_sub == 256) continue;
    size_t nlen = strlen(n);
    char *sub = malloc(plen + nlen + 2);
    if (sub == NULL) continue;
    memcpy(sub, path, plen);
    sub[plen] = '/';
    memcpy(sub + plen + 1, n, nlen + 1);
    subdirs[n_sub++] = sub;
  }
  closedir(d);
  pthread_mutex_lock(&warm.lock);
  while (n_sub > 0) warm_push(subdirs[--n_sub], depth - 1);
  pthread_mutex_unlock(&warm.lock);
}

static void *warm_main(void *arg) {
  for (;;) {
    pthread_mutex_lock(&warm.lock);
    while (warm.count == 0) pthread_cond_wait(&warm.more, &warm.lock);
    warm.count--;
    struct warm_item it = warm.items[(warm.base + warm.count) % WARM_MAX];
    uint64_t h = warm_hash(it.path);
    bool fresh = warm.seen[h % WARM_SEEN] != h;
    warm.seen[h % WARM_SEEN] = h;
    pthread_mutex_unlock(&warm.lock);
    if (fresh) warm_dir(it.path, it.depth);
    free(it.path);
  }
  return NULL;
}

// Queues the directories of `list` (byte strings: one character per byte), the first on top.
#define FN "warmDirs"
static napi_value js_warm_dirs(napi_env env, napi_callback_info info) {
  ARGS(1)
  uint32_t n = 0;
  bool is_array = false;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok) {
    return throw_type(env, FN, "paths must be an array of strings");
  }
  pthread_mutex_lock(&warm.lock);
  if (!warm.started) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    warm.started = pthread_create(&t, &attr, warm_main, NULL) == 0;
    if (warm.started) pthread_setname_np(t, "ufs-warm");
    pthread_attr_destroy(&attr);
  }
  // Pushed last to first, so that the first is taken first.
  for (uint32_t i = n; warm.started && i-- > 0;) {
    napi_value v;
    size_t len;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_get_value_string_latin1(env, v, NULL, 0, &len) != napi_ok) continue;
    char *path = malloc(len + 1);
    if (path == NULL) break;
    napi_get_value_string_latin1(env, v, path, len + 1, &len);
    warm_push(path, WARM_DEPTH - 1);
  }
  pthread_cond_signal(&warm.more);
  pthread_mutex_unlock(&warm.lock);
  return NULL;
}
#undef FN

// ---- module -------------------------------------------------------------------------------

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lremovexattr", NULL, js_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL },
    { "utimensat", NULL, js_utimensat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "renameat2", NULL, js_renameat2, NULL, NULL, NULL, napi_enumerable, NULL },
    { "flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL },
    { "flockWait", NULL, js_flock_wait, NULL, NULL, NULL, napi_enumerable, NULL },
    { "waitpid", NULL, js_waitpid, NULL, NULL, NULL, napi_enumerable, NULL },
    { "umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL },
    { "openTreeClone", NULL, js_open_tree_clone, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setChildSubreaper", NULL, js_set_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL },
    { "spawnWait", NULL, js_spawn_wait, NULL, NULL, NULL, napi_enumerable, NULL },
    { "bindNetns", NULL, js_bind_netns, NULL, NULL, NULL, napi_enumerable, NULL },
    { "unmapCleanCode", NULL, js_unmap_clean_code, NULL, NULL, NULL, napi_enumerable, NULL },
    { "warmDirs", NULL, js_warm_dirs, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lstatInto", NULL, js_lstat_into, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fstatInto", NULL, js_fstat_into, NULL, NULL, NULL, napi_enumerable, NULL },
    { "readdirNames", NULL, js_readdir_names, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lstatNamesInto", NULL, js_lstat_names_into, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
