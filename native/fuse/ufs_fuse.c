// ufs_fuse: our binding to libfuse3's low-level API (typed in src/fuse/lowlevel/binding.ts).
//
// Why low-level: the kernel knows a file by the node id we give it. Here one node id stands
// for one inode (hard links share it, so st_nlink, size and cached pages agree under every
// name), and the protocol is the kernel's current one: readdirplus, cached directory
// listings, cached symlinks and 1 MiB requests.
//
// How it runs: one session per process. Requests are read from /dev/fuse on Node's own event
// loop (a uv_poll on the non-blocking fuse fd) and handed to JS synchronously, in the loop
// thread: no thread hop for metadata. JS answers each request, now or later, by its id with
// one of the reply* functions. Data moves in C, on the file descriptor JS returned as the
// handle: write inline, read inline when the pages are cached (RWF_NOWAIT) and on I/O
// threads of our own otherwise, fsync on those threads.
#define _GNU_SOURCE
#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

// ---- the JS side's operations ------------------------------------------------------------

enum op {
  OP_INIT, OP_EXIT, OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD,
  OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_RELEASE,
  OP_READDIR, OP_RELEASEDIR, OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR,
  OP_REMOVEXATTR, OP_ACCESS, OP_CREATE, OP_DETACH, OP_FORGETS, OP_CREATED, OP_COPIED, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
  "init", "exit", "lookup", "forget", "getattr", "setattr", "readlink", "mknod",
  "mkdir", "unlink", "rmdir", "symlink", "rename", "link", "open", "release",
  "readdir", "releasedir", "statfs", "setxattr", "getxattr", "listxattr",
  "removexattr", "access", "create", "detach", "forgets", "created", "copied",
};

// ---- pending requests: JS holds ids, never pointers ---------------------------------------
// An id is index | generation << 24: a stale or repeated reply is refused, not sent to
// whatever request reuses the slot.

typedef struct {
  fuse_req_t req;    // NULL: free
  uint32_t gen;
  uint32_t next_free;
  size_t size;       // getxattr/listxattr/readdir: the caller's buffer size
  bool plus;         // readdir: readdirplus
  fuse_ino_t caps_of; // getxattr of security.capability: the node asked about
  fuse_ino_t node;   // open: the node being opened
  fuse_ino_t listed; // readdir: the directory being listed
  bool moves_dirs;   // rename, rmdir: see "Upper directories"
  bool mutates;      // a request that may change the union: see "Upper directories"
} slot_t;

#define SLOT_BITS 24
#define NO_SLOT UINT32_MAX

struct bitset {
  uint8_t *bits;
  size_t bytes;
};

struct dir_end {
  off_t off;    // the offset after the last entry
  uint32_t gen; // valid while S.mut_gen is this
  bool valid;
};

typedef struct {
  napi_env env;
  struct fuse_session *se;
  uv_poll_t poll;
  bool polling, exited;
  struct fuse_buf buf;
  napi_ref handlers[OP_COUNT];
  napi_ref resource;
  napi_async_context actx;
  slot_t *slots;
  uint32_t nslots, free_head;
  char *read_buf;    // inline reads (loop thread only)
  size_t read_buf_size;
  struct bitset no_caps;   // by node id: known to have no security.capability
  struct bitset dirs_in_js; // by directory handle: JS has state for it (it listed it)
  uint64_t next_dir_handle;
  bool no_opendir; // the kernel opens directories without asking (see ll_opendir)
  struct dir_end *dir_ends; // by node id: where its listing ends (see "Listing ends")
  size_t n_dir_ends;
  struct fh_info *fhs; // by fd: the handles C may serve alone (see "Handles")
  size_t nfhs;
  int32_t *node_fds; // by node id: fd + 1 of an open upper handle of the node, 0: none
  size_t n_node_fds;
  struct lower_file *lower_files; // by node id: see "Lower files"
  size_t n_lower_files;
  struct upper_dir *upper_dirs; // by node id: see "Upper directories"
  size_t n_upper_dirs;
  uint32_t dir_gen;
  uint32_t mut_gen;
  double attr_timeout;
  long spin_ns;      // adaptive polling (see spin_for_request); 0: off
} session_t;

static session_t S;

static double slot_put(fuse_req_t req) {
  if (S.free_head == NO_SLOT) {
    uint32_t n = S.nslots ? S.nslots * 2 : 256;
    if (n > (1u << SLOT_BITS)) return -1;
    slot_t *grown = realloc(S.slots, n * sizeof(slot_t));
    if (!grown) return -1;
    for (uint32_t i = S.nslots; i < n; i++) {
      grown[i] = (slot_t) { .req = NULL, .gen = 0, .next_free = i + 1 < n ? i + 1 : NO_SLOT };
    }
    S.slots = grown;
    S.free_head = S.nslots;
    S.nslots = n;
  }
  uint32_t i = S.free_head;
  slot_t *s = &S.slots[i];
  S.free_head = s->next_free;
  s->req = req;
  s->gen = (s->gen + 1) & ((1u << 28) - 1);
  s->size = 0;
  s->plus = false;
  s->caps_of = 0;
  s->node = 0;
  s->listed = 0;
  s->moves_dirs = false;
  s->mutates = false;
  return (double) ((uint64_t) s->gen << SLOT_BITS | i);
}

static slot_t *slot_get(double id) {
  if (!(id >= 0) || id > 9007199254740991.0) return NULL;
  uint64_t v = (uint64_t) id;
  uint32_t i = (uint32_t) (v & ((1u << SLOT_BITS) - 1));
  uint32_t gen = (uint32_t) (v >> SLOT_BITS);
  if (i >= S.nslots || !S.slots[i].req || S.slots[i].gen != gen) return NULL;
  return &S.slots[i];
}

static void slot_free(slot_t *s) {
  if (s->moves_dirs) S.dir_gen++; // see "Upper directories"
  if (s->mutates) S.mut_gen++;
  uint32_t i = (uint32_t) (s - S.slots);
  s->req = NULL;
  s->next_free = S.free_head;
  S.free_head = i;
}

// ---- tables by index -----------------------------------------------------------------------

// A table indexed by node id, fd or byte: `arr` has `*len` elements of `size` bytes. Returns
// it grown (doubling from `first`) to hold index `i`, the new elements zeroed and `*len`
// updated; or NULL, with `arr` and `*len` as they were, when memory is short (every such table
// is a cache or an optimization: its caller then does without).
static void *grow_zeroed(void *arr, size_t *len, size_t size, uint64_t i, size_t first) {
  if (i < *len) return arr;
  size_t n = *len ? *len : first;
  while (n <= i) n *= 2;
  char *grown = realloc(arr, n * size);
  if (!grown) return NULL;
  memset(grown + *len * size, 0, (n - *len) * size);
  *len = n;
  return grown;
}

// ---- nodes known to have no security.capability -------------------------------------------
// The kernel asks for security.capability before every write and chown of a regular file
// (to clear file capabilities); nearly every file has none. The first ENODATA from JS is
// remembered per node and answered here from then on; any setxattr or removexattr of the node
// (the only ways its xattrs change: copy-up keeps them) forgets it.

static const char CAPS_XATTR[] = "security.capability";

static bool bit_get(const struct bitset *b, uint64_t i) {
  return i / 8 < b->bytes && (b->bits[i / 8] & (1u << (i % 8)));
}

static void bit_put(struct bitset *b, uint64_t i, bool on) {
  size_t byte = i / 8;
  if (byte >= b->bytes) {
    if (!on) return;
    uint8_t *grown = grow_zeroed(b->bits, &b->bytes, 1, byte, 4096);
    if (!grown) return; // only a cache
    b->bits = grown;
  }
  if (on) b->bits[byte] |= (uint8_t) (1u << (i % 8));
  else b->bits[byte] &= (uint8_t) ~(1u << (i % 8));
}

static bool no_caps_known(fuse_ino_t ino) { return bit_get(&S.no_caps, ino); }
static void no_caps_set(fuse_ino_t ino, bool on) { bit_put(&S.no_caps, ino, on); }

// ---- handles ---------------------------------------------------------------------------
// A file handle is the host fd JS opened. JS says, when it answers open or create, which
// union inode number the handle reports and whether its fd is the very object its node
// names in upper (an upper file; a lower file opened read-only is not: changing it needs a
// copy-up). Through such a handle C serves getattr (fstat), setattr (ftruncate, fchown,
// fchmod, futimens) and release (close) alone, and tells JS of the release afterwards.

struct fh_info {
  uint64_t ino;      // 0: not known to C
  bool upper;
  bool c_only;       // opened by C (a lower file): JS never heard of it
  bool pt;           // the node's passthrough backing fd (see "Passthrough"), shared by its opens
};

// The table changes on the loop thread only, under fh_mu, which the end watcher takes to read
// it (see "the end, seen from aside"); once the files are dropped (fh_dropped), a handle made
// after is dropped as it is remembered.
static pthread_mutex_t fh_mu = PTHREAD_MUTEX_INITIALIZER;
static bool fh_dropped;
static void drop_fd(int fd);

static void fh_remember(uint64_t fh, uint64_t ino, bool upper, bool c_only) {
  if (fh > INT32_MAX) return;
  pthread_mutex_lock(&fh_mu);
  if (fh_dropped) {
    drop_fd((int) fh);
  } else {
    struct fh_info *fhs = grow_zeroed(S.fhs, &S.nfhs, sizeof(*fhs), fh, 1024);
    if (fhs) { // else C just will not serve it
      S.fhs = fhs;
      S.fhs[fh] = (struct fh_info) { .ino = ino, .upper = upper, .c_only = c_only };
    }
  }
  pthread_mutex_unlock(&fh_mu);
}

// Closes a handle's fd and forgets it, as one step for the end watcher.
static int fh_close(int fd) {
  pthread_mutex_lock(&fh_mu);
  if ((size_t) fd < S.nfhs) S.fhs[fd] = (struct fh_info) { 0 };
  int r = close(fd);
  pthread_mutex_unlock(&fh_mu);
  return r;
}

// The kernel passes the handle only with some calls (fstat, ftruncate); fchmod, fchown,
// futimens and most getattrs name just the node. Any open upper handle of the node is that
// node's object, so it serves those too.
static void node_fd_set(fuse_ino_t node, int fd) {
  int32_t *fds = grow_zeroed(S.node_fds, &S.n_node_fds, sizeof(*fds), node, 4096);
  if (!fds) return;
  S.node_fds = fds;
  S.node_fds[node] = fd + 1;
}

static void node_fd_drop(fuse_ino_t node, int fd) {
  if (node < S.n_node_fds && S.node_fds[node] == fd + 1) S.node_fds[node] = 0;
}

// The fd C may use for the node (the request's own handle first), or -1.
static int upper_fd(fuse_ino_t node, const struct fuse_file_info *fi) {
  if (fi && fi->fh < S.nfhs && S.fhs[fi->fh].ino && S.fhs[fi->fh].upper) return (int) fi->fh;
  if (node < S.n_node_fds && S.node_fds[node]) {
    int fd = S.node_fds[node] - 1;
    if ((size_t) fd < S.nfhs && S.fhs[fd].ino && S.fhs[fd].upper) return fd;
  }
  return -1;
}

// ---- lower files ---------------------------------------------------------------------------
// A node whose object is a regular file of a lower layer (JS names its host path with the
// entry): its read-only opens are served here, without JS. Lower layers never change, so the
// path reads what the union holds until the node itself is changed, and every change goes
// through a request on the node that copies it up first: an open for writing, setattr,
// setxattr, removexattr, link. Each of those forgets the path before JS sees the request.

struct lower_file {
  char *path;
  uint64_t ino; // the union's inode number
};

static void lower_file_forget(fuse_ino_t node) {
  if (node < S.n_lower_files && S.lower_files[node].path) {
    free(S.lower_files[node].path);
    S.lower_files[node].path = NULL;
  }
}

static void lower_file_set(fuse_ino_t node, const char *path, uint64_t ino) {
  struct lower_file *files = grow_zeroed(S.lower_files, &S.n_lower_files, sizeof(*files), node, 4096);
  if (!files) return;
  S.lower_files = files;
  if (S.lower_files[node].path && strcmp(S.lower_files[node].path, path) == 0) return;
  free(S.lower_files[node].path);
  S.lower_files[node].path = strdup(path);
  S.lower_files[node].ino = ino;
}

// ---- upper directories --------------------------------------------------------------------
// A node whose object is a directory in upper (JS names its host path with the entry): its
// getattr is an lstat here, without JS. Creating a file in a directory makes the kernel ask
// for the directory's attributes again before the next path walk through it, so an untar
// asks once per file. The path stays right until a directory is renamed or removed: any
// rename or rmdir, from its arrival until its answer, makes every path known here invalid
// (a generation count), and the nodes go back to JS. A merged directory reports st_nlink 1
// (JS sent 1), as JS would; one that is not merged answers negative lookups too
// (upper_dir_lacks).
// A directory whose winner is a lower layer's (JS sends its path with a '/' at the end) is
// served the same way, but only until anything that may change the union arrives (any request
// JS handles that may copy up, create, remove or rename: mutation()), from its arrival until
// its answer: such a request can copy the directory up, which is no request on its node.
// A read-only walk thus asks JS nothing about its directories once listed.

