// Capabilities as Docker sets them by default: the bounding, permitted, effective and
// inheritable sets of the container's processes, with raw capset/prctl (no libcap).
#ifndef UFS_INIT_CAPS_H
#define UFS_INIT_CAPS_H

#include <stdbool.h>
#include <stdint.h>

#define CAPS_BIT(cap) ((uint64_t)1 << (cap))
#define CAPS_ALL (~(uint64_t)0)

// Docker's default list: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID,
// SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE (0xa80425fb).
extern const uint64_t caps_docker_default;

// The capability a name means ("SYS_ADMIN", "cap_sys_admin": case-insensitive, CAP_
// optional), or -1 for an unknown name. "ALL" is not a capability here.
int caps_by_name(const char *name);

// The container's set from the spec's fields, by Docker's rules: privileged keeps all;
// "ALL" in add starts from every capability (minus the drops); "ALL" in drop keeps only
// the adds; otherwise the default minus the drops plus the adds. add/drop are
// NULL-terminated (or NULL). An unknown name exits 125 with a spec error.
uint64_t caps_resolve(char **add, char **drop, bool privileged);

// Removes every capability outside keep from the bounding set (needs CAP_SETPCAP for the
// ones still there): nothing executed afterwards can gain them, even as root.
void caps_limit_bounding(uint64_t keep);

// Permitted and effective become keep (limited to what the process has), inheritable
// becomes empty, as Docker does since CVE-2022-24769.
void caps_set(uint64_t keep);

// Empties the ambient set (kernels without one: nothing to do).
void caps_clear_ambient(void);

#endif
