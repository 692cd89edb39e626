// Early-termination policies against hand-computed metric traces.
#include <doctest/doctest.h>

#include <cmath>

#include "amlc/sweep/policy.hpp"

using namespace amlc::sweep;

namespace {

PolicyConfig bandit(std::optional<double> factor, std::optional<double> amount, int interval = 1, int delay = 0) {
  PolicyConfig p;
  p.type = PolicyType::Bandit;
  p.slack_factor = factor;
  p.slack_amount = amount;
  p.evaluation_interval = interval;
  p.delay_evaluation = delay;
  return p;
}
PolicyConfig median(int interval, int delay) {
  PolicyConfig p;
  p.type = PolicyType::MedianStopping;
  p.evaluation_interval = interval;
  p.delay_evaluation = delay;
  return p;
}
PolicyConfig truncation(int pct, bool exclude = false, int interval = 1, int delay = 0) {
  PolicyConfig p;
  p.type = PolicyType::TruncationSelection;
  p.truncation_percentage = pct;
  p.exclude_finished_jobs = exclude;
  p.evaluation_interval = interval;
  p.delay_evaluation = delay;
  return p;
}
std::vector<int> canceled(const std::vector<Decision>& ds) {
  std::vector<int> out;
  for (const auto& d : ds) out.push_back(d.run);
  return out;
}
std::vector<double> neg(std::vector<double> v) {
  for (double& x : v) x = -x;
  return v;
}

}  // namespace

TEST_CASE("policy: evaluation points honour evaluation_interval and delay_evaluation") {
  PolicyConfig p = median(2, 5);
  CHECK(evaluation_point(p, 0) == 0);
  CHECK(evaluation_point(p, 4) == 0);
  CHECK(evaluation_point(p, 5) == 0);  // 4 < delay 5
  CHECK(evaluation_point(p, 6) == 6);
  CHECK(evaluation_point(p, 7) == 6);  // several reports since the last call: latest evaluation point
  CHECK(evaluation_point(median(1, 0), 1) == 1);
  CHECK(evaluation_point(median(3, 0), 2) == 0);
  CHECK(evaluation_point(PolicyConfig{}, 10) == 0);  // NoTerminationPolicy
  CHECK(decide(PolicyConfig{}, {{0, {0.1}, true}, {1, {0.9}, true}}, Goal::Maximize).empty());
}

TEST_CASE("policy: Bandit slack_factor, maximize (docs example: best 0.8, slack 0.2 -> cutoff 0.667)") {
  std::vector<RunSeries> runs{{0, {0.5, 0.8}, true}, {1, {0.4, 0.6}, true}, {2, {0.45, 0.7}, true}, {3, {0.1}, true}};
  auto ds = decide(bandit(0.2, std::nullopt), runs, Goal::Maximize);
  REQUIRE(canceled(ds) == std::vector<int>{1, 3});
  CHECK(ds[0].interval == 2);
  CHECK(ds[0].rule == "bandit_slack_factor");
  CHECK(ds[0].numbers["best"] == 0.8);
  CHECK(ds[0].numbers["bestRun"] == 0);
  CHECK(ds[0].numbers["value"] == 0.6);
  CHECK(ds[0].numbers["cutoff"].get<double>() == doctest::Approx(0.8 / 1.2));
  CHECK(ds[1].interval == 1);  // run 3 compared at interval 1 with the best at interval 1 (0.5)
  CHECK(ds[1].numbers["cutoff"].get<double>() == doctest::Approx(0.5 / 1.2));
  CHECK(ds[0].reason.find("0.666667") != std::string::npos);
  // evaluation_interval 2: run 3 (1 report) is not evaluated yet
  CHECK(canceled(decide(bandit(0.2, std::nullopt, 2), runs, Goal::Maximize)) == std::vector<int>{1});
  // delay_evaluation 3: nobody reached an evaluation point
  CHECK(decide(bandit(0.2, std::nullopt, 1, 3), runs, Goal::Maximize).empty());
  // a finished best run still sets the bar, and is never canceled itself
  runs[0].running = false;
  runs[1].values = {0.9, 0.6};
  runs[1].running = false;
  CHECK(canceled(decide(bandit(0.2, std::nullopt), runs, Goal::Maximize)) == std::vector<int>{3});
}