struct upper_dir {
  char *path;
  uint64_t ino;   // the union's inode number
  uint32_t gen;   // valid while S.dir_gen (S.mut_gen for a lower one) is this
  bool nlink1;
  bool lower;
};

// A request that may change the union (see above): lower directories known to C are not
// served from their paths until it is answered.
static void mutation(double id) {
  S.mut_gen++;
  slot_t *s = id >= 0 ? slot_get(id) : NULL;
  if (s) s->mutates = true;
}

static bool upper_dir_valid(const struct upper_dir *d) {
  return d->path && d->gen == (d->lower ? S.mut_gen : S.dir_gen);
}

static void upper_dir_forget(fuse_ino_t node) {
  if (node < S.n_upper_dirs && S.upper_dirs[node].path) {
    free(S.upper_dirs[node].path);
    S.upper_dirs[node].path = NULL;
  }
}

static void upper_dir_set(fuse_ino_t node, const char *path, uint64_t ino, bool nlink1, bool lower) {
  struct upper_dir *dirs = grow_zeroed(S.upper_dirs, &S.n_upper_dirs, sizeof(*dirs), node, 1024);
  if (!dirs) return;
  S.upper_dirs = dirs;
  struct upper_dir *d = &S.upper_dirs[node];
  if (!d->path || strcmp(d->path, path) != 0) {
    free(d->path);
    d->path = strdup(path);
  }
  d->ino = ino;
  d->gen = lower ? S.mut_gen : S.dir_gen;
  d->nlink1 = nlink1;
  d->lower = lower;
}

// The directory's attributes, if C knows them.
static bool upper_dir_stat(fuse_ino_t node, struct stat *st) {
  if (node >= S.n_upper_dirs) return false;
  struct upper_dir *d = &S.upper_dirs[node];
  if (!upper_dir_valid(d)) return false;
  if (lstat(d->path, st) != 0 || !S_ISDIR(st->st_mode)) return false;
  st->st_ino = d->ino;
  if (d->nlink1) st->st_nlink = 1;
  return true;
}

// ---- listing ends ----------------------------------------------------------------------
// Reading a directory ends with a READDIR at the offset after its last entry, answered with
// nothing. When JS has sent a listing through to its end, C keeps that offset and answers the
// closing request alone, while nothing that may change the union has arrived since (the same
// rule as lower directories above): one trip into JS fewer per directory a walk lists.
static void dir_end_set(fuse_ino_t node, off_t off) {
  struct dir_end *ends = grow_zeroed(S.dir_ends, &S.n_dir_ends, sizeof(*ends), node, 1024);
  if (!ends) return;
  S.dir_ends = ends;
  S.dir_ends[node] = (struct dir_end) { off, S.mut_gen, true };
}

static bool at_dir_end(fuse_ino_t node, off_t off) {
  return node < S.n_dir_ends && S.dir_ends[node].valid && S.dir_ends[node].gen == S.mut_gen && S.dir_ends[node].off == off;
}

static void dir_end_forget(fuse_ino_t node) {
  if (node < S.n_dir_ends) S.dir_ends[node].valid = false;
}

// The directory `node` if C knows its path and it is not merged (nothing beneath shows
// through it), with the host path of its entry `name` written to `path`; else NULL.
static struct upper_dir *unmerged_child(fuse_ino_t node, const char *name, char path[PATH_MAX]) {
  if (node >= S.n_upper_dirs) return NULL;
  struct upper_dir *d = &S.upper_dirs[node];
  if (!upper_dir_valid(d) || d->nlink1) return NULL;
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return NULL;
  int n = snprintf(path, PATH_MAX, "%s/%s", d->path, name);
  return n < 0 || n >= PATH_MAX ? NULL : d;
}

// Whether `name` is certainly absent from the directory `node`: a directory only upper makes
// (not merged: nothing beneath shows through it) and whose upper directory has no such name.
// Such a lookup comes before every file an untar creates; C answers it (negative) alone.
static bool upper_dir_lacks(fuse_ino_t node, const char *name) {
  char path[PATH_MAX];
  if (!unmerged_child(node, name, path)) return false;
  struct stat st;
  return lstat(path, &st) != 0 && errno == ENOENT;
}

// ---- passthrough -----------------------------------------------------------------------
// Kernel FUSE passthrough (Linux 6.9+): an open answered with FOPEN_PASSTHROUGH and a backing
// id makes the kernel read (and mmap) the backing file itself; no READ reaches us. libfuse
// 3.14 predates it, so it is done around libfuse, on the wire:
// - INIT: the session's reads and writes go through our own io functions
//   (fuse_session_custom_io, on the fd fuse_session_mount made); the read sees whether the
//   kernel offers FUSE_PASSTHROUGH, the write of libfuse's INIT reply adds it (with
//   FUSE_INIT_EXT and max_stack_depth 1: backing files may not be on a stacked file system).
// - backing ids: FUSE_DEV_IOC_BACKING_OPEN on the session fd, with an fd of the file.
// - open replies: a struct fuse_open_out of our own (fuse_reply_buf), whose last field (padding
//   in libfuse's headers) is the backing id.
// Used for read-only opens of lower files only (served by C, see "Lower files"). The kernel
// insists that while a node has a passthrough open, every open of it is passthrough on the
// same backing file: so one backing (fd and id) per node, shared by its opens and dropped with
// the last; passthrough only when the node has no other (cached) open. While it has one, what
// would change the file's data (an open for writing, a truncate) cannot be served on that
// node: JS detaches the node from its names (pt_detach) and the request gets ESTALE, on which
// the kernel walks the path again with LOOKUP_REVAL, finds a new node for the name, and
// retries there. The old opens keep reading the lower file, as on overlayfs.
// Constants and layouts from the kernel's include/uapi/linux/fuse.h (protocol 7.40).
#define K_FUSE_INIT 26
#define K_FUSE_INIT_EXT (1u << 30)
#define K_FUSE_PASSTHROUGH_HI (1u << 5) // FUSE_PASSTHROUGH is 1ULL << 37: bit 5 of flags2
#define K_FOPEN_NOFLUSH (1u << 5)
#define K_FOPEN_PASSTHROUGH (1u << 7)

struct k_in_header { uint32_t len, opcode; uint64_t unique, nodeid; uint32_t uid, gid, pid; uint16_t total_extlen, padding; };
struct k_init_in { uint32_t major, minor, max_readahead, flags, flags2, unused[11]; };
struct k_out_header { uint32_t len; int32_t error; uint64_t unique; };
struct k_init_out {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, max_stack_depth, unused[6];
};
struct k_open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };
struct k_backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define K_FUSE_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct k_backing_map)
#define K_FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

static struct {
  bool wanted;          // asked for at start
  bool offered;         // the kernel's INIT offered it
  bool on;              // negotiated, and backing opens work
  uint64_t init_unique; // the INIT request being answered
  int fd;               // the session's /dev/fuse fd
  int failed_errno;     // why it was turned off after negotiation (0: it was not)
} PT = { .fd = -1 };

// Per node: its passthrough backing while it has passthrough opens, and how many opens of it
// are in the kernel's caching mode (or on their way to JS, which answers them so).
struct pt_node {
  int32_t backing_id; // 0: none
  int32_t fd;
  uint32_t pt_opens;
  uint32_t cached_opens;
};
static struct pt_node *pt_nodes;
static size_t n_pt_nodes;

static struct pt_node *pt_node(fuse_ino_t node, bool grow) {
  if (node >= n_pt_nodes) {
    if (!grow) return NULL;
    struct pt_node *grown = grow_zeroed(pt_nodes, &n_pt_nodes, sizeof(*grown), node, 4096);
    if (!grown) return NULL;
    pt_nodes = grown;
  }
  return &pt_nodes[node];
}

static uint32_t pt_opens_of(fuse_ino_t node) {
  return node < n_pt_nodes ? pt_nodes[node].pt_opens : 0;
}

static void cached_open_add(fuse_ino_t node, int d) {
  struct pt_node *pn = pt_node(node, d > 0);
  if (!pn) return;
  if (d < 0 && pn->cached_opens == 0) return;
  pn->cached_opens += (uint32_t) d;
}

static ssize_t pt_io_read(int fd, void *buf, size_t len, void *userdata) {
  ssize_t n = read(fd, buf, len);
  if (n >= (ssize_t) sizeof(struct k_in_header)) {
    const struct k_in_header *h = buf;
    if (h->opcode == K_FUSE_INIT) {
      PT.init_unique = h->unique;
      PT.offered = false;
      if ((size_t) n >= sizeof(*h) + sizeof(struct k_init_in)) {
        const struct k_init_in *in = (const void *) (h + 1);
        PT.offered = in->major == 7 && in->minor >= 40 && (in->flags & K_FUSE_INIT_EXT) && (in->flags2 & K_FUSE_PASSTHROUGH_HI);
      }
    }
  }
  return n;
}

static ssize_t pt_io_writev(int fd, struct iovec *iov, int count, void *userdata) {
  if (PT.init_unique && count >= 2 && iov[0].iov_len >= sizeof(struct k_out_header)) {
    const struct k_out_header *oh = iov[0].iov_base;
    if (oh->unique == PT.init_unique) {
      PT.init_unique = 0;
      if (oh->error == 0 && PT.wanted && PT.offered && iov[1].iov_len >= offsetof(struct k_init_out, unused)) {
        struct k_init_out *out = iov[1].iov_base;
        out->flags |= K_FUSE_INIT_EXT;
        out->flags2 |= K_FUSE_PASSTHROUGH_HI;
        out->max_stack_depth = 1;
        PT.on = true;
      }
    }
  }
  return writev(fd, iov, count);
}

// The node's backing, made from `fd` (a read-only fd of its lower file) if it has none.
static struct pt_node *pt_backing(fuse_ino_t node, int fd, uint64_t ino) {
  struct pt_node *pn = pt_node(node, true);
  if (!pn) return NULL;
  struct k_backing_map map = { .fd = fd, .flags = 0, .padding = 0 };
  int id = ioctl(PT.fd, K_FUSE_DEV_IOC_BACKING_OPEN, &map);
  if (id <= 0) {
    // Not root (EPERM), a stacked file system under the layer (ELOOP), or no support at all:
    // it will not work for the next file either.
    if (errno != EMFILE && errno != ENFILE && errno != ENOMEM) {
      PT.on = false;
      PT.failed_errno = errno;
    }
    return NULL;
  }
  pn->backing_id = id;
  pn->fd = fd;
  pn->pt_opens = 0;
  fh_remember((uint64_t) fd, ino, false, true);
  if ((size_t) fd < S.nfhs) S.fhs[fd].pt = true;
  return pn;
}

// One passthrough open of the node is gone; the last one takes the backing with it.
static void pt_release(fuse_ino_t node) {
  struct pt_node *pn = pt_node(node, false);
  if (!pn || pn->pt_opens == 0) return;
  if (--pn->pt_opens > 0) return;
  uint32_t id = (uint32_t) pn->backing_id;
  ioctl(PT.fd, K_FUSE_DEV_IOC_BACKING_CLOSE, &id);
  fh_close(pn->fd);
  pn->backing_id = 0;
  pn->fd = -1;
}

static void call_js(enum op op, double id, size_t argc, napi_value *argv);
static napi_value num(napi_env env, double v);

// Union inode numbers of files detached lately: their next opens are not passthrough, so
// that the retried request can change the data (an open with O_TRUNC reaches us as a plain
// read-only open, its truncate comes after it on the same handle).
#define NO_PT_RECENT 64
static uint64_t no_pt_inos[NO_PT_RECENT];
static unsigned no_pt_next;

static bool no_pt_recent(uint64_t ino) {
  for (unsigned i = 0; i < NO_PT_RECENT; i++) if (no_pt_inos[i] == ino) return true;
  return false;
}

// The node cannot take a change of its data (see above): JS gives its names to a new node,
// and the request is answered ESTALE so that the kernel looks the name up again.
static void pt_detach(fuse_req_t req, fuse_ino_t node) {
  struct pt_node *pn = pt_node(node, false);
  if (pn && pn->fd >= 0 && (size_t) pn->fd < S.nfhs && S.fhs[pn->fd].ino && !no_pt_recent(S.fhs[pn->fd].ino)) {
    no_pt_inos[no_pt_next++ % NO_PT_RECENT] = S.fhs[pn->fd].ino;
  }
  napi_env env = S.env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  napi_value argv[2] = { num(env, -1), num(env, (double) node) };
  call_js(OP_DETACH, -1, 2, argv);
  napi_close_handle_scope(env, hs);
  fuse_reply_err(req, ESTALE);
}

static void pt_reply_open(fuse_req_t req, fuse_ino_t node, struct pt_node *pn) {
  struct k_open_out out = { .fh = (uint64_t) pn->fd, .open_flags = K_FOPEN_PASSTHROUGH | K_FOPEN_NOFLUSH, .backing_id = pn->backing_id };
  pn->pt_opens++;
  // The caller was interrupted and is gone: nobody will release this open.
  if (fuse_reply_buf(req, (const char *) &out, sizeof(out)) == -ENOENT) pt_release(node);
}

// ---- napi helpers -----------------------------------------------------------------------

#define CHECK(call) do { if ((call) != napi_ok) goto napi_fail; } while (0)

static napi_value throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static napi_value str(napi_env env, const char *s) {
  napi_value r;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r);
  return r;
}

