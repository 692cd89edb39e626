#include "amlc/archive/ignore.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"

namespace amlc::archive {

namespace {

enum { kMatch = 0, kNoMatch = 1, kAbortAll = -1, kAbortToStarStar = -2 };

bool class_matches(const char* name, size_t len, unsigned char c) {
  auto is = [&](const char* n) { return len == std::strlen(n) && std::memcmp(name, n, len) == 0; };
  if (is("alnum")) return std::isalnum(c);
  if (is("alpha")) return std::isalpha(c);
  if (is("blank")) return c == ' ' || c == '\t';
  if (is("cntrl")) return std::iscntrl(c);
  if (is("digit")) return std::isdigit(c);
  if (is("graph")) return std::isgraph(c);
  if (is("lower")) return std::islower(c);
  if (is("print")) return std::isprint(c);
  if (is("punct")) return std::ispunct(c);
  if (is("space")) return std::isspace(c);
  if (is("upper")) return std::isupper(c);
  if (is("xdigit")) return std::isxdigit(c);
  return false;
}

// A port of git's wildmatch.c dowild() with WM_PATHNAME, on string views. `p[-1]` is always readable: the
// caller puts a NUL sentinel before the pattern, which counts as "start of pattern" for "**" checks.
int dowild(const char* p, const char* pend, const char* t, const char* tend) {
  for (; p < pend; ++p, ++t) {
    unsigned char pc = static_cast<unsigned char>(*p);
    if (t >= tend && pc != '*') return kAbortAll;
    unsigned char tc = t < tend ? static_cast<unsigned char>(*t) : 0;
    switch (pc) {
      case '\\':
        ++p;
        if (p >= pend) return kNoMatch;  // a trailing backslash matches nothing
        if (static_cast<unsigned char>(*p) != tc) return kNoMatch;
        break;
      case '?':
        if (tc == '/') return kNoMatch;
        break;
      case '*': {
        const char* star = p;
        while (p + 1 < pend && p[1] == '*') ++p;  // p: the last star of the run
        bool match_slash = false;
        if (p > star) {
          bool prev_ok = star[-1] == '\0' || star[-1] == '/';
          const char* after = p + 1;
          bool next_ok = after >= pend || *after == '/' || (after + 1 < pend && after[0] == '\\' && after[1] == '/');
          if (prev_ok && next_ok) {
            // "**/" may match zero directories.
            if (after < pend && *after == '/' && dowild(after + 1, pend, t, tend) == kMatch) return kMatch;
            match_slash = true;
          }
        }
        ++p;  // the first pattern character after the stars
        if (p >= pend) {
          // Trailing "**" matches everything; a trailing '*' only if no '/' follows in the text.
          if (!match_slash && t < tend && std::memchr(t, '/', static_cast<size_t>(tend - t)) != nullptr) return kNoMatch;
          return kMatch;
        }
        if (!match_slash && *p == '/') {
          // One star followed by '/' matches up to the next '/' of the text.
          const void* slash = t < tend ? std::memchr(t, '/', static_cast<size_t>(tend - t)) : nullptr;
          if (!slash) return kNoMatch;
          t = static_cast<const char*>(slash);
          break;  // the loop consumes the '/' in both
        }
        for (;; ++t) {
          if (t >= tend) return kAbortAll;
          int r = dowild(p, pend, t, tend);
          if (r != kNoMatch) {
            if (!match_slash || r != kAbortToStarStar) return r;
          } else if (!match_slash && *t == '/') {
            return kAbortToStarStar;
          }
        }
      }
      case '[': {
        ++p;
        if (p >= pend) return kAbortAll;
        unsigned char c = static_cast<unsigned char>(*p);
        bool negated = false;
        if (c == '^' || c == '!') {
          negated = true;
          ++p;
          if (p >= pend) return kAbortAll;
          c = static_cast<unsigned char>(*p);
        }
        bool matched = false;
        unsigned char prev = 0;
        do {
          if (c == '\\') {
            ++p;
            if (p >= pend) return kAbortAll;
            c = static_cast<unsigned char>(*p);
            if (tc == c) matched = true;
          } else if (c == '-' && prev && p + 1 < pend && p[1] != ']') {
            ++p;
            c = static_cast<unsigned char>(*p);
            if (c == '\\') {
              ++p;
              if (p >= pend) return kAbortAll;
              c = static_cast<unsigned char>(*p);
            }
            if (tc <= c && tc >= prev) matched = true;
            c = 0;
          } else if (c == '[' && p + 1 < pend && p[1] == ':') {
            const char* s = p + 2;
            const char* q = s;
            while (q < pend && *q != ']') ++q;
            if (q >= pend) return kAbortAll;
            if (q - s - 1 < 0 || q[-1] != ':') {
              // No ":]": a literal '['.
              c = '[';
              if (tc == c) matched = true;
            } else {
              size_t len = static_cast<size_t>(q - s - 1);
              static const char* const kClasses[] = {"alnum", "alpha", "blank", "cntrl", "digit", "graph",
                                                     "lower", "print", "punct", "space", "upper", "xdigit"};
              bool known = false;
              for (const char* k : kClasses) known = known || (std::strlen(k) == len && std::memcmp(k, s, len) == 0);
              if (!known) return kAbortAll;
              if (class_matches(s, len, tc)) matched = true;
              p = q;
              c = 0;
            }
          } else if (tc == c) {
            matched = true;
          }
          prev = c;
          ++p;
          if (p >= pend) return kAbortAll;
          c = static_cast<unsigned char>(*p);
        } while (c != ']');
        if (matched == negated || tc == '/') return kNoMatch;
        break;
      }
      default:
        if (pc != tc) return kNoMatch;
        break;
    }
  }
  return t >= tend ? kMatch : kNoMatch;
}

bool is_space(char c) { return c == ' '; }  // git trims only spaces

}  // namespace

bool wildmatch(std::string_view pattern, std::string_view text) {
  // A leading NUL sentinel lets the double-star check look one character before the pattern start.
  std::string pat;
  pat.reserve(pattern.size() + 1);
  pat.push_back('\0');
  pat.append(pattern);
  const char* p = pat.data() + 1;
  return dowild(p, pat.data() + pat.size(), text.data(), text.data() + text.size()) == kMatch;
}

std::vector<IgnoreRule> parse_ignore_rules(std::string_view text, const std::string& source_name) {
  std::vector<IgnoreRule> rules;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    if (line_no == 1 && line.size() >= 3 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // BOM
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    // Trailing spaces are dropped unless escaped with a backslash.
    size_t end = line.size();
    while (end > 0 && is_space(line[end - 1])) {
      // Count the backslashes before this space.
      size_t bs = 0;
      for (size_t k = end - 1; k > 0 && line[k - 1] == '\\'; --k) ++bs;
      if (bs % 2 == 1) break;  // escaped space: keep it (and everything before)
      --end;
    }
    std::string pat(line.substr(0, end));
    if (pat.empty()) continue;
    IgnoreRule rule;
    if (pat[0] == '!') {
      rule.negated = true;
      pat.erase(0, 1);
    }
    if (pat.empty()) continue;
    if (pat.size() >= 2 && pat.back() == '/' ) {
      rule.dir_only = true;
      pat.pop_back();
    } else if (pat == "/") {
      continue;
    }
    // A '/' anywhere but at the end anchors the pattern.
    if (pat.find('/') != std::string::npos) rule.anchored = true;
    if (!pat.empty() && pat[0] == '/') pat.erase(0, 1);
    if (pat.empty()) continue;
    rule.pattern = std::move(pat);
    rule.source = source_name + ":" + std::to_string(line_no);
    rules.push_back(std::move(rule));
  }
  return rules;
}

int match_rules(const std::vector<IgnoreRule>& rules, std::string_view rel_path, bool is_dir) {
  std::string_view name = rel_path;
  if (auto slash = rel_path.rfind('/'); slash != std::string_view::npos) name = rel_path.substr(slash + 1);
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    if (it->dir_only && !is_dir) continue;
    bool m = it->anchored ? wildmatch(it->pattern, rel_path) : wildmatch(it->pattern, name);
    if (m) return it->negated ? -1 : 1;
  }
  return 0;
}

