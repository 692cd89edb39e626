// Sweep journal: write, replay, torn last line, duplicates, damage, resume.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/sweep/journal.hpp"
#include "support/harness.hpp"

using namespace amlc::sweep;

namespace {

SweepConfig small_config() {
  return parse_config_text("parameters:\n  x: uniform(0, 1)\n  k: choice(1, 2)\nsampling: random\nprimary_metric: {name: acc, goal: maximize}\n"
                           "max_total_runs: 6\nmax_concurrent_runs: 2\nseed: 11\npolicy: {type: MedianStoppingPolicy, delay_evaluation: 1}\n",
                           "s.yml");
}

// Starts the sweep of small_config() (seed 11) in `j` and creates `n` trials; returns their parameters.
std::vector<json> start_with_trials(Journal& j, const SweepConfig& cfg, int n) {
  j.sweep_started(cfg, 11);
  auto params = make_sampler(cfg, 11)->suggest(n, {});
  for (int i = 0; i < n; ++i) j.trial_created(i, params[static_cast<size_t>(i)]);
  return params;
}

void append_raw(const std::filesystem::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::app | std::ios::binary);
  f << s;
}

}  // namespace

TEST_CASE("journal: records replay into the sweep state") {
  amlc::test::TempDir tmp;
  auto path = tmp / "journal.jsonl";
  SweepConfig cfg = small_config();
  Journal j(path);
  auto params = start_with_trials(j, cfg, 3);
  j.trial_started(0);
  j.trial_started(1);
  j.trial_metric(0, 1, 0.5);
  j.trial_metric(0, 2, 0.7);
  j.trial_metric(1, 1, 0.1);
  Decision d{1, 1, "median_stopping", json{{"median", 0.3}}, "below the median"};
  j.trial_canceled(1, d);
  j.trial_finished(1, TrialStatus::Canceled, 0.1);
  j.trial_finished(0, TrialStatus::Completed, 0.7);
  j.trial_started(2);

  SweepState st = replay(path);
  CHECK(st.started);
  CHECK(st.seed == 11);
  CHECK(SweepConfig::from_json(st.config).to_json() == cfg.to_json());
  REQUIRE(st.created() == 3);
  CHECK(st.trials[0].params == params[0]);
  CHECK(st.trials[0].status == TrialStatus::Completed);
  CHECK(*st.trials[0].best == 0.7);
  CHECK(st.trials[0].metrics == std::vector<double>{0.5, 0.7});
  CHECK(st.trials[1].status == TrialStatus::Canceled);
  REQUIRE(st.trials[1].canceled_by);
  CHECK(st.trials[1].canceled_by->numbers["median"] == 0.3);
  CHECK(*st.trials[1].best == 0.1);
  CHECK(st.trials[2].status == TrialStatus::Running);
  CHECK(st.count(TrialStatus::Completed) == 1);
  CHECK(st.count(TrialStatus::Canceled) == 1);
  CHECK(st.active() == 1);
  CHECK_FALSE(st.torn_tail);
  auto h = st.history(Goal::Maximize);
  CHECK(*h[0].value == 0.7);
  auto series = st.series();
  REQUIRE(series.size() == 3);
  CHECK(series[2].running);
  CHECK_FALSE(series[0].running);
}

TEST_CASE("journal: a torn last line is ignored and repaired before the next append") {
  amlc::test::TempDir tmp;
  auto path = tmp / "journal.jsonl";
  SweepConfig cfg = small_config();
  {
    Journal j(path);
    j.sweep_started(cfg, 11);
    j.trial_created(0, json{{"x", 0.5}, {"k", 1}});
    j.trial_started(0);
  }
  append_raw(path, R"({"event": "trial_finished", "index": 0, "stat)");
  bool torn = false;
  auto recs = read_journal(path, &torn);
  CHECK(torn);
  CHECK(recs.size() == 3);
  SweepState st = replay(path);
  CHECK(st.torn_tail);
  CHECK(st.trials[0].status == TrialStatus::Running);
  // a complete-looking last line without its newline is also torn
  {
    Journal j(path);  // cuts the torn tail
    CHECK(amlc::read_file(path).back() == '\n');
    j.trial_finished(0, TrialStatus::Completed, 0.9);
  }
  st = replay(path);
  CHECK_FALSE(st.torn_tail);
  CHECK(st.trials[0].status == TrialStatus::Completed);
  // an unparsable line in the middle is damage
  append_raw(path, "garbage\n");
  append_raw(path, R"({"event": "sweep_finished", "status": "Completed"})" "\n");
  try {
    replay(path);
    FAIL("expected damage");
  } catch (const amlc::Error& e) {
    CHECK(e.kind() == amlc::ErrorKind::Damaged);
    CHECK(std::string(e.what()) == path.string() + ":5: not a journal record");
  }
}