// A file name or path: bytes, not UTF-8. JS holds them as byte strings (one char per byte,
// latin1) so that every name round-trips exactly (src/unionfs/hostfs.ts).
static napi_value bstr(napi_env env, const char *s) {
  napi_value r;
  napi_create_string_latin1(env, s, NAPI_AUTO_LENGTH, &r);
  return r;
}

static napi_value bigint_u64(napi_env env, uint64_t v) {
  napi_value r;
  napi_create_bigint_uint64(env, v, &r);
  return r;
}

static napi_value undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

// A number or a BigInt, as an unsigned or signed 64-bit integer.
static bool get_i64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_number) {
    double d;
    if (napi_get_value_double(env, v, &d) != napi_ok) return false;
    *out = (int64_t) d;
    return true;
  }
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok;
  }
  return false;
}

static bool get_u64(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok;
  }
  int64_t i;
  if (!get_i64(env, v, &i)) return false;
  *out = (uint64_t) i;
  return true;
}

static bool prop_i64(napi_env env, napi_value obj, const char *name, int64_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return false;
  return get_i64(env, v, out);
}

static void ns_to_timespec(int64_t ns, struct timespec *ts) {
  ts->tv_sec = ns / 1000000000;
  ts->tv_nsec = ns % 1000000000;
  if (ts->tv_nsec < 0) {
    ts->tv_nsec += 1000000000;
    ts->tv_sec -= 1;
  }
}

// An Attr (src/unionfs/types.ts) as a struct stat. Only ino and mode are required (a bare
// directory entry); everything else defaults to 0.
// The Attr property names, made once (a name given as a C string is made into a JS string
// on every lookup, which is most of the cost of reading an Attr).
enum attr_key { K_INO, K_MODE, K_NLINK, K_UID, K_GID, K_SIZE, K_RDEV, K_BLKSIZE, K_BLOCKS, K_ATIME, K_MTIME, K_CTIME, K_COUNT };
static const char *const attr_key_names[K_COUNT] = {
  "ino", "mode", "nlink", "uid", "gid", "size", "rdev", "blksize", "blocks", "atimeNs", "mtimeNs", "ctimeNs",
};
static napi_ref attr_keys_ref; // an array of the names (N-API references only hold objects)
static napi_value attr_keys[K_COUNT];

// Loads the names into attr_keys for the current handle scope.
static bool load_attr_keys(napi_env env) {
  napi_value arr;
  if (napi_get_reference_value(env, attr_keys_ref, &arr) != napi_ok) return false;
  for (uint32_t k = 0; k < K_COUNT; k++) {
    if (napi_get_element(env, arr, k, &attr_keys[k]) != napi_ok) return false;
  }
  return true;
}

static bool attr_i64(napi_env env, napi_value obj, enum attr_key k, int64_t *out) {
  napi_value v;
  if (napi_get_property(env, obj, attr_keys[k], &v) != napi_ok) return false;
  return get_i64(env, v, out);
}

// An Attr (src/unionfs/types.ts) as a struct stat. Only ino and mode are required (a bare
// directory entry); everything else defaults to 0.
static bool get_stat(napi_env env, napi_value obj, struct stat *st) {
  if (!load_attr_keys(env)) return false;
  memset(st, 0, sizeof(*st));
  int64_t v[K_COUNT] = { 0 };
  v[K_NLINK] = 1;
  if (!attr_i64(env, obj, K_INO, &v[K_INO]) || !attr_i64(env, obj, K_MODE, &v[K_MODE])) return false;
  bool has = false;
  napi_has_property(env, obj, attr_keys[K_NLINK], &has);
  if (has) {
    for (int k = K_NLINK; k < K_COUNT; k++) {
      if (!attr_i64(env, obj, (enum attr_key) k, &v[k])) return false;
    }
  }
  st->st_ino = (ino_t) v[K_INO];
  st->st_mode = (mode_t) v[K_MODE];
  st->st_uid = (uid_t) v[K_UID];
  st->st_gid = (gid_t) v[K_GID];
  st->st_nlink = (nlink_t) v[K_NLINK];
  st->st_size = (off_t) v[K_SIZE];
  st->st_rdev = (dev_t) v[K_RDEV];
  st->st_blksize = (blksize_t) v[K_BLKSIZE];
  st->st_blocks = (blkcnt_t) v[K_BLOCKS];
  ns_to_timespec(v[K_ATIME], &st->st_atim);
  ns_to_timespec(v[K_MTIME], &st->st_mtim);
  ns_to_timespec(v[K_CTIME], &st->st_ctim);
  return true;
}

// ---- calling JS ----------------------------------------------------------------------------

// Calls handlers[op](...argv) in a callback scope of its own, so the promise jobs it starts run
// (and usually answer the request) before the next request is read. A handler that throws is
// a bug on the JS side: its request, if still pending, gets EIO so no caller hangs.
static void call_js(enum op op, double id, size_t argc, napi_value *argv) {
  napi_env env = S.env;
  napi_value fn, recv, result, resource;
  napi_callback_scope scope;
  bool scoped = false;
  if (napi_get_reference_value(env, S.resource, &resource) == napi_ok &&
      napi_open_callback_scope(env, resource, S.actx, &scope) == napi_ok) {
    scoped = true;
  }
  bool threw = false;
  if (napi_get_reference_value(env, S.handlers[op], &fn) == napi_ok && fn != NULL) {
    napi_get_undefined(env, &recv);
    if (napi_call_function(env, recv, fn, argc, argv, &result) != napi_ok) {
      threw = true;
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value exc;
        napi_get_and_clear_last_exception(env, &exc);
        napi_value message;
        char text[512] = "";
        size_t len;
        if (napi_coerce_to_string(env, exc, &message) == napi_ok) {
          napi_get_value_string_utf8(env, message, text, sizeof(text), &len);
        }
        fprintf(stderr, "ufs_fuse: %s handler threw: %s\n", op_names[op], text);
      }
    }
  }
  if (scoped) napi_close_callback_scope(env, scope);
  slot_t *s = threw && id >= 0 ? slot_get(id) : NULL;
  if (s) {
    fuse_req_t req = s->req;
    slot_free(s);
    fuse_reply_err(req, EIO);
  }
}

// A request for JS: take a slot, call, and if the call could not even start, answer EIO.
static double pending(fuse_req_t req) {
  double id = slot_put(req);
  if (id < 0) fuse_reply_err(req, ENOMEM);
  return id;
}

#define SCOPE_OPEN napi_env env = S.env; napi_handle_scope hs; napi_open_handle_scope(env, &hs)
#define SCOPE_CLOSE napi_close_handle_scope(env, hs)

static void ctx_args(napi_env env, fuse_req_t req, napi_value *out) {
  const struct fuse_ctx *c = fuse_req_ctx(req);
  out[0] = num(env, c->uid);
  out[1] = num(env, c->gid);
  out[2] = num(env, c->pid);
  out[3] = num(env, c->umask);
}

// ---- data ---------------------------------------------------------------------------------

// pread until `size` bytes, the end of the file or an error; returns how many were read, with
// *err the errno that stopped it (0: none).
static size_t pread_full(int fd, char *buf, size_t size, off_t off, int *err) {
  size_t done = 0;
  *err = 0;
  while (done < size) {
    ssize_t n = pread(fd, buf + done, size - done, off + (off_t) done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) *err = errno;
    if (n <= 0) break;
    done += (size_t) n;
  }
  return done;
}

// pwrite until `size` bytes or an error; returns how many were written, with *err as above.
static size_t pwrite_full(int fd, const char *buf, size_t size, off_t off, int *err) {
  size_t done = 0;
  *err = 0;
  while (done < size) {
    ssize_t n = pwrite(fd, buf + done, size - done, off + (off_t) done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = errno;
      break;
    }
    done += (size_t) n;
  }
  return done;
}

// ---- background copy-up --------------------------------------------------------------------
// A big lower file opened for writing is copied up in the background (copyup.ts, "Background
// copy-up"): JS places the upper file at its full size with the lower's metadata, hands both
// fds here and answers the open at once; a thread copies the data front to back, in chunks.
// Until the copy is done:
// - a read or write of the file (by union inode number, whichever handle) waits until the copy
//   has passed the part of its range that holds lower bytes (an append does not wait), and is
//   then served by the copying thread; the copy never goes back over a range it has passed,
//   nor writes past the lower file's size, so what a write put there stays;
// - requests that need the whole file (fsync, fallocate, lseek, setattr through a handle)
//   wait for the end and then run as usual, on the loop thread;
// - after each chunk the progress is stored in the file's trusted.ufs.copied xattr before any
//   write may land in that chunk, and the mtime is set back (to the lower's, or to the last
//   write's), so a stat shows what a finished copy-up would.
// JS holds an flock on the copy's fd (the thread closes it when done): a reader of the upper
// directory waits on it, and finishes the copy from the xattrs if this process died
// (src/unionfs/copyjournal.ts).

// Chunks grow from 1 MiB (the first write, usually at the start, waits for one) to 64 MiB
// (fewer progress updates on a big file).
#define BG_CHUNK_FIRST ((off_t) 1 << 20)
#define BG_CHUNK_MAX ((off_t) 64 << 20)
#define XATTR_COPIED "trusted.ufs.copied"
#define XATTR_COPYSRC "trusted.ufs.copysrc"

struct bg_wait { // a read or write waiting for its range
  struct bg_wait *next;
  fuse_req_t req;
  int fd;
  bool write;
  off_t off;
  size_t size;
  char *buf; // a write's data (a copy)
};

enum bg_park_kind { BP_FSYNC, BP_FALLOCATE, BP_LSEEK, BP_SETATTR };

struct bg_parked { // a request that waits for the end
  struct bg_parked *next;
  enum bg_park_kind kind;
  fuse_req_t req;
  fuse_ino_t node;
  struct fuse_file_info fi;
  bool has_fi;
  struct stat attr;
  int to_set, datasync, mode, whence;
  off_t off, len;
};

struct bg_copy {
  struct bg_copy *next;
  uint64_t ino;      // the union's inode number of the file
  int src, dst;
  off_t size;
  off_t copied;      // bytes in place (atomic)
  bool done;         // under mu, like everything below
  int err;
  bool written;
  struct timespec lower_mtime, written_mtime; // written_mtime.tv_nsec UTIME_OMIT: not known
  char *journal;
  pthread_mutex_t mu;
  struct bg_wait *waits;
  struct bg_parked *parked;
  pthread_t thread;
  bool reaped;       // the loop thread took the end (loop thread only)
};

static struct {
  pthread_mutex_t mu;
  struct bg_copy *list;
  int live;          // copies not reaped or failed (atomic): 0 keeps every request's check cheap
  uv_async_t async;
  bool async_on;
} BG = { .mu = PTHREAD_MUTEX_INITIALIZER };

// Whether any copy is running or failed: every request that might wait asks this first.
static inline bool bg_any(void) {
  return __atomic_load_n(&BG.live, __ATOMIC_ACQUIRE) != 0;
}

// The copy of this union inode that requests must wait for or fail with (loop thread).
static struct bg_copy *bg_find(uint64_t ino) {
  if (!ino || !bg_any()) return NULL;
  pthread_mutex_lock(&BG.mu);
  struct bg_copy *c = BG.list;
  while (c && !(c->ino == ino && (!c->reaped || c->err))) c = c->next;
  pthread_mutex_unlock(&BG.mu);
  return c;
}

static uint64_t fh_ino(const struct fuse_file_info *fi) {
  return fi && fi->fh < S.nfhs ? S.fhs[fi->fh].ino : 0;
}

// Sets the file's mtime back to what a finished copy-up would show now (the lower's, or the
// last write's); the copy's own writes moved it. Returns whether the file was written.
static bool bg_keep_mtime(struct bg_copy *c) {
  struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT } };
  pthread_mutex_lock(&c->mu);
  bool written = c->written;
  ts[1] = written ? c->written_mtime : c->lower_mtime;
  pthread_mutex_unlock(&c->mu);
  futimens(c->dst, ts);
  return written;
}

// A write is about to land: from now on the file's mtime is the writes' (c->mu held).
static void bg_note_write_locked(struct bg_copy *c) {
  c->written = true;
  c->written_mtime.tv_nsec = UTIME_OMIT;
}

static void bg_note_written(struct bg_copy *c, int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return;
  pthread_mutex_lock(&c->mu);
  c->written_mtime = st.st_mtim;
  pthread_mutex_unlock(&c->mu);
}

static void bg_serve(struct bg_copy *c, struct bg_wait *w, int err) {
  if (err) {
    fuse_reply_err(w->req, err);
  } else if (w->write) {
    pthread_mutex_lock(&c->mu);
    bg_note_write_locked(c);
    pthread_mutex_unlock(&c->mu);
    int e;
    size_t done = pwrite_full(w->fd, w->buf, w->size, w->off, &e);
    bg_note_written(c, w->fd);
    if (done == 0 && e) fuse_reply_err(w->req, e);
    else fuse_reply_write(w->req, done);
  } else {
    char *buf = malloc(w->size ? w->size : 1);
    int e = ENOMEM;
    size_t done = buf ? pread_full(w->fd, buf, w->size, w->off, &e) : 0;
    if (e) fuse_reply_err(w->req, e); // a short read would tell the kernel the file ends there
    else fuse_reply_buf(w->req, buf, done);
    free(buf);
  }
  free(w->buf);
  free(w);
}

