// TpeSampler: amlc's earlier model-based sampler. "bayesian" sampling uses GpSampler (sampler.hpp), which the
// benchmarks in bench/sampler show ahead of it; no sweep uses this one. It stays as the reference point of
// `bench/sampler/run.sh --variants` (amlc_tpe, amlc_tpe_univariate) and keeps its unit tests
// (tests/unit/sweep_sampler_test.cpp).
//
// Tree-structured Parzen Estimator (Bergstra et al. 2011) with Optuna's defaults: n_startup_trials = 10 random trials (counted as trials with a value), gamma(n) =
// min(ceil(0.1 n), 25), weights: 1 for the `below` group, Optuna's ramp (linspace(1/n, 1, n-25) then 25
// ones, oldest first) for `above`, a prior component (mean = middle of the range, sigma = range) with
// weight 1.0, magic clipping of bandwidths to [range/min(100, 1+k), range], 24 EI candidates drawn from
// l(x), the one maximising log l(x) - log g(x) wins. By default the estimator is multivariate (one
// kernel per observation over all parameters, Scott-style bandwidth 0.2 k^(-1/(d+4)) x range, as
// Optuna's multivariate TPE), which models interactions that the univariate form ignores.
// Dimensions: uniform and quniform are continuous on [lo, hi] (quniform rounded on output);
// loguniform/qloguniform are continuous on their log range [lo, hi] (exp on output, i.e. log scale);
// randint is an integer dimension (kernel mass of the +-0.5 bin); choice is categorical (each observation
// contributes a categorical kernel: weight 1 on its option plus prior_weight/n_options everywhere).
// Concurrency: the constant liar: running and queued trials, and the ones proposed earlier in the same
// suggest() call, count as observations with the worst value seen so far, so parallel proposals spread.
// The goal is respected by minimising -value when maximising.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "amlc/sweep/sampler.hpp"

namespace amlc::sweep {

struct TpeOptions {
  int n_startup_trials = 10;
  int n_ei_candidates = 24;
  double prior_weight = 1.0;
  bool multivariate = true;
  bool constant_liar = true;
};

class TpeSampler : public Sampler {
 public:
  TpeSampler(SweepConfig cfg, std::uint64_t seed, TpeOptions opt = {});
  std::vector<json> suggest(int n, const History& history) override;

  // Internal coordinates (what the estimator models) <-> parameter values. Exposed for tests.
  std::vector<double> to_internal(const json& params) const { return space_.to_internal(params); }
  json from_internal(const std::vector<double>& x) const { return space_.from_internal(x); }

 private:
  json propose(int index, const History& history, const std::vector<std::pair<std::vector<double>, double>>& liars);

  SweepConfig cfg_;
  std::uint64_t seed_;
  TpeOptions opt_;
  SearchSpace space_;
  std::vector<SearchSpace::Dim> dims_;
};

}  // namespace amlc::sweep
