// A strict JSON (RFC 8259) reader: recursive descent over the whole text, building a tree.
// Strings are decoded to UTF-8 (escapes, \uXXXX and surrogate pairs); raw bytes must be
// valid UTF-8; U+0000 is refused because every string ends up a C string.
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct parser {
  const char *p, *end, *start;
  char *err;
  size_t errlen;
  int failed;
};

static void fail(struct parser *ps, const char *fmt, ...) {
  if (ps->failed) return;
  ps->failed = 1;
  int line = 1;
  for (const char *c = ps->start; c < ps->p && c < ps->end; c++)
    if (*c == '\n') line++;
  char msg[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(ps->err, ps->errlen, "line %d: %s", line, msg);
}

static void skip_ws(struct parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static struct json *new_value(struct parser *ps, enum json_type t) {
  struct json *v = calloc(1, sizeof *v);
  if (!v) fail(ps, "out of memory");
  else v->type = t;
  return v;
}

// A growable byte buffer for decoded strings.
struct buf { char *data; size_t len, cap; };

static int buf_put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 32;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static size_t utf8_encode(unsigned long cp, char out[4]) {
  if (cp < 0x80) { out[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

// Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 if invalid.
static size_t utf8_valid(const unsigned char *s, size_t avail) {
  unsigned char c = s[0];
  size_t n;
  unsigned long cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
  else return 0;
  if (avail < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return n;
}

static int hex4(struct parser *ps, unsigned long *out) {
  if (ps->end - ps->p < 4) { fail(ps, "short \\u escape"); return -1; }
  unsigned long v = 0;
  for (int i = 0; i < 4; i++) {
    char c = ps->p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned long)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned long)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned long)(c - 'A' + 10);
    else { fail(ps, "bad \\u escape"); return -1; }
  }
  ps->p += 4;
  *out = v;
  return 0;
}

// Parses a string starting at the opening quote; returns a malloc'd C string.
static char *parse_string_raw(struct parser *ps, size_t *lenp) {
  struct buf b = {0};
  ps->p++;  // opening quote
  if (buf_put(&b, "", 0) < 0) goto oom;
  while (ps->p < ps->end) {
    unsigned char c = (unsigned char)*ps->p;
    if (c == '"') {
      ps->p++;
      if (lenp) *lenp = b.len;
      return b.data;
    }
    if (c < 0x20) { fail(ps, "control character in string"); goto out; }
    if (c == '\\') {
      ps->p++;
      if (ps->p >= ps->end) break;
      char e = *ps->p++;
      char tmp[4];
      size_t n = 1;
      switch (e) {
        case '"': tmp[0] = '"'; break;
        case '\\': tmp[0] = '\\'; break;
        case '/': tmp[0] = '/'; break;
        case 'b': tmp[0] = '\b'; break;
        case 'f': tmp[0] = '\f'; break;
        case 'n': tmp[0] = '\n'; break;
        case 'r': tmp[0] = '\r'; break;
        case 't': tmp[0] = '\t'; break;
        case 'u': {
          unsigned long cp;
          if (hex4(ps, &cp) < 0) goto out;
          if (cp >= 0xDC00 && cp <= 0xDFFF) { fail(ps, "lone low surrogate in \\u escape"); goto out; }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned long lo;
            if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
              fail(ps, "lone high surrogate in \\u escape");
              goto out;
            }
            ps->p += 2;
            if (hex4(ps, &lo) < 0) goto out;
            if (lo < 0xDC00 || lo > 0xDFFF) { fail(ps, "bad surrogate pair in \\u escape"); goto out; }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (cp == 0) { fail(ps, "\\u0000 is not allowed"); goto out; }
          n = utf8_encode(cp, tmp);
          break;
        }
        default: fail(ps, "bad escape '\\%c'", e); goto out;
      }
      if (buf_put(&b, tmp, n) < 0) goto oom;
      continue;
    }
    size_t n = utf8_valid((const unsigned char *)ps->p, (size_t)(ps->end - ps->p));
    if (!n) { fail(ps, "invalid UTF-8 in string"); goto out; }
    if (buf_put(&b, ps->p, n) < 0) goto oom;
    ps->p += n;
  }
  fail(ps, "unterminated string");
  goto out;
oom:
  fail(ps, "out of memory");
out:
  free(b.data);
  return NULL;
}

static struct json *parse_value(struct parser *ps, int depth);

static int append(struct parser *ps, struct json *v, char *key, struct json *item) {
  struct json **items = realloc(v->items, (v->len + 1) * sizeof *items);
  if (!items) { fail(ps, "out of memory"); return -1; }
  v->items = items;
  if (v->type == JSON_OBJECT) {
    char **keys = realloc(v->keys, (v->len + 1) * sizeof *keys);
    if (!keys) { fail(ps, "out of memory"); return -1; }
    v->keys = keys;
    v->keys[v->len] = key;
  }
  v->items[v->len++] = item;
  return 0;
}

static struct json *parse_container(struct parser *ps, int depth, int is_object) {
  struct json *v = new_value(ps, is_object ? JSON_OBJECT : JSON_ARRAY);
  if (!v) return NULL;
  char close = is_object ? '}' : ']';
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) { ps->p++; return v; }
  for (;;) {
    char *key = NULL;
    skip_ws(ps);
    if (is_object) {
      if (ps->p >= ps->end || *ps->p != '"') { fail(ps, "expected a string key"); goto bad; }
      key = parse_string_raw(ps, NULL);
      if (!key) goto bad;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') { free(key); fail(ps, "expected ':'"); goto bad; }
      ps->p++;
    }
    struct json *item = parse_value(ps, depth + 1);
    if (!item) { free(key); goto bad; }
    if (append(ps, v, key, item) < 0) { free(key); json_free(item); goto bad; }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
    if (ps->p < ps->end && *ps->p == close) { ps->p++; return v; }
    fail(ps, "expected ',' or '%c'", close);
    goto bad;
  }
bad:
  json_free(v);
  return NULL;
}

static struct json *parse_number(struct parser *ps) {
  const char *s = ps->p;
  const char *q = s;
  if (q < ps->end && *q == '-') q++;
  if (q < ps->end && *q == '0') q++;
  else if (q < ps->end && *q >= '1' && *q <= '9') while (q < ps->end && *q >= '0' && *q <= '9') q++;
  else { fail(ps, "bad number"); return NULL; }
  if (q < ps->end && *q == '.') {
    q++;
    if (q >= ps->end || *q < '0' || *q > '9') { fail(ps, "bad number"); return NULL; }
    while (q < ps->end && *q >= '0' && *q <= '9') q++;
  }
  if (q < ps->end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < ps->end && (*q == '+' || *q == '-')) q++;
    if (q >= ps->end || *q < '0' || *q > '9') { fail(ps, "bad number"); return NULL; }
    while (q < ps->end && *q >= '0' && *q <= '9') q++;
  }
  char tmp[64];
  size_t n = (size_t)(q - s);
  if (n >= sizeof tmp) { fail(ps, "number too long"); return NULL; }
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  struct json *v = new_value(ps, JSON_NUMBER);
  if (!v) return NULL;
  v->number = strtod(tmp, NULL);
  ps->p = q;
  return v;
}