TEST_CASE("policy: Bandit minimize with slack_amount and slack_factor, negative metrics") {
  std::vector<RunSeries> runs{{0, {1.0, 0.5}, true}, {1, {1.2, 0.7}, true}, {2, {1.1, 0.55}, true}};
  auto ds = decide(bandit(std::nullopt, 0.1), runs, Goal::Minimize);
  REQUIRE(canceled(ds) == std::vector<int>{1});
  CHECK(ds[0].rule == "bandit_slack_amount");
  CHECK(ds[0].numbers["cutoff"].get<double>() == doctest::Approx(0.6));
  CHECK(ds[0].numbers["best"] == 0.5);
  auto df = decide(bandit(0.2, std::nullopt), runs, Goal::Minimize);
  REQUIRE(canceled(df) == std::vector<int>{1});
  CHECK(df[0].numbers["cutoff"].get<double>() == doctest::Approx(0.6));
  // maximize with slack_amount
  std::vector<RunSeries> acc{{0, {0.9}, true}, {1, {0.84}, true}, {2, {0.86}, true}};
  CHECK(canceled(decide(bandit(std::nullopt, 0.05), acc, Goal::Maximize)) == std::vector<int>{1});
  // negative metric, maximize: cutoff stays below best (best * 1.2 = -1.2)
  std::vector<RunSeries> negs{{0, {-1.0}, true}, {1, {-1.1}, true}, {2, {-1.3}, true}};
  auto dn = decide(bandit(0.2, std::nullopt), negs, Goal::Maximize);
  REQUIRE(canceled(dn) == std::vector<int>{2});
  CHECK(dn[0].numbers["cutoff"].get<double>() == doctest::Approx(-1.2));
}

TEST_CASE("policy: median stopping compares best-so-far with the median of running averages") {
  // averages over 1..3: r0 0.4, r1 0.2, r2 0.4333 -> median 0.4; r1's best 0.3 < 0.4
  // averages over 1..2: r0 0.3, r1 0.15, r2 0.4, r3 0.075 -> median 0.225; r3's best 0.1 < 0.225
  std::vector<RunSeries> runs{{0, {0.2, 0.4, 0.6}, true}, {1, {0.1, 0.2, 0.3}, true}, {2, {0.3, 0.5, 0.5}, false}, {3, {0.05, 0.1}, true}};
  auto ds = decide(median(1, 2), runs, Goal::Maximize);
  REQUIRE(canceled(ds) == std::vector<int>{1, 3});
  CHECK(ds[0].interval == 3);
  CHECK(ds[0].rule == "median_stopping");
  CHECK(ds[0].numbers["median"].get<double>() == doctest::Approx(0.4));
  CHECK(ds[0].numbers["best"] == 0.3);
  CHECK(ds[0].numbers["count"] == 3);
  CHECK(ds[1].interval == 2);
  CHECK(ds[1].numbers["median"].get<double>() == doctest::Approx(0.225));
  CHECK(ds[1].numbers["count"] == 4);
  // delay 3: run 3 is too young
  CHECK(canceled(decide(median(1, 3), runs, Goal::Maximize)) == std::vector<int>{1});
  // interval 2 with delay 0: everyone is evaluated at interval 2 (r0, r1 have 3 values -> E = 2)
  // at E=2: median 0.225; r0 best 0.4 ok, r1 best 0.2 < 0.225 cancel, r3 0.1 cancel
  CHECK(canceled(decide(median(2, 0), runs, Goal::Maximize)) == std::vector<int>{1, 3});
  // minimize: the mirror image
  std::vector<RunSeries> loss;
  for (const auto& r : runs) loss.push_back({r.run, neg(r.values), r.running});
  auto dl = decide(median(1, 2), loss, Goal::Minimize);
  REQUIRE(canceled(dl) == std::vector<int>{1, 3});
  CHECK(dl[0].numbers["median"].get<double>() == doctest::Approx(-0.4));
  CHECK(dl[0].numbers["best"] == -0.3);
}

