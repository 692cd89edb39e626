#include "amlc/runs/metrics.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/json.hpp"
#include "amlc/core/util.hpp"

namespace amlc::runs {

std::optional<double> Metric::number() const {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (s == "NaN") return std::nan("");
    if (s == "Infinity") return HUGE_VAL;
    if (s == "-Infinity") return -HUGE_VAL;
  }
  return std::nullopt;
}

json Metric::to_json() const {
  return {{"name", name}, {"value", value}, {"step", step}, {"time", time}, {"kind", kind}, {"source", source}};
}

std::optional<Metric> Metric::from_json(const json& j) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("value")) return std::nullopt;
  Metric m;
  m.name = j["name"].get<std::string>();
  m.value = j["value"];
  if (j.contains("step") && j["step"].is_number_integer()) m.step = j["step"].get<int64_t>();
  if (j.contains("time") && j["time"].is_number()) m.time = j["time"].get<double>();
  if (j.contains("kind") && j["kind"].is_string()) m.kind = j["kind"].get<std::string>();
  if (j.contains("source") && j["source"].is_string()) m.source = j["source"].get<std::string>();
  return m;
}

std::optional<json> parse_metric_number(const std::string& text_in) {
  std::string text = trim(text_in);
  if (text.empty()) return std::nullopt;
  std::string lower = to_lower(text);
  std::string body = lower;
  bool neg = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    neg = body[0] == '-';
    body = body.substr(1);
  }
  if (body == "nan") return json("NaN");
  if (body == "inf" || body == "infinity") return json(neg ? "-Infinity" : "Infinity");
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') return std::nullopt;
  if (std::isinf(v)) return json(v < 0 ? "-Infinity" : "Infinity");
  // Keep integers as integers ("epoch=3" -> 3).
  if (text.find_first_of(".eE") == std::string::npos && std::fabs(v) < 9e15) return json(static_cast<int64_t>(v));
  return json(v);
}

// --- MetricPattern ------------------------------------------------------------------------------------------

namespace {

// std::regex compilation costs about as much as starting a trial (the default pattern's bracket expressions build
// a 256-entry cache each), and a sweep compiles the same pattern for every trial: compile each pattern once.
std::shared_ptr<const std::regex> compiled_regex(const std::string& ecma) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::regex>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(ecma);
  if (it != cache.end()) return it->second;
  auto re = std::make_shared<const std::regex>(ecma, std::regex::ECMAScript | std::regex::optimize);
  cache.emplace(ecma, re);
  return re;
}

// The classes of kDefaultMetricsRegex, in ASCII (std::regex's \s in the "C" locale: space, \t \n \v \f \r).
bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool is_delimiter(char c) { return is_space(c) || c == ',' || c == ';'; }  // [\s,;]
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c) || c == '.' || c == '-' || c == '/'; }

// The value alternatives of kDefaultMetricsRegex, matched against a whole token:
// [-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?  or  [-+]?(?:nan|NaN|inf|Inf|infinity|Infinity)
bool is_default_value(std::string_view t) {
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  std::string_view word = t.substr(i);
  for (std::string_view w : {"nan", "NaN", "inf", "Inf", "infinity", "Infinity"})
    if (word == w) return true;
  size_t digits = 0;
  while (i < t.size() && is_digit(t[i])) ++i, ++digits;
  if (i < t.size() && t[i] == '.') {
    ++i;
    size_t fraction = 0;
    while (i < t.size() && is_digit(t[i])) ++i, ++fraction;
    if (digits == 0 && fraction == 0) return false;
  } else if (digits == 0) {
    return false;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    size_t exponent = 0;
    while (i < t.size() && is_digit(t[i])) ++i, ++exponent;
    if (exponent == 0) return false;
  }
  return i == t.size();
}

// What std::sregex_iterator finds with kDefaultMetricsRegex, in one pass without recursion. A match is
// (^|[\s,;]) NAME \s* = \s* VALUE (?=$|[\s,;]): NAME is the whole run of name characters from its start (a shorter
// one is followed by a name character, not by \s or '='), and VALUE the whole token up to the next [\s,;] or the end
// (the lookahead admits no shorter match, as no value character is a delimiter). The search resumes where a match
// ends (its delimiter may start the next match) or one character after a failed start. Each character is looked at
// a bounded number of times: a start needs a delimiter (or the line's start) before it.
std::vector<std::pair<std::string, std::string>> scan_default(std::string_view line) {
  std::vector<std::pair<std::string, std::string>> out;
  if (line.find('=') == std::string_view::npos) return out;
  const size_t n = line.size();
  size_t s = 0;  // where NAME would start
  while (s < n) {
    bool can_start = s == 0 || is_delimiter(line[s - 1]);
    if (!can_start || !is_name_start(line[s])) {
      ++s;
      continue;
    }
    size_t i = s;
    while (i < n && is_name_char(line[i])) ++i;
    size_t name_end = i;
    while (i < n && is_space(line[i])) ++i;
    if (i >= n || line[i] != '=') {
      ++s;
      continue;
    }
    ++i;
    while (i < n && is_space(line[i])) ++i;
    size_t j = i;
    while (j < n && !is_delimiter(line[j])) ++j;
    if (j == i || !is_default_value(line.substr(i, j - i))) {
      ++s;
      continue;
    }
    out.emplace_back(std::string(line.substr(s, name_end - s)), std::string(line.substr(i, j - i)));
    s = j + 1;  // line[j] is the delimiter the next match may start with (or j == n)
  }
  return out;
}

}  // namespace

