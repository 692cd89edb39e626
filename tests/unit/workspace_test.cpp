// workspace: create, locate (-w, AMLC_WORKSPACE, .amlc upward), read_record of missing and damaged files.
#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <functional>
#include <string>

#include "amlc/core/error.hpp"
#include "amlc/workspace/workspace.hpp"
#include "support/harness.hpp"

using namespace amlc;
using json = nlohmann::json;

namespace {

// Unsets AMLC_WORKSPACE for one test and restores it after.
class NoWorkspaceEnv {
 public:
  NoWorkspaceEnv() {
    if (const char* v = std::getenv("AMLC_WORKSPACE")) saved_ = v;
    ::unsetenv("AMLC_WORKSPACE");
  }
  ~NoWorkspaceEnv() {
    if (saved_) ::setenv("AMLC_WORKSPACE", saved_->c_str(), 1);
  }

 private:
  std::optional<std::string> saved_;
};

}  // namespace

TEST_CASE("workspace: create writes workspace.json and refuses a second workspace in the same place") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp / "proj", "churn");
  CHECK(ws.root() == tmp / "proj" / ".amlc");
  CHECK(ws.name() == "churn");
  json info = read_record(ws.root() / "workspace.json");
  CHECK(info["formatVersion"] == kWorkspaceFormatVersion);
  CHECK(info["name"] == "churn");
  CHECK(info["id"].get<std::string>().size() >= 8);
  CHECK(info == ws.info());
  const auto before = test::snapshot_tree(tmp.path());
  CHECK(test::error_kind_of([&] { Workspace::create(tmp / "proj", "again"); }) == ErrorKind::Conflict);
  CHECK(test::snapshot_tree(tmp.path()) == before);
}

TEST_CASE("workspace: located by -w (root or its folder), by AMLC_WORKSPACE, and upward from the current folder") {
  NoWorkspaceEnv no_env;
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp / "proj", "p");
  fs::create_directories(tmp / "proj" / "src" / "deep");
  fs::create_directories(tmp / "elsewhere");

  auto by_w = Workspace::locate(tmp / "proj", tmp / "elsewhere");
  REQUIRE(by_w);
  CHECK(by_w->root == ws.root());
  CHECK(by_w->how == "--workspace");
  auto by_root = Workspace::locate(ws.root(), tmp / "elsewhere");
  REQUIRE(by_root);
  CHECK(by_root->root == ws.root());
  CHECK_FALSE(Workspace::locate(tmp / "elsewhere", tmp / "proj"));  // -w names no workspace: none, no search
  CHECK(test::error_kind_of([&] { Workspace::open(tmp / "elsewhere", tmp / "proj"); }) == ErrorKind::NotFound);

  auto upward = Workspace::locate(std::nullopt, tmp / "proj" / "src" / "deep");
  REQUIRE(upward);
  CHECK(upward->root == ws.root());
  CHECK(upward->how == ".amlc in " + (tmp / "proj").string());
  CHECK(Workspace::open(std::nullopt, tmp / "proj" / "src").info()["id"] == ws.info()["id"]);

  ::setenv("AMLC_WORKSPACE", (tmp / "proj").c_str(), 1);
  auto by_env = Workspace::locate(std::nullopt, tmp / "elsewhere");
  REQUIRE(by_env);
  CHECK(by_env->root == ws.root());
  CHECK(by_env->how == "AMLC_WORKSPACE");
}

TEST_CASE("workspace: read_record of a missing file is NotFound naming it, of a damaged one is Damaged") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  const fs::path missing = ws.root() / "models" / "none.json";
  try {
    read_record(missing);
    FAIL("read a missing record");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::NotFound);
    CHECK(std::string(e.what()).find(missing.string()) != std::string::npos);
  }
  const fs::path bad = ws.root() / "bad.json";
  test::write_text(bad, "{\"a\": ");
  try {
    read_record(bad);
    FAIL("read a damaged record");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Damaged);
    CHECK(std::string(e.what()) == "record " + bad.string() + " is damaged (not valid JSON)");
  }
  test::write_text(bad, std::string(10000, '[') + std::string(10000, ']'));
  CHECK(test::error_kind_of([&] { read_record(bad); }) == ErrorKind::Damaged);  // nested too deep: refused, no stack overflow
  test::write_text(bad, record_text(json{{"k", 1}}));
  CHECK(read_record(bad) == json{{"k", 1}});
  CHECK(test::read_text(bad) == "{\n  \"k\": 1\n}\n");
}
