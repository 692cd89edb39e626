// GpSampler: Gaussian-process Bayesian optimisation with (log) expected improvement. See sampler.hpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "amlc/sweep/sampler.hpp"

namespace amlc::sweep {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Point {
  std::vector<double> u;  // unit-cube coordinates (categorical: the option index)
};

// Dense lower-triangular Cholesky in place; false when not positive definite.
bool cholesky(std::vector<double>& a, size_t n) {
  for (size_t j = 0; j < n; ++j) {
    double s = a[j * n + j];
    for (size_t k = 0; k < j; ++k) s -= a[j * n + k] * a[j * n + k];
    if (!(s > 0)) return false;
    double l = std::sqrt(s);
    a[j * n + j] = l;
    for (size_t i = j + 1; i < n; ++i) {
      double t = a[i * n + j];
      for (size_t k = 0; k < j; ++k) t -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = t / l;
    }
  }
  return true;
}

void solve_lower(const std::vector<double>& L, size_t n, std::vector<double>& b) {
  for (size_t i = 0; i < n; ++i) {
    double s = b[i];
    for (size_t k = 0; k < i; ++k) s -= L[i * n + k] * b[k];
    b[i] = s / L[i * n + i];
  }
}

void solve_upper_t(const std::vector<double>& L, size_t n, std::vector<double>& b) {  // L^T x = b
  for (size_t i = n; i-- > 0;) {
    double s = b[i];
    for (size_t k = i + 1; k < n; ++k) s -= L[k * n + i] * b[k];
    b[i] = s / L[i * n + i];
  }
}

struct Hyper {
  std::vector<double> log_ls;  // per dim
  double log_sf2 = 0;
  double log_noise = std::log(1e-3);
};

struct Model {
  const std::vector<SearchSpace::Dim>* dims = nullptr;
  Hyper h;
  std::vector<Point> X;
  std::vector<double> y;
  std::vector<double> L;      // Cholesky of K + noise I
  std::vector<double> alpha;  // (K + noise I)^-1 y
  std::vector<double> inv_ls2;  // 1 / length_scale^2 per dim (set by fit())
  std::vector<char> cat;        // categorical flag per dim
  double sf2 = 1;

  double kernel(const std::vector<double>& a, const std::vector<double>& b) const {
    double r2 = 0;
    for (size_t j = 0; j < a.size(); ++j) {
      double d = cat[j] ? (a[j] == b[j] ? 0.0 : 1.0) : (a[j] - b[j]);
      r2 += d * d * inv_ls2[j];
    }
    double r = std::sqrt(5.0 * r2);
    return sf2 * (1 + r + r * r / 3.0) * std::exp(-r);
  }

  // Fits L and alpha; returns the log marginal likelihood (-inf on failure).
  double fit() {
    size_t n = X.size();
    inv_ls2.resize(h.log_ls.size());
    cat.resize(h.log_ls.size());
    for (size_t j = 0; j < h.log_ls.size(); ++j) {
      inv_ls2[j] = std::exp(-2 * h.log_ls[j]);
      cat[j] = (*dims)[j].categorical ? 1 : 0;
    }
    sf2 = std::exp(h.log_sf2);
    L.assign(n * n, 0);
    double noise = std::exp(h.log_noise) + 1e-8;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j <= i; ++j) {
        double k = kernel(X[i].u, X[j].u);
        if (i == j) k += noise;
        L[i * n + j] = k;
        L[j * n + i] = k;
      }
    if (!cholesky(L, n)) return -kInf;
    alpha = y;
    solve_lower(L, n, alpha);
    double quad = 0;
    for (double a : alpha) quad += a * a;
    solve_upper_t(L, n, alpha);
    double logdet = 0;
    for (size_t i = 0; i < n; ++i) logdet += std::log(L[i * n + i]);
    return -0.5 * quad - logdet - 0.5 * static_cast<double>(n) * std::log(2 * M_PI);
  }

  void predict(const std::vector<double>& x, double& mu, double& sd) const {
    size_t n = X.size();
    std::vector<double> k(n);
    for (size_t i = 0; i < n; ++i) k[i] = kernel(x, X[i].u);
    mu = 0;
    for (size_t i = 0; i < n; ++i) mu += k[i] * alpha[i];
    solve_lower(L, n, k);
    double v = sf2;
    for (double t : k) v -= t * t;
    sd = std::sqrt(std::max(v, 1e-12));
  }
};

double log_prior(const Hyper& h) {
  double lp = 0;
  for (double l : h.log_ls) lp += -0.5 * std::pow((l - std::log(0.5)) / 1.5, 2);
  lp += -0.5 * std::pow(h.log_sf2 / 2.0, 2);
  return lp;
}

