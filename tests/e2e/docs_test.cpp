// Docs cannot drift from the CLI: completions are the binary's own output, every command has
// --help with examples, and the man page and README name every command.
#include <doctest/doctest.h>

#include <regex>
#include <set>

#include "support/harness.hpp"

using namespace amlc::test;

namespace {

// Every command path ("model register", ...) from the generated bash completion's table.
std::vector<std::string> command_paths() {
  auto r = run_amlc({"completion", "bash"});
  REQUIRE(r.code == 0);
  std::vector<std::string> paths;
  std::regex line(R"re(^    "([a-z -]+)"\) echo "([^"]*)" ;;$)re");
  bool in_subs = false;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("_amlc_subs()", 0) == 0) in_subs = true;
    std::smatch m;
    if (in_subs && std::regex_match(l, m, line) && m[2].str().empty() && !m[1].str().empty()) paths.push_back(m[1]);
  }
  return paths;  // leaves only: commands without subcommands
}

}  // namespace

TEST_CASE("completions/ hold exactly what 'amlc completion SHELL' prints") {
  for (auto [shell, file] : std::vector<std::pair<std::string, std::string>>{
           {"bash", "amlc.bash"}, {"zsh", "_amlc"}, {"fish", "amlc.fish"}}) {
    CAPTURE(shell);
    auto r = run_amlc({"completion", shell});
    REQUIRE(r.code == 0);
    CHECK_MESSAGE(read_text(fs::path(AMLC_SOURCE_DIR) / "completions" / file) == r.out,
                  "completions/" << file << " is stale: run scripts/gen-completions.sh");
    // Hidden commands (the supervisors amlc starts itself) are not offered.
    CHECK(r.out.find("_supervise") == std::string::npos);
  }
}

TEST_CASE("every command has --help with an example, and is in the man page and README") {
  auto paths = command_paths();
  CHECK(paths.size() > 15);
  TempDir tmp;
  auto gen = run_process("/bin/bash", {std::string(AMLC_SOURCE_DIR) + "/scripts/gen-man.sh", (tmp / "amlc.1").string()},
                         {.env = {{"AMLC", AMLC_BIN}}});
  REQUIRE_MESSAGE(gen.code == 0, gen.err);
  CHECK_MESSAGE(read_text(tmp / "amlc.1") == read_text(fs::path(AMLC_SOURCE_DIR) / "man" / "amlc.1"),
                "man/amlc.1 is stale: run scripts/gen-man.sh");
  std::string man = read_text(fs::path(AMLC_SOURCE_DIR) / "man" / "amlc.1");
  std::string readme = read_text(fs::path(AMLC_SOURCE_DIR) / "README.md");
  for (const auto& p : paths) {
    CAPTURE(p);
    std::vector<std::string> args;
    std::istringstream in(p);
    for (std::string w; in >> w;) args.push_back(w);
    args.push_back("--help");
    auto r = run_amlc(args);
    CHECK(r.code == 0);
    CHECK(r.out.find("Examples:\n  amlc ") != std::string::npos);
    CHECK_MESSAGE(man.find("amlc " + p) != std::string::npos, "man/amlc.1 does not mention 'amlc " << p << "'");
    CHECK_MESSAGE(readme.find("amlc " + p) != std::string::npos, "README.md does not mention 'amlc " << p << "'");
  }
}

TEST_CASE("no test name contains a semicolon (ctest's discovery would split it into entries that run nothing)") {
  std::regex test_case(R"re(TEST_CASE\("((?:[^"\\]|\\.)*)")re");
  int names = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(AMLC_SOURCE_DIR) / "tests")) {
    if (e.path().extension() != ".cpp") continue;
    std::string text = read_text(e.path());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), test_case); it != std::sregex_iterator(); ++it) {
      ++names;
      CHECK_MESSAGE((*it)[1].str().find(';') == std::string::npos, e.path().filename().string() << ": " << (*it)[1].str());
    }
  }
  CHECK(names > 100);
}