TEST_CASE("journal: duplicate records never count a trial twice") {
  std::vector<json> recs{
      {{"event", "sweep_started"}, {"config", small_config().to_json()}, {"seed", 11}},
      {{"event", "sweep_started"}, {"config", small_config().to_json()}, {"seed", 11}},
      {{"event", "trial_created"}, {"index", 0}, {"params", {{"x", 0.1}, {"k", 2}}}},
      {{"event", "trial_created"}, {"index", 0}, {"params", {{"x", 0.1}, {"k", 2}}}},
      {{"event", "trial_started"}, {"index", 0}},
      {{"event", "trial_started"}, {"index", 0}},
      {{"event", "trial_metric"}, {"index", 0}, {"interval", 1}, {"value", 0.3}},
      {{"event", "trial_metric"}, {"index", 0}, {"interval", 1}, {"value", 0.3}},
      {{"event", "trial_finished"}, {"index", 0}, {"status", "Failed"}, {"best", 0.3}},
      {{"event", "trial_finished"}, {"index", 0}, {"status", "Failed"}, {"best", 0.3}},
      {{"event", "trial_finished"}, {"index", 0}, {"status", "Completed"}, {"best", 0.3}},
  };
  SweepState st = replay(recs);
  REQUIRE(st.created() == 1);
  CHECK(st.trials[0].metrics == std::vector<double>{0.3});
  CHECK(st.trials[0].starts == 1);
  CHECK(st.count(TrialStatus::Failed) == 1);
  CHECK(st.count(TrialStatus::Completed) == 0);
  CHECK(st.ignored == 6);
  // same index with other params is damage; so is a gap
  recs.push_back({{"event", "trial_created"}, {"index", 0}, {"params", {{"x", 0.2}, {"k", 2}}}});
  CHECK_THROWS_AS(replay(recs), amlc::Error);
  std::vector<json> gap{{{"event", "trial_created"}, {"index", 1}, {"params", json::object()}}};
  CHECK_THROWS_WITH(replay(gap, "j"), "j: trial 1 created before trial 0");
}

TEST_CASE("journal: resume re-queues interrupted trials with the same params and feeds values to the sampler") {
  amlc::test::TempDir tmp;
  auto path = tmp / "journal.jsonl";
  SweepConfig cfg = small_config();
  std::vector<json> params;
  {
    Journal j(path);
    j.sweep_started(cfg, 11);
    auto sampler = make_sampler(cfg, 11);
    params = sampler->suggest(2, {});
    j.trial_created(0, params[0]);
    j.trial_created(1, params[1]);
    j.trial_started(0);
    j.trial_started(1);
    j.trial_metric(0, 1, 0.4);
    j.trial_finished(0, TrialStatus::Completed, 0.4);
    j.trial_metric(1, 1, 0.2);
    // crash here: trial 1 was running
  }
  SweepState st = replay(path);
  SweepConfig back = SweepConfig::from_json(st.config);
  auto sampler = make_sampler(back, st.seed);
  CHECK(st.active() == 1);
  auto requeued = st.requeue_interrupted();
  CHECK(requeued == std::vector<int>{1});
  CHECK(st.trials[1].params == params[1]);
  CHECK(st.trials[1].metrics.empty());
  CHECK(st.queued() == std::vector<int>{1});
  // the queued trial starts again; new trials may still be created (2 of 6 so far, no failure)
  CHECK(st.may_create(back, *sampler, st.history(back.goal)));
  CHECK_FALSE(st.failures_reached(back));
  auto h = st.history(back.goal);
  CHECK(*h[0].value == 0.4);
  CHECK(h[1].status == TrialStatus::Queued);
  // the sampler proposes trial 2 exactly as the uninterrupted sweep would
  auto next = sampler->suggest(1, h);
  CHECK(next[0] == RandomSampler(cfg, 11).suggest(3, {})[2]);
  Journal j(path);
  j.sweep_resumed(requeued);
  j.trial_started(1);
  j.trial_metric(1, 1, 0.6);
  j.trial_finished(1, TrialStatus::Completed, 0.6);
  SweepState after = replay(path);
  CHECK(after.trials[1].starts == 2);
  CHECK(after.trials[1].metrics == std::vector<double>{0.6});
  CHECK(after.count(TrialStatus::Completed) == 2);
  CHECK(after.may_create(back, *sampler, after.history(back.goal)));  // 4 more runs allowed
}

TEST_CASE("journal: max_failures stops creating and starting trials") {
  SweepConfig cfg = small_config();  // max_failures default = min(6, max(3, 1)) = 3
  CHECK(cfg.max_failures == 3);
  SweepState st;
  for (int i = 0; i < 3; ++i) {
    TrialRecord t;
    t.index = i;
    t.status = TrialStatus::Failed;
    st.trials.push_back(t);
  }
  TrialRecord q;
  q.index = 3;
  st.trials.push_back(q);
  CHECK(st.failures_reached(cfg));  // the scheduler starts and creates nothing more
  st.trials.pop_back();
  st.trials.pop_back();
  CHECK_FALSE(st.failures_reached(cfg));
}

