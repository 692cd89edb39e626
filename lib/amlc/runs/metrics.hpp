// Run metrics: collected from three sources into the run's metrics.jsonl, one record per line:
//
//   {"name": "loss", "value": 0.25, "step": 3, "time": 1763764800.123, "kind": "scalar", "source": "stdout"}
//
//   - "step" counts the reports of that name within the run: 1 for the first, 2 for the second, ... (so it
//     is HyperDrive's "interval" of that metric);
//   - "value": a number; NaN and infinities are the strings "NaN", "Infinity", "-Infinity" (JSON has no such
//     numbers); lists (kind "list") are arrays, rows (kind "row") objects, tags (kind "tag") strings;
//   - "time": unix seconds (fractional);
//   - "source": "file" ($AMLC_METRICS_FILE: the Python helper, or any program writing JSON lines with at
//     least "name" and "value") or "stdout" (lines matching the metrics pattern).
//
// The file is appended with one write() per record while the run executes; MetricsTail reads it incrementally.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/core/fs.hpp"

namespace amlc::runs {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Metric {
  std::string name;
  json value;
  int64_t step = 0;
  double time = 0;
  std::string kind = "scalar";
  std::string source;
  // The value as a number for scalars (NaN/Infinity strings included); nullopt for lists, rows, tags.
  std::optional<double> number() const;
  json to_json() const;
  static std::optional<Metric> from_json(const json& j);
};

// Katib's default "name=value" collector, anchored to whitespace: every "name=value" token on a line, where
// name is [A-Za-z_][A-Za-z0-9_.\-/]* and value a number, nan or (-)inf ("loss=0.25 acc=0.9", "epoch = 3").
inline constexpr const char* kDefaultMetricsRegex =
    R"((?:^|[\s,;])([A-Za-z_][A-Za-z0-9_.\-/]*)\s*=\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?:nan|NaN|inf|Inf|infinity|Infinity))(?=$|[\s,;]))";

// A run's output is hostile input, and libstdc++'s std::regex recurses once per character it repeats over (a 30,000
// character line overflows the stack) and per nesting level of the pattern when it compiles. So:
//   - the default pattern is matched by a hand-written scanner (linear, no recursion) that finds exactly what
//     kDefaultMetricsRegex finds, on a line of any length;
//   - a pattern from the run configuration (metrics.regex) may be at most kMaxMetricsRegexBytes long, and it is only
//     tried on lines of at most kMaxRegexLineBytes: a longer line is no metric line for it.
inline constexpr size_t kMaxMetricsRegexBytes = 1000;
inline constexpr size_t kMaxRegexLineBytes = 4096;

// A stdout pattern. Named groups (?<name>..)/(?P<name>..) and (?<value>..) are supported (translated for
// std::regex, which has none); without them, group 1 is the name and group 2 the value.
class MetricPattern {
 public:
  // Throws a Usage error with `where` ("file:line:col: key 'metrics.regex'") if the regex is longer than
  // kMaxMetricsRegexBytes, does not compile or has neither named groups nor two groups.
  explicit MetricPattern(const std::string& regex = kDefaultMetricsRegex, const std::string& where = {});
  // Every (name, value text) found on the line.
  std::vector<std::pair<std::string, std::string>> find_all(const std::string& line) const;
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::shared_ptr<const std::regex> re_;  // null for the default pattern (scanned); shared: one per distinct pattern
  size_t name_group_ = 1;
  size_t value_group_ = 2;
};

// Parses "0.25", "-1e-3", "nan", "inf" into a metric value (number or the NaN/Infinity strings); nullopt if not
// a number.
std::optional<json> parse_metric_number(const std::string& text);

// Writes records to metrics.jsonl with per-name step counters. Used by the run supervisor.
class MetricsWriter {
 public:
  explicit MetricsWriter(fs::path file);
  void add(const std::string& name, json value, const std::string& kind, const std::string& source,
           double time = 0);
  // One line of $AMLC_METRICS_FILE. Returns false (and writes nothing) if it is not a JSON object with a string
  // "name" and a "value" (or is nested deeper than kMaxJsonDepth). Bare NaN, Infinity and -Infinity outside strings
  // (Python's json.dumps) are read as the strings "NaN", "Infinity" and "-Infinity".
  bool add_raw_line(const std::string& line);
  size_t count() const { return count_; }
  const std::map<std::string, json>& tags() const { return tags_; }  // kind "tag" records, last value wins
  void sync();

 private:
  fs::path file_;
  Fd fd_;  // opened on the first record
  size_t count_ = 0;
  std::map<std::string, int64_t> steps_;
  std::map<std::string, json> tags_;
};

// The longest line of $AMLC_METRICS_FILE or metrics.jsonl that is read as a metric (a list or table of a few
// hundred thousand numbers); a longer line is skipped, and is never held in memory whole.
inline constexpr size_t kMaxMetricLineBytes = 16u << 20;

// Incremental reader of a growing JSON-lines file (metrics.jsonl, or any append-only file): each call returns
// the complete lines added since the last call, without re-reading what was read; a partial last line is kept
// until it is completed. Lines that are not valid records (not JSON, nested deeper than kMaxJsonDepth, longer than
// max_line_bytes) are skipped (counted in skipped()).
class MetricsTail {
 public:
  // max_line_bytes: 0 = no limit (a log file read line by line).
  explicit MetricsTail(fs::path file, size_t max_line_bytes = kMaxMetricLineBytes);
  std::vector<Metric> poll();
  // The raw complete lines since the last call (for other JSON-lines files).
  std::vector<std::string> poll_lines();
  uint64_t offset() const { return offset_; }
  size_t skipped() const { return skipped_; }

 private:
  fs::path file_;
  size_t max_line_ = 0;
  uint64_t offset_ = 0;
  std::string partial_;
  bool dropping_ = false;  // inside a line longer than max_line_: skipped up to its newline
  size_t skipped_ = 0;
};

// All records of a run's metrics file.
std::vector<Metric> read_metrics(const fs::path& file);

}  // namespace amlc::runs
