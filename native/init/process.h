// Processes: signal plumbing, the command's launch, pty relay and the wait loop shared by
// the outer ufs-init, pid 1 and `ufs-init exec`.
#ifndef UFS_INIT_PROCESS_H
#define UFS_INIT_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

struct spec;

// Blocks the forwarded signals and SIGCHLD (they are read from a signalfd instead),
// with SIGCHLD at its default (so children can be waited for) and SIGPIPE ignored.
// Call before forking, so a signal that comes early waits instead of being lost.
void signals_block(void);
// A close-on-exec signalfd for the blocked signals.
int signals_fd(void);

// In a freshly forked child: becomes the command. Own session; with tty_slave >= 0 that
// pty as controlling terminal and stdio; then groups, gid, uid, cwd, exactly the spec's
// env, exec with a search of the spec env's PATH. Exits 125/126/127 on failure.
__attribute__((noreturn)) void exec_command(const struct spec *s, int tty_slave);

// A new pty from the /dev/ptmx the process sees; returns the master and sets *slave
// (both close-on-exec). The window size is copied from fd 0 when that is a terminal.
int pty_open(int *slave);

struct supervisor {
  pid_t main;        // the child whose exit ends the loop
  int sigfd;         // from signals_fd()
  int tty_master;    // -1, or a pty master to relay with our fds 0 (in) and 1 (out)
  bool forward_winch;  // forward SIGWINCH to main (else, with a relay, copy the window size)
  int ready_fd;      // -1, or a pipe: one byte on it means main is ready, EOF that it failed
  bool fd3;          // report main's pid on fd 3 once ready (or close fd 3 on EOF)
};

// Forwards signals to main, reaps every child (pid 1 inherits orphans), relays the pty if
// any, and returns main's exit code (128+n if killed by signal n) once main has exited.
int supervise(const struct supervisor *sv);

// Writes "<pid>\n" to fd 3 and closes it, if the caller opened fd 3 for us.
void report_pid(bool fd3_open, pid_t pid);

#endif
