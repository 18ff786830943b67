// Reads the spec file and checks every field's type and range. Unknown keys are ignored
// (so the runtime can add fields first); a null value counts as absent.
#define _GNU_SOURCE
#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps.h"
#include "json.h"
#include "util.h"

#define MAX_SPEC_BYTES (16 << 20)

static const struct json *field(const struct json *root, const char *key, enum json_type want,
                                bool required) {
  const struct json *v = json_get(root, key);
  if (!v || v->type == JSON_NULL) {
    if (required) die("spec: missing \"%s\"", key);
    return NULL;
  }
  if (v->type != want)
    die("spec: \"%s\" must be %s, not %s", key, json_type_name(want), json_type_name(v->type));
  return v;
}

static unsigned long long whole_number(const struct json *v, const char *what, double max) {
  // Range first, so the cast below is defined; then the cast tells whether it was whole.
  if (v->type != JSON_NUMBER || !(v->number >= 0 && v->number <= max) ||
      (double)(unsigned long long)v->number != v->number)
    die("spec: %s must be a whole number from 0 to %.0f", what, max);
  return (unsigned long long)v->number;
}

static char **string_array(const struct json *arr, const char *key) {
  char **out = calloc(arr->len + 1, sizeof *out);
  if (!out) die("spec: out of memory");
  for (size_t i = 0; i < arr->len; i++) {
    if (arr->items[i]->type != JSON_STRING)
      die("spec: \"%s\"[%zu] must be a string, not %s", key, i, json_type_name(arr->items[i]->type));
    out[i] = arr->items[i]->str;
  }
  return out;
}

static char *abs_path(const struct json *v, const char *what) {
  if (v->str[0] != '/') die("spec: %s must be an absolute path: \"%s\"", what, v->str);
  return v->str;
}

static char *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die_errno("spec %s", path);
  struct stat st;
  if (fstat(fd, &st) < 0) die_errno("spec %s", path);
  if (!S_ISREG(st.st_mode)) die("spec %s: not a regular file", path);
  if (st.st_size > MAX_SPEC_BYTES) die("spec %s: larger than %d bytes", path, MAX_SPEC_BYTES);
  size_t cap = (size_t)st.st_size + 1, n = 0;
  char *buf = malloc(cap);
  if (!buf) die("spec: out of memory");
  for (;;) {
    if (n == cap) die("spec %s: changed while being read", path);
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      die_errno("spec %s", path);
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  *len = n;
  return buf;
}

void spec_load(const char *path, enum spec_mode mode, struct spec *s) {
  size_t len;
  char *text = read_file(path, &len);
  char err[256];
  struct json *root = json_parse(text, len, err, sizeof err);
  if (!root) die("spec %s: malformed JSON: %s", path, err);
  if (root->type != JSON_OBJECT) die("spec %s: must be a JSON object", path);
  // The tree is kept for the life of the process: the spec points into it.

  memset(s, 0, sizeof *s);
  const struct json *v;

  v = field(root, "args", JSON_ARRAY, true);
  if (v->len == 0) die("spec: \"args\" must not be empty");
  s->args = string_array(v, "args");
  if (s->args[0][0] == '\0') die("spec: \"args\"[0] must not be empty");

  v = field(root, "env", JSON_ARRAY, false);
  if (v) s->env = string_array(v, "env");
  else if (!(s->env = calloc(1, sizeof *s->env))) die("spec: out of memory");

  v = field(root, "cwd", JSON_STRING, false);
  s->cwd = v ? abs_path(v, "\"cwd\"") : "/";

  v = field(root, "uid", JSON_NUMBER, false);
  s->uid = v ? (uid_t)whole_number(v, "\"uid\"", 4294967294.0) : 0;
  v = field(root, "gid", JSON_NUMBER, false);
  s->gid = v ? (gid_t)whole_number(v, "\"gid\"", 4294967294.0) : 0;

  v = field(root, "groups", JSON_ARRAY, false);
  if (v) {
    s->ngroups = v->len;
    s->groups = calloc(v->len + 1, sizeof *s->groups);
    if (!s->groups) die("spec: out of memory");
    for (size_t i = 0; i < v->len; i++)
      s->groups[i] = (gid_t)whole_number(v->items[i], "each of \"groups\"", 4294967294.0);
  }

  v = field(root, "tty", JSON_BOOL, false);
  s->tty = v && v->boolean;

  // Security, for run and exec alike (the runtime passes the container's to exec).
  v = field(root, "privileged", JSON_BOOL, false);
  s->privileged = v && v->boolean;
  v = field(root, "noNewPrivileges", JSON_BOOL, false);
  s->no_new_privs = v && v->boolean;
  v = field(root, "capAdd", JSON_ARRAY, false);
  char **add = v ? string_array(v, "capAdd") : NULL;
  v = field(root, "capDrop", JSON_ARRAY, false);
  char **drop = v ? string_array(v, "capDrop") : NULL;
  s->caps = caps_resolve(add, drop, s->privileged);
  free(add);
  free(drop);

  if (mode == SPEC_EXEC) {
    v = field(root, "pid", JSON_NUMBER, true);
    s->pid = (pid_t)whole_number(v, "\"pid\"", 4194304.0);
    if (s->pid <= 0) die("spec: \"pid\" must be a process id");
    return;
  }

  v = field(root, "rootfs", JSON_STRING, true);
  s->rootfs = abs_path(v, "\"rootfs\"");

  v = field(root, "hostname", JSON_STRING, false);
  if (v) {
    if (v->len == 0 || v->len > 64) die("spec: \"hostname\" must be 1 to 64 bytes");
    s->hostname = v->str;
  }

  v = field(root, "network", JSON_STRING, false);
  if (v) {
    if (strcmp(v->str, "none") == 0) s->network_none = true;
    else if (strcmp(v->str, "host") != 0)
      die("spec: \"network\" must be \"none\" or \"host\", not \"%s\"", v->str);
  }

  v = field(root, "mounts", JSON_ARRAY, false);
  if (v) {
    s->nmounts = v->len;
    s->mounts = calloc(v->len + 1, sizeof *s->mounts);
    if (!s->mounts) die("spec: out of memory");
    for (size_t i = 0; i < v->len; i++) {
      const struct json *m = v->items[i];
      if (m->type != JSON_OBJECT) die("spec: \"mounts\"[%zu] must be an object", i);
      const struct json *src = field(m, "source", JSON_STRING, true);
      const struct json *dst = field(m, "target", JSON_STRING, true);
      const struct json *ro = field(m, "readonly", JSON_BOOL, false);
      s->mounts[i].source = abs_path(src, "a mount's \"source\"");
      s->mounts[i].target = abs_path(dst, "a mount's \"target\"");
      if (strspn(dst->str, "/") == dst->len) die("spec: a mount's \"target\" cannot be /");
      s->mounts[i].readonly = ro && ro->boolean;
    }
  }
}