// How far the copy must have come before a read or write of [off, off + size) may go on:
// only the part that overlaps the lower file's bytes waits (an append does not wait at all).
static off_t bg_needs(const struct bg_copy *c, off_t off, size_t size) {
  if (off >= c->size) return 0;
  off_t end = off + (off_t) size;
  return end < c->size ? end : c->size;
}

// The copy has reached `copied` (or ended, `done`): answers the reads and writes it passed.
static void bg_advance(struct bg_copy *c, off_t copied, bool done, int err) {
  pthread_mutex_lock(&c->mu);
  __atomic_store_n(&c->copied, copied, __ATOMIC_RELEASE);
  if (done) {
    c->done = true;
    c->err = err;
  }
  struct bg_wait *ready = NULL, **pp = &c->waits;
  while (*pp) {
    struct bg_wait *w = *pp;
    if (done || bg_needs(c, w->off, w->size) <= copied) {
      *pp = w->next;
      w->next = ready;
      ready = w;
    } else {
      pp = &w->next;
    }
  }
  pthread_mutex_unlock(&c->mu);
  while (ready) {
    struct bg_wait *next = ready->next;
    bg_serve(c, ready, done ? err : 0);
    ready = next;
  }
}

static void *bg_run(void *arg) {
  struct bg_copy *c = arg;
  off_t pos = 0;
  int err = 0;
  if (ioctl(c->dst, FICLONE, c->src) == 0) {
    pos = c->size; // shares the lower's blocks: nothing to copy
  } else {
    bool cfr = true;
    off_t chunk = BG_CHUNK_FIRST;
    while (pos < c->size) {
      size_t want = (size_t) (c->size - pos < chunk ? c->size - pos : chunk);
      ssize_t n;
      if (cfr) {
        loff_t in = pos, out = pos;
        n = copy_file_range(c->src, &in, c->dst, &out, want, 0);
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
          cfr = false; // across file systems: sendfile
          continue;
        }
      } else {
        off_t in = pos;
        n = lseek(c->dst, pos, SEEK_SET) < 0 ? -1 : sendfile(c->dst, c->src, &in, want);
      }
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        err = n < 0 ? errno : EIO; // a lower file never shrinks: a short source is an error
        break;
      }
      pos += n;
      if (chunk < BG_CHUNK_MAX) chunk *= 2;
      char at[32];
      int len = snprintf(at, sizeof(at), "%lld", (long long) pos);
      if (fsetxattr(c->dst, XATTR_COPIED, at, (size_t) len, 0) < 0) {
        err = errno;
        break;
      }
      bg_keep_mtime(c);
      if (pos < c->size) bg_advance(c, pos, false, 0);
    }
  }
  if (!err) {
    fremovexattr(c->dst, XATTR_COPYSRC);
    fremovexattr(c->dst, XATTR_COPIED);
    // Writing the data dropped file capabilities; an unwritten copy keeps the lower's (a
    // write would have dropped them anyway). Setting an xattr leaves the mtime be.
    char caps[256];
    ssize_t n = bg_keep_mtime(c) ? -1 : fgetxattr(c->src, "security.capability", caps, sizeof(caps));
    if (n > 0) fsetxattr(c->dst, "security.capability", caps, (size_t) n, 0);
    unlink(c->journal);
  }
  // A failed copy keeps its journal entry: the next server to open the upper finishes it.
  bg_advance(c, pos, true, err ? EIO : 0);
  close(c->src);
  close(c->dst); // releases the flock a reader of the upper waits on
  uv_async_send(&BG.async);
  return NULL;
}

static bool bg_wait_for_range(fuse_req_t req, struct fuse_file_info *fi, bool write, const char *buf, size_t size, off_t off) {
  struct bg_copy *c = bg_find(fh_ino(fi));
  if (!c) return false;
  pthread_mutex_lock(&c->mu);
  if (c->done) {
    int err = c->err;
    pthread_mutex_unlock(&c->mu);
    if (!err) return false;
    fuse_reply_err(req, err);
    return true;
  }
  off_t copied = __atomic_load_n(&c->copied, __ATOMIC_ACQUIRE);
  if (bg_needs(c, off, size) <= copied) {
    if (write) bg_note_write_locked(c);
    pthread_mutex_unlock(&c->mu);
    return false; // passed already: the caller goes on (and, writing, calls bg_written)
  }
  struct bg_wait *w = calloc(1, sizeof(*w));
  char *data = write ? malloc(size ? size : 1) : NULL;
  if (!w || (write && !data)) {
    pthread_mutex_unlock(&c->mu);
    free(w);
    free(data);
    fuse_reply_err(req, ENOMEM);
    return true;
  }
  if (write) memcpy(data, buf, size);
  *w = (struct bg_wait) { .next = c->waits, .req = req, .fd = (int) fi->fh, .write = write, .off = off, .size = size, .buf = data };
  c->waits = w;
  pthread_mutex_unlock(&c->mu);
  return true;
}

// After a write that bg_wait_for_range let through.
static void bg_written(struct fuse_file_info *fi) {
  struct bg_copy *c = bg_find(fh_ino(fi));
  if (c) bg_note_written(c, (int) fi->fh);
}

// Parks a request on the file's copy until it ends; false when there is none to wait for.
static bool bg_park(uint64_t ino, struct bg_parked *p) {
  struct bg_copy *c = bg_find(ino);
  if (!c) return false;
  pthread_mutex_lock(&c->mu);
  if (c->done && !c->err) {
    pthread_mutex_unlock(&c->mu);
    return false;
  }
  if (c->done) {
    int err = c->err;
    pthread_mutex_unlock(&c->mu);
    fuse_reply_err(p->req, err);
    return true;
  }
  struct bg_parked *q = malloc(sizeof(*q));
  if (!q) {
    pthread_mutex_unlock(&c->mu);
    fuse_reply_err(p->req, ENOMEM);
    return true;
  }
  *q = *p;
  q->next = c->parked;
  c->parked = q;
  pthread_mutex_unlock(&c->mu);
  return true;
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi);
static void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi);

static void bg_replay(struct bg_parked *p, bool ended) {
  struct fuse_file_info *fi = p->has_fi ? &p->fi : NULL;
  if (ended) fuse_reply_err(p->req, ENODEV);
  else if (p->kind == BP_FSYNC) ll_fsync(p->req, p->node, p->datasync, fi);
  else if (p->kind == BP_FALLOCATE) ll_fallocate(p->req, p->node, p->mode, p->off, p->len, fi);
  else if (p->kind == BP_LSEEK) ll_lseek(p->req, p->node, p->off, p->whence, fi);
  else ll_setattr(p->req, p->node, &p->attr, p->to_set, fi);
  free(p);
}

// Loop thread: takes the copies that ended, runs what waited for them, and tells JS
// (copied(ino, errno)). `ended`: the session is over; waits for every copy first.
static void bg_reap(bool ended) {
  for (;;) {
    struct bg_copy *c = NULL;
    pthread_mutex_lock(&BG.mu);
    for (struct bg_copy *x = BG.list; x && !c; x = x->next) {
      if (x->reaped) continue;
      pthread_mutex_lock(&x->mu);
      if (x->done || ended) c = x;
      pthread_mutex_unlock(&x->mu);
    }
    pthread_mutex_unlock(&BG.mu);
    if (!c) return;
    pthread_join(c->thread, NULL);
    pthread_mutex_lock(&BG.mu);
    c->reaped = true;
    if (!c->err) {
      struct bg_copy **pp = &BG.list;
      while (*pp != c) pp = &(*pp)->next;
      *pp = c->next;
      __atomic_sub_fetch(&BG.live, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&BG.mu);
    struct bg_parked *p = c->parked;
    c->parked = NULL;
    while (p) {
      struct bg_parked *next = p->next;
      bg_replay(p, ended);
      p = next;
    }
    if (!ended) {
      SCOPE_OPEN;
      napi_value argv[3] = { num(env, -1), bigint_u64(env, c->ino), num(env, c->err) };
      call_js(OP_COPIED, -1, 3, argv);
      SCOPE_CLOSE;
    }
    if (!c->err) {
      free(c->journal);
      pthread_mutex_destroy(&c->mu);
      free(c);
    }
  }
}

static void bg_on_async(uv_async_t *handle) {
  bg_reap(false);
}

// ---- operations answered in JS -----------------------------------------------------------

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  // What this file system wants from the kernel (libfuse3 turns on a few defaults we do not):
  // - no AUTO_INVAL_DATA: files change only through this mount, cached pages stay valid;
  // - no HANDLE_KILLPRIV / ATOMIC_O_TRUNC: the kernel clears setuid bits and truncates on
  //   open with its own setattr, which the union handles like any other;
  // - readdirplus always (one trip per listing, not one lookup per name), cached symlinks.
  conn->want &= ~(FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_ATOMIC_O_TRUNC |
                  FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                  FUSE_CAP_SPLICE_MOVE | FUSE_CAP_POSIX_ACL | FUSE_CAP_WRITEBACK_CACHE);
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  S.no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
  conn->time_gran = 1;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  SCOPE_OPEN;
  napi_value argv[2] = { num(env, conn->max_write), num(env, conn->proto_minor) };
  call_js(OP_INIT, -1, 2, argv);
  SCOPE_CLOSE;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (upper_dir_lacks(parent, name)) {
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.entry_timeout = S.attr_timeout; // a negative entry the kernel may keep, as JS answers
    fuse_reply_entry(req, &e);
    return;
  }
  double id = pending(req);
  if (id < 0) return;
  SCOPE_OPEN;
  napi_value argv[3] = { num(env, id), num(env, (double) parent), bstr(env, name) };
  call_js(OP_LOOKUP, id, 3, argv);
  SCOPE_CLOSE;
}

static void forget_one(napi_env env, fuse_ino_t ino, uint64_t n) {
  napi_value argv[2] = { num(env, (double) ino), num(env, (double) n) };
  call_js(OP_FORGET, -1, 2, argv);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  fuse_reply_none(req);
  SCOPE_OPEN;
  forget_one(env, ino, nlookup);
  SCOPE_CLOSE;
}

// A walk of a big tree makes the kernel forget inodes by the ten thousand, in batches: one
// call into JS per batch (node, count pairs in a Float64Array), not one per inode.
static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  fuse_reply_none(req);
  SCOPE_OPEN;
  napi_value ab, pairs;
  void *data;
  if (napi_create_arraybuffer(env, count * 2 * sizeof(double), &data, &ab) == napi_ok &&
      napi_create_typedarray(env, napi_float64_array, count * 2, ab, 0, &pairs) == napi_ok) {
    double *d = data;
    for (size_t i = 0; i < count; i++) {
      d[2 * i] = (double) forgets[i].ino;
      d[2 * i + 1] = (double) forgets[i].nlookup;
    }
    call_js(OP_FORGETS, -1, 1, &pairs);
  } else {
    for (size_t i = 0; i < count; i++) forget_one(env, forgets[i].ino, forgets[i].nlookup);
  }
  SCOPE_CLOSE;
}

// The handle as JS knows it: -1 for none, and for one C opened alone (JS would take its fd
// for the node's object, which it is not once the node is copied up).
static double fh_arg(struct fuse_file_info *fi) {
  if (!fi) return -1;
  if (fi->fh < S.nfhs && S.fhs[fi->fh].ino && S.fhs[fi->fh].c_only) return -1;
  return (double) fi->fh;
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  int fd = upper_fd(ino, fi);
  // A lower file's own handle, while the node is still that lower file (not copied up).
  if (fd < 0 && fi && fi->fh < S.nfhs && S.fhs[fi->fh].ino && ino < S.n_lower_files && S.lower_files[ino].path) {
    fd = (int) fi->fh;
  }
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0) {
    st.st_ino = S.fhs[fd].ino;
    fuse_reply_attr(req, &st, S.attr_timeout);
    return;
  }
  // A lower file's attributes are its host file's (the kernel asks again after each read,
  // for the atime).
  if (fd < 0 && ino < S.n_lower_files && S.lower_files[ino].path && lstat(S.lower_files[ino].path, &st) == 0 && S_ISREG(st.st_mode)) {
    st.st_ino = S.lower_files[ino].ino;
    fuse_reply_attr(req, &st, S.attr_timeout);
    return;
  }
  if (fd < 0 && upper_dir_stat(ino, &st)) {
    fuse_reply_attr(req, &st, S.attr_timeout);
    return;
  }
  double id = pending(req);
  if (id < 0) return;
  SCOPE_OPEN;
  napi_value argv[3] = { num(env, id), num(env, (double) ino), num(env, fh_arg(fi)) };
  call_js(OP_GETATTR, id, 3, argv);
  SCOPE_CLOSE;
}

static int64_t timespec_ns(const struct timespec *ts) {
  return (int64_t) ts->tv_sec * 1000000000 + ts->tv_nsec;
}

// The changes of a setattr, on an upper file's fd: size, owner, then mode (a chown clears
// setuid bits the mode may set again), then times.
// A size change through a read-only fd (open(O_RDONLY|O_TRUNC), or truncate(2) while the file
// is open read-only elsewhere) goes through a second, writable open of the same file: the
// kernel has checked the caller's permission already.
static int truncate_fd(int fd, off_t size) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return errno;
  if ((fl & O_ACCMODE) != O_RDONLY) return ftruncate(fd, size) < 0 ? errno : 0;
  char proc[64];
  snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
  int wfd = open(proc, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (wfd < 0) return errno;
  int e = ftruncate(wfd, size) < 0 ? errno : 0;
  close(wfd);
  return e;
}