void clamp_hyper(Hyper& h) {
  for (double& l : h.log_ls) l = std::clamp(l, std::log(0.01), std::log(20.0));
  h.log_sf2 = std::clamp(h.log_sf2, std::log(0.05), std::log(20.0));
  h.log_noise = std::clamp(h.log_noise, std::log(1e-6), std::log(0.5));
}

// Deterministic pattern search on the log marginal likelihood + prior.
Hyper fit_hyper(Model& m) {
  size_t d = m.dims->size();
  Hyper best;
  best.log_ls.assign(d, std::log(0.5));
  auto score = [&](const Hyper& h) {
    m.h = h;
    double ll = m.fit();
    return std::isfinite(ll) ? ll + log_prior(h) : -kInf;
  };
  double best_score = score(best);
  // a couple of alternative starts (short and long length scales)
  for (double l0 : {0.15, 1.5}) {
    Hyper h = best;
    h.log_ls.assign(d, std::log(l0));
    double s = score(h);
    if (s > best_score) {
      best_score = s;
      best = h;
    }
  }
  double step = 1.0;
  int evals = 0;
  while (step > 0.1 && evals < 16 * static_cast<int>(d + 2)) {
    bool improved = false;
    for (size_t c = 0; c < d + 2; ++c) {
      for (double dir : {1.0, -1.0}) {
        Hyper h = best;
        if (c < d) h.log_ls[c] += dir * step;
        else if (c == d) h.log_sf2 += dir * step;
        else h.log_noise += dir * step * 2;
        clamp_hyper(h);
        double s = score(h);
        ++evals;
        if (s > best_score + 1e-9) {
          best_score = s;
          best = h;
          improved = true;
          break;
        }
      }
    }
    if (!improved) step *= 0.5;
  }
  return best;
}

double norm_pdf(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI); }

// log EI for minimisation with incumbent `best`.
double log_ei(double mu, double sd, double best) {
  double z = (best - mu) / sd;
  if (z > -6) {
    double ei = (best - mu) * normal_cdf(z) + sd * norm_pdf(z);
    return std::log(std::max(ei, 1e-300));
  }
  // asymptotic: EI ~ sd * phi(z) / z^2
  return std::log(sd) - 0.5 * z * z - 0.5 * std::log(2 * M_PI) - 2 * std::log(-z);
}

}  // namespace

GpSampler::GpSampler(SweepConfig cfg, std::uint64_t seed, GpOptions opt) : cfg_(std::move(cfg)), seed_(seed), opt_(opt), space_(cfg_) {}

std::vector<json> GpSampler::suggest(int n, const History& history) {
  std::vector<json> out;
  std::vector<std::vector<double>> pending;
  for (int i = 0; i < n; ++i) {
    json p = propose(static_cast<int>(history.size()) + i, history, pending);
    auto x = space_.to_internal(p);
    if (!x.empty()) pending.push_back(x);
    out.push_back(std::move(p));
  }
  return out;
}

