// Builds the container's filesystem view in pid 1's private mount namespace.
//
// Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT) and mounted on
// through /proc/self/fd/N, so a symlink in the image (say /data -> /etc or ../../..) can
// never make us mount over, or create files in, a host path.
#define _GNU_SOURCE
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "spec.h"
#include "util.h"

// struct mount_attr from <linux/mount.h>, which cannot be included beside <sys/mount.h>.
struct ufs_mount_attr {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define UFS_MOUNT_ATTR_RDONLY 0x1

const char *fd_path(char *buf, int fd) {
  snprintf(buf, 32, "/proc/self/fd/%d", fd);
  return buf;
}

// Opens path (absolute or relative, inside the container) as if rootfd were "/".
static int open_in_root(int rootfd, const char *path, int flags) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) die("openat2: needs Linux 5.6 or later");
  return fd;
}

// An existing directory inside the container, for mounting on. what names it in errors.
static int open_dir_in_root(int rootfd, const char *path, const char *what) {
  int fd = open_in_root(rootfd, path, O_PATH | O_DIRECTORY);
  if (fd < 0) die_errno("mount %s", what);
  return fd;
}

static void mount_on(const char *source, const char *fstype, int target_fd, unsigned long flags,
                     const char *data, const char *what) {
  char t[32];
  if (mount(source, fd_path(t, target_fd), fstype, flags, data) < 0) die_errno("mount %s", what);
}

// Makes the mount whose root is fd read-only, with everything mounted under it.
static void make_readonly(int fd, const char *what) {
#ifdef SYS_mount_setattr
  struct ufs_mount_attr attr = { UFS_MOUNT_ATTR_RDONLY, 0, 0, 0 };
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) == 0)
    return;
  if (errno != ENOSYS) die_errno("remount %s read-only", what);
#endif
  // Older kernels: the top mount only; keep its other flags, which a remount would reset.
  struct statvfs sv;
  unsigned long keep = 0;
  if (fstatvfs(fd, &sv) == 0) {
    if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) keep |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) keep |= MS_RELATIME;
  }
  char t[32];
  if (mount(NULL, fd_path(t, fd), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) < 0)
    die_errno("remount %s read-only", what);
}

// Joins a and "/" b into a new string.
static char *join(const char *a, const char *b) {
  char *out;
  if (asprintf(&out, "%s/%s", a, b) < 0) die("out of memory");
  return out;
}

// The mount target for a volume, created if missing (directories for each missing parent;
// the last one a directory or an empty file, like its source). Returns an O_PATH fd.
// Symlinks on the way are followed by hand, as if rootfd were "/": a dangling one has its
// target created inside the rootfs, as Docker does.
static int ensure_target(int rootfd, const char *target, bool dir) {
  int fd = open_in_root(rootfd, target, O_PATH);
  if (fd >= 0) return fd;
  if (errno != ENOENT) die_errno("mount %s", target);

  char *cur = strdup("");  // the resolved part: no symlinks, "" is the root
  char *rest = strdup(target);
  if (!cur || !rest) die("out of memory");
  int links = 0;
  for (;;) {
    const char *p = rest + strspn(rest, "/");
    if (!*p) break;
    const char *e = strchrnul(p, '/');
    char *name = strndup(p, (size_t)(e - p));
    char *tail = strdup(e);
    if (!name || !tail) die("out of memory");
    free(rest);
    rest = tail;
    bool last = rest[strspn(rest, "/")] == '\0';
    if (strcmp(name, ".") == 0) { free(name); continue; }
    if (strcmp(name, "..") == 0) {  // never above the root
      char *slash = strrchr(cur, '/');
      if (slash) *slash = '\0';
      free(name);
      continue;
    }
    int parent = open_in_root(rootfd, *cur ? cur : "/", O_PATH | O_DIRECTORY);
    if (parent < 0) die_errno("mount %s", target);
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno != ENOENT) die_errno("mount %s", target);
      if (last && !dir) {
        int f = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
        if (f < 0) die_errno("mount %s: create the target", target);
        close(f);
      } else if (mkdirat(parent, name, 0755) < 0) {
        die_errno("mount %s: create the target", target);
      }
    } else if (S_ISLNK(st.st_mode)) {
      char link[4096];
      ssize_t n = readlinkat(parent, name, link, sizeof link - 1);
      if (n < 0) die_errno("mount %s", target);
      link[n] = '\0';
      if (++links > 40) {
        errno = ELOOP;
        die_errno("mount %s", target);
      }
      if (link[0] == '/') cur[0] = '\0';
      char *more = join(link, rest);
      free(rest);
      rest = more;
      close(parent);
      free(name);
      continue;
    }
    close(parent);
    char *next = join(cur, name);
    free(cur);
    free(name);
    cur = next;
  }
  fd = open_in_root(rootfd, *cur ? cur : "/", O_PATH);
  if (fd < 0) die_errno("mount %s", target);
  free(cur);
  free(rest);
  return fd;
}