TEST_CASE("journal: no new trial once max_total_runs trials exist or the grid is exhausted") {
  SweepConfig cfg = parse_config_text("parameters:\n  k: choice(1, 2, 3)\nsampling: grid\nprimary_metric: {name: acc, goal: maximize}\n"
                                      "max_total_runs: 2\n", "g.yml");
  auto sampler = make_sampler(cfg, 1);
  SweepState st;
  CHECK(st.may_create(cfg, *sampler, st.history(cfg.goal)));
  for (int i = 0; i < 2; ++i) {
    TrialRecord t;
    t.index = i;
    t.params = json{{"k", i + 1}};
    t.status = TrialStatus::Completed;
    st.trials.push_back(t);
  }
  CHECK_FALSE(st.may_create(cfg, *sampler, st.history(cfg.goal)));  // max_total_runs
  cfg.max_total_runs = 10;  // the grid has 3 points
  auto grid = make_sampler(cfg, 1);
  CHECK(st.may_create(cfg, *grid, st.history(cfg.goal)));
  TrialRecord third;
  third.index = 2;
  third.params = json{{"k", 3}};
  st.trials.push_back(third);
  CHECK_FALSE(st.may_create(cfg, *grid, st.history(cfg.goal)));
}

TEST_CASE("journal: a batched journal writes what it holds at flush, in order, with the records' extra fields") {
  amlc::test::TempDir tmp;
  auto path = tmp / "journal.jsonl";
  SweepConfig cfg = small_config();
  Journal j(path, true);
  j.sweep_started(cfg, 11);
  j.trial_created(0, json{{"x", 0.5}, {"k", 1}});
  j.trial_started(0, "e_sweep_1_0", 1);
  CHECK(j.has_pending());
  CHECK_FALSE(std::filesystem::exists(path));  // nothing written before flush()
  j.flush();
  CHECK_FALSE(j.has_pending());
  j.trial_metric(0, 1, std::nan(""));
  Decision d{0, 1, "median_stopping", json{{"median", 0.3}}, "below the median"};
  j.trial_canceled(0, d, "e_sweep_1_0");
  j.trial_finished(0, TrialStatus::Canceled, std::nullopt, "");
  j.trial_created(1, json{{"x", 0.1}, {"k", 2}});
  j.trial_finished(1, TrialStatus::Failed, std::nullopt, "cannot create the run");
  CHECK(read_journal(path).size() == 3);  // the rest waits for flush()
  j.flush();
  auto recs = read_journal(path);
  REQUIRE(recs.size() == 8);
  CHECK(recs[2]["runId"] == "e_sweep_1_0");
  CHECK(recs[2]["attempt"] == 1);
  CHECK(recs[3]["value"].is_null());
  CHECK(recs[4]["runId"] == "e_sweep_1_0");
  CHECK_FALSE(recs[5].contains("error"));
  CHECK(recs[7]["error"] == "cannot create the run");
  for (const auto& r : recs) CHECK(r.contains("time"));
  SweepState st = replay(recs);
  CHECK(st.trials[0].status == TrialStatus::Canceled);
  CHECK(st.trials[0].metrics.size() == 1);
  CHECK(st.trials[1].status == TrialStatus::Failed);
  // Unbatched: each record is on disk when its writer returns.
  Journal now(path);
  now.sweep_finished("Canceled");
  CHECK_FALSE(now.has_pending());
  CHECK(replay(path).finished);
}

TEST_CASE("journal: replay keeps each trial's latest run and why a trial failed before its run existed") {
  amlc::test::TempDir tmp;
  auto path = tmp / "journal.jsonl";
  SweepConfig cfg = small_config();
  Journal j(path);
  start_with_trials(j, cfg, 3);
  j.trial_started(0, "s_0", 1);
  j.sweep_resumed({0});            // its process died: re-queued
  j.trial_started(0, "s_0_r1", 2);  // the second attempt
  j.trial_started(1, "s_1", 1);
  j.trial_finished(1, TrialStatus::Failed, std::nullopt, "source directory vanished");
  j.trial_finished(1, TrialStatus::Failed, std::nullopt, "a duplicate");  // ignored

  SweepState st = replay(path);
  CHECK(st.trials[0].run_id == "s_0_r1");
  CHECK(st.trials[0].starts == 2);
  CHECK(st.trials[0].error.empty());
  CHECK(st.trials[1].run_id == "s_1");
  CHECK(st.trials[1].status == TrialStatus::Failed);
  CHECK(st.trials[1].error == "source directory vanished");
  CHECK(st.trials[2].run_id.empty());
  CHECK(st.trials[2].status == TrialStatus::Queued);
  // value(): the recorded best, else the best of the series.
  st.trials[2].metrics = {0.2, 0.4};
  CHECK(*st.trials[2].value(Goal::Maximize) == 0.4);
  CHECK(*st.trials[2].value(Goal::Minimize) == 0.2);
  st.trials[2].best = 0.9;
  CHECK(*st.trials[2].value(Goal::Minimize) == 0.9);
}
