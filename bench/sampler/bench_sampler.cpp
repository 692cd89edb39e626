// Sampler quality benchmark: median best regret after N sequential trials over S seeds, for amlc's random
// and bayesian (TPE) samplers on Branin, Hartmann-6 and a 2-D quadratic. Prints one JSON line per
// (function, sampler) with the median, the per-seed regrets and the wall time.
//   amlc_bench_sampler [--trials 100] [--seeds 20] [--variants]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "amlc/sweep/config.hpp"
#include "amlc/sweep/sampler.hpp"
#include "amlc/sweep/sampler_tpe.hpp"

using namespace amlc::sweep;

namespace {

struct Problem {
  std::string name;
  std::string yaml_params;  // native parameters block
  double optimum;
  std::function<double(const json&)> f;
};

double branin(double x1, double x2) {
  const double a = 1, b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, r = 6, s = 10, t = 1 / (8 * M_PI);
  return a * std::pow(x2 - b * x1 * x1 + c * x1 - r, 2) + s * (1 - t) * std::cos(x1) + s;
}

double hartmann6(const double* x) {
  static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
  static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991},
                                 {2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}};
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double in = 0;
    for (int j = 0; j < 6; ++j) in += A[i][j] * std::pow(x[j] - P[i][j] * 1e-4, 2);
    sum += alpha[i] * std::exp(-in);
  }
  return -sum;
}

std::vector<Problem> problems() {
  return {
      {"branin", "  x1: uniform(-5, 10)\n  x2: uniform(0, 15)\n", 0.397887,
       [](const json& p) { return branin(p["x1"].get<double>(), p["x2"].get<double>()); }},
      {"hartmann6", "  x0: uniform(0, 1)\n  x1: uniform(0, 1)\n  x2: uniform(0, 1)\n  x3: uniform(0, 1)\n  x4: uniform(0, 1)\n  x5: uniform(0, 1)\n",
       -3.32237,
       [](const json& p) {
         double x[6];
         for (int j = 0; j < 6; ++j) x[j] = p["x" + std::to_string(j)].get<double>();
         return hartmann6(x);
       }},
      {"quadratic", "  x1: uniform(-10, 10)\n  x2: uniform(-10, 10)\n", 0.0,
       [](const json& p) { return std::pow(p["x1"].get<double>() - 1, 2) + std::pow(p["x2"].get<double>() - 2, 2); }},
  };
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  int trials = 100, seeds = 20;
  bool variants = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--trials") && i + 1 < argc) trials = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--seeds") && i + 1 < argc) seeds = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--variants")) variants = true;
  }
  for (const auto& prob : problems()) {
    struct Variant {
      std::string name;
      std::string sampling;
      TpeOptions opt;
    };
    std::vector<Variant> vs{{"amlc_random", "random", {}}, {"amlc_bayesian", "bayesian", {}}};
    if (variants) {
      vs.push_back({"amlc_tpe", "tpe", {}});
      TpeOptions uni;
      uni.multivariate = false;
      vs.push_back({"amlc_tpe_univariate", "tpe", uni});
    }
    for (const auto& v : vs) {
      std::string yaml = "parameters:\n" + prob.yaml_params + "sampling: " + (v.sampling == "tpe" ? std::string("bayesian") : v.sampling) +
                         "\nprimary_metric: {name: f, goal: minimize}\nmax_total_runs: " + std::to_string(trials) + "\nmax_concurrent_runs: 1\n";
      SweepConfig cfg = parse_config_text(yaml, prob.name + ".yml");
      std::vector<double> regrets;
      auto t0 = std::chrono::steady_clock::now();
      for (int s = 0; s < seeds; ++s) {
        std::unique_ptr<Sampler> sampler;
        if (v.sampling == "tpe") sampler = std::make_unique<TpeSampler>(cfg, static_cast<std::uint64_t>(s), v.opt);
        else sampler = make_sampler(cfg, static_cast<std::uint64_t>(s));
        History h;
        double best = INFINITY;
        for (int t = 0; t < trials; ++t) {
          json p = sampler->suggest(1, h).at(0);
          double y = prob.f(p);
          best = std::min(best, y);
          h.push_back({t, p, y, TrialStatus::Completed});
        }
        regrets.push_back(best - prob.optimum);
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("{\"function\": \"%s\", \"sampler\": \"%s\", \"median_regret\": %.6g, \"seconds\": %.3f, \"regrets\": [", prob.name.c_str(),
                  v.name.c_str(), median(regrets), secs);
      for (size_t i = 0; i < regrets.size(); ++i) std::printf("%s%.6g", i ? ", " : "", regrets[i]);
      std::printf("]}\n");
      std::fflush(stdout);
    }
  }
  return 0;
}
