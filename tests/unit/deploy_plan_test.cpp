// The one parse-and-validate step of model deploy, service update and model package (deploy/plan.hpp).
#include <doctest/doctest.h>

#include "amlc/core/error.hpp"
#include "amlc/deploy/plan.hpp"
#include "amlc/registry/registry.hpp"
#include "amlc/workspace/workspace.hpp"
#include "support/harness.hpp"

using namespace amlc;
using namespace amlc::deploy;

namespace {

struct Ws {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path() / "ws", "t");
  Ws() {
    test::write_text(tmp / "app" / "score.py", "def init(): pass\ndef run(d): return d\n");
    test::write_text(tmp / "app" / "other.py", "def init(): pass\ndef run(d): return 0\n");
    test::write_text(tmp / "m.json", "{}\n");
    registry::register_model(ws, {.name = "m", .path = tmp / "m.json"});
    registry::register_model(ws, {.name = "m", .path = tmp / "m.json"});
    registry::register_model(ws, {.name = "n", .path = tmp / "m.json"});
  }
  PlanRequest request() const {
    PlanRequest r;
    r.model_ids = {"m:1"};
    r.inference_flags.entry_script = (tmp / "app" / "score.py").string();
    r.cwd = tmp.path();
    return r;
  }
};

ErrorKind kind_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind();
  }
  FAIL("expected an error");
  return ErrorKind::General;
}

}  // namespace

TEST_CASE("plan: flags over the defaults - the models resolved - a bad config is named before an unknown model") {
  Ws w;
  Notes notes;
  PlanRequest r = w.request();
  r.model_ids = {"m:latest", "n:1"};
  r.deploy_flags.port = 8123;
  DeployPlan p = plan_deployment(w.ws, r, nullptr, notes);
  CHECK(p.ic.entry_script == "score.py");
  CHECK(p.dc.port == 8123);
  CHECK(p.model_ids == std::vector<std::string>{"m:latest", "n:1"});
  REQUIRE(p.model_records.size() == 2);
  CHECK(p.model_records[0]["version"] == 2);

  r.model_ids = {"nope:1"};
  CHECK(kind_of([&] { plan_deployment(w.ws, r, nullptr, notes); }) == ErrorKind::NotFound);
  r.deploy_flags.port = 0;  // a bad flag wins over the unknown model
  CHECK(kind_of([&] { plan_deployment(w.ws, r, nullptr, notes); }) == ErrorKind::Usage);
  r = w.request();
  r.model_ids = {"nope:1"};
  test::write_text(w.tmp / "ic.yml", "entryScript: score.py\nbogus: 1\n");
  r.inference_config_file = w.tmp / "ic.yml";
  CHECK(kind_of([&] { plan_deployment(w.ws, r, nullptr, notes); }) == ErrorKind::Usage);

  r = w.request();
  r.timeout_seconds = 0;
  CHECK(kind_of([&] { plan_deployment(w.ws, r, nullptr, notes); }) == ErrorKind::Usage);
  r.timeout_seconds.reset();  // model package has no health wait
  CHECK_NOTHROW(plan_deployment(w.ws, r, nullptr, notes));
  r.model_ids = {"m:1", "m:2"};  // one version per model
  CHECK(kind_of([&] { plan_deployment(w.ws, r, nullptr, notes); }) == ErrorKind::Usage);
}

TEST_CASE("plan: a stored record is the base of an update - its configs and models unless a file, flag or id says otherwise") {
  Ws w;
  Notes notes;
  DeployPlan first = plan_deployment(w.ws, [&] {
    PlanRequest r = w.request();
    r.deploy_flags.worker_count = 3;
    r.deploy_flags.auth_enabled = true;
    return r;
  }(), nullptr, notes);
  json stored = {{"name", "svc"},
                 {"models", json::array({{{"name", "m"}, {"version", 1}}, {{"name", "n"}, {"version", 1}}})},
                 {"inferenceConfig", first.ic.to_json()},
                 {"deploymentConfig", first.dc.to_json()}};

  PlanRequest update;
  update.cwd = w.tmp.path();
  DeployPlan same = plan_deployment(w.ws, update, stored, notes);
  CHECK(same.ic.entry_script_path == w.tmp / "app" / "score.py");
  CHECK(same.dc.worker_count == 3);
  CHECK(same.dc.auth_enabled);
  CHECK(same.model_ids == std::vector<std::string>{"m:1", "n:1"});

  update.model_ids = {"m:2"};
  update.deploy_flags.worker_count = 5;
  update.inference_flags.entry_script = (w.tmp / "app" / "other.py").string();
  DeployPlan changed = plan_deployment(w.ws, update, stored, notes);
  CHECK(changed.ic.entry_script == "other.py");
  CHECK(changed.dc.worker_count == 5);
  CHECK(changed.dc.auth_enabled);
  CHECK(changed.model_ids == std::vector<std::string>{"m:2"});

  test::write_text(w.tmp / "dc.yml", "computeType: local\nworkerCount: 2\n");
  update.deploy_flags = {};
  update.deploy_config_file = w.tmp / "dc.yml";
  DeployPlan from_file = plan_deployment(w.ws, update, stored, notes);
  CHECK(from_file.dc.worker_count == 2);
  CHECK_FALSE(from_file.dc.auth_enabled);  // the file replaces the stored deployment config whole

  fs::remove(w.tmp / "app" / "score.py");  // the stored entry script is gone: the update is refused
  CHECK(kind_of([&] { plan_deployment(w.ws, PlanRequest{.cwd = w.tmp.path()}, stored, notes); }) == ErrorKind::Usage);
}
