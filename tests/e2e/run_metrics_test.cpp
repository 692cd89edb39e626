// Metrics from the embedded Python helpers (amlc.run and the azureml.core.run shim), NaN handling, tags.
#include <doctest/doctest.h>

#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using json = nlohmann::json;

TEST_CASE("run: metrics from the Python helpers (amlc.run / azureml Run.get_context) land in metrics.jsonl") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/train.py", R"(from amlc import run
from azureml.core.run import Run
ctx = Run.get_context()
for i, loss in enumerate([0.9, 0.5, 0.2]):
    run.log("loss", loss)
ctx.log("accuracy", 0.75)
run.log("bad", float("nan"))
run.log_list("curve", [1, 2, 3])
run.log_row("roc", fpr=0.1, tpr=0.8)
run.tag("framework", "none")
print("helper id", run.id)
)");
  auto r = ws.run({"run", "submit-script", "-e", "py", "--source-directory", (ws.dir() / "src").string(), "train.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json rec = r.json_out();
  std::string id = rec["runId"];
  CHECK(rec["tags"]["framework"] == "none");  // kind "tag" records become run tags
  auto m = ws.ok({"run", "metrics", "-r", id});
  CHECK(m["loss"] == json({0.9, 0.5, 0.2}));
  CHECK(m["accuracy"] == 0.75);
  CHECK(m["bad"] == "NaN");
  CHECK(m["curve"] == json({1, 2, 3}));
  CHECK(m["roc"] == json({{"fpr", 0.1}, {"tpr", 0.8}}));
  auto recs = ws.ok({"run", "metrics", "-r", id, "--records", "-n", "loss"});
  REQUIRE(recs.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(recs[i]["step"] == i + 1);
    CHECK(recs[i]["source"] == "file");
    CHECK(recs[i]["kind"] == "scalar");
    CHECK(recs[i]["time"].get<double>() > 1.7e9);
  }
  auto logs = ws.run({"run", "logs", "-r", id});
  CHECK(logs.out.find("helper id " + id) != std::string::npos);
}