MetricPattern::MetricPattern(const std::string& regex, const std::string& where) : source_(regex) {
  if (regex == kDefaultMetricsRegex) return;  // scanned by scan_default(): nothing to compile
  if (regex.size() > kMaxMetricsRegexBytes) {
    usage_error((where.empty() ? "" : where + ": ") + "metrics regex is " + std::to_string(regex.size()) +
                    " characters long; at most " + std::to_string(kMaxMetricsRegexBytes) + " are allowed",
                "a metrics pattern needs only a name group and a value group, e.g. '^(\\w+): ([0-9.]+)$'");
  }
  // Translate named groups (std::regex has none) and count capture groups.
  std::string out;
  size_t group = 0;
  std::optional<size_t> name_g, value_g;
  bool in_class = false;
  for (size_t i = 0; i < regex.size(); ++i) {
    char c = regex[i];
    if (c == '\\' && i + 1 < regex.size()) {
      out += c;
      out += regex[++i];
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < regex.size() && regex[i + 1] == '^') out += regex[++i];
      if (i + 1 < regex.size() && regex[i + 1] == ']') out += regex[++i];
      continue;
    }
    if (c == '(') {
      if (i + 1 < regex.size() && regex[i + 1] == '?') {
        size_t name_start = 0;
        if (regex.compare(i + 1, 3, "?P<") == 0) name_start = i + 4;
        else if (regex.compare(i + 1, 2, "?<") == 0 && i + 3 < regex.size() && regex[i + 3] != '=' && regex[i + 3] != '!')
          name_start = i + 3;
        if (name_start) {
          size_t close = regex.find('>', name_start);
          if (close == std::string::npos) {
            usage_error((where.empty() ? "" : where + ": ") + "metrics regex '" + regex + "' has an unterminated group name");
          }
          std::string gname = regex.substr(name_start, close - name_start);
          ++group;
          if (gname == "name") name_g = group;
          else if (gname == "value") value_g = group;
          out += '(';
          i = close;
          continue;
        }
        out += c;  // (?: (?= (?! : not capturing
        continue;
      }
      ++group;
    }
    out += c;
  }
  try {
    re_ = compiled_regex(out);
  } catch (const std::regex_error& e) {
    usage_error((where.empty() ? "" : where + ": ") + "metrics regex '" + regex + "' does not compile: " + e.what(),
                "use ECMAScript syntax; name the groups (?<name>...) and (?<value>...), or use groups 1 and 2");
  }
  if (name_g || value_g) {
    if (!name_g || !value_g) {
      usage_error((where.empty() ? "" : where + ": ") + "metrics regex '" + regex + "' names only one of the groups 'name' and 'value'",
                  "name both groups, or use unnamed groups 1 (name) and 2 (value)");
    }
    name_group_ = *name_g;
    value_group_ = *value_g;
  } else if (group < 2) {
    usage_error((where.empty() ? "" : where + ": ") + "metrics regex '" + regex + "' has " + std::to_string(group) +
                    " capture group(s); it needs two (name, value)",
                "e.g. '^(\\w+): ([0-9.]+)$' or named groups (?<name>...) (?<value>...)");
  }
}

std::vector<std::pair<std::string, std::string>> MetricPattern::find_all(const std::string& line) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (!re_) return scan_default(line);
  if (line.size() > kMaxRegexLineBytes) return out;  // no metric line: std::regex would recurse per character
  for (auto it = std::sregex_iterator(line.begin(), line.end(), *re_); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    if (m.size() <= std::max(name_group_, value_group_)) continue;
    if (!m[name_group_].matched || !m[value_group_].matched) continue;
    out.emplace_back(m[name_group_].str(), m[value_group_].str());
  }
  return out;
}

// --- MetricsWriter ------------------------------------------------------------------------------------------

