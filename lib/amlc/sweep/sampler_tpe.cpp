// TpeSampler (sampler_tpe.hpp): the Tree-structured Parzen Estimator, amlc's earlier model-based sampler.
#include "amlc/sweep/sampler_tpe.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace amlc::sweep {

namespace {

constexpr double kLogSqrt2Pi = 0.91893853320467274;

double log_sum_exp(const std::vector<double>& v) {
  double m = -std::numeric_limits<double>::infinity();
  for (double x : v) m = std::max(m, x);
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

}  // namespace

TpeSampler::TpeSampler(SweepConfig cfg, std::uint64_t seed, TpeOptions opt)
    : cfg_(std::move(cfg)), seed_(seed), opt_(opt), space_(cfg_), dims_(space_.dims()) {}

namespace {

// A Parzen estimator over the internal space: mixture of product kernels (one per observation + prior).
struct Parzen {
  struct Numeric {
    std::vector<double> mu, sigma;
    double lo = 0, hi = 1, step = 0;  // lo/hi already widened by step/2 for integer dims
    std::vector<double> log_norm;     // log Z per component (truncation mass)
  };
  std::vector<double> log_w;                           // per component
  std::vector<double> w;                               // per component (normalised)
  std::vector<bool> categorical;
  std::vector<Numeric> num;                            // per dim (unused for categorical)
  std::vector<std::vector<std::vector<double>>> cat;   // per dim: per component: log prob per choice

  double log_kernel(size_t j, size_t c, double x) const {
    if (categorical[j]) return cat[j][c][static_cast<size_t>(x)];
    const Numeric& n = num[j];
    double m = n.mu[c], s = n.sigma[c];
    if (n.step > 0) {
      double p = normal_cdf((x + n.step / 2 - m) / s) - normal_cdf((x - n.step / 2 - m) / s);
      return std::log(std::max(p, 1e-300)) - n.log_norm[c];
    }
    double z = (x - m) / s;
    return -0.5 * z * z - kLogSqrt2Pi - std::log(s) - n.log_norm[c];
  }
};

Parzen build_parzen(const std::vector<std::vector<double>>& obs, const std::vector<double>& weights,
                    const std::vector<bool>& categorical, const std::vector<int>& n_choices, const std::vector<double>& lows,
                    const std::vector<double>& highs, const std::vector<double>& steps, double prior_weight, bool multivariate) {
  Parzen pz;
  size_t k = obs.size(), d = categorical.size();
  pz.categorical = categorical;
  pz.w = weights;
  pz.w.push_back(prior_weight);
  double total = std::accumulate(pz.w.begin(), pz.w.end(), 0.0);
  for (double& x : pz.w) x /= total;
  for (double x : pz.w) pz.log_w.push_back(std::log(std::max(x, 1e-300)));
  pz.num.resize(d);
  pz.cat.resize(d);
  for (size_t j = 0; j < d; ++j) {
    if (categorical[j]) {
      int n = n_choices[j];
      pz.cat[j].resize(k + 1);
      for (size_t c = 0; c <= k; ++c) {
        std::vector<double> row(static_cast<size_t>(n), prior_weight / n);
        if (c < k) row[static_cast<size_t>(obs[c][j])] += 1.0;
        double s = std::accumulate(row.begin(), row.end(), 0.0);
        for (double& r : row) r = std::log(r / s);
        pz.cat[j][c] = row;
      }
      continue;
    }
    Parzen::Numeric& nm = pz.num[j];
    nm.step = steps[j];
    nm.lo = lows[j] - steps[j] / 2;
    nm.hi = highs[j] + steps[j] / 2;
    double range = nm.hi - nm.lo;
    if (range <= 0) range = 1;
    double prior_mu = 0.5 * (nm.lo + nm.hi);
    std::vector<double> mus;
    for (size_t c = 0; c < k; ++c) mus.push_back(obs[c][j]);
    std::vector<double> sig(k);
    if (multivariate) {
      double s = 0.2 * std::pow(std::max<double>(static_cast<double>(k), 1.0), -1.0 / (static_cast<double>(d) + 4)) * range;
      std::fill(sig.begin(), sig.end(), s);
    } else {
      std::vector<double> with_prior = mus;
      with_prior.push_back(prior_mu);
      std::vector<size_t> order(with_prior.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return with_prior[a] < with_prior[b]; });
      std::vector<double> ends{nm.lo};
      for (size_t i : order) ends.push_back(with_prior[i]);
      ends.push_back(nm.hi);
      size_t m = with_prior.size();
      std::vector<double> sorted_sig(m);
      for (size_t i = 0; i < m; ++i) sorted_sig[i] = std::max(ends[i + 1] - ends[i], ends[i + 2] - ends[i + 1]);
      if (ends.size() >= 4) {  // consider_endpoints=False
        sorted_sig[0] = ends[2] - ends[1];
        sorted_sig[m - 1] = ends[m] - ends[m - 1];
      }
      std::vector<double> all(m);
      for (size_t i = 0; i < m; ++i) all[order[i]] = sorted_sig[i];
      for (size_t c = 0; c < k; ++c) sig[c] = all[c];
    }
    double maxs = range, mins = range / std::min(100.0, 1.0 + static_cast<double>(k + 1));
    for (double& s : sig) s = std::clamp(s, mins, maxs);
    mus.push_back(prior_mu);
    sig.push_back(range);
    nm.mu = mus;
    nm.sigma = sig;
    for (size_t c = 0; c <= k; ++c) {
      double z = normal_cdf((nm.hi - mus[c]) / sig[c]) - normal_cdf((nm.lo - mus[c]) / sig[c]);
      nm.log_norm.push_back(std::log(std::max(z, 1e-300)));
    }
  }
  return pz;
}

size_t pick_component(const Parzen& pz, std::mt19937_64& rng) {
  double u = uniform01(rng), acc = 0;
  for (size_t c = 0; c < pz.w.size(); ++c) {
    acc += pz.w[c];
    if (u < acc) return c;
  }
  return pz.w.size() - 1;
}

double sample_dim(const Parzen& pz, size_t j, size_t c, std::mt19937_64& rng, double low, double high) {
  if (pz.categorical[j]) {
    const auto& row = pz.cat[j][c];
    double u = uniform01(rng), acc = 0;
    for (size_t i = 0; i < row.size(); ++i) {
      acc += std::exp(row[i]);
      if (u < acc) return static_cast<double>(i);
    }
    return static_cast<double>(row.size() - 1);
  }
  const auto& n = pz.num[j];
  double x = n.mu[c];
  for (int tries = 0; tries < 100; ++tries) {
    double cand = n.mu[c] + n.sigma[c] * standard_normal(rng);
    if (cand >= n.lo && cand <= n.hi) {
      x = cand;
      break;
    }
  }
  x = std::clamp(x, n.lo, n.hi);
  if (n.step > 0) x = std::clamp(low + std::nearbyint((x - low) / n.step) * n.step, low, high);
  return x;
}

}  // namespace

