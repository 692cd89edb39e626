#include "amlc/output/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

namespace amlc::output {

size_t terminal_columns(int fd) {
  winsize w{};
  return ::ioctl(fd, TIOCGWINSZ, &w) == 0 ? w.ws_col : 0;
}

ProgressLine::ProgressLine(bool tty, std::ostream& out, std::function<size_t()> columns)
    : tty_(tty), out_(out), columns_(std::move(columns)) {
  if (!columns_) columns_ = [] { return terminal_columns(STDERR_FILENO); };
}

void ProgressLine::show(std::string line) {
  if (!tty_) return;
  if (size_t cols = columns_(); cols > 1 && line.size() >= cols) line.resize(cols - 1);
  out_ << "\r\033[K" << line << std::flush;
  open_ = true;
}

void ProgressLine::clear() {
  if (!open_) return;
  out_ << "\r\033[K" << std::flush;
  open_ = false;
}

void ProgressLine::end() {
  if (!open_) return;
  out_ << "\n" << std::flush;
  open_ = false;
}

}  // namespace amlc::output
