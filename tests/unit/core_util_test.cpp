// Unit tests: numbers as text (format_number for people, exact_number for values that must read back).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "amlc/core/util.hpp"

using amlc::exact_number;
using amlc::format_number;

TEST_CASE("util: format_number shows at most 6 significant digits, as people read them") {
  CHECK(format_number(0) == "0");
  CHECK(format_number(3) == "3");
  CHECK(format_number(-2.5) == "-2.5");
  CHECK(format_number(0.1) == "0.1");
  CHECK(format_number(2.0 / 3.0) == "0.666667");
  CHECK(format_number(0.30000000000000004) == "0.3");
  CHECK(format_number(123456) == "123456");
  CHECK(format_number(1234567) == "1.23457e+06");
  CHECK(format_number(1e-5) == "1e-05");
  CHECK(format_number(60) == "60");
  CHECK(format_number(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(format_number(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(format_number(std::nan("")) == "nan");
}

TEST_CASE("util: exact_number is the shortest text that reads back as the same double") {
  CHECK(exact_number(0) == "0");
  CHECK(exact_number(1) == "1");  // no ".0": as the user wrote it
  CHECK(exact_number(-2.5) == "-2.5");
  CHECK(exact_number(0.1) == "0.1");
  CHECK(exact_number(0.30000000000000004) == "0.30000000000000004");
  CHECK(exact_number(1e-300) == "1e-300");
  CHECK(exact_number(1e300) == "1e+300");
  CHECK(exact_number(1e-5) == "1e-05");
  CHECK(exact_number(std::numeric_limits<double>::infinity()) == "inf");
  for (double v : {2.0 / 3.0, 1e-310, std::numeric_limits<double>::max(), -std::numeric_limits<double>::denorm_min(), 123456789.125}) {
    CAPTURE(v);
    CHECK(std::strtod(exact_number(v).c_str(), nullptr) == v);
  }
}
