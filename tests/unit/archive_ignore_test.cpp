// Ignore rules: wildmatch table (cases from git's t3070-wildmatch), gitignore rule semantics, and a
// comparison with git itself on a tree with nested .gitignore files.
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include <doctest/doctest.h>

#include "amlc/archive/ignore.hpp"
#include "amlc/archive/snapshot.hpp"
#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/util.hpp"
#include "support/harness.hpp"

namespace fs = std::filesystem;

using amlc::archive::IgnoreStack;
using amlc::archive::match_rules;
using amlc::archive::parse_ignore_rules;
using amlc::archive::wildmatch;
namespace t = amlc::test;

TEST_CASE("archive: wildmatch agrees with git's t3070 table (pathname mode)") {
  struct Case {
    const char* pattern;
    const char* text;
    bool match;
  };
  const Case cases[] = {
      {"foo", "foo", true},
      {"bar", "foo", false},
      {"", "", true},
      {"???", "foo", true},
      {"??", "foo", false},
      {"*", "foo", true},
      {"f*", "foo", true},
      {"*f", "foo", false},
      {"*foo*", "foo", true},
      {"*ob*a*r*", "foobar", true},
      {"*ab", "aaaaaaabababab", true},
      {"foo\\*", "foo*", true},
      {"foo\\*bar", "foobar", false},
      {"f\\\\oo", "f\\oo", true},
      {"*[al]?", "ball", true},
      {"[ten]", "ten", false},
      {"t[a-g]n", "ten", true},
      {"t[!a-g]n", "ten", false},
      {"t[!a-g]n", "ton", true},
      {"t[^a-g]n", "ton", true},
      {"a[]]b", "a]b", true},
      {"a[]-]b", "a-b", true},
      {"a[]-]b", "a]b", true},
      {"a[]-]b", "aab", false},
      {"a[]a-]b", "aab", true},
      {"]", "]", true},
      {"foo*bar", "foo/baz/bar", false},
      {"foo**bar", "foo/baz/bar", false},
      {"foo**bar", "foobazbar", true},
      {"foo/**/bar", "foo/baz/bar", true},
      {"foo/**/**/bar", "foo/baz/bar", true},
      {"foo/**/bar", "foo/b/a/z/bar", true},
      {"foo/**/**/bar", "foo/b/a/z/bar", true},
      {"foo/**/bar", "foo/bar", true},
      {"foo/**/**/bar", "foo/bar", true},
      {"foo?bar", "foo/bar", false},
      {"foo[/]bar", "foo/bar", false},
      {"foo[^a-z]bar", "foo/bar", false},
      {"f[^eiu][^eiu][^eiu][^eiu][^eiu]r", "foo/bar", false},
      {"f[^eiu][^eiu][^eiu][^eiu][^eiu]r", "foo-bar", true},
      {"**/foo", "foo", true},
      {"**/foo", "XXX/foo", true},
      {"**/foo", "bar/baz/foo", true},
      {"*/foo", "bar/baz/foo", false},
      {"**/bar*", "foo/bar/baz", false},
      {"**/bar/*", "deep/foo/bar/baz", true},
      {"**/bar/*", "deep/foo/bar/baz/", false},
      {"**/bar/**", "deep/foo/bar/baz/", true},
      {"**/bar/*", "deep/foo/bar", false},
      {"**/bar/**", "deep/foo/bar/", true},
      {"**/bar**", "foo/bar/baz", false},
      {"*/bar/**", "foo/bar/baz/x", true},
      {"*/bar/**", "deep/foo/bar/baz/x", false},
      {"**/bar/*/*", "deep/foo/bar/baz/x", true},
      {"a/**", "a", false},
      {"a/**", "a/b/c", true},
      {"[[:alpha:]][[:digit:]][[:upper:]]", "a1B", true},
      {"[[:digit:][:upper:][:space:]]", "A", true},
      {"[[:digit:][:upper:][:space:]]", "a", false},
      {"[[:digit:][:upper:][:space:]]", "1", true},
      {"[[:digit:][:upper:][:space:]]", " ", true},
      {"[a-c[:digit:]x-z]", "5", true},
      {"[a-c[:digit:]x-z]", "b", true},
      {"[a-c[:digit:]x-z]", "y", true},
      {"[a-c[:digit:]x-z]", "q", false},
      {"[\\]]", "]", true},
      {"[\\-_]", "-", true},
      {"[!]-]", "]", false},
      {"[!]-]", "a", true},
      {"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1", true},
      {"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1", false},
      {"XXX/*/*/*/*/*/*/12/*/*/*/m/*/*/*", "XXX/adobe/courier/bold/o/normal//12/120/75/75/m/70/iso8859/1", true},
      {"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt", true},
      {"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz", false},
      {"*/*/*", "foo/bba/arr", true},
      {"*/*/*", "foo/bb/aa/rr", false},
      {"**/**/**", "foo/bb/aa/rr", true},
      {"*X*i", "abcXdefXghi", true},
      {"*/*X*/*/*i", "ab/cXd/efXg/hi", true},
      {"**/*X*/**/*i", "ab/cXd/efXg/hi", true},
      {"a[", "a[", false},
      {"[abc", "a", false},
  };
  for (const auto& c : cases) {
    INFO("pattern '" << c.pattern << "' text '" << c.text << "'");
    CHECK(wildmatch(c.pattern, c.text) == c.match);
  }
}