TEST_CASE("policy: truncation selection cuts the bottom percentage at the same interval") {
  std::vector<RunSeries> runs{{0, {0.1, 0.9}, true}, {1, {0.2, 0.5}, true}, {2, {0.3, 0.7}, true}, {3, {0.2, 0.6}, true}, {4, {0.0}, true}};
  // at interval 2: 4 runs, 50% -> 2 cut: 0.5 (r1), 0.6 (r3). r4 is compared at interval 1 with 5 runs: k=2, values
  // 0.1 0.2 0.3 0.2 0.0 -> r4 (0.0) is the worst -> cut.
  auto ds = decide(truncation(50), runs, Goal::Maximize);
  REQUIRE(canceled(ds) == std::vector<int>{1, 3, 4});
  CHECK(ds[0].rule == "truncation_selection");
  CHECK(ds[0].numbers["count"] == 4);
  CHECK(ds[0].numbers["truncated"] == 2);
  CHECK(ds[0].numbers["cutoff"] == 0.6);
  // 30%: floor(4*0.3) = 1 at interval 2; floor(5*0.3) = 1 at interval 1
  CHECK(canceled(decide(truncation(30), runs, Goal::Maximize)) == std::vector<int>{1, 4});
  // 20% of 4 = 0 at interval 2; only run 4 (5 runs at interval 1 -> 1)
  CHECK(canceled(decide(truncation(20), runs, Goal::Maximize)) == std::vector<int>{4});
  // exclude_finished_jobs: run 0 finished -> interval 2 has 3 runs, k = 1 -> r1 only; r4: 4 runs at 1, k=2, r4 worst
  runs[0].running = false;
  CHECK(canceled(decide(truncation(50, true), runs, Goal::Maximize)) == std::vector<int>{1, 4});
  CHECK(canceled(decide(truncation(50, false), runs, Goal::Maximize)) == std::vector<int>{1, 3, 4});
  // ties at the boundary are kept: 25% of 4 = 1, two runs share the worst value
  std::vector<RunSeries> ties{{0, {0.9}, true}, {1, {0.5}, true}, {2, {0.5}, true}, {3, {0.7}, true}};
  CHECK(decide(truncation(25), ties, Goal::Maximize).empty());
  // minimize: the largest loss goes
  std::vector<RunSeries> loss{{0, {0.9}, true}, {1, {0.5}, true}, {2, {0.4}, true}, {3, {0.7}, true}};
  CHECK(canceled(decide(truncation(25), loss, Goal::Minimize)) == std::vector<int>{0});
  // delay/interval
  CHECK(decide(truncation(50, false, 1, 3), runs, Goal::Maximize).empty());
}

TEST_CASE("policy: a non-finite metric cancels the run - best_value follows the goal") {
  std::vector<RunSeries> runs{{0, {0.5, NAN}, true}, {1, {0.4, 0.6}, true}};
  auto ds = decide(median(1, 0), runs, Goal::Maximize);
  REQUIRE(canceled(ds) == std::vector<int>{0});
  CHECK(ds[0].rule == "nan");
  CHECK(*best_value({0.3, NAN, 0.7, 0.5}, Goal::Maximize) == 0.7);
  CHECK(*best_value({0.3, NAN, 0.7, 0.5}, Goal::Minimize) == 0.3);
  CHECK_FALSE(best_value({}, Goal::Minimize));
  json j = ds[0].to_json();
  CHECK(j["run"] == 0);
  CHECK(j["interval"] == 2);
}
