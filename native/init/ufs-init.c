// ufs-init: the container's first process (Contract 6 in the team brief).
//
//   ufs-init run SPEC.json    the outer process forks pid 1 of new namespaces, which builds
//                             the container's filesystem, pivots into it, and runs the
//                             command as its child; both forward signals and pass the exit
//                             status up.
//   ufs-init exec SPEC.json   enter a running container (its pid 1's namespaces and root)
//                             and run another command there.
//
// Exit codes: the command's (128+n for signal n), 125 setup failure, 126 not executable,
// 127 not found. Errors are one line on stderr: "ufs-init: <what>: <why>".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/capability.h>

#include "caps.h"
#include "process.h"
#include "rootfs.h"
#include "spec.h"
#include "util.h"

static void loopback_up(void) {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) die_errno("network: socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) die_errno("network: lo");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) die_errno("network: bring lo up");
  close(sock);
}

// /dev/console is the command's terminal, as in Docker: bind the pty slave over an empty file.
static void bind_console(int slave) {
  int fd = open("/dev/console", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) die_errno("tty: create /dev/console");
  close(fd);
  char src[32];
  if (mount(fd_path(src, slave), "/dev/console", NULL, MS_BIND, NULL) < 0)
    die_errno("tty: mount /dev/console");
}

static int main_argc;
static char **main_argv;

// The container sees pid 1 as plain "ufs-init", not as our host paths (the spec's).
static void rename_self(void) {
  char *start = main_argv[0], *end = start + strlen(start) + 1;
  for (int i = 1; i < main_argc && main_argv[i] == end; i++) end += strlen(main_argv[i]) + 1;
  memset(start, 0, (size_t)(end - start));
  snprintf(start, (size_t)(end - start), "ufs-init");
  prctl(PR_SET_NAME, "ufs-init");
}

// pid 1 of the new pid namespace. ready_fd: the pipe to tell the outer process that the
// container is set up (only then does it report our pid: `exec` must find it complete).
static __attribute__((noreturn)) void container_init(const struct spec *s, int ready_fd) {
  // fd 3 (the pid report) and anything else the caller leaked stay outside: the ready pipe
  // takes fd 3's place, everything above goes.
  if (ready_fd != 3 && dup3(ready_fd, 3, O_CLOEXEC) < 0) die_errno("dup3");
  close_fds_from(4);
  ready_fd = 3;
  // Nothing in the container may ptrace us or open our /proc entries (exe is the host's
  // ufs-init binary, fds the caller's): only a holder of CAP_SYS_PTRACE could.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  rename_self();
  // Our own session: keystrokes on the caller's terminal reach the outer process only,
  // which forwards them once.
  setsid();
  // If the outer ufs-init dies, nobody is left to report our status: go too.
  prctl(PR_SET_PDEATHSIG, SIGKILL);

  int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (s->network_none ? CLONE_NEWNET : 0);
  if (unshare(flags) < 0) die_errno("unshare");
  umask(0);  // modes of /dev nodes exactly as given
  rootfs_setup(s);
  if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0) die_errno("sethostname");
  if (s->network_none) loopback_up();

  int master = -1, slave = -1;
  if (s->tty) {
    master = pty_open(&slave);
    if (fchown(slave, s->uid, (gid_t)-1) < 0) { /* best effort: lets the user reopen its tty */ }
    bind_console(slave);
  }
  int sigfd = signals_fd();
  // Setup is over: from here on nothing in the container, us included, can regain a
  // capability outside its set. The command still needs SETUID/SETGID to become its user.
  caps_limit_bounding(s->caps);
  caps_set(s->caps | CAPS_BIT(CAP_SETUID) | CAPS_BIT(CAP_SETGID) | CAPS_BIT(CAP_KILL));
  pid_t cmd = fork();
  if (cmd < 0) die_errno("fork");
  if (cmd == 0) {
    if (master >= 0) close(master);
    exec_command(s, slave);
  }
  // Left to do: wait, relay and forward signals, to a command that may be another user.
  caps_set(CAPS_BIT(CAP_KILL));
  if (slave >= 0) close(slave);  // so the master reads EIO once the command's side is gone
  (void)write_all(ready_fd, "r", 1);
  close(ready_fd);
  struct supervisor sv = { cmd, sigfd, master, false, -1, false };
  _exit(supervise(&sv));
}

static int cmd_run(const struct spec *s, bool fd3) {
  if (s->tty && !isatty(0)) die("tty: stdin is not a terminal");
  // Only children enter the new pid namespace: the outer process stays on the host side
  // of every namespace.
  if (unshare(CLONE_NEWPID) < 0) die_errno("unshare");
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) die_errno("pipe");
  fflush(NULL);
  pid_t pid1 = fork();
  if (pid1 < 0) die_errno("fork");
  if (pid1 == 0) container_init(s, ready[1]);
  close(ready[1]);
  struct supervisor sv = { pid1, signals_fd(), -1, true, ready[0], fd3 };
  return supervise(&sv);
}

static int cmd_exec(const struct spec *s, bool fd3) {
  if (s->tty && !isatty(0)) die("tty: stdin is not a terminal");
  // Open everything first: once in the container's mount namespace, /proc is the
  // container's own and has no entry for the host pid.
  static const struct { const char *name; int type; } nss[] = {
    { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS }, { "net", CLONE_NEWNET },
    { "pid", CLONE_NEWPID }, { "mnt", CLONE_NEWNS },
  };
  int fds[5];
  char path[64];
  for (size_t i = 0; i < 5; i++) {
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)s->pid, nss[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) die_errno("exec: container pid %d", (int)s->pid);
  }
  snprintf(path, sizeof path, "/proc/%d/root", (int)s->pid);
  int root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die_errno("exec: container pid %d", (int)s->pid);
  for (size_t i = 0; i < 5; i++) {
    if (setns(fds[i], nss[i].type) < 0) die_errno("exec: setns %s", nss[i].name);
    close(fds[i]);
  }
  if (fchdir(root) < 0) die_errno("exec: chdir to the container's root");
  if (chroot(".") < 0) die_errno("exec: chroot");
  if (chdir("/") < 0) die_errno("exec: chdir /");
  close(root);

  int master = -1, slave = -1;
  if (s->tty) master = pty_open(&slave);
  fflush(NULL);
  pid_t child = fork();  // the child is the first of us inside the pid namespace
  if (child < 0) die_errno("fork");
  if (child == 0) {
    if (master >= 0) close(master);
    exec_command(s, slave);
  }
  if (slave >= 0) close(slave);
  report_pid(fd3, child);
  struct supervisor sv = { child, signals_fd(), master, false, -1, false };
  return supervise(&sv);
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "exec") != 0))
    die("usage: ufs-init run|exec SPEC.json");
  // A closed 0, 1 or 2 would be taken by the next file we open and leak into the command.
  for (int fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) return EXIT_SETUP;
  main_argc = argc;
  main_argv = argv;
  bool exec_mode = strcmp(argv[1], "exec") == 0;
  // fd 3, if open, is where the caller wants the pid; keep it out of every child's exec.
  bool fd3 = fcntl(3, F_GETFD) >= 0;
  if (fd3) fcntl(3, F_SETFD, FD_CLOEXEC);
  struct spec s;
  spec_load(argv[2], exec_mode ? SPEC_EXEC : SPEC_RUN, &s);
  signals_block();
  return exec_mode ? cmd_exec(&s, fd3) : cmd_run(&s, fd3);
}