TEST_CASE("archive: '**' as gitignore(5) documents it - leading '**/', trailing '/**', 'a/**/b', other runs are '*'") {
  // Leading "**/": in all directories ("**/foo" matches foo anywhere, as "foo" does).
  CHECK(wildmatch("**/foo", "foo"));
  CHECK(wildmatch("**/foo", "a/b/foo"));
  CHECK(!wildmatch("**/foo", "a/foox"));
  CHECK(wildmatch("**/foo/bar", "foo/bar"));
  CHECK(wildmatch("**/foo/bar", "x/y/foo/bar"));
  CHECK(!wildmatch("**/foo/bar", "x/foo/y/bar"));
  // Trailing "/**": everything inside, at any depth, but not the directory itself.
  CHECK(wildmatch("abc/**", "abc/x"));
  CHECK(wildmatch("abc/**", "abc/x/y/z"));
  CHECK(!wildmatch("abc/**", "abc"));
  CHECK(!wildmatch("abc/**", "x/abc/y"));
  // "/**/": zero or more directories.
  CHECK(wildmatch("a/**/b", "a/b"));
  CHECK(wildmatch("a/**/b", "a/x/b"));
  CHECK(wildmatch("a/**/b", "a/x/y/b"));
  CHECK(!wildmatch("a/**/b", "a/x/y/c"));
  CHECK(!wildmatch("a/**/b", "ab"));
  CHECK(wildmatch("a/**/**/b", "a/b"));
  CHECK(wildmatch("a/**/**/b", "a/x/y/b"));
  // Other consecutive asterisks are a plain '*' (which never matches '/').
  CHECK(wildmatch("a**b", "axyb"));
  CHECK(!wildmatch("a**b", "a/b"));
  CHECK(!wildmatch("**foo", "x/foo"));
  CHECK(wildmatch("**foo", "xfoo"));
  CHECK(!wildmatch("foo**/bar", "foo/x/bar"));
  // An escaped '/' after "**" still makes it span directories, but not match zero of them.
  CHECK(wildmatch("a/**\\/b", "a/x/y/b"));
  CHECK(!wildmatch("a/**\\/b", "a/b"));
  // Through the rules: "**/cache" anywhere, "logs/**" inside logs/ only, "a/**/b" anchored at the file's directory.
  auto rules = parse_ignore_rules("**/cache\nlogs/**\na/**/b\n");
  CHECK(match_rules(rules, "cache", true) == 1);
  CHECK(match_rules(rules, "x/y/cache", false) == 1);
  CHECK(match_rules(rules, "logs/today/1.txt", false) == 1);
  CHECK(match_rules(rules, "logs", true) == 0);
  CHECK(match_rules(rules, "sub/logs/1.txt", false) == 0);
  CHECK(match_rules(rules, "a/b", false) == 1);
  CHECK(match_rules(rules, "a/x/y/b", false) == 1);
  CHECK(match_rules(rules, "z/a/b", false) == 0);
}

