#include "amlc/output/render.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <sstream>

namespace amlc::output {

std::optional<Format> parse_format(const std::string& text) {
  if (text == "json") return Format::Json;
  if (text == "yaml") return Format::Yaml;
  if (text == "table") return Format::Table;
  if (text == "tsv") return Format::Tsv;
  if (text == "none") return Format::None;
  return std::nullopt;
}

const std::vector<std::string>& format_names() {
  static const std::vector<std::string> names{"json", "yaml", "table", "tsv", "none"};
  return names;
}

namespace {

void emit(YAML::Emitter& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        break;
      }
      out << YAML::BeginMap;
      for (const auto& [k, val] : v.items()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, val);
      }
      out << YAML::EndMap;
      break;
    case json::value_t::array:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        break;
      }
      out << YAML::BeginSeq;
      for (const auto& item : v) emit(out, item);
      out << YAML::EndSeq;
      break;
    case json::value_t::null: out << YAML::Null; break;
    case json::value_t::boolean: out << (v.get<bool>() ? "true" : "false"); break;
    case json::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      // Quote strings that would otherwise read back as another type.
      bool ambiguous = s.empty() || s == "null" || s == "true" || s == "false" || s == "~" ||
                       s.find_first_not_of("0123456789.-+eE") == std::string::npos;
      if (ambiguous) out << YAML::DoubleQuoted << s;
      else out << s;
      break;
    }
    default: out << v.dump(); break;
  }
}

std::vector<Column> default_columns(const json& row) {
  std::vector<Column> cols;
  if (!row.is_object()) return cols;
  for (const auto& [k, v] : row.items()) {
    if (v.is_primitive()) cols.push_back({k, "/" + k});
  }
  return cols;
}

json lookup(const json& row, const std::string& pointer) {
  try {
    json::json_pointer jp(pointer);
    if (row.contains(jp)) return row.at(jp);
  } catch (const json::exception&) {
  }
  return nullptr;
}

}  // namespace

std::string cell_text(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_object()) {
    std::string out;
    for (const auto& [k, val] : v.items()) {
      if (!out.empty()) out += ",";
      out += k + "=" + cell_text(val);
    }
    return out;
  }
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v) {
      if (!out.empty()) out += ",";
      out += cell_text(item);
    }
    return out;
  }
  return v.dump();
}

std::string to_yaml(const json& value) {
  YAML::Emitter out;
  emit(out, value);
  std::string s = out.c_str();
  if (!s.empty() && s.back() != '\n') s += '\n';
  return s;
}

std::string render(const json& value, Format format, const std::vector<Column>& columns) {
  switch (format) {
    case Format::None: return "";
    case Format::Json: return value.dump(2) + "\n";
    case Format::Yaml: return to_yaml(value);
    case Format::Table:
    case Format::Tsv: break;
  }
  json rows = value.is_array() ? value : json::array({value});
  if (!value.is_array() && !value.is_object()) return cell_text(value) + "\n";
  std::vector<Column> cols = columns;
  if (cols.empty() && !rows.empty()) cols = default_columns(rows[0]);
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : rows) {
    std::vector<std::string> line;
    if (row.is_object()) {
      for (const auto& c : cols) line.push_back(cell_text(lookup(row, c.pointer)));
    } else {
      line.push_back(cell_text(row));
    }
    cells.push_back(std::move(line));
  }
  std::ostringstream out;
  if (format == Format::Tsv) {
    for (const auto& line : cells) {
      for (size_t i = 0; i < line.size(); ++i) out << (i ? "\t" : "") << line[i];
      out << "\n";
    }
    return out.str();
  }
  std::vector<size_t> width(cols.size(), 0);
  for (size_t i = 0; i < cols.size(); ++i) width[i] = cols[i].header.size();
  for (const auto& line : cells)
    for (size_t i = 0; i < line.size() && i < width.size(); ++i) width[i] = std::max(width[i], line[i].size());
  auto put_line = [&](const std::vector<std::string>& line) {
    std::string s;
    for (size_t i = 0; i < line.size(); ++i) {
      s += line[i];
      if (i + 1 < line.size()) s += std::string(width[i] - std::min(width[i], line[i].size()) + 2, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  if (!cols.empty()) {
    std::vector<std::string> header, rule;
    for (size_t i = 0; i < cols.size(); ++i) {
      header.push_back(cols[i].header);
      rule.push_back(std::string(width[i], '-'));
    }
    put_line(header);
    put_line(rule);
  }
  for (const auto& line : cells) put_line(line);
  return out.str();
}

}  // namespace amlc::output
