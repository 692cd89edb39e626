#include "amlc/core/signals.hpp"

#include <csignal>

#include "amlc/core/error.hpp"

namespace amlc {

namespace {
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_signal(int sig) { g_signal = sig; }
}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR so loops can notice
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool interrupted() { return g_signal != 0; }
int interrupt_signal() { return g_signal; }
void reset_interrupted() { g_signal = 0; }

void throw_if_interrupted() {
  if (g_signal) fail(ErrorKind::Interrupted, "interrupted");
}

}  // namespace amlc