namespace {

// `text` with every bare NaN, Infinity and -Infinity outside strings quoted (one linear pass, no regex); nullopt if
// there is none.
std::optional<std::string> quote_bare_non_finite(std::string_view text) {
  std::string out;
  bool changed = false, in_string = false, escaped = false;
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; };
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      out += c;
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      ++i;
      continue;
    }
    bool token_start = i == 0 || !word_char(text[i - 1]);
    bool matched = false;
    if (token_start) {
      for (std::string_view w : {"-Infinity", "Infinity", "NaN"}) {
        if (text.substr(i, w.size()) == w && (i + w.size() == text.size() || !word_char(text[i + w.size()]))) {
          out += '"';
          out += w;
          out += '"';
          i += w.size();
          matched = changed = true;
          break;
        }
      }
    }
    if (!matched) {
      out += c;
      ++i;
    }
  }
  if (!changed) return std::nullopt;
  return out;
}

}  // namespace

MetricsWriter::MetricsWriter(fs::path file) : file_(std::move(file)) {}  // the file is created on the first record

void MetricsWriter::add(const std::string& name, json value, const std::string& kind, const std::string& source,
                        double time) {
  Metric m;
  m.name = name;
  m.value = std::move(value);
  m.kind = kind;
  m.source = source;
  m.time = time > 0 ? time : now_unix();
  m.step = ++steps_[name];
  if (kind == "tag") tags_[name] = m.value;
  std::string line = m.to_json().dump() + "\n";
  if (!fd_.valid()) {
    fd_.reset(::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!fd_.valid()) sys_fail("cannot open " + file_.string());
  }
  write_all(fd_.get(), line.data(), line.size(), file_);
  ++count_;
}

bool MetricsWriter::add_raw_line(const std::string& line) {
  std::string t = trim(line);
  if (t.empty()) return false;
  json j;
  try {
    j = parse_json(t, kMaxJsonDepth, "metrics line");
  } catch (const json::exception&) {
    // Python's json.dumps writes NaN / Infinity / -Infinity as bare words: quote them and retry.
    auto quoted = quote_bare_non_finite(t);
    if (!quoted) return false;
    try {
      j = parse_json(*quoted, kMaxJsonDepth, "metrics line");
    } catch (const json::exception&) {
      return false;
    }
  }
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("value")) return false;
  std::string name = j["name"].get<std::string>();
  if (name.empty()) return false;
  json value = j["value"];
  std::string kind = j.contains("kind") && j["kind"].is_string() ? j["kind"].get<std::string>() : "scalar";
  if (kind != "scalar" && kind != "list" && kind != "row" && kind != "tag" && kind != "table" && kind != "image") {
    kind = "scalar";
  }
  if (kind == "scalar") {
    if (value.is_string()) {
      auto n = parse_metric_number(value.get<std::string>());
      if (n) value = *n;
    } else if (value.is_number_float() && !std::isfinite(value.get<double>())) {
      double d = value.get<double>();
      value = std::isnan(d) ? json("NaN") : json(d < 0 ? "-Infinity" : "Infinity");
    } else if (value.is_null()) {
      value = "NaN";
    }
  }
  double time = j.contains("time") && j["time"].is_number() ? j["time"].get<double>() : 0;
  add(name, std::move(value), kind, "file", time);
  return true;
}

void MetricsWriter::sync() {
  if (fd_.valid()) ::fsync(fd_.get());
}

// --- MetricsTail ---------------------------------------------------------------------------------------------

MetricsTail::MetricsTail(fs::path file, size_t max_line_bytes) : file_(std::move(file)), max_line_(max_line_bytes) {}

std::vector<std::string> MetricsTail::poll_lines() {
  std::vector<std::string> lines;
  Fd fd(::open(file_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return lines;
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(fd.get(), buf, sizeof buf, static_cast<off_t>(offset_));
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) break;
    offset_ += static_cast<uint64_t>(n);
    std::string_view chunk(buf, static_cast<size_t>(n));
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      std::string_view piece = chunk.substr(0, nl);
      if (!dropping_) partial_.append(piece);
      if (max_line_ && partial_.size() > max_line_) {  // too long to be a record: skip it up to its newline
        partial_.clear();
        if (!dropping_) ++skipped_;
        dropping_ = true;
      }
      if (nl == std::string_view::npos) break;
      if (!dropping_) lines.push_back(std::move(partial_));
      partial_.clear();
      dropping_ = false;
      chunk.remove_prefix(nl + 1);
    }
  }
  return lines;
}

std::vector<Metric> MetricsTail::poll() {
  std::vector<Metric> out;
  for (const auto& line : poll_lines()) {
    if (line.empty()) continue;
    try {
      auto m = Metric::from_json(parse_json(line, kMaxJsonDepth, "metrics record"));
      if (m) out.push_back(std::move(*m));
      else ++skipped_;
    } catch (const json::exception&) {
      ++skipped_;
    }
  }
  return out;
}

std::vector<Metric> read_metrics(const fs::path& file) {
  MetricsTail tail(file);
  return tail.poll();
}

}  // namespace amlc::runs
