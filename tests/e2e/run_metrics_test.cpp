// Metrics from the embedded Python helpers (amlc.run and the azureml.core.run shim), NaN handling, tags.
#include <fstream>

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

// A run's stdout is hostile input. std::regex recursed once per character of a stdout line: a `loss=` line of
// 30,000 digits crashed amlc (exit 139) and left the run Running.
TEST_CASE("run: giant stdout metric lines neither crash amlc nor block the metrics around them") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/long.py", R"(import sys
print("loss=" + "1" * 200000)   # over 64 KiB: no metric line, skipped whole
print("loss=" + "7" * 40000)    # a number no double holds: Infinity
print("acc=0.5")
sys.exit(0)
)");
  auto r = ws.run({"run", "submit-script", "-e", "x", "--source-directory", (ws.dir() / "src").string(), "long.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err.substr(0, 500));
  json rec = r.json_out();
  CHECK(rec["status"] == "Completed");
  CHECK(rec["exitCode"] == 0);
  std::string id = rec["runId"];
  CHECK(ws.ok({"run", "show", "-r", id})["status"] == "Completed");
  auto m = ws.ok({"run", "metrics", "-r", id});
  CHECK(m["acc"] == 0.5);
  CHECK(m["loss"] == "Infinity");
  auto recs = ws.ok({"run", "metrics", "-r", id, "--records", "-n", "loss"});
  CHECK(recs.size() == 1);
}

// A run's metrics lines and its metrics.jsonl (its script can rewrite any file in its run folder) are hostile input:
// a value nested 100,000 levels deep parsed fine, and copying or printing it overflowed the stack.
TEST_CASE("run: a metrics line nested 100,000 levels deep is skipped - the run completes with the other metrics") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/deep.py", R"(import os
with open(os.environ["AMLC_METRICS_FILE"], "a") as f:
    f.write('{"name":"deep","value":' + "[" * 100000 + "]" * 100000 + '}\n')
    f.write('{"name":"ok","value":1}\n')
)");
  auto r = ws.run({"run", "submit-script", "-e", "x", "--source-directory", (ws.dir() / "src").string(), "deep.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err.substr(0, 500));
  json rec = r.json_out();
  CHECK(rec["status"] == "Completed");
  std::string id = rec["runId"];
  CHECK(ws.ok({"run", "metrics", "-r", id}) == json({{"ok", 1}}));
}

TEST_CASE("run: a metrics.jsonl record nested 100,000 levels deep is skipped by the metrics listing") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/ok.py", "print('ok=1')\n");
  auto r = ws.run({"run", "submit-script", "-e", "x", "--source-directory", (ws.dir() / "src").string(), "ok.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err.substr(0, 500));
  std::string id = r.json_out()["runId"];
  // Written into the run folder after the run, as its script could have.
  fs::path dir = fs::canonical(ws.root() / "runs" / id);
  REQUIRE(fs::exists(dir / "metrics.jsonl"));
  {
    std::ofstream f(dir / "metrics.jsonl", std::ios::app);
    f << R"({"name":"deep2","step":1,"time":1.0,"kind":"scalar","source":"file","value":)" << std::string(100000, '[')
      << std::string(100000, ']') << "}\n";
    f << R"({"name":"ok2","value":2,"step":1,"time":1.0,"kind":"scalar","source":"file"})" << "\n";
  }
  auto m2 = ws.run({"run", "metrics", "-r", id});
  REQUIRE_MESSAGE(m2.code == 0, m2.err.substr(0, 500));
  CHECK(m2.json_out() == json({{"ok", 1}, {"ok2", 2}}));
  auto recs = ws.run({"run", "metrics", "-r", id, "--records"});
  REQUIRE_MESSAGE(recs.code == 0, recs.err.substr(0, 500));
  CHECK(recs.json_out().size() == 2);
  auto show = ws.run({"run", "show", "-r", id});
  REQUIRE_MESSAGE(show.code == 0, show.err.substr(0, 500));
  CHECK(show.json_out()["status"] == "Completed");
}