TEST_CASE("archive: wildmatch takes polynomial time - 40 '**/' against a 121-character path answer at once") {
  // The backtracking matcher tried every way of spreading the path over the "**/" (and each one's "no directory"
  // alternative): 24 of them against 81 characters took 8 s, 40 against 121 would take longer than anyone waits.
  // Every case below is answered in microseconds now; the results are git's.
  std::string stars;
  for (int i = 0; i < 40; ++i) stars += "**/";
  std::string path;
  for (int i = 0; i < 60; ++i) path += "a/";
  CHECK(!wildmatch(stars + "x", path + "b"));
  CHECK(wildmatch(stars + "x", path + "x"));
  CHECK(wildmatch(stars + "b", "b"));
  CHECK(!wildmatch(stars + "*/x", path + "b"));
  CHECK(wildmatch(stars + "a/*", path + "b"));
  CHECK(!wildmatch(stars + "a/b/*", path + "b"));
  // The same through an ignore file and the stack the walker uses.
  auto rules = parse_ignore_rules(stars + "x\n!" + stars + "a/??\n");
  REQUIRE(rules.size() == 2);
  CHECK(match_rules(rules, path + "b", false) == 0);
  CHECK(match_rules(rules, path + "x", false) == 1);
  CHECK(match_rules(rules, path + "bb", false) == -1);
  IgnoreStack stack;
  stack.push("", rules);
  CHECK(!stack.ignored(path + "b", false));
  CHECK(stack.ignored(path + "x", false));
}

TEST_CASE("archive: gitignore line parsing (comments / negation / escapes / trailing spaces / dir-only / anchoring)") {
  auto rules = parse_ignore_rules(
      "# comment\n"
      "\n"
      "\\#hash\n"
      "\\!bang\n"
      "!keep.log\n"
      "trailing   \n"
      "escaped\\ \n"
      "build/\n"
      "/root-only\n"
      "doc/frotz\n"
      "a/**/b/\n",
      ".gitignore");
  REQUIRE(rules.size() == 9);
  CHECK(rules[0].pattern == "\\#hash");
  CHECK(!rules[0].negated);
  CHECK(rules[1].pattern == "\\!bang");
  CHECK(!rules[1].negated);
  CHECK(rules[2].pattern == "keep.log");
  CHECK(rules[2].negated);
  CHECK(rules[3].pattern == "trailing");
  CHECK(rules[4].pattern == "escaped\\ ");
  CHECK(rules[5].pattern == "build");
  CHECK(rules[5].dir_only);
  CHECK(!rules[5].anchored);
  CHECK(rules[6].pattern == "root-only");
  CHECK(rules[6].anchored);
  CHECK(rules[7].anchored);
  CHECK(rules[8].anchored);
  CHECK(rules[8].dir_only);
  CHECK(rules[2].source == ".gitignore:5");

  CHECK(match_rules(rules, "#hash", false) == 1);
  CHECK(match_rules(rules, "!bang", false) == 1);
  CHECK(match_rules(rules, "keep.log", false) == -1);
  CHECK(match_rules(rules, "sub/trailing", false) == 1);
  CHECK(match_rules(rules, "escaped ", false) == 1);
  CHECK(match_rules(rules, "escaped", false) == 0);
  CHECK(match_rules(rules, "x/build", true) == 1);
  CHECK(match_rules(rules, "x/build", false) == 0);  // a file named build is not a directory
  CHECK(match_rules(rules, "root-only", false) == 1);
  CHECK(match_rules(rules, "sub/root-only", false) == 0);
  CHECK(match_rules(rules, "doc/frotz", false) == 1);
  CHECK(match_rules(rules, "a/doc/frotz", false) == 0);
  CHECK(match_rules(rules, "a/b", true) == 1);
  CHECK(match_rules(rules, "a/x/y/b", true) == 1);
  CHECK(match_rules(rules, "a/x/y/b", false) == 0);
}

TEST_CASE("archive: later rules win / deeper ignore files win / excluded parents cannot be re-included") {
  IgnoreStack stack;
  stack.push("", parse_ignore_rules("*.log\n!important.log\nbuild/\n!build/keep.txt\nfoo/*\n!foo/bar\n"));
  CHECK(stack.ignored("a.log", false));
  CHECK(!stack.ignored("important.log", false));
  CHECK(stack.ignored("build", true));
  CHECK(stack.ignored("foo/baz", false));
  CHECK(!stack.ignored("foo/bar", true));
  stack.push("sub", parse_ignore_rules("!*.log\nimportant.log\n"));
  CHECK(!stack.ignored("sub/a.log", false));
  CHECK(stack.ignored("sub/important.log", false));
  CHECK(stack.ignored("other.log", false));  // outside sub: sub's rules do not apply
  stack.pop();
  CHECK(!stack.ignored("sub/important.log", false));

  // Through the walker: build/keep.txt stays out because build/ is excluded.
  t::TempDir dir;
  t::write_text(dir / ".gitignore", "build/\n!build/keep.txt\n");
  t::write_text(dir / "build/keep.txt", "x");
  t::write_text(dir / "src/a.py", "x");
  auto listing = amlc::archive::list_source(dir.path());
  std::set<std::string> paths;
  for (const auto& e : listing.entries) paths.insert(e.path);
  CHECK(paths.count("src/a.py"));
  CHECK(!paths.count("build/keep.txt"));
  CHECK(!paths.count("build"));
  CHECK(listing.excluded == 1);
}