static int setattr_fd(int fd, const struct stat *attr, int to_set) {
  if (to_set & FUSE_SET_ATTR_SIZE) {
    int e = truncate_fd(fd, attr->st_size);
    if (e) return e;
  }
  if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t) -1;
    gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t) -1;
    if (fchown(fd, uid, gid) < 0) return errno;
  }
  if ((to_set & FUSE_SET_ATTR_MODE) && fchmod(fd, attr->st_mode & 07777) < 0) return errno;
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
    struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME) ts[0] = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME) ts[1] = attr->st_mtim;
    if (futimens(fd, ts) < 0) return errno;
  }
  return 0;
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  int fd = upper_fd(ino, fi);
  if (fd >= 0) {
    // A size or times change waits for a background copy of the file (see there) to end.
    if (bg_any() && (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))) {
      struct bg_parked p = { .kind = BP_SETATTR, .req = req, .node = ino, .has_fi = fi != NULL, .attr = *attr, .to_set = to_set };
      if (fi) p.fi = *fi;
      if (bg_park(S.fhs[fd].ino, &p)) return;
    }
    int e = setattr_fd(fd, attr, to_set);
    struct stat st;
    if (e == 0 && fstat(fd, &st) < 0) e = errno;
    if (e) {
      fuse_reply_err(req, e);
    } else {
      st.st_ino = S.fhs[fd].ino;
      fuse_reply_attr(req, &st, S.attr_timeout);
    }
    return;
  }
  if ((to_set & FUSE_SET_ATTR_SIZE) && pt_opens_of(ino)) {
    pt_detach(req, ino); // see "Passthrough"
    return;
  }
  lower_file_forget(ino);
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  SCOPE_OPEN;
  napi_value atime, mtime;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) atime = str(env, "now");
  else if (to_set & FUSE_SET_ATTR_ATIME) napi_create_bigint_int64(env, timespec_ns(&attr->st_atim), &atime);
  else atime = str(env, "omit");
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) mtime = str(env, "now");
  else if (to_set & FUSE_SET_ATTR_MTIME) napi_create_bigint_int64(env, timespec_ns(&attr->st_mtim), &mtime);
  else mtime = str(env, "omit");
  napi_value argv[10] = {
    num(env, id), num(env, (double) ino), num(env, fh_arg(fi)),
    (to_set & FUSE_SET_ATTR_MODE) ? num(env, attr->st_mode & 07777) : undefined(env),
    (to_set & FUSE_SET_ATTR_UID) ? num(env, attr->st_uid) : undefined(env),
    (to_set & FUSE_SET_ATTR_GID) ? num(env, attr->st_gid) : undefined(env),
    (to_set & FUSE_SET_ATTR_SIZE) ? bigint_u64(env, (uint64_t) attr->st_size) : undefined(env),
    atime, mtime, num(env, to_set),
  };
  call_js(OP_SETATTR, id, 10, argv);
  SCOPE_CLOSE;
}

static void ll_ino_only(enum op op, fuse_req_t req, fuse_ino_t ino) {
  double id = pending(req);
  if (id < 0) return;
  SCOPE_OPEN;
  napi_value argv[2] = { num(env, id), num(env, (double) ino) };
  call_js(op, id, 2, argv);
  SCOPE_CLOSE;
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) { ll_ino_only(OP_READLINK, req, ino); }
static void ll_statfs(fuse_req_t req, fuse_ino_t ino) { ll_ino_only(OP_STATFS, req, ino); }

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  SCOPE_OPEN;
  napi_value argv[9] = { num(env, id), num(env, (double) parent), bstr(env, name), num(env, mode), num(env, (double) rdev) };
  ctx_args(env, req, argv + 5);
  call_js(OP_MKNOD, id, 9, argv);
  SCOPE_CLOSE;
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  SCOPE_OPEN;
  napi_value argv[8] = { num(env, id), num(env, (double) parent), bstr(env, name), num(env, mode) };
  ctx_args(env, req, argv + 4);
  call_js(OP_MKDIR, id, 8, argv);
  SCOPE_CLOSE;
}

static void ll_parent_name(enum op op, fuse_req_t req, fuse_ino_t parent, const char *name) {
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  if (op == OP_RMDIR) slot_get(id)->moves_dirs = true;
  SCOPE_OPEN;
  napi_value argv[3] = { num(env, id), num(env, (double) parent), bstr(env, name) };
  call_js(op, id, 3, argv);
  SCOPE_CLOSE;
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) { ll_parent_name(OP_UNLINK, req, parent, name); }
static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  S.dir_gen++; // see "Upper directories"
  ll_parent_name(OP_RMDIR, req, parent, name);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  SCOPE_OPEN;
  napi_value argv[8] = { num(env, id), bstr(env, link), num(env, (double) parent), bstr(env, name) };
  ctx_args(env, req, argv + 4);
  call_js(OP_SYMLINK, id, 8, argv);
  SCOPE_CLOSE;
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  S.dir_gen++; // see "Upper directories"
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  slot_get(id)->moves_dirs = true;
  SCOPE_OPEN;
  napi_value argv[6] = { num(env, id), num(env, (double) parent), bstr(env, name), num(env, (double) newparent), bstr(env, newname), num(env, flags) };
  call_js(OP_RENAME, id, 6, argv);
  SCOPE_CLOSE;
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  lower_file_forget(ino);
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  SCOPE_OPEN;
  napi_value argv[4] = { num(env, id), num(env, (double) ino), num(env, (double) newparent), bstr(env, newname) };
  call_js(OP_LINK, id, 4, argv);
  SCOPE_CLOSE;
}

static void open_in_js(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  double id = pending(req);
  if (id < 0) return;
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) mutation(id);
  slot_get(id)->node = ino;
  cached_open_add(ino, 1); // JS answers in caching mode; undone if it answers an error
  SCOPE_OPEN;
  napi_value argv[3] = { num(env, id), num(env, (double) ino), num(env, fi->flags) };
  call_js(OP_OPEN, id, 3, argv);
  SCOPE_CLOSE;
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  bool read_only = (fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC);
  struct pt_node *pn = pt_node(ino, false);
  if (!read_only) {
    if (pn && pn->pt_opens) {
      pt_detach(req, ino); // see "Passthrough"
      return;
    }
    lower_file_forget(ino);
  } else if (pn && pn->pt_opens) {
    // Passthrough already: this open too, on the same backing (the data cannot have changed).
    pt_reply_open(req, ino, pn);
    return;
  } else if (ino < S.n_lower_files && S.lower_files[ino].path) {
    int fd = open(S.lower_files[ino].path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0) {
      if (PT.on && (!pn || pn->cached_opens == 0) && !no_pt_recent(S.lower_files[ino].ino) &&
          (pn = pt_backing(ino, fd, S.lower_files[ino].ino))) {
        pt_reply_open(req, ino, pn);
        return;
      }
      fh_remember((uint64_t) fd, S.lower_files[ino].ino, false, true);
      struct fuse_file_info out;
      memset(&out, 0, sizeof(out));
      out.fh = (uint64_t) fd;
      out.keep_cache = 1;
      out.noflush = 1;
      cached_open_add(ino, 1);
      if (fuse_reply_open(req, &out) == -ENOENT) {
        // The caller was interrupted and is gone: nobody will release this handle.
        cached_open_add(ino, -1);
        fh_close(fd);
      }
      return;
    }
    lower_file_forget(ino); // let JS decide what it is now
  }
  open_in_js(req, ino, fi);
}

// Opening a directory needs no union decision (the kernel only opendirs directories), and
// JS's listings do not depend on the handle (src/fuse/lowlevel/ops.ts: offsets are name
// cookies). So where the kernel offers it (Linux 5.1+), the first OPENDIR answers ENOSYS: from
// then on the kernel opens and releases directories without a round trip to us, with the
// flags we would give (keep_cache, cache_readdir), and every READDIR comes with handle 0.
// That is two requests fewer per directory a walk enters.
// Otherwise directory handles are numbers C hands out; JS keeps state for a handle only once
// it lists it, and hears of its release only then.
static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (S.no_opendir) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  struct fuse_file_info out;
  memset(&out, 0, sizeof(out));
  out.fh = ++S.next_dir_handle;
  out.keep_cache = 1;
  out.cache_readdir = 1;
  fuse_reply_open(req, &out);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (fi->fh < S.nfhs && S.fhs[fi->fh].ino && S.fhs[fi->fh].pt) {
    pt_release(ino);
    fuse_reply_err(req, 0);
    return;
  }
  cached_open_add(ino, -1);
  if (fi->fh < S.nfhs && S.fhs[fi->fh].ino) {
    // Known to C: closed here, and JS hears of it (request id -1: nothing to answer) unless
    // it never knew the handle.
    bool c_only = S.fhs[fi->fh].c_only;
    node_fd_drop(ino, (int) fi->fh);
    int r = fh_close((int) fi->fh);
    fuse_reply_err(req, r < 0 && errno != EINTR ? errno : 0);
    if (c_only) return;
    SCOPE_OPEN;
    napi_value argv[3] = { num(env, -1), num(env, (double) ino), num(env, (double) fi->fh) };
    call_js(OP_RELEASE, -1, 3, argv);
    SCOPE_CLOSE;
    return;
  }
  // A handle C was not told about (it could not remember it): JS closes it.
  double id = pending(req);
  if (id < 0) return;
  SCOPE_OPEN;
  napi_value argv[3] = { num(env, id), num(env, (double) ino), num(env, (double) fi->fh) };
  call_js(OP_RELEASE, id, 3, argv);
  SCOPE_CLOSE;
}
static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  fuse_reply_err(req, 0);
  if (!bit_get(&S.dirs_in_js, fi->fh)) return;
  bit_put(&S.dirs_in_js, fi->fh, false);
  SCOPE_OPEN;
  napi_value argv[3] = { num(env, -1), num(env, (double) ino), num(env, (double) fi->fh) };
  call_js(OP_RELEASEDIR, -1, 3, argv);
  SCOPE_CLOSE;
}

static void ll_readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, bool plus) {
  if (off != 0 && at_dir_end(ino, off)) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  double id = pending(req);
  if (id < 0) return;
  slot_t *s = slot_get(id);
  s->size = size;
  s->plus = plus;
  s->listed = ino;
  bit_put(&S.dirs_in_js, fi->fh, true);
  SCOPE_OPEN;
  napi_value plusv;
  napi_get_boolean(env, plus, &plusv);
  napi_value argv[6] = { num(env, id), num(env, (double) ino), num(env, (double) fi->fh), num(env, (double) off), plusv, num(env, (double) size) };
  call_js(OP_READDIR, id, 6, argv);
  SCOPE_CLOSE;
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  ll_readdir_common(req, ino, size, off, fi, false);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  ll_readdir_common(req, ino, size, off, fi, true);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  no_caps_set(ino, false);
  lower_file_forget(ino);
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  SCOPE_OPEN;
  napi_value buf;
  void *data;
  napi_create_buffer_copy(env, size, value, &data, &buf);
  napi_value argv[5] = { num(env, id), num(env, (double) ino), str(env, name), buf, num(env, flags) };
  call_js(OP_SETXATTR, id, 5, argv);
  SCOPE_CLOSE;
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  bool caps = strcmp(name, CAPS_XATTR) == 0;
  if (caps && no_caps_known(ino)) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  double id = pending(req);
  if (id < 0) return;
  slot_get(id)->size = size;
  if (caps) slot_get(id)->caps_of = ino;
  SCOPE_OPEN;
  napi_value argv[3] = { num(env, id), num(env, (double) ino), str(env, name) };
  call_js(OP_GETXATTR, id, 3, argv);
  SCOPE_CLOSE;
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  double id = pending(req);
  if (id < 0) return;
  slot_get(id)->size = size;
  SCOPE_OPEN;
  napi_value argv[2] = { num(env, id), num(env, (double) ino) };
  call_js(OP_LISTXATTR, id, 2, argv);
  SCOPE_CLOSE;
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  no_caps_set(ino, false);
  lower_file_forget(ino);
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  SCOPE_OPEN;
  napi_value argv[3] = { num(env, id), num(env, (double) ino), str(env, name) };
  call_js(OP_REMOVEXATTR, id, 3, argv);
  SCOPE_CLOSE;
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  double id = pending(req);
  if (id < 0) return;
  SCOPE_OPEN;
  napi_value argv[3] = { num(env, id), num(env, (double) ino), num(env, mask) };
  call_js(OP_ACCESS, id, 3, argv);
  SCOPE_CLOSE;
}

// ---- files made in C ------------------------------------------------------------------------
// A new regular file in a directory only upper has (see "Upper directories": not merged, so
// nothing beneath can have the name), by a caller with this process's own uid and gid and a
// mode without special bits: the union's rule for it (unionfs.ts, createAttr) is one
// open(O_CREAT|O_EXCL) in the upper directory, which already gives the owner and mode, and the
// whiteout of the name removed if there is one. C makes the file here (an untar creates one
// per file) and JS only takes the new node and answers (the "created" handler). Anything else,
// or any failure (the name exists: EEXIST; a whiteout is there), goes to JS's create, which
// finds the same state.
static uid_t my_uid;
static gid_t my_gid;
static bool umask_zero; // the kernel applied the caller's umask: open's mode is the mode
static struct stat made_stat; // of the file create_here made, while JS takes it
static int made_fd = -1;

