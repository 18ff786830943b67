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
      # The container's first process: namespaces, mounts, pivot_root, exec, pid 1 duties.
      "target_name": "ufs-init",
      "type": "executable",
      "sources": ["init/ufs-init.c", "init/json.c", "init/spec.c", "init/util.c", "init/rootfs.c", "init/process.c", "init/caps.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
