#include "amlc/config/document.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/util.hpp"

namespace amlc::config {

std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

namespace {

Mark to_mark(const YAML::Mark& m) {
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

// Converting a YAML tree into JSON is bounded: aliases let a few hundred bytes name billions of values ("billion
// laughs"), and each value also costs a key path in the marks map. Every value produced is charged its key path,
// its text and a fixed overhead against a budget that a document without aliases stays below (a 4 MB flat list
// "[a,a,...]" costs about 40 bytes per byte) unless its keys are very long and deep.
constexpr size_t kNodeCost = 64;
constexpr size_t kBaseBudget = size_t{16} << 20;
constexpr size_t kBudgetPerByte = 64;

std::string at(const std::string& source, const Mark& m) {
  if (m.line == 0) return source;
  return source + ":" + std::to_string(m.line) + ":" + std::to_string(m.col);
}

std::string shorten(const std::string& s, size_t max = 24) {
  if (s.size() <= max) return s;
  return s.substr(0, max / 2) + "..." + s.substr(s.size() - max / 2) + " (" + std::to_string(s.size()) + " characters)";
}

// Offset of the first byte that does not start a well-formed UTF-8 sequence (no overlong forms, no surrogates,
// nothing above U+10FFFF), or npos. JSON output refuses such strings (nlohmann's dump throws), so they stop here.
size_t invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return i;
    if (i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// Line and column (1-based, in bytes) of `offset` in `text`.
Mark mark_at(std::string_view text, size_t offset) {
  size_t line_start = offset == 0 ? std::string_view::npos : text.rfind('\n', offset - 1);
  line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
  auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n') + 1;
  return {static_cast<int>(line), static_cast<int>(offset - line_start) + 1};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads `digits` (at least one) from s[i..]; returns the index after them.
size_t skip_digits(const std::string& s, size_t i) {
  while (i < s.size() && is_digit(s[i])) ++i;
  return i;
}

// YAML 1.2 core schema, as amlc has always read plain scalars: integers are [-+]?[0-9]+ (decimal only: 0x.. and
// 0o.. stay strings); floats [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?, .inf, -.inf, .nan (any case).
enum class ScalarKind { String, Int, Float, Inf, NegInf, NaN };

ScalarKind classify(const std::string& s) {
  if (s.empty()) return ScalarKind::String;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i < s.size() && s[i] == '.') {
    std::string rest = to_lower(s.substr(i));
    if (rest == ".inf") return s[0] == '-' ? ScalarKind::NegInf : ScalarKind::Inf;
    if (rest == ".nan" && i == 0) return ScalarKind::NaN;
  }
  size_t int_end = skip_digits(s, i);
  bool int_digits = int_end > i;
  if (int_digits && int_end == s.size()) return ScalarKind::Int;
  size_t j = int_end;
  bool frac_digits = false;
  if (j < s.size() && s[j] == '.') {
    size_t k = skip_digits(s, j + 1);
    frac_digits = k > j + 1;
    j = k;
  }
  if (!int_digits && !frac_digits) return ScalarKind::String;  // ".", "-", "+.", "e5"
  if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
    size_t k = j + 1;
    if (k < s.size() && (s[k] == '-' || s[k] == '+')) ++k;
    size_t e = skip_digits(s, k);
    if (e == k) return ScalarKind::String;
    j = e;
  }
  return j == s.size() ? ScalarKind::Float : ScalarKind::String;
}

struct Converter {
  const std::string& source;
  std::map<std::string, Mark>& marks;
  std::set<std::string>& big_numbers;
  size_t total;   // the budget
  size_t budget;  // what is left of it

  [[noreturn]] void fail_at(const Mark& m, const std::string& pointer, const std::string& message,
                            const std::string& hint) const {
    std::string msg = at(source, m) + ": ";
    if (!pointer.empty()) msg += "key '" + Document::key_path(pointer) + "': ";
    usage_error(msg + message, hint);
  }

  void charge(const YAML::Node& node, const std::string& pointer, size_t text_bytes) {
    size_t cost = kNodeCost + pointer.size() + text_bytes;
    if (cost > budget) {
      fail_at(to_mark(node.Mark()), pointer,
              "the document expands to more than " + std::to_string(total >> 20) + " MB of values and key paths",
              "YAML aliases (*name) that repeat other aliases multiply; write the values out instead");
    }
    budget -= cost;
  }

  json scalar(const YAML::Node& node, const std::string& pointer) {
    const std::string& s = node.Scalar();
    if (node.Tag() == "!") return s;  // quoted: always a string
    if (s == "null" || s == "Null" || s == "NULL" || s == "~" || s.empty()) return nullptr;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    switch (classify(s)) {
      case ScalarKind::String: return s;
      case ScalarKind::Inf: return std::numeric_limits<double>::infinity();
      case ScalarKind::NegInf: return -std::numeric_limits<double>::infinity();
      case ScalarKind::NaN: return std::numeric_limits<double>::quiet_NaN();
      case ScalarKind::Int: {
        long long v = 0;
        const char* first = s.data() + (s[0] == '+' ? 1 : 0);
        auto [end, ec] = std::from_chars(first, s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size()) {
          big_numbers.insert(pointer);  // no 64-bit type holds it: kept as written (see Document::is_big_number)
          return s;
        }
        return v;
      }
      case ScalarKind::Float: {
        double v = 0;
        const char* first = s.data() + (s[0] == '+' ? 1 : 0);
        auto [end, ec] = std::from_chars(first, s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size()) {
          if (ec == std::errc::result_out_of_range) {
            double d = std::strtod(s.c_str(), nullptr);  // tells an underflow (1e-400: 0) from an overflow
            if (std::isfinite(d)) return d;
          }
          big_numbers.insert(pointer);
          return s;
        }
        return v;
      }
    }
    return s;
  }

  json convert(const YAML::Node& node, const std::string& pointer, int depth) {
    if (depth > kMaxNesting) {
      // The key path of the first levels: the rest would repeat "[0]" a hundred times.
      std::string shown = pointer;
      for (size_t i = 0, n = 0; i < shown.size(); ++i) {
        if (shown[i] == '/' && ++n > 8) {
          shown.resize(i);
          break;
        }
      }
      fail_at(to_mark(node.Mark()), shown,
              "values are nested more than " + std::to_string(kMaxNesting) + " levels deep",
              "a configuration file never needs this much nesting; check the brackets and the aliases");
    }
    marks[pointer] = to_mark(node.Mark());
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null: charge(node, pointer, 0); return nullptr;
      case YAML::NodeType::Scalar:
        charge(node, pointer, node.Scalar().size());
        return scalar(node, pointer);
      case YAML::NodeType::Sequence: {
        charge(node, pointer, 0);
        json arr = json::array();
        size_t i = 0;
        for (const auto& item : node) arr.push_back(convert(item, pointer + "/" + std::to_string(i++), depth + 1));
        return arr;
      }
      case YAML::NodeType::Map: {
        charge(node, pointer, 0);
        json obj = json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            usage_error(at(source, to_mark(kv.first.Mark())) + ": a mapping key must be a plain value");
          }
          std::string key = kv.first.Scalar();
          std::string child = pointer + "/" + pointer_token(key);
          if (obj.contains(key)) {
            usage_error(at(source, to_mark(kv.first.Mark())) + ": key '" + Document::key_path(child) + "' appears twice",
                        "remove one of the two entries");
          }
          charge(kv.first, child, key.size());
          marks[child + "#key"] = to_mark(kv.first.Mark());
          obj[key] = convert(kv.second, child, depth + 1);
        }
        return obj;
      }
    }
    return nullptr;
  }
};

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "a mapping";
    default: return "a value";
  }
}

}  // namespace

