// Fuzz target: .gitignore parsing and matching (archive::parse_ignore_rules, match_rules, wildmatch).
// Input: the ignore file's text, a NUL byte, then paths to match, one per line (a trailing '/' = a directory).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "amlc/archive/ignore.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string_view rules_text = input.substr(0, nul);
  std::string_view paths = nul == std::string_view::npos ? std::string_view("a\nb/c\nd/") : input.substr(nul + 1);
  auto rules = amlc::archive::parse_ignore_rules(rules_text, ".gitignore");
  amlc::archive::IgnoreStack stack;
  stack.push("", rules);
  stack.push("sub", rules);
  size_t pos = 0;
  while (pos <= paths.size()) {
    size_t nl = paths.find('\n', pos);
    std::string_view path = paths.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? paths.size() + 1 : nl + 1;
    bool is_dir = !path.empty() && path.back() == '/';
    if (is_dir) path.remove_suffix(1);
    (void)amlc::archive::match_rules(rules, path, is_dir);
    (void)stack.ignored(path, is_dir);
    (void)stack.ignored("sub/" + std::string(path), is_dir);
    for (const auto& r : rules) (void)amlc::archive::wildmatch(r.pattern, path);
  }
  return 0;
}
