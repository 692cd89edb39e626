#include "amlc/archive/ignore.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <bitset>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"

namespace amlc::archive {

namespace {

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

bool known_class(const char* name, size_t len) {
  static const char* const kClasses[] = {"alnum", "alpha", "blank", "cntrl", "digit", "graph",
                                         "lower", "print", "punct", "space", "upper", "xdigit"};
  for (const char* k : kClasses)
    if (std::strlen(k) == len && std::memcmp(k, name, len) == 0) return true;
  return false;
}

// A pattern compiled for matching. Literal, AnyButSlash and Class consume exactly one text character. Star is
// git's '*' (any run of non-'/' characters), DoubleStar its "**" that spans directories (any run of characters).
// "**/" compiles to ZeroDirs, DoubleStar, Literal '/': ZeroDirs consumes nothing and goes on either to the
// DoubleStar or past the '/' (no directory at all).
struct Token {
  enum Kind : unsigned char { Literal, AnyButSlash, Class, Star, DoubleStar, ZeroDirs } kind;
  unsigned char c = 0;  // Literal
  uint32_t set = 0;     // Class: index of the characters it matches ('/' never) in Compiled::sets
};

struct Compiled {
  std::vector<Token> tokens;
  std::vector<std::bitset<256>> sets;
};

// Parses the bracket expression starting at pattern[i] == '['. Returns the index after its ']', or npos when the
// pattern can never match (no ']', an unknown [:class:]): git's wildmatch aborts the whole match there. The rules
// are git's dowild(): ']' first is literal, "a-z" ranges, "\x" escapes, "[:name:]" classes, '!' or '^' negates.
size_t parse_class(std::string_view pattern, size_t i, std::bitset<256>& set) {
  const size_t n = pattern.size();
  auto at = [&](size_t k) { return static_cast<unsigned char>(pattern[k]); };
  if (++i >= n) return std::string_view::npos;
  unsigned char c = at(i);
  bool negated = false;
  if (c == '^' || c == '!') {
    negated = true;
    if (++i >= n) return std::string_view::npos;
    c = at(i);
  }
  unsigned char prev = 0;
  do {
    if (c == '\\') {
      if (++i >= n) return std::string_view::npos;
      c = at(i);
      set.set(c);
    } else if (c == '-' && prev && i + 1 < n && pattern[i + 1] != ']') {
      c = at(++i);
      if (c == '\\') {
        if (++i >= n) return std::string_view::npos;
        c = at(i);
      }
      for (unsigned x = prev; x <= c; ++x) set.set(x);
      c = 0;
    } else if (c == '[' && i + 1 < n && pattern[i + 1] == ':') {
      size_t s = i + 2, q = s;
      while (q < n && pattern[q] != ']') ++q;
      if (q >= n) return std::string_view::npos;
      if (q < s + 1 || pattern[q - 1] != ':') {
        set.set('[');  // no ":]": a literal '['
      } else {
        size_t len = q - s - 1;
        if (!known_class(pattern.data() + s, len)) return std::string_view::npos;
        for (unsigned x = 0; x < 256; ++x)
          if (class_matches(pattern.data() + s, len, static_cast<unsigned char>(x))) set.set(x);
        i = q;
        c = 0;
      }
    } else {
      set.set(c);
    }
    prev = c;
    if (++i >= n) return std::string_view::npos;
    c = at(i);
  } while (c != ']');
  if (negated) set.flip();
  set.reset('/');
  return i + 1;
}

// Compiles `pattern` with git's wildmatch rules in pathname mode for a text of `text_size` characters. Returns false
// when it cannot match: a trailing backslash, a malformed bracket expression, or more characters to consume than
// the text has (checked as it goes, so that a long pattern costs little against a short name, and the tokens stay
// at most 5 * (text_size + 1)).
bool compile(std::string_view pattern, size_t text_size, Compiled& compiled) {
  std::vector<Token>& out = compiled.tokens;
  out.clear();
  compiled.sets.clear();
  const size_t n = pattern.size();
  size_t needed = 0;  // characters a match consumes: one per Literal, AnyButSlash and Class but the '/' of "**/"
  size_t i = 0;
  while (i < n) {
    Token tok;
    char pc = pattern[i];
    if (pc == '\\') {
      if (i + 1 >= n) return false;  // a trailing backslash matches nothing
      tok.kind = Token::Literal;
      tok.c = static_cast<unsigned char>(pattern[i + 1]);
      i += 2;
    } else if (pc == '?') {
      tok.kind = Token::AnyButSlash;
      ++i;
    } else if (pc == '*') {
      size_t star = i;
      while (i < n && pattern[i] == '*') ++i;  // i: the first character after the run
      tok.kind = Token::Star;
      if (i - star > 1) {
        // "**" spans directories when it is a whole path component: at the start or after '/', and at the end or
        // before '/' (or an escaped '/'); otherwise it is a plain '*'. A NUL counts as the start, as in git.
        bool prev_ok = star == 0 || pattern[star - 1] == '\0' || pattern[star - 1] == '/';
        bool next_ok = i >= n || pattern[i] == '/' || (i + 1 < n && pattern[i] == '\\' && pattern[i + 1] == '/');
        if (prev_ok && next_ok) {
          tok.kind = Token::DoubleStar;
          if (i < n && pattern[i] == '/') {
            // "**/**/" is "**/": one is kept, so that no run of tokens consumes nothing for long (the tokens stay
            // at most 5 * (text_size + 1)).
            if (out.size() >= 3 && out[out.size() - 3].kind == Token::ZeroDirs) {
              ++i;
              continue;
            }
            out.push_back({Token::ZeroDirs});  // "**/" may match zero directories
          }
        }
      }
    } else if (pc == '[') {
      tok.kind = Token::Class;
      tok.set = static_cast<uint32_t>(compiled.sets.size());
      i = parse_class(pattern, i, compiled.sets.emplace_back());
      if (i == std::string_view::npos) return false;
    } else {
      tok.kind = Token::Literal;
      tok.c = static_cast<unsigned char>(pc);
      ++i;
    }
    bool skippable = tok.kind == Token::Literal && out.size() >= 2 && out[out.size() - 2].kind == Token::ZeroDirs;
    if (tok.kind != Token::Star && tok.kind != Token::DoubleStar && !skippable && ++needed > text_size) return false;
    out.push_back(tok);
  }
  return true;
}

// Adds to `active` every token reachable without consuming a character: past a star (it may match nothing) and
// from ZeroDirs to its "**" and past its '/'. Such moves only go forward, so one pass in order is enough.
void close_over_empty(const std::vector<Token>& toks, std::vector<char>& active) {
  for (size_t i = 0; i < toks.size(); ++i) {
    if (!active[i]) continue;
    switch (toks[i].kind) {
      case Token::Star:
      case Token::DoubleStar:
        active[i + 1] = 1;
        break;
      case Token::ZeroDirs:
        active[i + 1] = 1;
        active[i + 3] = 1;
        break;
      default:
        break;
    }
  }
}

}  // namespace

// Matching runs the pattern as a nondeterministic automaton over the text: the set of token positions reachable
// after each character. That is O(tokens * characters), at most O(text size^2), for every pattern; git's
// backtracking dowild(), which this replaced and agrees with, takes exponential time on some pairs (many "**/").
bool wildmatch(std::string_view pattern, std::string_view text) {
  // Scratch space kept per thread: the walker calls this for every file and rule.
  thread_local Compiled compiled;
  thread_local std::vector<char> cur, next;
  if (!compile(pattern, text.size(), compiled)) return false;
  const std::vector<Token>& toks = compiled.tokens;
  const size_t n = toks.size();
  cur.assign(n + 1, 0);
  next.assign(n + 1, 0);
  cur[0] = 1;
  close_over_empty(toks, cur);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    std::fill(next.begin(), next.end(), 0);
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
      if (!cur[i]) continue;
      const Token& t = toks[i];
      switch (t.kind) {
        case Token::Literal:
          if (c == t.c) next[i + 1] = 1, any = true;
          break;
        case Token::AnyButSlash:
          if (c != '/') next[i + 1] = 1, any = true;
          break;
        case Token::Class:
          if (compiled.sets[t.set].test(c)) next[i + 1] = 1, any = true;
          break;
        case Token::Star:
          if (c != '/') next[i] = 1, any = true;
          break;
        case Token::DoubleStar:
          next[i] = 1, any = true;
          break;
        case Token::ZeroDirs:
          break;
      }
    }
    if (!any) return false;
    close_over_empty(toks, next);
    cur.swap(next);
  }
  return cur[n] != 0;
}

namespace {

bool is_space(char c) { return c == ' '; }  // git trims only spaces

}  // namespace

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