json TpeSampler::propose(int index, const History& history, const std::vector<std::pair<std::vector<double>, double>>& liars) {
  // Observations in minimise form, in trial order.
  struct Obs {
    std::vector<double> x;
    double y;
    bool liar;
    int order;
  };
  std::vector<Obs> obs;
  double sign = cfg_.goal == Goal::Maximize ? -1.0 : 1.0;
  double worst = -std::numeric_limits<double>::infinity();
  int n_done = 0;
  std::vector<const Trial*> running;
  for (const auto& t : history) {
    if (t.status == TrialStatus::Failed) continue;
    bool done = is_terminal(t.status) && t.value && std::isfinite(*t.value);
    if (!done) {
      if (!is_terminal(t.status)) running.push_back(&t);
      continue;
    }
    auto x = to_internal(t.params);
    if (x.empty()) continue;
    double y = sign * *t.value;
    worst = std::max(worst, y);
    obs.push_back({std::move(x), y, false, t.index});
    ++n_done;
  }
  auto rng = trial_rng(seed_, index);
  if (n_done < opt_.n_startup_trials) {
    json params = json::object();
    for (const auto& p : cfg_.parameters) params[p.name] = sample_parameter(p, rng);
    return params;
  }
  if (opt_.constant_liar) {
    int ord = static_cast<int>(history.size());
    for (const Trial* t : running) {
      auto x = to_internal(t->params);
      if (!x.empty()) obs.push_back({std::move(x), worst, true, t->index});
    }
    for (const auto& [x, y] : liars) obs.push_back({x, worst, true, ord++});
    (void)liars;
  }
  size_t n = obs.size();
  size_t n_below = std::min<size_t>(static_cast<size_t>(std::ceil(0.1 * static_cast<double>(n))), 25);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (obs[a].y != obs[b].y) return obs[a].y < obs[b].y;
    if (obs[a].liar != obs[b].liar) return !obs[a].liar;
    return obs[a].order < obs[b].order;
  });
  std::vector<size_t> below(order.begin(), order.begin() + static_cast<long>(n_below));
  std::vector<size_t> above(order.begin() + static_cast<long>(n_below), order.end());
  auto by_trial = [&](size_t a, size_t b) { return obs[a].order < obs[b].order; };
  std::sort(below.begin(), below.end(), by_trial);
  std::sort(above.begin(), above.end(), by_trial);
  auto weights_for = [](size_t m) {
    std::vector<double> w(m, 1.0);
    if (m >= 25) {
      size_t ramp = m - 25;
      for (size_t i = 0; i < ramp; ++i)
        w[i] = ramp == 1 ? 1.0 / static_cast<double>(m) : 1.0 / static_cast<double>(m) + (1.0 - 1.0 / static_cast<double>(m)) * static_cast<double>(i) / static_cast<double>(ramp - 1);
    }
    return w;
  };
  std::vector<bool> cat;
  std::vector<int> nch;
  std::vector<double> lows, highs, steps;
  for (const auto& d : dims_) {
    cat.push_back(d.categorical);
    nch.push_back(d.n_choices);
    lows.push_back(d.low);
    highs.push_back(d.high);
    steps.push_back(d.step);
  }
  auto gather = [&](const std::vector<size_t>& idx) {
    std::vector<std::vector<double>> xs;
    for (size_t i : idx) xs.push_back(obs[i].x);
    return xs;
  };
  Parzen l = build_parzen(gather(below), weights_for(below.size()), cat, nch, lows, highs, steps, opt_.prior_weight, opt_.multivariate);
  Parzen g = build_parzen(gather(above), weights_for(above.size()), cat, nch, lows, highs, steps, opt_.prior_weight, opt_.multivariate);
  auto crng = trial_rng(seed_, index, 1);
  size_t d = dims_.size();
  int m = std::max(1, opt_.n_ei_candidates);
  auto log_mix = [&](const Parzen& pz, const std::vector<double>& x, std::optional<size_t> only_dim) {
    std::vector<double> terms(pz.w.size());
    for (size_t c = 0; c < pz.w.size(); ++c) {
      double s = pz.log_w[c];
      if (only_dim) s += pz.log_kernel(*only_dim, c, x[*only_dim]);
      else
        for (size_t j = 0; j < d; ++j) s += pz.log_kernel(j, c, x[j]);
      terms[c] = s;
    }
    return log_sum_exp(terms);
  };
  std::vector<double> best(d);
  if (opt_.multivariate) {
    double best_score = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < m; ++i) {
      size_t c = pick_component(l, crng);
      std::vector<double> x(d);
      for (size_t j = 0; j < d; ++j) x[j] = sample_dim(l, j, c, crng, dims_[j].low, dims_[j].high);
      double score = log_mix(l, x, std::nullopt) - log_mix(g, x, std::nullopt);
      if (score > best_score) {
        best_score = score;
        best = x;
      }
    }
  } else {
    for (size_t j = 0; j < d; ++j) {
      double best_score = -std::numeric_limits<double>::infinity();
      std::vector<double> x(d);
      for (int i = 0; i < m; ++i) {
        size_t c = pick_component(l, crng);
        x[j] = sample_dim(l, j, c, crng, dims_[j].low, dims_[j].high);
        double score = log_mix(l, x, j) - log_mix(g, x, j);
        if (score > best_score) {
          best_score = score;
          best[j] = x[j];
        }
      }
    }
  }
  return from_internal(best);
}

std::vector<json> TpeSampler::suggest(int n, const History& history) {
  std::vector<json> out;
  std::vector<std::pair<std::vector<double>, double>> liars;
  for (int i = 0; i < n; ++i) {
    int index = static_cast<int>(history.size()) + i;
    json params = propose(index, history, liars);
    auto x = to_internal(params);
    if (!x.empty()) liars.push_back({x, 0.0});
    out.push_back(std::move(params));
  }
  return out;
}

}  // namespace amlc::sweep