void IgnoreStack::push(std::string rel_dir, std::vector<IgnoreRule> rules) {
  levels_.push_back({std::move(rel_dir), std::move(rules)});
}

void IgnoreStack::pop() {
  if (!levels_.empty()) levels_.pop_back();
}

bool IgnoreStack::ignored(std::string_view rel_path, bool is_dir) const {
  for (auto it = levels_.rbegin(); it != levels_.rend(); ++it) {
    std::string_view sub = rel_path;
    if (!it->rel_dir.empty()) {
      if (rel_path.size() <= it->rel_dir.size() + 1 || rel_path.compare(0, it->rel_dir.size(), it->rel_dir) != 0 ||
          rel_path[it->rel_dir.size()] != '/') {
        continue;  // not inside this level (should not happen while walking)
      }
      sub = rel_path.substr(it->rel_dir.size() + 1);
    }
    int r = match_rules(it->rules, sub, is_dir);
    if (r != 0) return r > 0;
  }
  return false;
}

std::vector<IgnoreRule> load_ignore_file(const fs::path& dir, const std::string& rel_dir, std::string* which) {
  for (const char* name : {".amlignore", ".gitignore"}) {
    fs::path p = dir / name;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      sys_fail("cannot read ignore file " + p.string());
    }
    // Whatever carries the name must be a readable regular file (a symlink to one is fine): a fifo would hang the
    // snapshot, a device never end, and skipping it would silently take in what the user meant to leave out.
    const std::string hint = "make it a regular file or remove it: it decides what the snapshot leaves out";
    struct stat target {};
    if (S_ISLNK(st.st_mode) && ::stat(p.c_str(), &target) != 0 && errno == ENOENT) {
      usage_error("ignore file " + p.string() + " is a symlink to a missing file", hint);
    }
    std::string text;
    try {
      text = read_input_file(p, kMaxConfigBytes, "ignore file");
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::Usage) throw;
      usage_error(e.what(), hint);
    }
    if (which) *which = name;
    return parse_ignore_rules(text, rel_dir.empty() ? std::string(name) : rel_dir + "/" + name);
  }
  if (which) which->clear();
  return {};
}

}  // namespace amlc::archive
