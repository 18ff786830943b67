// A small JSON reader for ufs-init's spec: the whole document into a tree.
#ifndef UFS_INIT_JSON_H
#define UFS_INIT_JSON_H

#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
  enum json_type type;
  int boolean;          // JSON_BOOL
  double number;        // JSON_NUMBER
  char *str;            // JSON_STRING: UTF-8, NUL-terminated (embedded NUL is rejected)
  size_t len;           // JSON_STRING: bytes; JSON_ARRAY/JSON_OBJECT: element count
  struct json **items;  // JSON_ARRAY elements, JSON_OBJECT values
  char **keys;          // JSON_OBJECT keys
};

// Parses exactly one JSON value (surrounding whitespace allowed). On error returns NULL and
// writes a short reason ("line 3: expected ':'") into err.
struct json *json_parse(const char *text, size_t len, char *err, size_t errlen);

// The value of key in an object (the last one if repeated), or NULL.
const struct json *json_get(const struct json *obj, const char *key);

void json_free(struct json *v);

const char *json_type_name(enum json_type t);

#endif
