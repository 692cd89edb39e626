// Ignore rules for source snapshots: .amlignore / .gitignore with git's semantics.
//
//   - blank lines and lines starting with '#' are skipped; "\#" and "\!" escape the first character;
//     trailing spaces are dropped unless escaped ("\ ");
//   - "!pat" re-includes what an earlier (or shallower) rule excluded;
//   - "pat/" matches directories only;
//   - a pattern with a '/' at its start or middle is anchored at the ignore file's directory, otherwise it
//     matches the name at any depth below it;
//   - '*', '?' and '[...]' never match '/'; "**/" (leading), "/**" (trailing) and "/**/" (middle) span
//     directories; other "**" behave as '*';
//   - a directory's own ignore file applies to its subtree; the deepest file and, inside one file, the last
//     matching rule win; a file inside an excluded directory cannot be re-included (the walker never
//     descends into excluded directories).
// In one directory .amlignore, when present, replaces .gitignore.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace amlc::archive {

namespace fs = std::filesystem;

// Glob match with git's wildmatch rules in pathname mode ('*', '?', '[...]' do not match '/'), in time polynomial in
// the sizes for every pattern (at most quadratic in the text's).
bool wildmatch(std::string_view pattern, std::string_view text);

struct IgnoreRule {
  std::string pattern;  // without '!', without trailing '/', without leading '/'
  bool negated = false;
  bool dir_only = false;
  bool anchored = false;  // matched against the path relative to `base`, else against the name
  std::string source;     // "path/.gitignore:12" for explanations
};

// Parses the text of one ignore file. `source_name` is used for the rules' `source`.
std::vector<IgnoreRule> parse_ignore_rules(std::string_view text, const std::string& source_name = {});

// Decision of one rule list for a path relative to the list's directory: 1 = ignored, -1 = re-included
// (negated match), 0 = no rule matched.
int match_rules(const std::vector<IgnoreRule>& rules, std::string_view rel_path, bool is_dir);

// A stack of rule lists, one per directory level that has an ignore file, as the walker descends.
class IgnoreStack {
 public:
  // `rel_dir` is the directory of the file relative to the snapshot root ("" for the root).
  void push(std::string rel_dir, std::vector<IgnoreRule> rules);
  void pop();
  size_t depth() const { return levels_.size(); }
  // Is `rel_path` (relative to the snapshot root) excluded by the rules on the stack?
  bool ignored(std::string_view rel_path, bool is_dir) const;

 private:
  struct Level {
    std::string rel_dir;
    std::vector<IgnoreRule> rules;
  };
  std::vector<Level> levels_;
};

// Loads the ignore file that governs `dir` (.amlignore, else .gitignore); empty if none. An ignore file that is not
// a regular file (a fifo, a device, a directory, a dangling symlink) or is larger than kMaxConfigBytes is a Usage
// error naming it (exit 2): never a hang, and never silently skipped.
// `rel_dir` names the directory for rule sources. Returns the file's name in *which ("" if none).
std::vector<IgnoreRule> load_ignore_file(const fs::path& dir, const std::string& rel_dir, std::string* which = nullptr);

}  // namespace amlc::archive
