// ufs-init: the init of `ufs run --init` (as Docker's docker-init): pid 1 of the container,
// mounted at /dev/init by the runtime. It runs the command as its child, passes every signal
// it gets on to it, reaps every orphan that ends up with it, and exits with the command's
// status (128+n when a signal n killed it). Namespaces, mounts, capabilities and seccomp are
// the OCI runtime's: nothing of that happens here.
//
//   /dev/init -- COMMAND [ARG...]
//
// Exit codes when the command cannot run: 127 not found, 126 not executable.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int status_of(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 255;
}

int main(int argc, char **argv) {
  int first = 1;
  if (first < argc && strcmp(argv[first], "--") == 0) first++;
  if (first >= argc) {
    fprintf(stderr, "usage: ufs-init -- COMMAND [ARG...]\n");
    return 125;
  }
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);

  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "ufs-init: fork: %s\n", strerror(errno));
    return 125;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    // Its own process group, in the foreground of the terminal if it has one: ^C from the
    // terminal reaches it (and its children) directly, as without an init.
    setpgid(0, 0);
    if (isatty(STDIN_FILENO)) {
      signal(SIGTTOU, SIG_IGN);
      tcsetpgrp(STDIN_FILENO, getpgrp());
      signal(SIGTTOU, SIG_DFL);
    }
    execvp(argv[first], &argv[first]);
    int e = errno;
    fprintf(stderr, "ufs-init: exec %s: %s\n", argv[first], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  prctl(PR_SET_NAME, "ufs-init");

  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      // The kernel keeps these for the stopped terminal job; everything else goes on.
      if (sig != SIGTTIN && sig != SIGTTOU && sig != SIGTSTP) kill(child, sig);
      continue;
    }
    for (;;) {
      int st;
      pid_t p = waitpid(-1, &st, WNOHANG);
      if (p <= 0) break;
      if (p == child) {
        // The command is done: what it left behind ends with the pid namespace.
        return status_of(st);
      }
    }
  }
}
