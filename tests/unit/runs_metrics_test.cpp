// Metric extraction from a run's output, which is hostile input: the default stdout pattern's linear scanner
// against std::regex, bounds on user patterns and on lines.
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "amlc/core/error.hpp"
#include "amlc/runs/metrics.hpp"
#include "support/harness.hpp"

using namespace amlc::runs;
using Found = std::vector<std::pair<std::string, std::string>>;

namespace {

// What std::regex finds with kDefaultMetricsRegex: the definition the scanner must equal.
Found regex_find_all(const std::regex& re, const std::string& line) {
  Found out;
  for (auto it = std::sregex_iterator(line.begin(), line.end(), re); it != std::sregex_iterator(); ++it)
    out.emplace_back((*it)[1].str(), (*it)[2].str());
  return out;
}

// Short lines of candidate `name = value` segments, near misses and noise, with or without delimiters between them:
// every branch of the pattern (names, spaces around '=', signs, digits, dots, exponents, the non-finite words and
// their near misses), other whitespace and bytes outside ASCII.
std::string random_line(std::mt19937& rng) {
  static const std::vector<std::string> names = {"a", "x", "Z", "_", "_b", "loss", "val/acc", "lr", "n.m", "a-b",
                                                 "a/b.c-d", "1a", "-a", ".a", "a1", "é", "a\xc3", ""};
  static const std::vector<std::string> equals = {"=", "=", " = ", "\t=", "= ", " =", "==", "=\v", ":", ""};
  static const std::vector<std::string> values = {
      "1", "0", "42", "-1", "+3", "0.5", ".5", "-.5e3", "1.", "1.e5", "3e+7", "2E-2", "1e", "1e+", "e1", ".", "-", "+",
      "+-1", "1.2.3", "1x", "nan", "NaN", "NAN", "-nan", "+NaN", "inf", "Inf", "INF", "-inf", "infinity", "Infinity",
      "-Infinity", "infinit", "nanx", "x", "", "1=2", "1\xff"};
  static const std::vector<std::string> delimiters = {" ", " ", ",", ";", "\t", ", ", "; ", "\v", "\f", "\r", "",
                                                      "(", ")", "\"", ":", "=", "/", "\xc3\xa9"};
  auto pick = [&rng](const std::vector<std::string>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  std::uniform_int_distribution<int> count(0, 5), coin(0, 9), byte(1, 255);
  std::string line;
  if (coin(rng) < 3) line += pick(delimiters);
  for (int k = count(rng); k > 0; --k) {
    if (coin(rng) == 0) line += static_cast<char>(byte(rng));  // any byte but NUL
    else line += pick(names) + pick(equals) + pick(values);
    line += pick(delimiters);
  }
  return line;
}

}  // namespace

TEST_CASE("runs: the default stdout pattern's scanner finds exactly what std::regex finds with kDefaultMetricsRegex") {
  const std::regex re(kDefaultMetricsRegex, std::regex::ECMAScript);
  MetricPattern scanner;
  std::vector<std::string> lines = {
      "",
      "a=1,b=2",
      "x = -.5e3;",
      "lr=1e",
      "a==1",
      "name=nan",
      "1a=2",
      "a/b.c-d=3",
      "a=1\tb=2\t",
      "a=1;",
      "a=1;b=2;",
      "a=1b=2",
      "a=1 b=2",
      "a = 1 = 2",
      "a=b=1",
      "a =\t+1.5E-7,c=inf",
      "a=infinity b=-Infinity c=+NaN d=nanx e=infinit",
      "a=.",
      "a=-",
      "a=1.e5 b=.5 c=1. d=. e=.e1",
      "=1",
      " =1",
      "_=0",
      "a=1=",
      "a=1,",
      ",a=1",
      ";;a=1;;",
      "epoch 3: loss=0.25 acc=0.5",
      "Namespace(lr=0.1, epochs=3)",
      "--lr=0.1",
      "a=\xc3\xa9",
      "\xc3\xa9" "a=1 b=2",
      "a=1\xff b=2",
      "a=1\vb=2\fc=3\rd=4",
  };
  std::mt19937 rng(20240611);  // deterministic: a failure names its line and reproduces
  for (int i = 0; i < 5000; ++i) lines.push_back(random_line(rng));
  size_t matched_lines = 0;
  for (const auto& line : lines) {
    Found expected = regex_find_all(re, line);
    Found got = scanner.find_all(line);
    if (!expected.empty()) ++matched_lines;
    if (got != expected) {
      // Show the line as bytes too: it may hold control characters.
      std::string hex;
      for (unsigned char c : line) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15], hex += ' ';
      FAIL_CHECK("line '" << line << "' (" << hex << "): regex found " << expected.size() << ", scanner "
                          << got.size());
    }
  }
  // The generated lines are not all misses: the comparison covers matching lines too.
  CHECK(matched_lines > 500);
}

