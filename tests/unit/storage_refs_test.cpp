// storage: the one place that knows every user of a model and every checker. A library caller gets both without
// any wiring done by the CLI.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "amlc/core/error.hpp"
#include "amlc/deploy/services.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/registry/registry.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/storage/storage.hpp"
#include "amlc/sweep/store.hpp"
#include "amlc/workspace/workspace.hpp"
#include "support/harness.hpp"

using namespace amlc;
using json = nlohmann::json;

namespace {

json register_file(const Workspace& ws, const test::TempDir& tmp, const std::string& name, const std::string& text) {
  test::write_text(tmp / "src" / "model.pkl", text);
  registry::RegisterRequest req;
  req.name = name;
  req.path = tmp / "src" / "model.pkl";
  return registry::register_model(ws, req);
}

void write_service_using(const Workspace& ws, const std::string& name, const char* key, const std::string& model,
                         int version) {
  json rec = {{"name", name}, {"state", "Healthy"}, {"port", 1}, {"imageTag", "x"}, {"createdTime", "t"},
              {"models", json::array()}};
  rec[key] = json::array({{{"name", model}, {"version", version}}});
  FileLock guard = ws.lock();
  deploy::write_service(ws, rec);
}

bool names(const std::vector<std::string>& problems, const fs::path& file) {
  return std::any_of(problems.begin(), problems.end(),
                     [&](const std::string& p) { return p.find(file.string()) != std::string::npos; });
}

}  // namespace

TEST_CASE("storage: delete_model refuses a version a service uses, for a library caller with no CLI wiring") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  register_file(ws, tmp, "m", "one");
  register_file(ws, tmp, "m", "two");
  register_file(ws, tmp, "m", "three");
  write_service_using(ws, "svc-a", "models", "m", 1);
  write_service_using(ws, "svc-b", "pendingModels", "m", 2);  // a service moving to it uses it too
  CHECK(storage::model_users(ws, "m", 1) == std::vector<std::string>{"svc-a"});
  CHECK(storage::model_users(ws, "m", 2) == std::vector<std::string>{"svc-b"});
  CHECK(storage::model_users(ws, "m", 3).empty());

  const auto before = test::snapshot_tree(ws.root());
  for (const std::string id : {"m:1", "m:2"}) {
    try {
      storage::delete_model(ws, id);
      FAIL("deleted " << id << ", which a service uses");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Conflict);
      CHECK(std::string(e.what()).find("cannot delete model '" + id + "': it is used by service(s) svc-") == 0);
    }
  }
  CHECK(test::snapshot_tree(ws.root()) == before);  // refused: the workspace is as it was
  CHECK(registry::resolve(ws, "m:1")["version"] == 1);

  json out = storage::delete_model(ws, "m:3");  // nobody uses it
  CHECK(out["id"] == "m:3");
  CHECK(out["deleted"] == true);
  CHECK_THROWS_AS(registry::resolve(ws, "m:3"), Error);
}

TEST_CASE("storage: check_workspace reports damaged run, sweep and service records with no registration") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  const fs::path run = runs::experiments_dir(ws) / "exp" / "runs" / "exp_1" / "run.json";
  const fs::path sweep = sweep::sweeps_dir(ws) / "HD_1" / "sweep.json";
  const fs::path service = deploy::service_record_path(ws, "svc");
  test::write_text(run, "{not json");
  test::write_text(sweep, "{not json");
  test::write_text(service, "{not json");
  const auto before = test::snapshot_tree(ws.root());

  storage::WorkspaceCheck c = storage::check_workspace(ws);
  CHECK_FALSE(c.report.ok());
  CHECK_MESSAGE(names(c.report.problems, run), c.to_json().dump());
  CHECK_MESSAGE(names(c.report.problems, sweep), c.to_json().dump());
  CHECK_MESSAGE(names(c.report.problems, service), c.to_json().dump());
  CHECK(c.report.stats["runs"] == 1);
  CHECK(c.report.stats["sweeps"] == 1);
  CHECK(c.report.stats["services"] == 1);
  CHECK(c.leftovers.empty());  // not looked for while records are damaged
  CHECK(test::snapshot_tree(ws.root()) == before);  // a check changes nothing
}

TEST_CASE("storage: check_workspace on a sound workspace is ok and lists leftovers in the printed shape") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  register_file(ws, tmp, "m", "kept");
  const std::string orphan = BlobStore(ws.blobs_dir()).put_bytes("no record refers to this").sha256;

  storage::WorkspaceCheck c = storage::check_workspace(ws);
  CHECK_MESSAGE(c.report.ok(), c.to_json().dump());
  CHECK(c.report.stats["models"] == 1);
  CHECK(c.report.stats["blobs"] == 2);
  for (const char* k : {"runs", "sweeps", "sweepTrials", "services"}) CHECK(c.report.stats[k] == 0);
  REQUIRE(c.leftovers.size() == 1);
  CHECK(c.leftovers[0].kind == "blob");
  CHECK(c.leftovers[0].what == orphan);
  json j = c.to_json();
  CHECK(j["ok"] == true);
  CHECK(j["problems"] == json::array());
  CHECK(j["leftovers"]["count"] == 1);
  CHECK(j["leftovers"]["bytes"] == std::string("no record refers to this").size());
  CHECK(j["leftovers"]["items"][0]["kind"] == "blob");
}