struct dev_node { const char *name; unsigned major, minor; };
static const struct dev_node dev_nodes[] = {
  { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
  { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

static void setup_dev(int rootfd) {
  int fd = open_dir_in_root(rootfd, "/dev", "/dev");
  mount_on("tmpfs", "tmpfs", fd, MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", "/dev");
  close(fd);
  int dev = open_dir_in_root(rootfd, "/dev", "/dev");  // now the new tmpfs

  for (size_t i = 0; i < sizeof dev_nodes / sizeof dev_nodes[0]; i++) {
    const struct dev_node *n = &dev_nodes[i];
    if (mknodat(dev, n->name, S_IFCHR | 0666, makedev(n->major, n->minor)) == 0) continue;
    // No mknod (a user namespace, a nodev parent): bind the host's node instead.
    if (errno != EPERM && errno != EACCES) die_errno("mknod /dev/%s", n->name);
    int f = openat(dev, n->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f < 0) die_errno("create /dev/%s", n->name);
    char host[64], what[64];
    snprintf(host, sizeof host, "/dev/%s", n->name);
    snprintf(what, sizeof what, "/dev/%s", n->name);
    mount_on(host, NULL, f, MS_BIND, NULL, what);
    close(f);
  }

  if (mkdirat(dev, "pts", 0755) < 0) die_errno("mkdir /dev/pts");
  fd = openat(dev, "pts", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) die_errno("open /dev/pts");
  mount_on("devpts", "devpts", fd, MS_NOSUID | MS_NOEXEC,
           "newinstance,ptmxmode=0666,mode=0620,gid=5", "/dev/pts");
  close(fd);

  if (mkdirat(dev, "shm", 01777) < 0) die_errno("mkdir /dev/shm");
  fd = openat(dev, "shm", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) die_errno("open /dev/shm");
  mount_on("shm", "tmpfs", fd, MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k",
           "/dev/shm");
  close(fd);

  static const char *const links[][2] = {
    { "pts/ptmx", "ptmx" }, { "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" },
    { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat(links[i][0], dev, links[i][1]) < 0) die_errno("symlink /dev/%s", links[i][1]);
  close(dev);
}

static void setup_sys(int rootfd) {
  int fd = open_dir_in_root(rootfd, "/sys", "/sys");
  char t[32];
  if (mount("sysfs", fd_path(t, fd), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    // A fresh sysfs can be refused (it needs the network namespace's privileges): bind the
    // host's instead, read-only all the way down.
    if (errno != EPERM) die_errno("mount /sys");
    if (mount("/sys", t, NULL, MS_BIND | MS_REC, NULL) < 0) die_errno("mount /sys");
    int top = open_dir_in_root(rootfd, "/sys", "/sys");
    make_readonly(top, "/sys");
    close(top);
  }
  close(fd);
}

static void setup_volume(int rootfd, const struct spec_mount *m) {
  int src = open(m->source, O_PATH | O_CLOEXEC);
  if (src < 0) die_errno("mount %s: source %s", m->target, m->source);
  struct stat st;
  if (fstat(src, &st) < 0) die_errno("mount %s: source %s", m->target, m->source);
  int dst = ensure_target(rootfd, m->target, S_ISDIR(st.st_mode));
  char s[32], d[32];
  if (mount(fd_path(s, src), fd_path(d, dst), NULL, MS_BIND | MS_REC, NULL) < 0)
    die_errno("mount %s", m->target);
  close(src);
  close(dst);
  if (m->readonly) {
    int top = open_in_root(rootfd, m->target, O_PATH);  // the new mount's root
    if (top < 0) die_errno("mount %s", m->target);
    make_readonly(top, m->target);
    close(top);
  }
}

// Docker's defaults: what of the host's kernel /proc and /sys would show or let root change
// (keys, kernel memory, timers, firmware, sysctls, sysrq). Hidden: /dev/null bound over a
// file, an empty read-only tmpfs over a directory. Read-only: bound on itself read-only.
static const char *const masked_paths[] = {
  "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
  "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
  "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
  "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

// An existing path in the container's /proc or /sys (after pivot_root), or -1 if the
// kernel has none.
static int open_kernel_path(const char *path) {
  int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT) die_errno("mask %s", path);
  return fd;
}

static void mask_paths(void) {
  for (size_t i = 0; i < sizeof readonly_paths / sizeof readonly_paths[0]; i++) {
    const char *p = readonly_paths[i];
    int fd = open_kernel_path(p);
    if (fd < 0) continue;
    char t[32];
    if (mount(fd_path(t, fd), t, NULL, MS_BIND | MS_REC, NULL) < 0) die_errno("mask %s", p);
    close(fd);
    int top = open_kernel_path(p);  // the new mount's root
    if (top < 0) die_errno("mask %s", p);
    make_readonly(top, p);
    close(top);
  }
  for (size_t i = 0; i < sizeof masked_paths / sizeof masked_paths[0]; i++) {
    const char *p = masked_paths[i];
    int fd = open_kernel_path(p);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) < 0) die_errno("mask %s", p);
    char t[32];
    if (S_ISDIR(st.st_mode))
      mount_on("tmpfs", "tmpfs", fd, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555", p);
    else if (mount("/dev/null", fd_path(t, fd), NULL, MS_BIND, NULL) < 0)
      die_errno("mask %s", p);
    close(fd);
  }
}

void rootfs_setup(const struct spec *s) {
  // Nothing we mount may propagate back to the host (nor host mounts in to us).
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die_errno("make / private");

  struct stat st;
  if (stat(s->rootfs, &st) < 0) die_errno("rootfs %s", s->rootfs);
  if (!S_ISDIR(st.st_mode)) die("rootfs %s: not a directory", s->rootfs);
  // pivot_root wants a mount point; binding the rootfs on itself makes one in any case.
  if (mount(s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    die_errno("bind rootfs %s", s->rootfs);
  int rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) die_errno("rootfs %s", s->rootfs);

  int fd = open_dir_in_root(rootfd, "/proc", "/proc");
  mount_on("proc", "proc", fd, MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/proc");
  close(fd);
  setup_dev(rootfd);
  setup_sys(rootfd);
  for (size_t i = 0; i < s->nmounts; i++) setup_volume(rootfd, &s->mounts[i]);

  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
  // only the container's mounts in this namespace.
  if (fchdir(rootfd) < 0) die_errno("chdir rootfs");
  if (syscall(SYS_pivot_root, ".", ".") < 0) die_errno("pivot_root");
  if (umount2(".", MNT_DETACH) < 0) die_errno("detach the old root");
  if (chdir("/") < 0) die_errno("chdir /");
  close(rootfd);
  // After the volumes, so that none can be put over a masked path (Docker's order too).
  if (!s->privileged) mask_paths();
}
