// The container's filesystem: /proc, /dev, /sys and volumes on top of the rootfs, then
// pivot_root into it. Runs in pid 1 after it has its own mount namespace.
#ifndef UFS_INIT_ROOTFS_H
#define UFS_INIT_ROOTFS_H

struct spec;

// On return the process's root is the container's root and its cwd is "/"; unless the spec
// is privileged, Docker's masked and read-only /proc and /sys paths are in place.
// Any failure exits 125 with one line.
void rootfs_setup(const struct spec *s);

// "/proc/self/fd/<fd>" in buf (at least 32 bytes): the way to name an opened file in mount(2).
const char *fd_path(char *buf, int fd);

#endif
