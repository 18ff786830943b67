// The container spec (Contract 6), read from the JSON file the runtime writes.
#ifndef UFS_INIT_SPEC_H
#define UFS_INIT_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spec_mount {
  char *source;  // host path, absolute
  char *target;  // path inside the container, absolute
  bool readonly;
};

struct spec {
  char *rootfs;         // run: absolute host path of the container's root (a mount point)
  char **args;          // NULL-terminated, at least one
  char **env;           // NULL-terminated, exactly the container's environment
  char *cwd;            // absolute, default "/"
  uid_t uid;
  gid_t gid;
  gid_t *groups;        // supplementary groups (setgroups), may be empty
  size_t ngroups;
  char *hostname;       // run: NULL = keep the (new, copied) UTS name
  bool network_none;    // run: "network": "none" -> own network namespace with lo only
  bool tty;
  struct spec_mount *mounts;
  size_t nmounts;
  pid_t pid;            // exec: host pid of the container's pid 1
  uint64_t caps;        // the container's capabilities (bits), from capAdd/capDrop/privileged
  bool privileged;      // all capabilities, no masked or read-only /proc and /sys paths
  bool no_new_privs;    // "noNewPrivileges": PR_SET_NO_NEW_PRIVS before exec
};

enum spec_mode { SPEC_RUN, SPEC_EXEC };

// Reads and checks the spec; on any error prints one line and exits 125.
void spec_load(const char *path, enum spec_mode mode, struct spec *out);

#endif