static bool create_here(double id, fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  if (!umask_zero || !S_ISREG(mode) || (mode & 07000) != 0 || ctx->uid != my_uid || ctx->gid != my_gid) return false;
  char path[PATH_MAX], wh[PATH_MAX];
  struct upper_dir *d = unmerged_child(parent, name, path);
  if (!d || d->lower || strncmp(name, ".wh.", 4) == 0) return false;
  int n = snprintf(wh, sizeof(wh), "%s/.wh.%s", d->path, name);
  if (n < 0 || (size_t) n >= sizeof(wh)) return false;
  struct stat st;
  if (lstat(wh, &st) == 0 || (errno != ENOENT && errno != ENAMETOOLONG)) return false;
  int flags = (fi->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_APPEND)) | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
  int fd = open(path, flags, mode & 07777);
  if (fd < 0) return false;
  if (fstat(fd, &st) != 0) {
    close(fd);
    unlink(path);
    return false;
  }
  napi_env env = S.env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) {
    close(fd);
    unlink(path);
    return false;
  }
  // JS answers with replyCreated, which sends these attributes under the union's number.
  made_stat = st;
  made_fd = fd;
  napi_value argv[6] = { num(env, id), num(env, (double) parent), bstr(env, name), num(env, fd), num(env, st.st_mode), bigint_u64(env, st.st_ino) };
  call_js(OP_CREATED, id, 6, argv);
  made_fd = -1;
  napi_close_handle_scope(env, hs);
  return true;
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  double id = pending(req);
  if (id < 0) return;
  mutation(id);
  if (create_here(id, req, parent, name, mode, fi)) return;
  SCOPE_OPEN;
  napi_value argv[9] = { num(env, id), num(env, (double) parent), bstr(env, name), num(env, mode), num(env, fi->flags) };
  ctx_args(env, req, argv + 5);
  call_js(OP_CREATE, id, 9, argv);
  SCOPE_CLOSE;
}

// ---- operations answered in C, on the handle's fd ----------------------------------------

// Disk reads and fsyncs run on threads of our own, which answer the kernel themselves: the
// loop thread never waits for the disk, and is not woken again when they are done.
typedef struct io_job {
  struct io_job *next;
  void (*run)(struct io_job *);
  fuse_req_t req;
  int fd;
  size_t size, done;
  off_t off;
  char *buf;
  int datasync;
} io_job_t;

#define IO_MAX_THREADS 8

static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  io_job_t *head, *tail;
  int idle, threads;
} IO = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0 };

static void io_run(io_job_t *j) {
  j->run(j);
  free(j->buf);
  free(j);
}

// Like the loop thread (spin_for_request), a thread that just answered keeps looking for the
// next job a little before it sleeps: a reader waiting on each read sends the next at once.
static bool io_spin_for_job(void) {
  if (S.spin_ns <= 0) return false;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    if (__atomic_load_n(&IO.head, __ATOMIC_ACQUIRE)) return true;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > S.spin_ns) return false;
  }
}

static void *io_thread(void *arg) {
  pthread_mutex_lock(&IO.lock);
  for (;;) {
    if (!IO.head) {
      IO.idle++;
      pthread_mutex_unlock(&IO.lock);
      io_spin_for_job();
      pthread_mutex_lock(&IO.lock);
      IO.idle--;
    }
    while (!IO.head) {
      IO.idle++;
      pthread_cond_wait(&IO.wake, &IO.lock);
      IO.idle--;
    }
    io_job_t *j = IO.head;
    IO.head = j->next;
    if (!IO.head) IO.tail = NULL;
    pthread_mutex_unlock(&IO.lock);
    io_run(j);
    pthread_mutex_lock(&IO.lock);
  }
  return NULL;
}

// Queues a job; a thread is added while none is idle, up to IO_MAX_THREADS.
static void io_submit(io_job_t *j) {
  pthread_mutex_lock(&IO.lock);
  j->next = NULL;
  if (IO.tail) IO.tail->next = j;
  else __atomic_store_n(&IO.head, j, __ATOMIC_RELEASE);
  IO.tail = j;
  bool start = IO.idle == 0 && IO.threads < IO_MAX_THREADS;
  if (start) IO.threads++;
  pthread_cond_signal(&IO.wake);
  pthread_mutex_unlock(&IO.lock);
  if (!start) return;
  pthread_attr_t attr;
  pthread_t t;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int err = pthread_create(&t, &attr, io_thread, NULL);
  pthread_attr_destroy(&attr);
  if (err == 0) return;
  // No new thread: with none at all, nobody would ever take the queue, so run it here.
  pthread_mutex_lock(&IO.lock);
  IO.threads--;
  io_job_t *mine = IO.threads == 0 ? IO.head : NULL;
  if (mine) IO.head = IO.tail = NULL;
  pthread_mutex_unlock(&IO.lock);
  while (mine) {
    io_job_t *next = mine->next;
    io_run(mine);
    mine = next;
  }
}

static void read_rest(io_job_t *j) {
  int e;
  j->done += pread_full(j->fd, j->buf + j->done, j->size - j->done, j->off + (off_t) j->done, &e);
  // A short read would tell the kernel the file ends here: report the error instead.
  if (e) fuse_reply_err(j->req, e);
  else fuse_reply_buf(j->req, j->buf, j->done);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  if (bg_any() && bg_wait_for_range(req, fi, false, NULL, size, off)) return;
  int fd = (int) fi->fh;
  if (size > S.read_buf_size) {
    char *grown = realloc(S.read_buf, size);
    if (!grown) {
      fuse_reply_err(req, ENOMEM);
      return;
    }
    S.read_buf = grown;
    S.read_buf_size = size;
  }
  // Cached pages: copy now, in the loop thread. Anything else goes to the I/O threads so a
  // disk read never stalls the other requests.
  struct iovec iov = { .iov_base = S.read_buf, .iov_len = size };
  ssize_t n = preadv2(fd, &iov, 1, off, RWF_NOWAIT);
  if (n == (ssize_t) size || n == 0) {
    fuse_reply_buf(req, S.read_buf, (size_t) n);
    return;
  }
  if (n < 0 && errno != EAGAIN && errno != EOPNOTSUPP && errno != EINVAL) {
    fuse_reply_err(req, errno);
    return;
  }
  io_job_t *j = calloc(1, sizeof(*j));
  char *buf = malloc(size);
  if (!j || !buf) {
    free(j);
    free(buf);
    fuse_reply_err(req, ENOMEM);
    return;
  }
  j->run = read_rest;
  j->req = req;
  j->fd = fd;
  j->size = size;
  j->off = off;
  j->buf = buf;
  if (n > 0) {
    memcpy(buf, S.read_buf, (size_t) n);
    j->done = (size_t) n;
  }
  io_submit(j);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  if (bg_any() && bg_wait_for_range(req, fi, true, buf, size, off)) return;
  int e;
  size_t done = pwrite_full((int) fi->fh, buf, size, off, &e);
  if (done == 0 && e) {
    fuse_reply_err(req, e);
    return;
  }
  if (bg_any()) bg_written(fi);
  fuse_reply_write(req, done);
}

// Data reaches the host file at write time: nothing is buffered here to flush.
static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  fuse_reply_err(req, 0);
}

static void fsync_work(io_job_t *j) {
  int r = j->datasync ? fdatasync(j->fd) : fsync(j->fd);
  fuse_reply_err(j->req, r < 0 ? errno : 0);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  if (bg_any()) {
    struct bg_parked p = { .kind = BP_FSYNC, .req = req, .node = ino, .fi = *fi, .has_fi = true, .datasync = datasync };
    if (bg_park(fh_ino(fi), &p)) return;
  }
  io_job_t *j = calloc(1, sizeof(*j));
  if (!j) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  j->run = fsync_work;
  j->req = req;
  j->fd = (int) fi->fh;
  j->datasync = datasync;
  io_submit(j);
}

// Directory handles are JS's; the upper directories live on the host file system, whose
// own journal orders their entries.
static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  fuse_reply_err(req, 0);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) {
  if (bg_any()) {
    struct bg_parked p = { .kind = BP_FALLOCATE, .req = req, .node = ino, .fi = *fi, .has_fi = true, .mode = mode, .off = offset, .len = length };
    if (bg_park(fh_ino(fi), &p)) return;
  }
  int r = fallocate((int) fi->fh, mode, offset, length);
  fuse_reply_err(req, r < 0 ? errno : 0);
}

static void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
  if (bg_any()) {
    struct bg_parked p = { .kind = BP_LSEEK, .req = req, .node = ino, .fi = *fi, .has_fi = true, .off = off, .whence = whence };
    if (bg_park(fh_ino(fi), &p)) return;
  }
  off_t r = lseek((int) fi->fh, off, whence);
  if (r < 0) fuse_reply_err(req, errno);
  else fuse_reply_lseek(req, r);
}

static const struct fuse_lowlevel_ops ll_ops = {
  .init = ll_init,
  .lookup = ll_lookup,
  .forget = ll_forget,
  .forget_multi = ll_forget_multi,
  .getattr = ll_getattr,
  .setattr = ll_setattr,
  .readlink = ll_readlink,
  .mknod = ll_mknod,
  .mkdir = ll_mkdir,
  .unlink = ll_unlink,
  .rmdir = ll_rmdir,
  .symlink = ll_symlink,
  .rename = ll_rename,
  .link = ll_link,
  .open = ll_open,
  .read = ll_read,
  .write = ll_write,
  .flush = ll_flush,
  .release = ll_release,
  .fsync = ll_fsync,
  .opendir = ll_opendir,
  .readdir = ll_readdir,
  .readdirplus = ll_readdirplus,
  .releasedir = ll_releasedir,
  .fsyncdir = ll_fsyncdir,
  .statfs = ll_statfs,
  .setxattr = ll_setxattr,
  .getxattr = ll_getxattr,
  .listxattr = ll_listxattr,
  .removexattr = ll_removexattr,
  .access = ll_access,
  .create = ll_create,
  .fallocate = ll_fallocate,
  .lseek = ll_lseek,
};

// ---- the end, seen from aside -------------------------------------------------------------
// Once the session is over, every layer file goes at once, not at the process's exit: umount(2)
// has returned, and whoever unmounts a layer's file system next (unionmount-testsuite does, a
// few ms later) must not find it busy because of us. The kernel drops the FUSE_RELEASEs still
// queued with the connection, so the handles they would have closed are open here, and a
// passthrough backing stays referenced by the connection while its id or the session fd is
// open. The fd numbers stay taken (/dev/null in their place): a request still on its way
// through JS or an I/O thread cannot reach some other file.
//
// The loop thread learns of the end (ENODEV) only when JS lets it run, which may be tens of ms
// later (a long listing, the warm-up). So a thread of its own watches the mount table
// (/proc/self/mountinfo polls POLLPRI on every change); after a change it asks the session fd
// for 20 ms whether the connection is gone (POLLERR: the superblock goes just after the mount
// leaves the table), and if so drops the files itself and wakes the loop. Waiting on the
// session fd alone would wake it for every request. Not while a background copy runs: its
// upper file must stay, and the requests it serves use their handles' fds.

static int devnull_fd = -1;

// Under fh_mu: the fd now names /dev/null.
static void drop_fd(int fd) {
  if (devnull_fd < 0) devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull_fd >= 0 && fd != devnull_fd) dup2(devnull_fd, fd);
}

// `session_fd`: drop that too (the connection and its backings go with it); else, on the loop
// thread, the backings are closed one by one.
static void drop_layer_files(bool session_fd) {
  pthread_mutex_lock(&fh_mu);
  fh_dropped = true;
  for (size_t fh = 0; fh < S.nfhs; fh++) {
    if (S.fhs[fh].ino) drop_fd((int) fh);
  }
  if (session_fd && PT.fd >= 0) drop_fd(PT.fd);
  pthread_mutex_unlock(&fh_mu);
  if (session_fd) return;
  for (size_t n = 0; n < n_pt_nodes; n++) {
    if (pt_nodes[n].backing_id <= 0) continue;
    uint32_t id = (uint32_t) pt_nodes[n].backing_id;
    ioctl(PT.fd, K_FUSE_DEV_IOC_BACKING_CLOSE, &id);
    pt_nodes[n].backing_id = 0;
  }
}

static struct {
  pthread_t thread;
  bool on;
  int wake;        // eventfd: the loop thread saw the end itself
  uv_async_t async;
  bool async_on;
} END = { .wake = -1 };

static bool connection_gone(void) {
  struct pollfd p = { .fd = PT.fd, .events = 0 };
  return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

static void *end_watch(void *arg) {
  (void) arg;
  int table = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (table < 0) return NULL;
  struct pollfd p[2] = { { .fd = table, .events = POLLPRI }, { .fd = END.wake, .events = POLLIN } };
  bool gone = false;
  while (!gone) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents) break;
    if (!(p[0].revents & (POLLPRI | POLLERR))) continue;
    for (int i = 0; i < 40 && !(gone = connection_gone()); i++) {
      struct timespec half_ms = { 0, 500000 };
      nanosleep(&half_ms, NULL);
    }
  }
  close(table);
  if (gone) {
    if (!bg_any()) drop_layer_files(true);
    uv_async_send(&END.async);
  }
  return NULL;
}

