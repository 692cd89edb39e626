#include "amlc/config/document.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <regex>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/util.hpp"

namespace amlc::config {

namespace {

std::string escape_pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

bool parse_int(const std::string& s, long long& out) {
  static const std::regex re("^[-+]?(0|[1-9][0-9]*)$");
  if (!std::regex_match(s, re)) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtoll(s.c_str(), &end, 10);
  return errno == 0;
}

bool parse_float(const std::string& s, double& out) {
  static const std::regex re("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
  if (std::regex_match(s, re)) {
    out = std::strtod(s.c_str(), nullptr);
    return true;
  }
  std::string l = to_lower(s);
  if (l == ".inf" || l == "+.inf") { out = INFINITY; return true; }
  if (l == "-.inf") { out = -INFINITY; return true; }
  if (l == ".nan") { out = NAN; return true; }
  return false;
}

json scalar_value(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted: always a string
  if (s == "null" || s == "Null" || s == "NULL" || s == "~" || s.empty()) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  long long i = 0;
  if (parse_int(s, i)) return i;
  double d = 0;
  if (parse_float(s, d)) return d;
  return s;
}

Mark to_mark(const YAML::Mark& m) {
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

json convert(const YAML::Node& node, const std::string& pointer, std::map<std::string, Mark>& marks,
             const std::string& source) {
  marks[pointer] = to_mark(node.Mark());
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: return nullptr;
    case YAML::NodeType::Scalar: return scalar_value(node);
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      size_t i = 0;
      for (const auto& item : node) arr.push_back(convert(item, pointer + "/" + std::to_string(i++), marks, source));
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          Mark m = to_mark(kv.first.Mark());
          usage_error(source + ":" + std::to_string(m.line) + ":" + std::to_string(m.col) +
                      ": a mapping key must be a plain value");
        }
        std::string key = kv.first.Scalar();
        std::string child = pointer + "/" + escape_pointer_token(key);
        if (obj.contains(key)) {
          Mark m = to_mark(kv.first.Mark());
          usage_error(source + ":" + std::to_string(m.line) + ":" + std::to_string(m.col) + ": key '" +
                          Document::key_path(child) + "' appears twice",
                      "remove one of the two entries");
        }
        marks[child + "#key"] = to_mark(kv.first.Mark());
        obj[key] = convert(kv.second, child, marks, source);
      }
      return obj;
    }
  }
  return nullptr;
}

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
    std::string child = pointer + "/" + escape_pointer_token(key);
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
  error(pointer, "expected a number, found " + type_name(*v) + (v->is_string() ? " '" + v->get<std::string>() + "'" : ""));
}

std::optional<long long> Document::get_int(const std::string& pointer) const {
  const json* v = find(pointer);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_number_integer() || v->is_number_unsigned()) return v->get<long long>();
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::floor(d) == d && std::isfinite(d)) return static_cast<long long>(d);
  }
  error(pointer, "expected an integer, found " + type_name(*v) + (v->is_primitive() && !v->is_null() ? " " + v->dump() : ""));
}

std::optional<bool> Document::get_bool(const std::string& pointer) const {
  const json* v = find(pointer);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_boolean()) return v->get<bool>();
  error(pointer, "expected true or false, found " + type_name(*v) + (v->is_primitive() ? " " + v->dump() : ""));
}

std::string Document::require_string(const std::string& pointer) const {
  auto s = get_string(pointer);
  if (!s) error(pointer, "is required");
  return *s;
}

Document parse(const std::string& text, const std::string& source_name) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    Mark m = to_mark(e.mark);
    std::string loc = m.line ? source_name + ":" + std::to_string(m.line) + ":" + std::to_string(m.col) : source_name;
    usage_error(loc + ": not valid YAML or JSON: " + e.msg, "check the syntax near that position");
  }
  std::map<std::string, Mark> marks;
  json root = convert(node, "", marks, source_name);
  return Document(source_name, std::move(root), std::move(marks));
}

Document load_file(const std::filesystem::path& path) {
  std::string type = describe_file_type(path);
  if (type == "missing") not_found("config file " + path.string() + " does not exist");
  if (type == "directory") usage_error(path.string() + " is a directory, expected a YAML or JSON file");
  std::string text = read_file(path);
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
