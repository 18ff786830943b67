// mount.fuse.ufs: the mount(8) helper for `mount -t fuse.ufs SOURCE DIR -o OPTIONS` (and fstab
// lines), as a small program so that bringing a mount up costs one Node start, not two.
// It forks; the child starts its own session and execs the union's serving process
// (dist/src/fuse/server.js --mount-helper ARGS...) with a pipe on fd 3, on which the server
// writes "ok\n" once the mount serves, or "error CODE MESSAGE\n". The parent waits for that
// line and exits 0, or prints the message and exits with CODE (mount(8)'s 32, or 1 for usage).
// The server checks and parses the arguments itself (src/fuse/helperargs.ts).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef UFS_NODE
#define UFS_NODE "/usr/bin/node"
#endif

#define MOUNT_FAILURE 32
#define READY_FD 3

static void die(const char *what) {
  fprintf(stderr, "mount.fuse.ufs: %s: %s\n", what, strerror(errno));
  exit(MOUNT_FAILURE);
}

// <checkout>/native/build/Release/<us> -> <checkout>/dist/src/fuse/server.js
static void server_path(char *out, size_t size) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n < 0) die("readlink /proc/self/exe");
  self[n] = 0;
  char *dir = dirname(self); // .../native/build/Release
  for (int i = 0; i < 3; i++) dir = dirname(dir);
  snprintf(out, size, "%s/dist/src/fuse/server.js", dir);
}

// The node to run: $UFS_NODE, else the one this was built with, else node in PATH.
static const char *node_path(void) {
  const char *env = getenv("UFS_NODE");
  if (env && *env) return env;
  if (access(UFS_NODE, X_OK) == 0) return UFS_NODE;
  return "node";
}

int main(int argc, char **argv) {
  char server[PATH_MAX];
  server_path(server, sizeof(server));
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) die("pipe");

  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    // The server outlives us and our terminal: its own session, no directory held, no
    // stdio of ours (a pipeline around mount(8) must end when mount does).
    setsid();
    if (chdir("/") < 0) _exit(MOUNT_FAILURE);
    int null = open("/dev/null", O_RDWR);
    if (null < 0) _exit(MOUNT_FAILURE);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (dup2(pipefd[1], READY_FD) < 0) _exit(MOUNT_FAILURE); // dup2 clears close-on-exec
    if (null > READY_FD) close(null);
    char **args = calloc((size_t) argc + 7, sizeof(char *));
    if (!args) _exit(MOUNT_FAILURE);
    const char *node = node_path();
    int k = 0;
    args[k++] = (char *) node;
    // The flags of a serving process: SERVING_NODE_ARGS in src/common/serving.ts.
    args[k++] = "--no-opt";
    args[k++] = "--max-semi-space-size=1";
    args[k++] = "--heap-growing-percent=20";
    args[k++] = server;
    args[k++] = "--mount-helper";
    for (int i = 1; i < argc; i++) args[k++] = argv[i];
    args[k] = NULL;
    execvp(node, args);
    char msg[256];
    int len = snprintf(msg, sizeof(msg), "error %d cannot run %s: %s\n", MOUNT_FAILURE, node, strerror(errno));
    if (write(READY_FD, msg, (size_t) len) < 0) _exit(MOUNT_FAILURE);
    _exit(MOUNT_FAILURE);
  }
  close(pipefd[1]);

  char line[4096];
  size_t got = 0;
  while (got < sizeof(line) - 1) {
    ssize_t n = read(pipefd[0], line + got, sizeof(line) - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t) n;
    if (memchr(line, '\n', got)) break;
  }
  line[got] = 0;
  char *nl = strchr(line, '\n');
  if (nl) *nl = 0;
  if (strcmp(line, "ok") == 0) return 0;

  int code = MOUNT_FAILURE;
  const char *message = "the mount server exited before the mount was ready";
  if (strncmp(line, "error ", 6) == 0) {
    char *end;
    long c = strtol(line + 6, &end, 10);
    if (end != line + 6 && *end == ' ') {
      code = (int) c;
      message = end + 1;
    }
  }
  // A server that failed exits by itself; reap it if it already has.
  waitpid(pid, NULL, WNOHANG);
  fprintf(stderr, "mount.fuse.ufs: %s\n", message);
  return code;
}