static void session_ended(void);
static void end_on_async(uv_async_t *handle) {
  (void) handle;
  session_ended();
}

static void end_watch_start(uv_loop_t *loop) {
  END.wake = eventfd(0, EFD_CLOEXEC);
  if (END.wake < 0) return;
  if (uv_async_init(loop, &END.async, end_on_async) != 0) return;
  uv_unref((uv_handle_t *) &END.async);
  END.async_on = true;
  END.on = pthread_create(&END.thread, NULL, end_watch, NULL) == 0;
}

static void end_watch_stop(void) {
  if (END.on) {
    uint64_t one = 1;
    if (write(END.wake, &one, sizeof(one)) < 0) { /* it ends on its own after 20 ms at most */ }
    pthread_join(END.thread, NULL);
    END.on = false;
  }
  if (END.async_on) {
    uv_close((uv_handle_t *) &END.async, NULL);
    END.async_on = false;
  }
}

// ---- the loop ------------------------------------------------------------------------------

static void session_ended(void) {
  if (S.exited) return;
  S.exited = true;
  if (BG.async_on) {
    bg_reap(true); // every background copy ends first: the upper must be whole before we exit
    uv_close((uv_handle_t *) &BG.async, NULL);
    BG.async_on = false;
  }
  end_watch_stop();
  drop_layer_files(false); // after the copies: a request one of them served used its handle's fd
  if (S.polling) {
    // Closed, not only stopped: a worker thread's loop must have no handle left when it ends.
    uv_close((uv_handle_t *) &S.poll, NULL);
    S.polling = false;
  }
  napi_env env = S.env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  call_js(OP_EXIT, -1, 0, NULL);
  napi_close_handle_scope(env, hs);
}

// Adaptive polling: a caller that just got its answer usually sends the next request within
// microseconds, while waking this thread from sleep (epoll) costs tens of them on a VM. So
// after a request the loop keeps reading for up to spin_ns before it sleeps again: about
// half the latency per request, for CPU time that only a busy mount spends. Off with one CPU,
// where it would keep the caller from running.
static int spin_for_request(void) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    int r = fuse_session_receive_buf(S.se, &S.buf);
    if (r != -EAGAIN) return r;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > S.spin_ns) return -EAGAIN;
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  // Bounded, so timers and finished thread-pool work get their turn under a flood.
  for (int i = 0; i < 64 && !S.exited; i++) {
    int r = fuse_session_receive_buf(S.se, &S.buf);
    if (r == -EAGAIN && S.spin_ns > 0) r = spin_for_request();
    if (r == -EAGAIN) return;
    if (r == -EINTR) continue;
    if (r <= 0 || fuse_session_exited(S.se)) {
      // 0: unmounted (ENODEV) or the session was told to exit.
      session_ended();
      return;
    }
    fuse_session_process_buf(S.se, &S.buf);
  }
}

// ---- exported functions --------------------------------------------------------------------

// start(mountpoint, args: string[], handlers: object, attrTimeout: number, spinUs: number):
// mounts and starts serving. `args` are libfuse arguments ("-o", "allow_other,...");
// attrTimeout is for the attributes C answers alone; spinUs for spin_for_request.
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  PT.wanted = false;
  if (argc > 5) napi_get_value_bool(env, argv[5], &PT.wanted);
  CHECK(napi_get_value_double(env, argv[3], &S.attr_timeout));
  double spin_us = 0;
  if (argc > 4) napi_get_value_double(env, argv[4], &spin_us);
  S.spin_ns = sysconf(_SC_NPROCESSORS_ONLN) > 1 && spin_us > 0 ? (long) (spin_us * 1000) : 0;
  if (S.se) return throw_error(env, "ufs_fuse: a session is already running in this process");
  char mountpoint[4096];
  size_t len;
  CHECK(napi_get_value_string_utf8(env, argv[0], mountpoint, sizeof(mountpoint), &len));
  uint32_t n;
  CHECK(napi_get_array_length(env, argv[1], &n));
  char **fargv = calloc(n + 2, sizeof(char *));
  if (!fargv) return throw_error(env, "ufs_fuse: out of memory");
  fargv[0] = strdup("ufs");
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    char tmp[4096];
    CHECK(napi_get_element(env, argv[1], i, &v));
    CHECK(napi_get_value_string_utf8(env, v, tmp, sizeof(tmp), &len));
    fargv[i + 1] = strdup(tmp);
  }
  for (int i = 0; i < OP_COUNT; i++) {
    napi_value fn;
    napi_valuetype t;
    CHECK(napi_get_named_property(env, argv[2], op_names[i], &fn));
    CHECK(napi_typeof(env, fn, &t));
    if (t != napi_function) {
      char msg[128];
      snprintf(msg, sizeof(msg), "ufs_fuse: handler %s is not a function", op_names[i]);
      return throw_error(env, msg);
    }
    CHECK(napi_create_reference(env, fn, 1, &S.handlers[i]));
  }
  CHECK(napi_create_reference(env, argv[2], 1, &S.resource));
  CHECK(napi_async_init(env, argv[2], str(env, "ufs_fuse"), &S.actx));
  S.env = env;
  S.free_head = NO_SLOT;
  my_uid = geteuid();
  my_gid = getegid();
  mode_t mask = umask(0);
  umask(mask);
  umask_zero = mask == 0;

  struct fuse_args args = FUSE_ARGS_INIT((int) n + 1, fargv);
  S.se = fuse_session_new(&args, &ll_ops, sizeof(ll_ops), NULL);
  if (!S.se) return throw_error(env, "fuse: cannot create the session (bad options?)");
  if (fuse_session_mount(S.se, mountpoint) != 0) {
    fuse_session_destroy(S.se);
    S.se = NULL;
    return throw_error(env, "fuse: mount failed");
  }
  int fd = fuse_session_fd(S.se);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  PT.fd = fd;
  if (PT.wanted) {
    // Our own io on the same fd, for the INIT reply (see "Passthrough").
    static const struct fuse_custom_io io = { .writev = pt_io_writev, .read = pt_io_read };
    if (fuse_session_custom_io(S.se, &io, fd) != 0) PT.wanted = false;
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (uv_poll_init(loop, &S.poll, fd) != 0 || uv_poll_start(&S.poll, UV_READABLE, on_readable) != 0) {
    return throw_error(env, "ufs_fuse: cannot poll the fuse device");
  }
  S.polling = true;
  if (uv_async_init(loop, &BG.async, bg_on_async) == 0) {
    uv_unref((uv_handle_t *) &BG.async); // a copy's end is no reason to keep the process alive
    BG.async_on = true;
  }
  end_watch_start(loop);
  return undefined(env);
napi_fail:
  return throw_error(env, "ufs_fuse: bad arguments to start");
}

// Every reply takes the request id first; an unknown id (answered already) throws.
static slot_t *take(napi_env env, napi_value idv) {
  double id;
  if (napi_get_value_double(env, idv, &id) != napi_ok) {
    throw_error(env, "ufs_fuse: request id must be a number");
    return NULL;
  }
  slot_t *s = slot_get(id);
  if (!s) throw_error(env, "ufs_fuse: reply to a request that is not pending");
  return s;
}

#define ARGS(N) \
  size_t argc = N; napi_value argv[N]; \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL; \
  for (size_t i_ = argc; i_ < N; i_++) napi_get_undefined(env, &argv[i_]); \
  slot_t *s = take(env, argv[0]); \
  if (!s) return NULL; \
  fuse_req_t req = s->req

static double get_double(napi_env env, napi_value v, double dflt) {
  double d;
  return napi_get_value_double(env, v, &d) == napi_ok ? d : dflt;
}

// replyErr(id, errno): errno positive; 0 is success for ops without data.
static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  ARGS(2);
  int e = (int) get_double(env, argv[1], EIO);
  if (e == ENODATA && s->caps_of) no_caps_set(s->caps_of, true);
  if (s->node) cached_open_add(s->node, -1); // an open that failed
  slot_free(s);
  fuse_reply_err(req, e);
  return NULL;
}

static bool entry_param(napi_env env, napi_value *argv, struct fuse_entry_param *e) {
  memset(e, 0, sizeof(*e));
  e->ino = (fuse_ino_t) get_double(env, argv[0], 0);
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t == napi_object && !get_stat(env, argv[1], &e->attr)) return false;
  e->entry_timeout = get_double(env, argv[2], 0);
  e->attr_timeout = get_double(env, argv[3], 0);
  return true;
}

// The host path JS sent with an entry: a lower file's (see "Lower files"), or an upper
// directory's (see "Upper directories").
static void take_lower_path(const char *name, size_t len, fuse_ino_t node, const struct stat *attr) {
  char path[4096];
  if (!node || len >= sizeof(path) - 1) return;
  memcpy(path, name, len + 1);
  if (S_ISDIR(attr->st_mode)) {
    bool lower = len > 1 && path[len - 1] == '/';
    if (lower) path[len - 1] = '\0';
    upper_dir_set(node, path, attr->st_ino, attr->st_nlink == 1, lower);
  }
  else lower_file_set(node, path, attr->st_ino);
}

static void take_lower_file(napi_env env, napi_value v, fuse_ino_t node, const struct stat *attr) {
  napi_valuetype t;
  if (!node || napi_typeof(env, v, &t) != napi_ok || t != napi_string) return;
  char path[4096];
  size_t len;
  if (napi_get_value_string_latin1(env, v, path, sizeof(path), &len) != napi_ok || len >= sizeof(path) - 1) return;
  take_lower_path(path, len, node, attr);
}

// replyEntry(id, nodeid, attr | null, entryTimeout, attrTimeout, lowerFile?): nodeid 0 is a
// negative entry.
static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  ARGS(6);
  struct fuse_entry_param e;
  if (!entry_param(env, argv + 1, &e)) return throw_error(env, "ufs_fuse: replyEntry: bad attr");
  take_lower_file(env, argv[5], e.ino, &e.attr);
  slot_free(s);
  fuse_reply_entry(req, &e);
  return NULL;
}

static void open_bits(napi_env env, napi_value v, struct fuse_file_info *fi) {
  int bits = (int) get_double(env, v, 0);
  fi->keep_cache = (bits & 1) != 0;
  fi->direct_io = (bits & 2) != 0;
  fi->cache_readdir = (bits & 4) != 0;
  fi->noflush = (bits & 8) != 0;
}

// Sends a create's answer (the slot is freed here): the new node's entry and its open handle,
// an fd C then serves.
static napi_value reply_create(slot_t *s, fuse_req_t req, const struct fuse_entry_param *entry, struct fuse_file_info *handle) {
  struct fuse_entry_param e = *entry;
  struct fuse_file_info fi = *handle;
  slot_free(s);
  // A file just made has no xattrs, and its fd is its upper object.
  no_caps_set(e.ino, true);
  fh_remember(fi.fh, e.attr.st_ino, true, false);
  node_fd_set(e.ino, (int) fi.fh);
  fi.noflush = 1; // writes reach the file at once: nothing to flush on close
  cached_open_add(e.ino, 1);
  if (fuse_reply_create(req, &e, &fi) == -ENOENT) {
    // The caller was interrupted and is gone: nobody will release this handle.
    cached_open_add(e.ino, -1);
    fh_close((int) fi.fh);
  }
  return NULL;
}

// replyCreate(id, nodeid, attr, entryTimeout, attrTimeout, fh, bits)
static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  ARGS(7);
  struct fuse_entry_param e;
  if (!entry_param(env, argv + 1, &e)) return throw_error(env, "ufs_fuse: replyCreate: bad attr");
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof(fi));
  fi.fh = (uint64_t) get_double(env, argv[5], 0);
  open_bits(env, argv[6], &fi);
  return reply_create(s, req, &e, &fi);
}

// replyCreated(id, node, ino): the answer to a create C served up to it (create_here), with
// the attributes C has, under the union's inode number `ino`.
static napi_value js_reply_created(napi_env env, napi_callback_info info) {
  ARGS(3);
  if (made_fd < 0) return throw_error(env, "ufs_fuse: replyCreated: no file made in C is being answered");
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  e.ino = (fuse_ino_t) get_double(env, argv[1], 0);
  e.attr = made_stat;
  if (!get_u64(env, argv[2], &e.attr.st_ino)) return throw_error(env, "ufs_fuse: replyCreated: bad ino");
  e.entry_timeout = S.attr_timeout;
  e.attr_timeout = S.attr_timeout;
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof(fi));
  fi.fh = (uint64_t) made_fd;
  fi.keep_cache = 1;
  return reply_create(s, req, &e, &fi);
}

// replyAttr(id, attr, timeout)
static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  ARGS(3);
  struct stat st;
  if (!get_stat(env, argv[1], &st)) return throw_error(env, "ufs_fuse: replyAttr: bad attr");
  double timeout = get_double(env, argv[2], 0);
  slot_free(s);
  fuse_reply_attr(req, &st, timeout);
  return NULL;
}

