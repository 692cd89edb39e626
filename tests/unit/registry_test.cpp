// registry: register, resolve (NAME:VERSION, NAME:latest, NAME@ALIAS, bare NAME), version numbering.
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "amlc/core/error.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/registry/registry.hpp"
#include "amlc/workspace/workspace.hpp"
#include "support/harness.hpp"

using namespace amlc;
using json = nlohmann::json;

namespace {

json register_text(const Workspace& ws, const test::TempDir& tmp, const std::string& name, const std::string& text) {
  test::write_text(tmp / "src" / "model.pkl", text);
  registry::RegisterRequest req;
  req.name = name;
  req.path = tmp / "src" / "model.pkl";
  return registry::register_model(ws, req);
}

}  // namespace

TEST_CASE("registry: versions count up per name, the contents are stored once by hash") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  json a1 = register_text(ws, tmp, "a", "weights");
  json a2 = register_text(ws, tmp, "a", "weights");
  json b1 = register_text(ws, tmp, "b", "other");
  CHECK(a1["id"] == "a:1");
  CHECK(a2["id"] == "a:2");
  CHECK(b1["id"] == "b:1");
  CHECK(a1["kind"] == "file");
  REQUIRE(a1["files"].size() == 1);
  const std::string sha = a1["files"][0]["sha256"];
  CHECK(a2["files"][0]["sha256"] == sha);
  CHECK(BlobStore(ws.blobs_dir()).contains(sha));
  CHECK(test::read_text(BlobStore(ws.blobs_dir()).path_of(sha)) == "weights");
}

TEST_CASE("registry: a deleted version's number is never given again") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  register_text(ws, tmp, "m", "1");
  register_text(ws, tmp, "m", "2");
  json out = registry::remove(ws, "m:latest", {});
  CHECK(out["id"] == "m:2");
  CHECK(out["blobs"].size() == 1);  // left for storage to free
  CHECK(register_text(ws, tmp, "m", "3")["version"] == 3);
  registry::remove(ws, "m:1", {});
  registry::remove(ws, "m:3", {});  // every version gone: the name still remembers the last number
  CHECK(register_text(ws, tmp, "m", "4")["version"] == 4);
}

TEST_CASE("registry: resolve NAME:VERSION, NAME:latest, bare NAME and NAME@ALIAS") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  register_text(ws, tmp, "churn", "1");
  register_text(ws, tmp, "churn", "2");
  register_text(ws, tmp, "churn", "3");
  CHECK(registry::resolve(ws, "churn:2")["version"] == 2);
  CHECK(registry::resolve(ws, "churn:latest")["version"] == 3);
  CHECK(registry::resolve(ws, "churn")["version"] == 3);
  registry::set_alias(ws, "churn", "prod", 2);
  CHECK(registry::resolve(ws, "churn@prod")["id"] == "churn:2");

  // An alias of a deleted version goes with it; latest moves down.
  json out = registry::remove(ws, "churn@prod", {});
  CHECK(out["id"] == "churn:2");
  CHECK(out["removedAliases"] == json::array({"prod"}));
  CHECK(test::error_kind_of([&] { registry::resolve(ws, "churn@prod"); }) == ErrorKind::NotFound);
  registry::remove(ws, "churn:3", {});
  CHECK(registry::resolve(ws, "churn:latest")["version"] == 1);

  CHECK(test::error_kind_of([&] { registry::resolve(ws, "churn:9"); }) == ErrorKind::NotFound);
  CHECK(test::error_kind_of([&] { registry::resolve(ws, "nosuch"); }) == ErrorKind::NotFound);
  CHECK(test::error_kind_of([&] { registry::resolve(ws, "churn:0"); }) == ErrorKind::Usage);
  CHECK(test::error_kind_of([&] { registry::resolve(ws, "churn:x"); }) == ErrorKind::Usage);
  CHECK(test::error_kind_of([&] { registry::resolve(ws, "churn@"); }) == ErrorKind::Usage);
  CHECK(test::error_kind_of([&] { registry::resolve(ws, "../x:1"); }) == ErrorKind::Usage);
}

TEST_CASE("registry: remove asks its caller's check under the lock, before anything changes") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  register_text(ws, tmp, "m", "1");
  const auto before = test::snapshot_tree(ws.root());
  std::string asked;
  auto refuse = [&](const std::string& name, int version) {
    asked = name + ":" + std::to_string(version);
    conflict("in use");
  };
  CHECK(test::error_kind_of([&] { registry::remove(ws, "m", refuse); }) == ErrorKind::Conflict);
  CHECK(asked == "m:1");
  CHECK(test::snapshot_tree(ws.root()) == before);
  CHECK(registry::resolve(ws, "m:1")["version"] == 1);
}