TEST_CASE("runs: the default stdout pattern matches a line of any length in linear time without recursion") {
  MetricPattern p;
  // 1,000,000 digits: std::regex overflowed the stack from about 30,000 on.
  std::string digits(1000000, '7');
  Found got = p.find_all("loss=" + digits + " acc=0.5");
  REQUIRE(got.size() == 2);
  CHECK(got[0].first == "loss");
  CHECK(got[0].second == digits);
  CHECK(got[1] == std::pair<std::string, std::string>("acc", "0.5"));
  // Many starts that fail late, and many matches.
  std::string failing, many;
  for (int i = 0; i < 100000; ++i) failing += "a =  x ", many += "k=1 ";
  CHECK(p.find_all(failing).empty());
  CHECK(p.find_all(many).size() == 100000);
}

TEST_CASE("runs: a metrics regex from the run configuration is bounded, and so are the lines it is tried on") {
  std::string long_regex = "(a)(b)" + std::string(kMaxMetricsRegexBytes, 'c');
  try {
    MetricPattern p(long_regex, "run.yml:3:10: key 'metrics.regex'");
    FAIL("a metrics regex of " << long_regex.size() << " characters was accepted");
  } catch (const amlc::Error& e) {
    CHECK(e.kind() == amlc::ErrorKind::Usage);
    CHECK(std::string(e.what()).find("run.yml:3:10: key 'metrics.regex'") != std::string::npos);
  }
  MetricPattern user(R"((\w+): ([0-9]+))");
  CHECK(user.find_all("loss: 12") == Found{{"loss", "12"}});
  std::string line = "loss: " + std::string(kMaxRegexLineBytes, '1');
  CHECK(user.find_all(line).empty());                          // too long to be a metric line for a user pattern
  CHECK(user.find_all(std::string(100000, 'x') + ": 1").empty());  // and it is not run (no recursion per character)
  // The default pattern given explicitly is scanned, not compiled.
  MetricPattern same(kDefaultMetricsRegex);
  CHECK(same.find_all("loss=" + std::string(100000, '1')).size() == 1);
}

TEST_CASE("runs: MetricsTail skips a line longer than its bound without holding it, and keeps the lines around it") {
  amlc::test::TempDir tmp;
  auto file = tmp / "metrics.jsonl";
  std::string good = R"({"name":"a","value":1})";
  amlc::test::write_text(file, good + "\n" + std::string(1000, 'x'));
  MetricsTail tail(file, 100);
  auto first = tail.poll();
  REQUIRE(first.size() == 1);
  CHECK(first[0].name == "a");
  CHECK(tail.skipped() == 1);
  {
    std::ofstream f(file, std::ios::app);
    f << std::string(1000, 'y') << "\n" << good << "\n";  // the rest of the long line, then a record
  }
  auto second = tail.poll();
  REQUIRE(second.size() == 1);
  CHECK(second[0].name == "a");
  CHECK(tail.skipped() == 1);
  CHECK(tail.offset() == std::filesystem::file_size(file));
}

TEST_CASE("runs: bare NaN and Infinity in a metrics file line are read as strings, outside strings only") {
  amlc::test::TempDir tmp;
  MetricsWriter w(tmp / "metrics.jsonl");
  CHECK(w.add_raw_line(R"({"name":"a","value":-Infinity})"));
  CHECK(w.add_raw_line(R"({"name":"b","value":[1, NaN, Infinity],"kind":"list"})"));
  CHECK(w.add_raw_line(R"({"name":"c NaN","value":NaN})"));
  CHECK(!w.add_raw_line(R"({"name":"d","value":NaNx})"));
  CHECK(!w.add_raw_line(R"({"name":"e","value":xNaN})"));
  auto got = read_metrics(tmp / "metrics.jsonl");
  REQUIRE(got.size() == 3);
  CHECK(got[0].value == "-Infinity");
  CHECK(got[1].value == nlohmann::json({1, "NaN", "Infinity"}));
  CHECK(got[2].name == "c NaN");
  CHECK(got[2].value == "NaN");
}