// replyReadlink(id, target: Buffer | string)
static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *target = NULL;
  bool isbuf = false;
  napi_is_buffer(env, argv[1], &isbuf);
  if (isbuf) {
    void *data;
    size_t len;
    napi_get_buffer_info(env, argv[1], &data, &len);
    target = strndup(data, len);
  } else {
    size_t len;
    if (napi_get_value_string_latin1(env, argv[1], NULL, 0, &len) != napi_ok) return throw_error(env, "ufs_fuse: replyReadlink: bad target");
    target = malloc(len + 1);
    if (target) napi_get_value_string_latin1(env, argv[1], target, len + 1, &len);
  }
  slot_free(s);
  if (!target) fuse_reply_err(req, ENOMEM);
  else fuse_reply_readlink(req, target);
  free(target);
  return NULL;
}

// replyOpen(id, fh, bits, ino?): bits 1 keep_cache, 2 direct_io, 4 cache_readdir, 8 noflush,
// 16 the fd is the node's upper object. With `ino` (a file's fd), C may serve the handle.
static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  ARGS(4);
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof(fi));
  fi.fh = (uint64_t) get_double(env, argv[1], 0);
  open_bits(env, argv[2], &fi);
  uint64_t ino;
  if (get_u64(env, argv[3], &ino) && ino) {
    bool upper = ((int) get_double(env, argv[2], 0) & 16) != 0;
    fh_remember(fi.fh, ino, upper, false);
    if (upper) node_fd_set(s->node, (int) fi.fh);
  }
  fi.noflush = 1; // writes reach the file at once: nothing to flush on close
  fuse_ino_t node = s->node;
  slot_free(s);
  // The caller was interrupted and is gone: the kernel holds no such open.
  if (fuse_reply_open(req, &fi) == -ENOENT) cached_open_add(node, -1);
  return NULL;
}

// Answers a getxattr/listxattr with `data`: its size when the caller asked for the size,
// ERANGE when the caller's buffer is too small.
static void reply_xattr_data(fuse_req_t req, size_t want, const char *data, size_t len) {
  if (want == 0) fuse_reply_xattr(req, len);
  else if (len > want) fuse_reply_err(req, ERANGE);
  else fuse_reply_buf(req, data, len);
}

// replyXattr(id, value: Buffer)
static napi_value js_reply_xattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return throw_error(env, "ufs_fuse: replyXattr: value must be a Buffer");
  size_t want = s->size;
  slot_free(s);
  reply_xattr_data(req, want, data, len);
  return NULL;
}

// replyXattrList(id, names: string[])
static napi_value js_reply_xattr_list(napi_env env, napi_callback_info info) {
  ARGS(2);
  uint32_t n;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok) return throw_error(env, "ufs_fuse: replyXattrList: names must be an array");
  size_t total = 0, cap = 256;
  char *out = malloc(cap);
  for (uint32_t i = 0; out && i < n; i++) {
    napi_value v;
    size_t len;
    napi_get_element(env, argv[1], i, &v);
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) continue;
    while (total + len + 1 > cap) {
      cap *= 2;
      char *grown = realloc(out, cap);
      if (!grown) {
        free(out);
        out = NULL;
        break;
      }
      out = grown;
    }
    if (!out) break;
    napi_get_value_string_utf8(env, v, out + total, len + 1, &len);
    total += len + 1;
  }
  size_t want = s->size;
  slot_free(s);
  if (!out) fuse_reply_err(req, ENOMEM);
  else reply_xattr_data(req, want, out, total);
  free(out);
  return NULL;
}

// replyStatfs(id, statfs object as in src/unionfs/types.ts)
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  ARGS(2);
  struct statvfs st;
  memset(&st, 0, sizeof(st));
  int64_t v;
#define F(field, name) if (prop_i64(env, argv[1], name, &v)) st.field = v
  F(f_bsize, "bsize"); F(f_frsize, "frsize"); F(f_blocks, "blocks"); F(f_bfree, "bfree");
  F(f_bavail, "bavail"); F(f_files, "files"); F(f_ffree, "ffree"); F(f_favail, "favail");
  F(f_fsid, "fsid"); F(f_flag, "flag"); F(f_namemax, "namemax");
#undef F
  slot_free(s);
  fuse_reply_statfs(req, &st);
  return NULL;
}

// A latin1 string argument as a malloc'd copy (NUL-terminated; embedded NULs are kept), or
// NULL. `*len` is its length.
static char *latin1_copy(napi_env env, napi_value v, size_t *len) {
  if (napi_get_value_string_latin1(env, v, NULL, 0, len) != napi_ok) return NULL;
  char *b = malloc(*len + 1);
  if (b && napi_get_value_string_latin1(env, v, b, *len + 1, len) != napi_ok) {
    free(b);
    return NULL;
  }
  return b;
}

// The elements of a typed array argument of `type`, if it has at least `min` of them.
static void *typed_array(napi_env env, napi_value v, napi_typedarray_type type, size_t min) {
  napi_typedarray_type t;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, &length, &data, NULL, NULL) != napi_ok || t != type || length < min) return NULL;
  return data;
}

// replyDir(id, names, nums: Float64Array, bigs: BigInt64Array, count, entryTimeout,
// attrTimeout, lowerFiles, atEnd) -> how many entries were sent. `atEnd`: the last of them
// is the listing's last entry (see "Listing ends"). The entries of a DirPack
// (src/fuse/lowlevel/dirpack.ts): names and lower files ('' for none) NUL-separated, per entry
// DIR_NUMS numbers (mode, uid, gid, nlink, rdev, blksize, node id, the directory offset the
// kernel hands back to continue after it) and DIR_BIGS bigints (ino, size, blocks, atime,
// mtime, ctime in ns). For readdirplus, every entry sent with a non-zero node id counts as a
// lookup of that node (the caller bumps its count by the return value's worth).
#define DIR_NUMS 8
#define DIR_BIGS 6
static napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  ARGS(9);
  bool at_end = false;
  napi_get_value_bool(env, argv[8], &at_end);
  uint32_t n = (uint32_t) get_double(env, argv[4], 0);
  const double *nums = typed_array(env, argv[2], napi_float64_array, (size_t) n * DIR_NUMS);
  const int64_t *bigs = typed_array(env, argv[3], napi_bigint64_array, (size_t) n * DIR_BIGS);
  double entry_timeout = get_double(env, argv[5], 0), attr_timeout = get_double(env, argv[6], 0);
  size_t names_len = 0, lowers_len = 0;
  char *names = latin1_copy(env, argv[1], &names_len);
  char *lowers = latin1_copy(env, argv[7], &lowers_len);
  size_t size = s->size, used = 0;
  bool plus = s->plus;
  char *buf = malloc(size ? size : 1);
  if (!nums || !bigs || !names || !lowers || !buf) {
    free(names);
    free(lowers);
    free(buf);
    return throw_error(env, "ufs_fuse: replyDir: bad arguments"); // JS answers the request
  }
  const char *name = names, *lower = lowers;
  const char *names_end = names + names_len, *lowers_end = lowers + lowers_len;
  uint32_t sent = 0;
  off_t last = 0;
  for (; sent < n && name <= names_end && lower <= lowers_end; sent++) {
    const double *m = nums + (size_t) sent * DIR_NUMS;
    const int64_t *b = bigs + (size_t) sent * DIR_BIGS;
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.attr.st_mode = (mode_t) m[0];
    e.attr.st_uid = (uid_t) m[1];
    e.attr.st_gid = (gid_t) m[2];
    e.attr.st_nlink = (nlink_t) m[3];
    e.attr.st_rdev = (dev_t) m[4];
    e.attr.st_blksize = (blksize_t) m[5];
    e.attr.st_ino = (ino_t) b[0];
    e.attr.st_size = (off_t) b[1];
    e.attr.st_blocks = (blkcnt_t) b[2];
    ns_to_timespec(b[3], &e.attr.st_atim);
    ns_to_timespec(b[4], &e.attr.st_mtim);
    ns_to_timespec(b[5], &e.attr.st_ctim);
    off_t next = (off_t) m[7];
    size_t entsize;
    if (plus) {
      e.ino = (fuse_ino_t) m[6];
      e.entry_timeout = e.ino ? entry_timeout : 0;
      e.attr_timeout = e.ino ? attr_timeout : 0;
      entsize = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, next);
      if (e.ino && entsize <= size - used && *lower) take_lower_path(lower, strlen(lower), e.ino, &e.attr);
    } else {
      entsize = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, next);
    }
    if (entsize > size - used) break;
    used += entsize;
    last = next;
    name += strlen(name) + 1;
    lower += strlen(lower) + 1;
  }
  free(names);
  free(lowers);
  if (at_end && sent == n && n > 0) dir_end_set(s->listed, last);
  slot_free(s);
  fuse_reply_buf(req, buf, used);
  free(buf);
  return num(env, sent);
}

// dropNode(nodeid): the kernel forgot the node and JS dropped it: C forgets it too.
static napi_value js_drop_node(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  fuse_ino_t node = (fuse_ino_t) get_double(env, argv[0], 0);
  if (!node) return NULL;
  lower_file_forget(node);
  upper_dir_forget(node);
  dir_end_forget(node);
  no_caps_set(node, false);
  if (node < S.n_node_fds) S.node_fds[node] = 0;
  if (node < n_pt_nodes) pt_nodes[node].cached_opens = 0; // the kernel has no open of it left
  return NULL;
}

// copyInBackground(ino, src, dst, size, mtimeNs, journal: Buffer) -> boolean: copies
// `size` bytes from fd `src` to fd `dst` (the upper file, placed at its full size) on a thread
// of its own (see "Background copy-up"), and takes both fds; false (fds still the caller's)
// when no thread could start.
static napi_value js_copy_in_background(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_value result;
  napi_get_boolean(env, false, &result);
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 || !BG.async_on) return result;
  uint64_t ino;
  int64_t mtime;
  double src, dst, size;
  char *jdata;
  size_t jlen;
  if (!get_u64(env, argv[0], &ino) || napi_get_value_double(env, argv[1], &src) != napi_ok ||
      napi_get_value_double(env, argv[2], &dst) != napi_ok || napi_get_value_double(env, argv[3], &size) != napi_ok ||
      !get_i64(env, argv[4], &mtime) ||
      napi_get_buffer_info(env, argv[5], (void **) &jdata, &jlen) != napi_ok) {
    return throw_error(env, "ufs_fuse: bad arguments to copyInBackground");
  }
  struct bg_copy *c = calloc(1, sizeof(*c));
  char *journal = malloc(jlen + 1);
  if (!c || !journal) {
    free(c);
    free(journal);
    return result;
  }
  memcpy(journal, jdata, jlen);
  journal[jlen] = 0;
  c->ino = ino;
  c->src = (int) src;
  c->dst = (int) dst;
  c->size = (off_t) size;
  ns_to_timespec(mtime, &c->lower_mtime);
  c->journal = journal;
  pthread_mutex_init(&c->mu, NULL);
  pthread_mutex_lock(&BG.mu);
  c->next = BG.list;
  BG.list = c;
  __atomic_add_fetch(&BG.live, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&BG.mu);
  if (pthread_create(&c->thread, NULL, bg_run, c) != 0) {
    pthread_mutex_lock(&BG.mu);
    BG.list = c->next; // nobody else adds copies: it is still the head
    __atomic_sub_fetch(&BG.live, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&BG.mu);
    pthread_mutex_destroy(&c->mu);
    free(journal);
    free(c);
    return result;
  }
  napi_get_boolean(env, true, &result);
  return result;
}

// passthroughState() -> { offered, on, failedErrno }: what INIT negotiated, whether backing
// files are in use, and the errno that turned them off after INIT (0: none).
static napi_value js_passthrough_state(napi_env env, napi_callback_info info) {
  napi_value o, b;
  napi_create_object(env, &o);
  napi_get_boolean(env, PT.offered, &b);
  napi_set_named_property(env, o, "offered", b);
  napi_get_boolean(env, PT.on, &b);
  napi_set_named_property(env, o, "on", b);
  napi_set_named_property(env, o, "failedErrno", num(env, PT.failed_errno));
  return o;
}

#define EXPORT(name, fn) do { \
  napi_value f_; \
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f_) != napi_ok || \
      napi_set_named_property(env, exports, name, f_) != napi_ok) return NULL; \
} while (0)

static napi_value init(napi_env env, napi_value exports) {
  napi_value names;
  if (napi_create_array_with_length(env, K_COUNT, &names) != napi_ok) return NULL;
  for (uint32_t k = 0; k < K_COUNT; k++) {
    napi_value name;
    if (napi_create_string_utf8(env, attr_key_names[k], NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_set_element(env, names, k, name) != napi_ok) return NULL;
  }
  if (napi_create_reference(env, names, 1, &attr_keys_ref) != napi_ok) return NULL;
  EXPORT("start", js_start);
  EXPORT("replyErr", js_reply_err);
  EXPORT("replyEntry", js_reply_entry);
  EXPORT("replyCreate", js_reply_create);
  EXPORT("replyCreated", js_reply_created);
  EXPORT("replyAttr", js_reply_attr);
  EXPORT("replyReadlink", js_reply_readlink);
  EXPORT("replyOpen", js_reply_open);
  EXPORT("replyXattr", js_reply_xattr);
  EXPORT("replyXattrList", js_reply_xattr_list);
  EXPORT("replyStatfs", js_reply_statfs);
  EXPORT("replyDir", js_reply_dir);
  EXPORT("dropNode", js_drop_node);
  EXPORT("passthroughState", js_passthrough_state);
  EXPORT("copyInBackground", js_copy_in_background);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
