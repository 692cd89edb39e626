#include "amlc/core/json.hpp"

namespace amlc {

JsonTooDeep::JsonTooDeep(const std::string& message) : nlohmann::json::exception(0, message.c_str()) {}

int json_depth(std::string_view text, int stop_above, size_t* offset) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > stop_above) {
          if (offset) *offset = i;
          return deepest;
        }
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

nlohmann::json parse_json(std::string_view text, int max_depth, std::string_view what) {
  size_t at = 0;
  if (json_depth(text, max_depth, &at) > max_depth) {
    throw JsonTooDeep(std::string(what.empty() ? "JSON text" : what) + ": JSON nested deeper than " +
                      std::to_string(max_depth) + " levels (at byte " + std::to_string(at) + ")");
  }
  return nlohmann::json::parse(text);
}

nlohmann::json try_parse_json(std::string_view text, int max_depth) {
  if (json_depth(text, max_depth) > max_depth) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace amlc
