{
  # Built by scripts/postinstall.mjs (node-gyp rebuild in native/).
  "targets": [
    {
      # N-API addon: system calls Node lacks (xattrs, mknod, utimensat with ns, renameat2).
      "target_name": "ufs_native",
      "sources": ["sys/ufs_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    },
    {
      # N-API addon: our binding to libfuse3's low-level API (src/fuse/lowlevel/).
      "target_name": "ufs_fuse",
      "sources": ["fuse/ufs_fuse.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)"]
    },
    {
      # mount.fuse.ufs: forks, execs the union's server (one Node start) and waits for it
      # to report the mount ready (scripts/setup links /sbin/mount.fuse.ufs to it).
      "target_name": "ufs-mount-helper",
      "type": "executable",
      "sources": ["sys/ufs_mount_helper.c"],
      "defines": ["UFS_NODE=\"<!(node -p process.execPath)\""],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    },
    {
      # `ufs run --init`'s pid 1: forwards signals, reaps orphans. Static: it runs inside
      # any image, with or without a libc.
      "target_name": "ufs-init",
      "type": "executable",
      "sources": ["init/ufs-init.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-static"]
    }
  ]
}
