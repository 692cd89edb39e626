// SIGCHLD to a pipe the scheduler polls (child_wakeup.hpp).
#include "amlc/sweep/child_wakeup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace amlc::sweep {

namespace {

int g_chld_pipe[2] = {-1, -1};

extern "C" void on_sigchld(int) {
  int saved = errno;
  if (g_chld_pipe[1] >= 0) {
    char c = 'c';
    ssize_t n = ::write(g_chld_pipe[1], &c, 1);
    (void)n;
  }
  errno = saved;
}

}  // namespace

ChildWakeup::ChildWakeup() {
  if (g_chld_pipe[0] < 0) {
    if (::pipe2(g_chld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      g_chld_pipe[0] = g_chld_pipe[1] = -1;
      return;
    }
  }
  struct sigaction sa {};
  sa.sa_handler = on_sigchld;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  installed_ = ::sigaction(SIGCHLD, &sa, &old_) == 0;
}

ChildWakeup::~ChildWakeup() {
  if (installed_) ::sigaction(SIGCHLD, &old_, nullptr);
}

int ChildWakeup::fd() const { return g_chld_pipe[0]; }

void ChildWakeup::drain() const {
  char buf[256];
  while (g_chld_pipe[0] >= 0 && ::read(g_chld_pipe[0], buf, sizeof buf) > 0) {
  }
}

}  // namespace amlc::sweep