json GpSampler::propose(int index, const History& history, const std::vector<std::vector<double>>& pending) {
  const auto& dims = space_.dims();
  size_t d = dims.size();
  auto to_unit = [&](const std::vector<double>& x) {
    std::vector<double> u(d);
    for (size_t j = 0; j < d; ++j) {
      if (dims[j].categorical) u[j] = x[j];
      else {
        double r = dims[j].high - dims[j].low;
        u[j] = r > 0 ? (x[j] - dims[j].low) / r : 0.0;
      }
    }
    return u;
  };
  auto from_unit = [&](const std::vector<double>& u) {
    std::vector<double> x(d);
    for (size_t j = 0; j < d; ++j) x[j] = dims[j].categorical ? u[j] : dims[j].low + u[j] * (dims[j].high - dims[j].low);
    return x;
  };
  auto snap = [&](std::vector<double>& u) {  // integer dims onto their grid, everything into range
    for (size_t j = 0; j < d; ++j) {
      if (dims[j].categorical) continue;
      u[j] = std::clamp(u[j], 0.0, 1.0);
      double r = dims[j].high - dims[j].low;
      if (dims[j].step > 0 && r > 0) u[j] = std::nearbyint(u[j] * r / dims[j].step) * dims[j].step / r;
    }
  };

  double sign = cfg_.goal == Goal::Maximize ? -1.0 : 1.0;
  struct Obs {
    std::vector<double> u;
    double y;
    int index;
  };
  std::vector<Obs> obs;
  std::vector<std::vector<double>> running;
  for (const auto& t : history) {
    if (t.status == TrialStatus::Failed) continue;
    bool done = is_terminal(t.status) && t.value && std::isfinite(*t.value);
    auto x = space_.to_internal(t.params);
    if (x.empty()) continue;
    if (done) obs.push_back({to_unit(x), sign * *t.value, t.index});
    else if (!is_terminal(t.status)) running.push_back(to_unit(x));
  }
  auto rng = trial_rng(seed_, index);
  if (static_cast<int>(obs.size()) < opt_.n_startup_trials || obs.empty()) return space_.random(rng);

  // Bound the model size: the best 50 and the most recent others.
  if (static_cast<int>(obs.size()) > opt_.max_points) {
    std::vector<size_t> order(obs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return obs[a].y < obs[b].y; });
    std::vector<bool> keep(obs.size(), false);
    for (size_t i = 0; i < 50 && i < order.size(); ++i) keep[order[i]] = true;
    int budget = opt_.max_points - 50;
    for (size_t i = obs.size(); i-- > 0 && budget > 0;)
      if (!keep[i]) {
        keep[i] = true;
        --budget;
      }
    std::vector<Obs> kept;
    for (size_t i = 0; i < obs.size(); ++i)
      if (keep[i]) kept.push_back(obs[i]);
    obs = std::move(kept);
  }

  // Standardise.
  double mean = 0;
  for (const auto& o : obs) mean += o.y;
  mean /= static_cast<double>(obs.size());
  double var = 0;
  for (const auto& o : obs) var += (o.y - mean) * (o.y - mean);
  double sdev = std::sqrt(var / static_cast<double>(obs.size()));
  if (!(sdev > 0)) sdev = 1;
  double best_y = kInf, worst_y = -kInf;
  std::vector<double> best_u;
  Model m;
  m.dims = &dims;
  for (const auto& o : obs) {
    double z = (o.y - mean) / sdev;
    m.X.push_back({o.u});
    m.y.push_back(z);
    if (z < best_y) {
      best_y = z;
      best_u = o.u;
    }
    worst_y = std::max(worst_y, z);
  }
  m.h = fit_hyper(m);
  if (opt_.constant_liar) {
    for (const auto& u : running) {
      m.X.push_back({u});
      m.y.push_back(worst_y);
    }
    for (const auto& x : pending) {
      m.X.push_back({to_unit(x)});
      m.y.push_back(worst_y);
    }
  }
  if (!std::isfinite(m.fit())) {
    m.h.log_noise = std::log(1e-2);
    if (!std::isfinite(m.fit())) return space_.random(rng);
  }

  auto crng = trial_rng(seed_, index, 2);
  auto acq = [&](const std::vector<double>& u) {
    double mu, sd;
    m.predict(u, mu, sd);
    return log_ei(mu, sd, best_y);
  };
  auto random_u = [&]() {
    std::vector<double> u(d);
    for (size_t j = 0; j < d; ++j) {
      if (dims[j].categorical) u[j] = std::min<double>(std::floor(uniform01(crng) * dims[j].n_choices), dims[j].n_choices - 1);
      else u[j] = uniform01(crng);
    }
    snap(u);
    return u;
  };
  auto perturb = [&](const std::vector<double>& base, double scale) {
    std::vector<double> u = base;
    for (size_t j = 0; j < d; ++j) {
      if (dims[j].categorical) {
        if (uniform01(crng) < 0.15) u[j] = std::min<double>(std::floor(uniform01(crng) * dims[j].n_choices), dims[j].n_choices - 1);
      } else {
        u[j] += scale * standard_normal(crng);
      }
    }
    snap(u);
    return u;
  };

  struct Cand {
    std::vector<double> u;
    double a;
  };
  std::vector<Cand> cands;
  for (int i = 0; i < opt_.n_candidates; ++i) {
    auto u = random_u();
    double a = acq(u);
    cands.push_back({std::move(u), a});
  }
  // Around the best observations.
  std::vector<size_t> order(obs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return obs[a].y < obs[b].y; });
  for (size_t i = 0; i < std::min<size_t>(5, order.size()); ++i)
    for (double scale : {0.1, 0.02})
      for (int k = 0; k < 20; ++k) {
        auto u = perturb(obs[order[i]].u, scale);
        double a = acq(u);
        cands.push_back({std::move(u), a});
      }
  std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.a > b.a; });
  // Local search from the top candidates.
  Cand best = cands.front();
  for (size_t s = 0; s < std::min<size_t>(5, cands.size()); ++s) {
    Cand cur = cands[s];
    double scale = 0.05;
    for (int it = 0; it < 60 && scale > 1e-4; ++it) {
      auto u = perturb(cur.u, scale);
      double a = acq(u);
      if (a > cur.a) cur = {std::move(u), a};
      else if (it % 10 == 9) scale *= 0.5;
    }
    if (cur.a > best.a) best = cur;
  }
  return space_.from_internal(from_unit(best.u));
}

}  // namespace amlc::sweep
