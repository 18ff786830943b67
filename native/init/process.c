#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "spec.h"
#include "util.h"

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
#define NFORWARDED (sizeof forwarded / sizeof forwarded[0])

static void on_signal(int sig) { (void)sig; }

static void blocked_set(sigset_t *set) {
  sigemptyset(set);
  for (size_t i = 0; i < NFORWARDED; i++) sigaddset(set, forwarded[i]);
  sigaddset(set, SIGCHLD);
}

void signals_block(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  // A real handler, not SIG_DFL: pid 1 of a namespace would otherwise drop these.
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < NFORWARDED; i++) sigaction(forwarded[i], &sa, NULL);
  // An inherited SIG_IGN for SIGCHLD would reap children behind our back.
  sa.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &sa, NULL);
  // A reader of fd 3 or of the relayed tty may go away; that is not fatal for us.
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
  sigset_t set;
  blocked_set(&set);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) die_errno("sigprocmask");
}

int signals_fd(void) {
  sigset_t set;
  blocked_set(&set);
  int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) die_errno("signalfd");
  return fd;
}

static void signals_reset(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &sa, NULL);  // fails harmlessly for some
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

// ---- the command ----

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static __attribute__((noreturn)) void exec_failed(const char *cmd, int err) {
  if (err == ENOENT || err == ENOTDIR) die_code(EXIT_NOT_FOUND, "exec: %s: not found", cmd);
  if (err == EACCES) die_code(EXIT_CANNOT_EXEC, "exec: %s: permission denied", cmd);
  die_code(EXIT_CANNOT_EXEC, "exec: %s: %s", cmd, strerror(err));
}

static const char *env_lookup(char **env, const char *name) {
  size_t n = strlen(name);
  const char *found = NULL;
  for (char **e = env; *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') found = *e + n + 1;
  return found;
}

// execvpe(3), but searching the container's PATH (from the spec's env, not ours), and
// never running a file without a #! line through /bin/sh.
static __attribute__((noreturn)) void exec_search(char **argv, char **env) {
  const char *cmd = argv[0];
  if (strchr(cmd, '/')) {
    execve(cmd, argv, env);
    exec_failed(cmd, errno);
  }
  const char *path = env_lookup(env, "PATH");
  if (!path) path = DEFAULT_PATH;
  size_t cmdlen = strlen(cmd);
  char *buf = malloc(strlen(path) + cmdlen + 3);
  if (!buf) die("out of memory");
  int denied = 0;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    size_t dirlen = (size_t)(end - p);
    if (dirlen == 0) {
      memcpy(buf, cmd, cmdlen + 1);  // an empty entry means the current directory
    } else {
      memcpy(buf, p, dirlen);
      buf[dirlen] = '/';
      memcpy(buf + dirlen + 1, cmd, cmdlen + 1);
    }
    execve(buf, argv, env);
    switch (errno) {
      case EACCES: denied = 1; break;
      case ENOENT: case ENOTDIR: case ELOOP: case ENAMETOOLONG: break;
      default: exec_failed(cmd, errno);
    }
    if (!*end) break;
    p = end;
  }
  exec_failed(cmd, denied ? EACCES : ENOENT);
}

void exec_command(const struct spec *s, int tty_slave) {
  // Until execve, processes in the container must not reach our /proc entries: exe is the
  // host's ufs-init binary (execve makes the command dumpable again).
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  signals_reset();
  if (setsid() < 0) die_errno("setsid");
  if (tty_slave >= 0) {
    // Controlling terminal; TIOCSCTTY makes our process group the foreground one too.
    if (ioctl(tty_slave, TIOCSCTTY, 0) < 0) die_errno("tty: set the controlling terminal");
    for (int fd = 0; fd <= 2; fd++)
      if (dup2(tty_slave, fd) < 0) die_errno("tty: dup2");
    if (tty_slave > 2) close(tty_slave);
  }
  close_fds_from(3);
  umask(022);
  // For run, pid 1 has limited the bounding set already; exec arrives with all of them.
  caps_limit_bounding(s->caps);
  caps_clear_ambient();
  if (setgroups(s->ngroups, s->groups) < 0) die_errno("setgroups");
  if (setgid(s->gid) < 0) die_errno("setgid %u", (unsigned)s->gid);
  if (setuid(s->uid) < 0) die_errno("setuid %u", (unsigned)s->uid);
  if (chdir(s->cwd) < 0) die_errno("cwd %s", s->cwd);
  // Root keeps the container's set; another user has none (setuid has just cleared them,
  // as the kernel does), as in Docker. Inheritable is emptied for both.
  caps_set(s->uid == 0 ? s->caps : 0);
  if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die_errno("no_new_privs");
  exec_search(s->args, s->env);
}

