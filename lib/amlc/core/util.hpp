// Small helpers: strings, numbers shown as text, time, ids, key=value parsing, name validation.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace amlc {

std::vector<std::string> split(std::string_view s, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string to_lower(std::string_view s);
std::string trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);

// Numbers as text. Every number amlc shows to people (progress, summaries, messages, policy reasons) goes through
// format_number: at most 6 significant digits, as printf's "%.6g" (0.1, 0.666667, 1e+06, nan, inf). Where the text
// must read back as the same double (a value the user wrote, quoted in an error), exact_number gives the shortest
// text that round-trips (0.1, 1e-300, 0.30000000000000004, 1e+300), without adding ".0" to whole numbers.
std::string format_number(double value);
std::string exact_number(double value);

// "k=v" -> {k, v}. `what` names the option in the error ("--tag"). Empty key is an error;
// with allow_bare, "k" alone gives {k, ""} and sets *had_value=false.
std::pair<std::string, std::string> parse_key_value(std::string_view text, std::string_view what,
                                                    bool allow_bare = false, bool* had_value = nullptr);
std::map<std::string, std::string> parse_key_values(const std::vector<std::string>& items, std::string_view what);

// Time.
std::string now_iso8601();                 // UTC, millisecond precision: 2026-11-21T22:31:00.123Z
std::string format_iso8601(double unix_seconds);
double now_unix();                         // seconds since epoch, sub-second precision
double monotonic_seconds();

// Random bytes from the kernel's CSPRNG (getrandom(2)): every id, key and secret comes from here.
void random_bytes(void* out, size_t size);
// A random hex id of `bytes` random bytes; uuid4 in canonical form.
std::string random_hex(size_t bytes);
std::string uuid4();

// Edit distance, for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate within a small distance, or "".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// Throws a Usage error if `name` does not match az ml's model name rule
// ^[a-zA-Z0-9][a-zA-Z0-9\-\._]{0,254}$ ; `what` names the thing ("model name").
void validate_model_name(std::string_view name, std::string_view what = "model name");
bool is_model_name(std::string_view name);

}  // namespace amlc
