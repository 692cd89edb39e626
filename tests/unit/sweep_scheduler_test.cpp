// Unit tests of the sweep scheduler's helpers and the sweep store.
#include <doctest/doctest.h>
#include <unistd.h>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/sweep/config.hpp"
#include "amlc/sweep/definition.hpp"
#include "amlc/sweep/journal.hpp"
#include "amlc/sweep/scheduler.hpp"
#include "amlc/sweep/store.hpp"

using namespace amlc;
using json = nlohmann::json;

namespace {

sweep::SweepConfig two_params() {
  return sweep::parse_config_text(R"(sampling:
  type: random
  parameter_space:
  - {name: --lr, expression: uniform, values: [0.01, 0.1]}
  - {name: batch, expression: choice, values: [16, 32]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 4
)",
                                  "t.yml");
}

}  // namespace

TEST_CASE("sweep scheduler: trial run ids") {
  CHECK(sweep::trial_run_id("exp_sweep_1_ab", 0, 1) == "exp_sweep_1_ab_0");
  CHECK(sweep::trial_run_id("exp_sweep_1_ab", 7, 1) == "exp_sweep_1_ab_7");
  CHECK(sweep::trial_run_id("exp_sweep_1_ab", 7, 2) == "exp_sweep_1_ab_7_r1");
  CHECK(sweep::trial_run_id("exp_sweep_1_ab", 3, 4) == "exp_sweep_1_ab_3_r3");
  std::string id = sweep::new_sweep_id("tune");
  CHECK(id.rfind("tune_sweep_", 0) == 0);
  CHECK_NOTHROW(runs::validate_run_id(sweep::trial_run_id(id, 12, 3)));
}

TEST_CASE("sweep store: records, effective status, check") {
  TempDir tmp;
  Workspace ws = Workspace::create(tmp.path() / "p", "t");
  std::string id = "default_sweep_1_00000000";
  json rec{{"sweepId", id},
           {"experimentName", "default"},
           {"status", sweep::kSweepRunning},
           {"createdUtc", "2026-11-21T00:00:00.000Z"},
           {"primaryMetric", {{"name", "accuracy"}, {"goal", "Maximize"}}},
           {"supervisor", runs::supervisor_info(static_cast<int>(::getpid()))}};
  sweep::create_sweep_dir(ws, id, rec, "");
  CHECK_THROWS_AS(sweep::create_sweep_dir(ws, id, rec, ""), Error);
  fs::path dir = sweep::sweep_dir(ws, id);
  CHECK(sweep::read_sweep_record(dir)["sweepId"] == id);
  CHECK(sweep::effective_record(rec)["status"] == "Running");
  json dead = rec;
  dead["supervisor"] = {{"pid", 999999999}, {"startTicks", 1}};
  CHECK(sweep::effective_record(dead)["status"] == "NotResponding");
  try {
    sweep::sweep_dir(ws, "nope");
    FAIL("expected NotFound");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::NotFound);
  }
  CHECK_THROWS_AS(sweep::sweep_dir(ws, "../x"), Error);

  auto cfg = two_params();
  sweep::Journal j(sweep::journal_path(dir));
  j.sweep_started(cfg, 1);
  j.trial_created(0, json{{"--lr", 0.05}, {"batch", 16}});
  std::vector<std::string> problems;
  json stats = json::object();
  sweep::check_sweeps(ws, problems, stats);
  CHECK(problems.empty());
  CHECK(stats["sweeps"] == 1);
  CHECK(stats["sweepTrials"] == 1);
  // A finished record whose journal does not say so is reported.
  sweep::update_sweep(dir, [](json& r) { r["status"] = sweep::kSweepCompleted; });
  sweep::check_sweeps(ws, problems, stats);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("sweep_finished") != std::string::npos);
  j.sweep_finished("Completed");
  problems.clear();
  sweep::check_sweeps(ws, problems, stats);
  CHECK(problems.empty());
  // A damaged journal line is reported.
  append_line_durable(sweep::journal_path(dir), "{not json");
  append_line_durable(sweep::journal_path(dir), "{\"event\": \"sweep_finished\", \"status\": \"Completed\"}");
  problems.clear();
  sweep::check_sweeps(ws, problems, stats);
  CHECK(problems.size() == 1);
  CHECK(sweep::list_sweep_records(ws, "").size() == 1);
  CHECK(sweep::list_sweep_records(ws, "other").empty());
}

TEST_CASE("sweep store: a sweep is created with its journal's first record - check reports an unfinished sweep that cannot be resumed") {
  TempDir tmp;
  Workspace ws = Workspace::create(tmp.path() / "p", "t");
  auto cfg = two_params();
  json rec{{"sweepId", "default_sweep_1_00000001"},
           {"experimentName", "default"},
           {"status", sweep::kSweepRunning},
           {"createdUtc", "2026-11-21T00:00:00.000Z"},
           {"primaryMetric", {{"name", "accuracy"}, {"goal", "Maximize"}}},
           {"config", cfg.to_json()},
           {"seed", 5},
           {"supervisor", {{"pid", 999999999}, {"startTicks", 1}}}};
  std::string first = sweep::journal_line(sweep::sweep_started_record(cfg.to_json(), 5)) + "\n";
  sweep::create_sweep_dir(ws, "default_sweep_1_00000001", rec, first);
  fs::path dir = sweep::sweep_dir(ws, "default_sweep_1_00000001");
  // Both files arrive together: the journal already says sweep_started.
  sweep::SweepState st = sweep::replay(sweep::journal_path(dir));
  CHECK(st.started);
  CHECK(st.seed == 5);
  CHECK(st.config == cfg.to_json());
  std::vector<std::string> problems;
  json stats = json::object();
  sweep::check_sweeps(ws, problems, stats);
  CHECK(problems.empty());

  // Without its journal (as an older amlc killed between the folder and the journal left it) the record's
  // configuration lets resume start it: no problem.
  fs::remove(sweep::journal_path(dir));
  problems.clear();
  sweep::check_sweeps(ws, problems, stats);
  CHECK(problems.empty());
  CHECK(sweep::resume_blocker(sweep::read_sweep_record(dir), sweep::SweepState{}).empty());

  // Without a usable configuration anywhere it can only be canceled: reported.
  for (const json& bad : {json(nullptr), json{{"sampling", {{"type", "random"}}}}}) {
    sweep::update_sweep(dir, [&](json& r) { r["config"] = bad; });
    problems.clear();
    sweep::check_sweeps(ws, problems, stats);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find("sweep default_sweep_1_00000001 cannot be resumed") != std::string::npos);
    CHECK(problems[0].find("amlc sweep cancel default_sweep_1_00000001") != std::string::npos);
  }
  // A damaged journal of an unfinished sweep: it can be neither resumed nor canceled.
  write_file_atomic(sweep::journal_path(dir), "{not json\n" + first);
  problems.clear();
  sweep::check_sweeps(ws, problems, stats);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("can be neither resumed nor canceled") != std::string::npos);
}