std::string Document::key_path(const std::string& pointer) {
  if (pointer.empty()) return "(top level)";
  std::string out;
  for (const auto& raw : split(pointer.substr(1), '/')) {
    std::string tok;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size()) {
        tok += raw[i + 1] == '1' ? '/' : '~';
        ++i;
      } else {
        tok += raw[i];
      }
    }
    bool index = !tok.empty() && std::all_of(tok.begin(), tok.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (index) out += "[" + tok + "]";
    else out += (out.empty() ? "" : ".") + tok;
  }
  return out;
}

Mark Document::mark(const std::string& pointer) const {
  std::string p = pointer;
  for (;;) {
    auto it = marks_.find(p);
    if (it != marks_.end() && it->second.line > 0) return it->second;
    if (p.empty()) return {};
    auto slash = p.rfind('/');
    p = slash == std::string::npos ? "" : p.substr(0, slash);
  }
}

Mark Document::key_mark(const std::string& pointer) const {
  auto it = marks_.find(pointer + "#key");
  if (it != marks_.end() && it->second.line > 0) return it->second;
  return mark(pointer);
}

std::string Document::where(const std::string& pointer) const {
  Mark m = mark(pointer);
  if (m.line == 0) return source_;
  return source_ + ":" + std::to_string(m.line) + ":" + std::to_string(m.col);
}

void Document::error(const std::string& pointer, const std::string& message, const std::string& hint) const {
  std::string loc = where(pointer);
  std::string msg = loc + ": ";
  if (!pointer.empty()) msg += "key '" + key_path(pointer) + "': ";
  msg += message;
  usage_error(msg, hint);
}

void Document::check_keys(const std::string& pointer, const std::vector<std::string>& allowed) const {
  const json* obj = find(pointer);
  if (!obj) return;
  if (!obj->is_object()) error(pointer, "expected a mapping, found " + type_name(*obj));
  for (const auto& [key, value] : obj->items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string child = pointer + "/" + pointer_token(key);
    Mark m = key_mark(child);
    std::string loc = m.line ? source_ + ":" + std::to_string(m.line) + ":" + std::to_string(m.col) : source_;
    std::string suggestion = closest_match(key, allowed);
    std::string hint = suggestion.empty() ? "known keys: " + join(allowed, ", ") : "did you mean '" + suggestion + "'?";
    usage_error(loc + ": unknown key '" + key_path(child) + "'", hint);
  }
}