int pty_open(int *slave) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die_errno("tty: open /dev/ptmx");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) die_errno("tty: unlock the pty");
  int fd = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    // Before Linux 4.13: open the slave by name.
    char name[64];
    if (ptsname_r(master, name, sizeof name) != 0) die_errno("tty: ptsname");
    fd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) die_errno("tty: open %s", name);
  }
  struct winsize ws;
  if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
  *slave = fd;
  return master;
}

// ---- the wait loop and the tty relay ----

// Copies bytes between our stdin/stdout (the terminal we were given) and a pty master.
struct relay {
  int master;
  int in_open, out_ok, master_open;
  char to_master[4096];
  size_t tm_len, tm_off;
  char to_out[16384];
  size_t to_len, to_off;
  int in_flags, out_flags, master_flags;
  int raw;
  struct termios saved;
};

static void relay_start(struct relay *r, int master) {
  memset(r, 0, sizeof *r);
  r->master = master;
  if (master < 0) return;
  r->in_open = r->out_ok = r->master_open = 1;
  // The inner pty does the line discipline (echo, ^C, ^D); ours must pass bytes through.
  if (isatty(0) && tcgetattr(0, &r->saved) == 0) {
    struct termios raw = r->saved;
    cfmakeraw(&raw);
    if (tcsetattr(0, TCSANOW, &raw) == 0) r->raw = 1;
  }
  r->in_flags = fcntl(0, F_GETFL);
  r->out_flags = fcntl(1, F_GETFL);
  r->master_flags = fcntl(master, F_GETFL);
  if (r->in_flags >= 0) fcntl(0, F_SETFL, r->in_flags | O_NONBLOCK);
  if (r->out_flags >= 0) fcntl(1, F_SETFL, r->out_flags | O_NONBLOCK);
  if (r->master_flags >= 0) fcntl(master, F_SETFL, r->master_flags | O_NONBLOCK);
}

static void relay_finish(struct relay *r) {
  if (r->master < 0) return;
  if (r->out_flags >= 0) fcntl(1, F_SETFL, r->out_flags & ~O_NONBLOCK);
  if (r->out_ok && r->to_len > r->to_off)
    (void)write_all(1, r->to_out + r->to_off, r->to_len - r->to_off);
  if (r->in_flags >= 0) fcntl(0, F_SETFL, r->in_flags);
  if (r->out_flags >= 0) fcntl(1, F_SETFL, r->out_flags);
  if (r->raw) tcsetattr(0, TCSANOW, &r->saved);
}

