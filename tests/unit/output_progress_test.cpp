// Unit tests: the progress line (redrawn in place on a terminal, cut to its width, ended or erased before other
// output, ended when it goes out of scope; nothing without a terminal).
#include <doctest/doctest.h>

#include <sstream>
#include <stdexcept>
#include <string>

#include "amlc/output/progress.hpp"

using amlc::output::ProgressLine;

namespace {
const std::string kRedraw = "\r\033[K";
}

TEST_CASE("progress line: each show redraws the one line in place, end finishes it once") {
  std::ostringstream out;
  ProgressLine line(true, out, [] { return size_t{0}; });
  CHECK(line.enabled());
  CHECK_FALSE(line.open());
  line.end();  // nothing open: nothing written
  CHECK(out.str().empty());
  line.show("1/3 done");
  line.show("2/3 done");
  CHECK(line.open());
  CHECK(out.str() == kRedraw + "1/3 done" + kRedraw + "2/3 done");
  line.end();
  line.end();
  CHECK_FALSE(line.open());
  CHECK(out.str() == kRedraw + "1/3 done" + kRedraw + "2/3 done\n");
}

TEST_CASE("progress line: clear erases the open line for other output, the next show draws it again") {
  std::ostringstream out;
  ProgressLine line(true, out, [] { return size_t{0}; });
  line.clear();
  CHECK(out.str().empty());
  line.show("a");
  line.clear();
  CHECK_FALSE(line.open());
  out << "warning\n";
  line.show("b");
  CHECK(out.str() == kRedraw + "a" + kRedraw + "warning\n" + kRedraw + "b");
}

TEST_CASE("progress line: never as wide as the terminal, so it cannot wrap") {
  std::ostringstream out;
  size_t cols = 10;
  ProgressLine line(true, out, [&] { return cols; });
  line.show("0123456789abc");
  CHECK(out.str() == kRedraw + "012345678");
  out.str("");
  line.show("012345678");  // one column to spare: kept
  CHECK(out.str() == kRedraw + "012345678");
  out.str("");
  cols = 0;  // width unknown: not cut
  line.show("0123456789abc");
  CHECK(out.str() == kRedraw + "0123456789abc");
}

TEST_CASE("progress line: an open line is ended when it goes out of scope, also by an exception") {
  std::ostringstream out;
  try {
    ProgressLine line(true, out, [] { return size_t{0}; });
    line.show("working");
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
    out << "error\n";
  }
  CHECK(out.str() == kRedraw + "working\nerror\n");
}

TEST_CASE("progress line: without a terminal nothing is drawn") {
  std::ostringstream out;
  {
    ProgressLine line(false, out, [] { return size_t{80}; });
    CHECK_FALSE(line.enabled());
    line.show("1/3 done");
    CHECK_FALSE(line.open());
    line.clear();
    line.end();
  }
  CHECK(out.str().empty());
}
