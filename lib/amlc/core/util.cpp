#include "amlc/core/util.hpp"

#include <sys/random.h>
#include <sys/time.h>

#include <cerrno>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "amlc/core/error.hpp"

namespace amlc {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string format_number(double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  return buf;
}

std::string exact_number(double value) {
  char buf[64];  // the longest shortest form of a double is 24 characters
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc()) return std::to_string(value);  // not reached: 64 bytes always suffice
  return std::string(buf, end);
}

std::pair<std::string, std::string> parse_key_value(std::string_view text, std::string_view what, bool allow_bare,
                                                    bool* had_value) {
  size_t eq = text.find('=');
  std::string_view key = text.substr(0, eq);
  // A key is a name: a newline or another control character in it would break every table, TSV and log line.
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      usage_error(std::string(what) + " key contains a control character (a newline, a tab, ...)",
                  "keys are printable text; write it as " + std::string(what) + " key=value");
    }
  }
  if (eq == std::string_view::npos) {
    if (allow_bare && !text.empty()) {
      if (had_value) *had_value = false;
      return {std::string(text), ""};
    }
    usage_error(std::string(what) + " '" + std::string(text) + "' is not of the form key=value",
                "write it as " + std::string(what) + " key=value, e.g. " + std::string(what) + " stage=prod");
  }
  if (eq == 0) {
    usage_error(std::string(what) + " '" + std::string(text) + "' has an empty key",
                "write it as " + std::string(what) + " key=value");
  }
  if (had_value) *had_value = true;
  return {std::string(key), std::string(text.substr(eq + 1))};
}

std::map<std::string, std::string> parse_key_values(const std::vector<std::string>& items, std::string_view what) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    auto [k, v] = parse_key_value(item, what);
    out[k] = v;
  }
  return out;
}

double now_unix() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

double monotonic_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string format_iso8601(double unix_seconds) {
  time_t secs = static_cast<time_t>(unix_seconds);
  int millis = static_cast<int>((unix_seconds - static_cast<double>(secs)) * 1000.0);
  if (millis < 0) millis = 0;
  if (millis > 999) millis = 999;
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string now_iso8601() { return format_iso8601(now_unix()); }

void random_bytes(void* out, size_t size) {
  auto* p = static_cast<unsigned char*>(out);
  while (size > 0) {
    ssize_t n = ::getrandom(p, size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      sys_fail("cannot read random bytes from the kernel (getrandom)");
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

std::string random_hex(size_t bytes) {
  static const char* digits = "0123456789abcdef";
  std::string raw(bytes, '\0');
  random_bytes(raw.data(), bytes);
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char b : raw) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

std::string uuid4() {
  std::string h = random_hex(16);
  h[12] = '4';
  h[16] = "89ab"[h[16] % 4];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = std::tolower(static_cast<unsigned char>(a[i - 1])) == std::tolower(static_cast<unsigned char>(b[j - 1])) ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

bool is_model_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  for (char c : name.substr(1))
    if (!alnum(c) && c != '-' && c != '.' && c != '_') return false;
  return true;
}

void validate_model_name(std::string_view name, std::string_view what) {
  if (!is_model_name(name)) {
    usage_error("invalid " + std::string(what) + " '" + std::string(name) + "'",
                "use 1 to 255 characters: letters, digits, '-', '.', '_', starting with a letter or digit");
  }
}

}  // namespace amlc