TEST_CASE("archive: .amlignore wins over .gitignore in its directory - .git is always left out") {
  t::TempDir dir;
  t::write_text(dir / ".gitignore", "*.csv\n");
  t::write_text(dir / ".amlignore", "*.bin\n");
  t::write_text(dir / "data.csv", "1");
  t::write_text(dir / "blob.bin", "1");
  t::write_text(dir / "sub/.gitignore", "*.txt\n");
  t::write_text(dir / "sub/a.txt", "1");
  t::write_text(dir / "sub/b.csv", "1");
  t::write_text(dir / ".git/config", "x");
  auto listing = amlc::archive::list_source(dir.path());
  std::set<std::string> files;
  for (const auto& e : listing.entries)
    if (e.type != amlc::archive::SourceEntry::Type::Dir) files.insert(e.path);
  CHECK(files == std::set<std::string>{".amlignore", ".gitignore", "data.csv", "sub/.gitignore", "sub/b.csv"});
}

namespace {

std::set<std::string> git_included(const fs::path& repo, const fs::path& home) {
  t::RunOptions ro;
  ro.cwd = repo;
  ro.env = {{"HOME", home.string()}, {"XDG_CONFIG_HOME", home.string()}, {"GIT_CONFIG_NOSYSTEM", "1"}};
  auto init = t::run_process("/usr/bin/git", {"init", "-q", "."}, ro);
  REQUIRE_MESSAGE(init.code == 0, init.err);
  auto ls = t::run_process("/usr/bin/git", {"ls-files", "--others", "--exclude-standard", "-z"}, ro);
  REQUIRE_MESSAGE(ls.code == 0, ls.err);
  std::set<std::string> out;
  size_t pos = 0;
  while (pos < ls.out.size()) {
    size_t z = ls.out.find('\0', pos);
    out.insert(ls.out.substr(pos, z - pos));
    pos = z + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("archive: the walker includes exactly the files git does (nested .gitignore files)") {
  t::TempDir tmp;
  fs::path repo = tmp / "repo";
  fs::path home = tmp / "home";
  fs::create_directories(home);
  t::write_text(repo / ".gitignore",
                "# top\n*.log\n!keep.log\n/anchored.txt\nbuild/\ntmp*\n**/cache/**\n!**/cache/readme.md\n"
                "docs/**/*.pdf\n\\#literal\nspace\\ end\\ \ntrail   \n*.[oa]\nlib/*\n!lib/keep/\n");
  const char* files[] = {"a.log", "keep.log", "anchored.txt", "sub/anchored.txt", "build/x.c", "sub/build/y.c",
                         "sub/build", "tmpfile", "sub/tmpdir/z.py", "cache/a", "x/cache/b", "x/cache/readme.md",
                         "docs/a.pdf", "docs/v1/b.pdf", "docs/v1/b.md", "#literal", "space end ", "trail",
                         "m.o", "m.a", "m.c", "lib/one.py", "lib/keep/two.py", "lib/keep/x.log",
                         "nested/.gitignore", "nested/app.log", "nested/keep.log", "nested/deeper/.gitignore",
                         "nested/deeper/app.log", "nested/deeper/other.txt", "nested/deeper/z.tmp",
                         "nested/deeper/notes.txt", "src/main.py", "src/[x].py", "src/q?.py"};
  for (const char* f : files) {
    if (std::string(f) == "sub/build") continue;  // a directory, created by sub/build/y.c
    t::write_text(repo / f, "content\n");
  }
  t::write_text(repo / "nested/.gitignore", "!app.log\nkeep.log\n*.tmp\n");
  t::write_text(repo / "nested/deeper/.gitignore", "app.log\n!z.tmp\n/other.txt\n");
  auto expected = git_included(repo, home);
  REQUIRE(!expected.empty());
  auto listing = amlc::archive::list_source(repo);
  std::set<std::string> actual;
  for (const auto& e : listing.entries)
    if (e.type != amlc::archive::SourceEntry::Type::Dir) actual.insert(e.path);
  for (const auto& f : expected) CHECK_MESSAGE(actual.count(f), "git includes " << f << " but amlc leaves it out");
  for (const auto& f : actual) CHECK_MESSAGE(expected.count(f), "amlc includes " << f << " but git leaves it out");
  // Also ask git check-ignore about every file we left out that is not inside an excluded directory.
  t::RunOptions ro;
  ro.cwd = repo;
  ro.env = {{"HOME", home.string()}, {"XDG_CONFIG_HOME", home.string()}, {"GIT_CONFIG_NOSYSTEM", "1"}};
  std::string input;
  for (const char* f : files) input += std::string(f) + "\n";
  ro.input = input;
  auto ci = t::run_process("/usr/bin/git", {"check-ignore", "--stdin", "-v", "-n"}, ro);
  REQUIRE_MESSAGE((ci.code == 0 || ci.code == 1), ci.err);
  // Every file git ls-files reports must be "not ignored" for check-ignore too (lines starting with "::").
  for (const auto& line : amlc::split(ci.out, '\n')) {
    if (line.empty()) continue;
    auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    std::string path = line.substr(tab + 1);
    // "::<TAB>path": no pattern matched; "src:line:!pattern<TAB>path": a negation matched (not ignored).
    std::string head = line.substr(0, tab);
    auto second_colon = head.find(':', head.find(':') + 1);
    bool not_ignored = line.rfind("::", 0) == 0 ||
                       (second_colon != std::string::npos && head.compare(second_colon + 1, 1, "!") == 0);
    if (expected.count(path)) CHECK_MESSAGE(not_ignored, path << ": " << line);
    if (!not_ignored) CHECK_MESSAGE(!actual.count(path), path << " is ignored by git (" << line << ") but included");
  }
}

TEST_CASE("archive: an ignore file that is not a regular file is an error (exit 2) - never a hang - never skipped") {
  t::TempDir dir;
  t::write_text(dir / "src/a.py", "a");
  t::write_text(dir / "src/sub/secret.key", "k");
  t::write_text(dir / "src/sub/.gitignore", "*.key\n");
  // A fifo named .amlignore: before, it was skipped and sub's .gitignore rules silently replaced it at the top.
  REQUIRE(::mkfifo((dir / "src/.amlignore").c_str(), 0600) == 0);
  auto r = t::run_amlc({"snapshot", "list-files", (dir / "src").string()}, {.timeout_seconds = 60});
  CHECK(r.code == 2);
  CHECK_MESSAGE(r.err.find("ignore file " + (dir / "src/.amlignore").string() + " is a fifo, not a regular file") !=
                    std::string::npos,
                r.err);
  CHECK(r.err.find("it decides what the snapshot leaves out") != std::string::npos);
  fs::remove(dir / "src/.amlignore");
  // A fifo named .gitignore in a subfolder, a symlink to a device, a dangling symlink, a directory, a huge file.
  REQUIRE(::mkfifo((dir / "src/sub/.amlignore").c_str(), 0600) == 0);
  r = t::run_amlc({"snapshot", "create", (dir / "src").string(), "-f", (dir / "s.tar.gz").string()},
                  {.timeout_seconds = 60});
  CHECK(r.code == 2);
  CHECK(r.err.find("sub/.amlignore is a fifo") != std::string::npos);
  CHECK(!fs::exists(dir / "s.tar.gz"));
  fs::remove(dir / "src/sub/.amlignore");
  auto error_of = [&] {
    try {
      amlc::archive::list_source(dir / "src");
    } catch (const amlc::Error& e) {
      CHECK(e.kind() == amlc::ErrorKind::Usage);
      return std::string(e.what());
    }
    return std::string();
  };
  fs::create_symlink("/dev/zero", dir / "src/.gitignore");
  CHECK(error_of().find(".gitignore is a character device, not a regular file") != std::string::npos);
  fs::remove(dir / "src/.gitignore");
  fs::create_symlink("missing", dir / "src/.gitignore");
  CHECK(error_of().find(".gitignore is a symlink to a missing file") != std::string::npos);
  fs::remove(dir / "src/.gitignore");
  fs::create_directories(dir / "src/.gitignore");
  CHECK(error_of().find(".gitignore is a directory, not a regular file") != std::string::npos);
  fs::remove(dir / "src/.gitignore");
  t::write_text(dir / "src/.gitignore", std::string(amlc::kMaxConfigBytes + 1, '#'));
  CHECK(error_of().find(".gitignore is larger than") != std::string::npos);
  // A symlink to a regular ignore file is followed.
  t::write_text(dir / "rules", "*.py\n");
  fs::remove(dir / "src/.gitignore");
  fs::create_symlink(dir / "rules", dir / "src/.gitignore");
  auto listing = amlc::archive::list_source(dir / "src");
  for (const auto& e : listing.entries) CHECK(e.path != "a.py");
}