static int status_code(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return EXIT_SETUP;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// After the command exits: wait this long for a quiet pty, and at most this long overall,
// for output still on its way (the kernel pushes pty data to the master asynchronously).
#define DRAIN_IDLE_MS 100
#define DRAIN_MAX_MS 2000

// Reads main's ready byte: then reports main's pid on fd 3; on EOF (main failed before it
// was ready) closes fd 3 with nothing written. Returns -1 once done, ready_fd to retry.
static int take_ready(int ready_fd, const struct supervisor *sv) {
  char c;
  ssize_t k = read(ready_fd, &c, 1);
  if (k < 0 && errno == EINTR) return ready_fd;
  if (k == 1) report_pid(sv->fd3, sv->main);
  else if (sv->fd3) close(3);
  close(ready_fd);
  return -1;
}

int supervise(const struct supervisor *sv) {
  struct relay r;
  relay_start(&r, sv->tty_master);
  int done = 0, code = 0;
  long long drain_until = 0;
  int ready_fd = sv->ready_fd;
  for (;;) {
    struct pollfd p[5];
    int n = 0, i_sig = n++, i_in = -1, i_master = -1, i_out = -1, i_ready = -1;
    p[i_sig] = (struct pollfd){ sv->sigfd, POLLIN, 0 };
    if (ready_fd >= 0) { i_ready = n; p[n++] = (struct pollfd){ ready_fd, POLLIN, 0 }; }
    if (r.master >= 0) {
      short mev = 0;
      if (r.master_open && r.to_len == 0) mev |= POLLIN;
      if (r.tm_len > 0) mev |= POLLOUT;
      if (mev) { i_master = n; p[n++] = (struct pollfd){ r.master, mev, 0 }; }
      if (r.in_open && r.tm_len == 0) { i_in = n; p[n++] = (struct pollfd){ 0, POLLIN, 0 }; }
      if (r.to_len > 0) { i_out = n; p[n++] = (struct pollfd){ 1, POLLOUT, 0 }; }
    }
    int timeout = -1;
    if (done) {
      // Nothing left to copy out: finished.
      if (r.master < 0 || (!r.master_open && r.to_len == 0)) break;
      long long left = drain_until - now_ms();
      if (left <= 0) break;
      timeout = left < DRAIN_IDLE_MS ? (int)left : DRAIN_IDLE_MS;
    }
    int rc = poll(p, (nfds_t)n, timeout);
    if (rc < 0) {
      if (errno == EINTR) continue;
      die_errno("poll");
    }
    if (rc == 0) break;  // drained and quiet

    if (i_ready >= 0 && p[i_ready].revents) {
      ready_fd = take_ready(ready_fd, sv);
      if (ready_fd >= 0) continue;  // EINTR
    }

    if (p[i_sig].revents) {
      struct signalfd_siginfo si;
      while (read(sv->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGCHLD) {
          int st;
          pid_t pid;
          while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            if (pid == sv->main && !done) {
              done = 1;
              code = status_code(st);
              drain_until = now_ms() + DRAIN_MAX_MS;
              r.in_open = 0;  // nobody left to type to
            }
          }
        } else if (sig == SIGWINCH && r.master >= 0 && !sv->forward_winch) {
          struct winsize ws;
          if (ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(r.master, TIOCSWINSZ, &ws);
        } else if (!done) {
          kill(sv->main, sig);
        }
      }
    }
    if (r.master < 0) continue;

    if (i_in >= 0 && p[i_in].revents) {
      ssize_t k = read(0, r.to_master, sizeof r.to_master);
      if (k > 0) { r.tm_len = (size_t)k; r.tm_off = 0; }
      else if (k == 0 || (errno != EAGAIN && errno != EINTR)) r.in_open = 0;
    }
    if (i_master >= 0 && (p[i_master].revents & POLLOUT) && r.tm_len > 0) {
      ssize_t k = write(r.master, r.to_master + r.tm_off, r.tm_len - r.tm_off);
      if (k > 0) {
        r.tm_off += (size_t)k;
        if (r.tm_off == r.tm_len) r.tm_len = r.tm_off = 0;
      } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
        r.tm_len = r.tm_off = 0;
        r.in_open = 0;
      }
    }
    if (i_master >= 0 && (p[i_master].revents & (POLLIN | POLLHUP | POLLERR)) && r.to_len == 0) {
      ssize_t k = read(r.master, r.to_out, sizeof r.to_out);
      if (k > 0) {
        // Once our terminal is gone, keep reading so the command never blocks on output.
        if (r.out_ok) { r.to_len = (size_t)k; r.to_off = 0; }
      } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
        r.master_open = 0;  // EIO: every slave is closed and all output was read
      }
    }
    if (i_out >= 0 && p[i_out].revents) {
      ssize_t k = write(1, r.to_out + r.to_off, r.to_len - r.to_off);
      if (k > 0) {
        r.to_off += (size_t)k;
        if (r.to_off == r.to_len) r.to_len = r.to_off = 0;
      } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
        r.out_ok = 0;
        r.to_len = r.to_off = 0;
      }
    }
  }
  relay_finish(&r);
  if (ready_fd >= 0) take_ready(ready_fd, sv);  // main is gone: byte or EOF is there now
  return code;
}

void report_pid(bool fd3_open, pid_t pid) {
  if (!fd3_open) return;
  char line[32];
  int n = snprintf(line, sizeof line, "%d\n", (int)pid);
  (void)write_all(3, line, (size_t)n);
  close(3);
}
