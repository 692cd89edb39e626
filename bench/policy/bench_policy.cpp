// Early-termination benchmark: synthetic learning curves acc(t) = a - b*exp(-c*t) + noise for N configs,
// T intervals each, run as a sweep with K concurrent trials; every tick each running trial reports one value
// and the policy is consulted (amlc::sweep::decide), exactly as a scheduler would. Reports the compute
// saved (intervals not run) and the best metric found versus the same sweep without a policy.
//   amlc_bench_policy [--configs 50] [--intervals 30] [--concurrency 10] [--seeds 10]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "amlc/sweep/policy.hpp"
#include "amlc/sweep/sampler.hpp"

using namespace amlc::sweep;

namespace {

struct Curve {
  std::vector<double> values;  // the full curve (what the run would report if never canceled)
};

std::vector<Curve> make_curves(int n, int t_max, std::uint64_t seed) {
  std::vector<Curve> out;
  for (int i = 0; i < n; ++i) {
    auto rng = trial_rng(seed, i, 9);
    double a = 0.60 + 0.35 * uniform01(rng);  // final accuracy
    double b = 0.30 + 0.30 * uniform01(rng);  // initial gap
    double c = 0.05 + 0.25 * uniform01(rng);  // learning speed
    Curve cv;
    for (int t = 1; t <= t_max; ++t) cv.values.push_back(a - b * std::exp(-c * t) + 0.005 * standard_normal(rng));
    out.push_back(std::move(cv));
  }
  return out;
}

struct Outcome {
  long long intervals = 0;
  double best = -INFINITY;
  int canceled = 0;
};

Outcome simulate(const std::vector<Curve>& curves, int t_max, int concurrency, const PolicyConfig& policy) {
  int n = static_cast<int>(curves.size());
  std::vector<RunSeries> runs;
  int next = 0;
  Outcome o;
  auto running_count = [&]() {
    int c = 0;
    for (const auto& r : runs) c += r.running ? 1 : 0;
    return c;
  };
  while (next < n || running_count() > 0) {
    while (next < n && running_count() < concurrency) runs.push_back({next++, {}, true});
    for (auto& r : runs) {  // one tick: every running trial reports its next interval
      if (!r.running) continue;
      r.values.push_back(curves[static_cast<size_t>(r.run)].values[r.values.size()]);
      ++o.intervals;
      if (static_cast<int>(r.values.size()) == t_max) r.running = false;
    }
    for (const auto& d : decide(policy, runs, Goal::Maximize)) {
      for (auto& r : runs)
        if (r.run == d.run && r.running) {
          r.running = false;
          ++o.canceled;
        }
    }
  }
  for (const auto& r : runs) o.best = std::max(o.best, best_value(r.values, Goal::Maximize).value_or(-INFINITY));
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  int configs = 50, t_max = 30, concurrency = 10, seeds = 10;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--configs")) configs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--intervals")) t_max = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--concurrency")) concurrency = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--seeds")) seeds = std::atoi(argv[++i]);
  }
  struct Named {
    std::string name;
    PolicyConfig p;
  };
  std::vector<Named> policies;
  {
    PolicyConfig m;
    m.type = PolicyType::MedianStopping;
    m.evaluation_interval = 1;
    m.delay_evaluation = 5;
    policies.push_back({"median_stopping(interval=1,delay=5)", m});
    PolicyConfig b;
    b.type = PolicyType::Bandit;
    b.slack_factor = 0.1;
    b.evaluation_interval = 1;
    b.delay_evaluation = 5;
    policies.push_back({"bandit(slack_factor=0.1,interval=1,delay=5)", b});
    PolicyConfig t;
    t.type = PolicyType::TruncationSelection;
    t.truncation_percentage = 20;
    t.evaluation_interval = 1;
    t.delay_evaluation = 5;
    policies.push_back({"truncation(20%,interval=1,delay=5)", t});
  }
  for (const auto& pol : policies) {
    double saved_sum = 0, worst_gap = 0, gap_sum = 0, saved_min = 1;
    int canceled = 0;
    for (int s = 0; s < seeds; ++s) {
      auto curves = make_curves(configs, t_max, static_cast<std::uint64_t>(s));
      Outcome base = simulate(curves, t_max, concurrency, PolicyConfig{});
      Outcome with = simulate(curves, t_max, concurrency, pol.p);
      double saved = 1.0 - static_cast<double>(with.intervals) / static_cast<double>(base.intervals);
      double gap = (base.best - with.best) / std::fabs(base.best);  // relative loss of the best metric
      saved_sum += saved;
      saved_min = std::min(saved_min, saved);
      gap_sum += gap;
      worst_gap = std::max(worst_gap, gap);
      canceled += with.canceled;
    }
    std::printf("{\"policy\": \"%s\", \"configs\": %d, \"intervals\": %d, \"concurrency\": %d, \"seeds\": %d, "
                "\"mean_compute_saved\": %.4f, \"min_compute_saved\": %.4f, \"mean_best_loss\": %.5f, \"worst_best_loss\": %.5f, "
                "\"mean_canceled\": %.1f}\n",
                pol.name.c_str(), configs, t_max, concurrency, seeds, saved_sum / seeds, saved_min, gap_sum / seeds, worst_gap,
                static_cast<double>(canceled) / seeds);
  }
  return 0;
}