const json* Document::find(const std::string& pointer) const {
  try {
    json::json_pointer jp(pointer);
    if (!root_.contains(jp)) return nullptr;
    const json& v = root_.at(jp);
    return &v;
  } catch (const json::exception&) {
    return nullptr;
  }
}

std::string Document::describe(const std::string& pointer) const {
  const json* v = find(pointer);
  if (!v) return "nothing";
  if (is_big_number(pointer)) {
    const std::string& t = v->get_ref<const std::string&>();
    return "a number too large to represent: " + shorten(t);
  }
  switch (v->type()) {
    case json::value_t::null: return "nothing (null)";
    case json::value_t::boolean: return v->get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return v->dump();
    case json::value_t::number_float: {
      double d = v->get<double>();
      if (std::isnan(d)) return "not-a-number (.nan)";
      if (std::isinf(d)) return d > 0 ? "infinity (.inf)" : "minus infinity (-.inf)";
      return v->dump();
    }
    case json::value_t::string: {
      std::string t = v->get<std::string>();
      if (t.size() > 40) t = t.substr(0, 40) + "...";
      return "the string '" + t + "'";
    }
    case json::value_t::array: return "a list";
    case json::value_t::object: return "a mapping";
    default: return "a value";
  }
}

std::optional<std::string> Document::get_string(const std::string& pointer) const {
  const json* v = find(pointer);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number() || v->is_boolean()) return v->dump();
  error(pointer, "expected a string, found " + type_name(*v));
}

std::optional<double> Document::get_number(const std::string& pointer) const {
  const json* v = find(pointer);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_number()) return v->get<double>();
  error(pointer, "expected a number, found " + describe(pointer));
}

std::optional<long long> Document::get_int(const std::string& pointer) const {
  const json* v = find(pointer);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_number_integer()) return v->get<long long>();
  if (v->is_number_unsigned() && v->get<unsigned long long>() <= static_cast<unsigned long long>(LLONG_MAX)) {
    return v->get<long long>();
  }
  if (v->is_number_float()) {
    // Whole floats inside the range of long long (2^63 itself is not: converting it would be undefined).
    double d = v->get<double>();
    if (std::floor(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0) return static_cast<long long>(d);
  }
  error(pointer, "expected an integer, found " + describe(pointer));
}

std::optional<bool> Document::get_bool(const std::string& pointer) const {
  const json* v = find(pointer);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_boolean()) return v->get<bool>();
  error(pointer, "expected true or false, found " + describe(pointer));
}

std::string Document::require_string(const std::string& pointer) const {
  auto s = get_string(pointer);
  if (!s) error(pointer, "is required");
  return *s;
}

Document parse(const std::string& text, const std::string& source_name) {
  if (text.size() > kMaxConfigBytes) {
    usage_error(source_name + " is larger than " + std::to_string(kMaxConfigBytes) + " bytes",
                "a file this large is not a configuration file; check the path");
  }
  if (size_t nul = text.find('\0'); nul != std::string::npos) {
    // Not text; and yaml-cpp would take leading NULs for UTF-16/32 and decode the rest into invalid strings.
    usage_error(at(source_name, mark_at(text, nul)) + ": a NUL byte: this is not a text file", "a config is YAML or JSON text in UTF-8");
  }
  if (size_t bad = invalid_utf8(text); bad != std::string_view::npos) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[bad]));
    usage_error(at(source_name, mark_at(text, bad)) + ": not valid UTF-8 (byte " + byte + ")",
                "save the file as UTF-8 (it may be in Latin-1 or another legacy encoding)");
  }
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own guard (2000 nested parser calls) says only "bad file".
    usage_error(at(source_name, to_mark(e.mark)) + ": values are nested more than " + std::to_string(kMaxNesting) +
                    " levels deep",
                "a configuration file never needs this much nesting; check the brackets");
  } catch (const YAML::Exception& e) {
    usage_error(at(source_name, to_mark(e.mark)) + ": not valid YAML or JSON: " + e.msg,
                "check the syntax near that position");
  }
  std::map<std::string, Mark> marks;
  std::set<std::string> big_numbers;
  size_t budget = kBaseBudget + kBudgetPerByte * text.size();
  Converter c{source_name, marks, big_numbers, budget, budget};
  json root = c.convert(node, "", 0);
  return Document(source_name, std::move(root), std::move(marks), std::move(big_numbers));
}

Document load_file(const std::filesystem::path& path) {
  std::string text = read_input_file(path, kMaxConfigBytes, "config file");
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF && static_cast<unsigned char>(text[1]) == 0xBB &&
      static_cast<unsigned char>(text[2]) == 0xBF) {
    text.erase(0, 3);  // UTF-8 BOM (az ml pain #12)
  }
  if (text.size() >= 2 && ((static_cast<unsigned char>(text[0]) == 0xFF && static_cast<unsigned char>(text[1]) == 0xFE) ||
                           (static_cast<unsigned char>(text[0]) == 0xFE && static_cast<unsigned char>(text[1]) == 0xFF))) {
    usage_error(path.string() + " is UTF-16 encoded", "save it as UTF-8");
  }
  return parse(text, path.string());
}

}  // namespace amlc::config
