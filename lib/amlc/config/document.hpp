// Config documents: YAML or JSON files loaded into nlohmann::json while keeping the line and column
// of every value, so every error can say file:line:col, the key path and what was expected.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlc::config {

using json = nlohmann::json;

struct Mark {
  int line = 0;  // 1-based; 0 = unknown
  int col = 0;   // 1-based
};

class Document {
 public:
  Document() = default;
  Document(std::string source_name, json root, std::map<std::string, Mark> marks, std::set<std::string> big_numbers = {})
      : source_(std::move(source_name)), root_(std::move(root)), marks_(std::move(marks)), big_numbers_(std::move(big_numbers)) {}

  const std::string& source() const { return source_; }
  const json& root() const { return root_; }
  json& root() { return root_; }

  // Location of the value at a JSON pointer ("/policy/slack_factor"); falls back to the nearest parent.
  Mark mark(const std::string& pointer) const;
  // Location of the key itself (for unknown-key errors), falling back to the value.
  Mark key_mark(const std::string& pointer) const;

  // "file:line:col: key 'policy.slack_factor': <message>" as a Usage error.
  [[noreturn]] void error(const std::string& pointer, const std::string& message, const std::string& hint = {}) const;
  std::string where(const std::string& pointer) const;  // "file:line:col"

  // Object at `pointer` must only have keys from `allowed` (else error with a "did you mean").
  void check_keys(const std::string& pointer, const std::vector<std::string>& allowed) const;

  // Typed getters: nullopt if absent (or null); error if present with the wrong type.
  const json* find(const std::string& pointer) const;
  std::optional<std::string> get_string(const std::string& pointer) const;
  std::optional<double> get_number(const std::string& pointer) const;
  std::optional<long long> get_int(const std::string& pointer) const;
  std::optional<bool> get_bool(const std::string& pointer) const;
  // A number no 64-bit type holds (a 30-digit integer, 1e400) is kept as the text it was written as: get_string()
  // and an environment variable get that text; get_int()/get_number() say what it is.
  bool is_big_number(const std::string& pointer) const { return big_numbers_.count(pointer) > 0; }
  // The value at `pointer` for "expected X, found Y" messages: "70000", "the string 'abc'", "a number too large to
  // represent: 9999...9999 (2000 characters)", "infinity (.inf)", "a list", ...
  std::string describe(const std::string& pointer) const;
  std::string require_string(const std::string& pointer) const;

  static std::string key_path(const std::string& pointer);  // "/a/0/b" -> "a[0].b"

 private:
  std::string source_;
  json root_;
  std::map<std::string, Mark> marks_;  // pointer -> value mark; pointer + "#key" -> key mark
  std::set<std::string> big_numbers_;  // pointers of numbers kept as text
};

// One key as a JSON pointer token ("a/b" -> "a~1b", "~" -> "~0"), for building pointers: "/parameters/" + token.
std::string pointer_token(const std::string& key);

// Values nested deeper than this (brackets, indentation or aliases) are an error.
inline constexpr int kMaxNesting = 100;

// Loads a YAML or JSON file (JSON is read as YAML 1.2 so marks are kept). Errors carry file:line:col.
// The file is read with read_input_file(): fifos and devices are refused, and so is anything over kMaxConfigBytes.
Document load_file(const std::filesystem::path& path);
// Parses text (at most kMaxConfigBytes, UTF-8: other bytes are an error at their line:col). Hostile input is bounded: nesting (kMaxNesting), and what aliases expand to
// (a budget of 16 MB plus 64 bytes per byte of text, counting each value's key path), so a "billion laughs" is refused.
// Plain scalars are typed by the YAML 1.2 core schema (decimal integers, floats, .inf/.nan, true/false, null); an
// integer that does not fit in 64 bits or a float out of the double range is an error naming the key.
Document parse(const std::string& text, const std::string& source_name);

}  // namespace amlc::config
