#define _GNU_SOURCE
#include "caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

// Indexed by capability number (linux/capability.h).
static const char *const cap_names[] = {
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
  "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
  "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
  "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
  "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
  "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
  "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};
#define NCAPS ((int)(sizeof cap_names / sizeof cap_names[0]))

const uint64_t caps_docker_default =
  CAPS_BIT(CAP_CHOWN) | CAPS_BIT(CAP_DAC_OVERRIDE) | CAPS_BIT(CAP_FSETID) |
  CAPS_BIT(CAP_FOWNER) | CAPS_BIT(CAP_MKNOD) | CAPS_BIT(CAP_NET_RAW) | CAPS_BIT(CAP_SETGID) |
  CAPS_BIT(CAP_SETUID) | CAPS_BIT(CAP_SETFCAP) | CAPS_BIT(CAP_SETPCAP) |
  CAPS_BIT(CAP_NET_BIND_SERVICE) | CAPS_BIT(CAP_SYS_CHROOT) | CAPS_BIT(CAP_KILL) |
  CAPS_BIT(CAP_AUDIT_WRITE);

int caps_by_name(const char *name) {
  if (strncasecmp(name, "CAP_", 4) == 0) name += 4;
  for (int i = 0; i < NCAPS; i++)
    if (strcasecmp(name, cap_names[i]) == 0) return i;
  return -1;
}

static bool has_all(char **list) {
  for (char **p = list; p && *p; p++)
    if (strcasecmp(*p, "ALL") == 0) return true;
  return false;
}

// The bits of the named capabilities ("ALL" skipped: the caller has looked at it).
static uint64_t bits_of(char **list, const char *key) {
  uint64_t bits = 0;
  for (char **p = list; p && *p; p++) {
    if (strcasecmp(*p, "ALL") == 0) continue;
    int cap = caps_by_name(*p);
    if (cap < 0) die("spec: unknown capability \"%s\" in \"%s\"", *p, key);
    bits |= CAPS_BIT(cap);
  }
  return bits;
}

uint64_t caps_resolve(char **add, char **drop, bool privileged) {
  // Names are checked even where they end up not mattering: a typo is an error.
  uint64_t adds = bits_of(add, "capAdd"), drops = bits_of(drop, "capDrop");
  if (privileged) return CAPS_ALL;
  if (has_all(add)) return CAPS_ALL & ~drops;
  if (has_all(drop)) return adds;
  return (caps_docker_default & ~drops) | adds;
}

void caps_limit_bounding(uint64_t keep) {
  // Up to the kernel's last capability (PR_CAPBSET_READ fails past it).
  for (int cap = 0; cap < 64; cap++) {
    if (keep & CAPS_BIT(cap)) continue;
    int r = prctl(PR_CAPBSET_READ, (unsigned long)cap, 0, 0, 0);
    if (r < 0) break;
    if (r == 1 && prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0, 0, 0) < 0)
      die_errno("capabilities: drop %s from the bounding set", cap < NCAPS ? cap_names[cap] : "?");
  }
}

void caps_set(uint64_t keep) {
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0) die_errno("capabilities: capget");
  uint64_t have = (uint64_t)data[0].permitted | (uint64_t)data[1].permitted << 32;
  // Asking for one we lack (a runner that is not fully privileged) would fail: keep what exists.
  uint64_t want = keep & have;
  for (int i = 0; i < 2; i++) {
    data[i].permitted = data[i].effective = (uint32_t)(want >> (32 * i));
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) die_errno("capabilities: capset");
}

void caps_clear_ambient(void) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    die_errno("capabilities: clear the ambient set");
}
