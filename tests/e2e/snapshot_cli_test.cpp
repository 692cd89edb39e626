// amlc snapshot create|list-files through the real binary.
#include <doctest/doctest.h>

#include "amlc/core/hash.hpp"
#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using json = nlohmann::json;

TEST_CASE("snapshot: create prints path / sha256 / files / bytes / excluded - the same tree gives the same sha256") {
  t::TempDir tmp;
  t::write_text(tmp / "src/a.py", "print(1)\n");
  t::write_text(tmp / "src/lib/b.py", "x = 2\n");
  t::write_text(tmp / "src/.gitignore", "*.log\nbuild/\n");
  t::write_text(tmp / "src/debug.log", "noise");
  t::write_text(tmp / "src/build/out.o", "obj");
  t::write_text(tmp / "src/.git/HEAD", "ref");
  auto r = t::run_amlc({"snapshot", "create", (tmp / "src").string(), "-f", (tmp / "one.tar.gz").string()});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json j = r.json_out();
  CHECK(j["path"] == (tmp / "one.tar.gz").string());
  CHECK(j["files"] == 3);
  CHECK(j["bytes"] == 9 + 6 + 13);
  CHECK(j["excluded"] == 3);  // debug.log, build/, .git/
  CHECK(j["sha256"] == amlc::sha256_file(tmp / "one.tar.gz"));
  auto again = t::run_amlc({"snapshot", "create", (tmp / "src").string(), "--output-file", (tmp / "two.tar.gz").string()});
  CHECK(again.json_out()["sha256"] == j["sha256"]);

  auto files = t::run_amlc({"snapshot", "list-files", (tmp / "src").string()}).json_out();
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back(f["path"]);
  CHECK(paths == std::vector<std::string>{".gitignore", "a.py", "lib/b.py"});
  auto excluded = t::run_amlc({"snapshot", "list-files", (tmp / "src").string(), "--excluded"}).json_out();
  CHECK(excluded.size() == 3);

  // Errors: no -f (usage), a missing directory, limits.
  CHECK(t::run_amlc({"snapshot", "create", (tmp / "src").string()}).code == 2);
  auto missing = t::run_amlc({"snapshot", "create", (tmp / "nope").string(), "-f", (tmp / "x.tar.gz").string()});
  CHECK(missing.code == 2);
  CHECK(missing.err.find("not a directory") != std::string::npos);
  auto limited = t::run_amlc({"snapshot", "create", (tmp / "src").string(), "-f", (tmp / "x.tar.gz").string()},
                             {.env = {{"AMLC_SNAPSHOT_MAX_FILES", "1"}}});
  CHECK(limited.code == 2);
  CHECK(limited.err.find("3 files (limit 1)") != std::string::npos);
  CHECK(limited.err.find("lib/ (1 file") != std::string::npos);
  CHECK(!fs::exists(tmp / "x.tar.gz"));
}