static int match_word(struct parser *ps, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0) {
    ps->p += n;
    return 1;
  }
  return 0;
}

static struct json *parse_value(struct parser *ps, int depth) {
  if (depth > MAX_DEPTH) { fail(ps, "nested too deeply"); return NULL; }
  skip_ws(ps);
  if (ps->p >= ps->end) { fail(ps, "unexpected end of input"); return NULL; }
  char c = *ps->p;
  struct json *v;
  switch (c) {
    case '{': return parse_container(ps, depth, 1);
    case '[': return parse_container(ps, depth, 0);
    case '"': {
      v = new_value(ps, JSON_STRING);
      if (!v) return NULL;
      v->str = parse_string_raw(ps, &v->len);
      if (!v->str) { free(v); return NULL; }
      return v;
    }
    case 't':
    case 'f':
      if (match_word(ps, "true") || match_word(ps, "false")) {
        v = new_value(ps, JSON_BOOL);
        if (v) v->boolean = c == 't';
        return v;
      }
      break;
    case 'n':
      if (match_word(ps, "null")) return new_value(ps, JSON_NULL);
      break;
    default:
      if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
  }
  if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) fail(ps, "unexpected '%c'", c);
  else fail(ps, "unexpected byte 0x%02x", (unsigned char)c);
  return NULL;
}

struct json *json_parse(const char *text, size_t len, char *err, size_t errlen) {
  struct parser ps = { text, text + len, text, err, errlen, 0 };
  // A UTF-8 byte order mark is tolerated, as many writers emit one.
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ps.p += 3;
  struct json *v = parse_value(&ps, 0);
  if (!v) {
    if (!ps.failed) fail(&ps, "invalid JSON");
    return NULL;
  }
  skip_ws(&ps);
  if (ps.p != ps.end) {
    fail(&ps, "trailing characters after the JSON value");
    json_free(v);
    return NULL;
  }
  return v;
}

const struct json *json_get(const struct json *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJECT) return NULL;
  const struct json *found = NULL;
  for (size_t i = 0; i < obj->len; i++)
    if (strcmp(obj->keys[i], key) == 0) found = obj->items[i];
  return found;
}

void json_free(struct json *v) {
  if (!v) return;
  for (size_t i = 0; v->items && i < v->len; i++) {
    json_free(v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->str);
  free(v);
}

const char *json_type_name(enum json_type t) {
  switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "a boolean";
    case JSON_NUMBER: return "a number";
    case JSON_STRING: return "a string";
    case JSON_ARRAY: return "an array";
    case JSON_OBJECT: return "an object";
  }
  return "?";
}
