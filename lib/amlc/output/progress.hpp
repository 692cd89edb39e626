// A progress line for people on stderr: the one line a long command (a sweep; later an image build, a health wait)
// redraws in place while it works.
//
// On a terminal each show() replaces the line ("\r", erase to the end, the text), cut to the terminal's width: a
// line that wrapped would leave its first rows behind at every redraw. Without a terminal nothing is drawn (the
// command prints its own lines instead). Other output to the same stream must not land in the middle of the line:
// before it, end() finishes the line with a newline (the line stays, the output follows it), or clear() erases
// it (the output takes its place; the next show() draws the line again below). The destructor ends an open line,
// so an error reported after an exception starts on a line of its own.
#pragma once

#include <cstddef>
#include <functional>
#include <iostream>
#include <string>

namespace amlc::output {

// The width in columns of the terminal on `fd`, 0 when unknown (not a terminal).
size_t terminal_columns(int fd);

class ProgressLine {
 public:
  // `tty`: whether `out` is a terminal. `columns` gives its width at each redraw (0 = unknown: the line is not cut);
  // by default the width of the terminal on stderr.
  explicit ProgressLine(bool tty, std::ostream& out = std::cerr, std::function<size_t()> columns = {});
  ~ProgressLine() { end(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool enabled() const { return tty_; }  // lines are drawn
  bool open() const { return open_; }    // a line is drawn and not yet ended or cleared

  void show(std::string line);  // draws `line` in place of the open one (nothing without a terminal)
  void clear();                 // erases the open line, the cursor stays at its start
  void end();                   // finishes the open line with a newline

 private:
  bool tty_;
  std::ostream& out_;
  std::function<size_t()> columns_;
  bool open_ = false;
};

}  // namespace amlc::output
