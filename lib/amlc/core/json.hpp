// JSON text from sources amlc does not control: a run's metrics lines and records (its script can rewrite any file
// in its run folder), files the user names, the Docker engine's answers, a service's answers.
//
// nlohmann's parser does not recurse, but dump(), copies and comparisons of the parsed value do, one chain of stack
// frames per level: a document nested a few hundred thousand levels deep parses fine and crashes the process later,
// far from the parse. parse_json() refuses such a document up front.
//
//   json j = amlc::parse_json(text);                          // throws json::exception (also for "too deep")
//   json j = amlc::parse_json(text, kMaxJsonDepth, "the Docker engine's answer");  // what names it in the error
//   json j = amlc::try_parse_json(text);                      // j.is_discarded() if invalid or too deep
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace amlc {

// Enough for every document amlc reads: records are a few levels deep, plus the user's configuration values they hold
// (at most config's kMaxNesting = 100 levels). Far below the depth at which recursing into a value overflows the
// stack (tens of thousands of levels).
inline constexpr int kMaxJsonDepth = 512;

// A document nested deeper than allowed. It is a nlohmann::json::exception, so code that handles "not valid JSON"
// handles it the same way; what() says "<what>: JSON nested deeper than N levels (at byte B)".
class JsonTooDeep : public nlohmann::json::exception {
 public:
  explicit JsonTooDeep(const std::string& message);
};

// The deepest nesting of arrays and objects in `text` (0 for a scalar), counting brackets outside strings; the scan
// stops, returning the depth reached, as soon as it exceeds `stop_above`; *offset (if given) is then the byte
// offset of the bracket that went over. Exact for valid JSON; for other text, the parser reports the error anyway.
int json_depth(std::string_view text, int stop_above, size_t* offset = nullptr);

// json::parse(text) for text nested at most `max_depth` levels; deeper is a JsonTooDeep naming `what` (e.g.
// "metrics line", "model metadata file m.json"; empty: "JSON text"). Other errors are nlohmann's, unchanged.
nlohmann::json parse_json(std::string_view text, int max_depth = kMaxJsonDepth, std::string_view what = {});

// The same without exceptions, as json::parse(text, nullptr, false): a discarded value (is_discarded()) when the text
// is not JSON or is nested deeper than `max_depth`.
nlohmann::json try_parse_json(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace amlc
