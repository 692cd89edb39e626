#include "amlc/sweep/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "amlc/core/error.hpp"

namespace amlc::sweep {

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

json quantise(double x, double q) {
  double r = std::nearbyint(x / q) * q;  // half-to-even, as numpy.round
  if (std::floor(q) == q && std::fabs(r) < 9.0e15) return json(static_cast<long long>(r));
  return json(r);
}

}  // namespace

const char* status_name(TrialStatus s) {
  switch (s) {
    case TrialStatus::Queued: return "Queued";
    case TrialStatus::Running: return "Running";
    case TrialStatus::Completed: return "Completed";
    case TrialStatus::Failed: return "Failed";
    case TrialStatus::Canceled: return "Canceled";
  }
  return "Queued";
}

TrialStatus parse_status(const std::string& s) {
  for (auto st : {TrialStatus::Queued, TrialStatus::Running, TrialStatus::Completed, TrialStatus::Failed, TrialStatus::Canceled})
    if (s == status_name(st)) return st;
  usage_error("unknown trial status '" + s + "'", "use Queued, Running, Completed, Failed or Canceled");
}

bool is_terminal(TrialStatus s) { return s == TrialStatus::Completed || s == TrialStatus::Failed || s == TrialStatus::Canceled; }

std::mt19937_64 trial_rng(std::uint64_t seed, int index, std::uint64_t stream) {
  std::uint64_t s = splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(index) + 1) ^ splitmix64(stream * 0x632BE59BD9B4E019ULL + 7));
  return std::mt19937_64(s);
}

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

double normal_cdf(double z) { return 0.5 * std::erfc(-z / 1.4142135623730951); }

double standard_normal(std::mt19937_64& rng) {
  // Box-Muller (one value per call, no cached state: reproducible regardless of call pattern).
  double u1 = uniform01(rng);
  double u2 = uniform01(rng);
  if (u1 <= 0) u1 = 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

json sample_parameter(const Parameter& p, std::mt19937_64& rng) {
  switch (p.kind) {
    case ExprKind::Choice: {
      size_t i = static_cast<size_t>(uniform01(rng) * static_cast<double>(p.options.size()));
      return p.options[std::min(i, p.options.size() - 1)];
    }
    case ExprKind::RandInt: {
      long long v = static_cast<long long>(uniform01(rng) * static_cast<double>(p.upper));
      return json(std::min(v, p.upper - 1));
    }
    case ExprKind::Uniform: return json(p.a + uniform01(rng) * (p.b - p.a));
    case ExprKind::QUniform: return quantise(p.a + uniform01(rng) * (p.b - p.a), p.q);
    case ExprKind::LogUniform: return json(std::exp(p.a + uniform01(rng) * (p.b - p.a)));
    case ExprKind::QLogUniform: return quantise(std::exp(p.a + uniform01(rng) * (p.b - p.a)), p.q);
    case ExprKind::Normal: return json(p.a + p.b * standard_normal(rng));
    case ExprKind::QNormal: return quantise(p.a + p.b * standard_normal(rng), p.q);
    case ExprKind::LogNormal: return json(std::exp(p.a + p.b * standard_normal(rng)));
    case ExprKind::QLogNormal: return quantise(std::exp(p.a + p.b * standard_normal(rng)), p.q);
  }
  return nullptr;
}

std::uint64_t resolve_seed(const SweepConfig& cfg) {
  if (cfg.seed) return *cfg.seed;
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::unique_ptr<Sampler> make_sampler(const SweepConfig& cfg, std::uint64_t seed) {
  switch (cfg.sampling) {
    case SamplingType::Random: return std::make_unique<RandomSampler>(cfg, seed);
    case SamplingType::Grid: return std::make_unique<GridSampler>(cfg);
    case SamplingType::Bayesian: return std::make_unique<GpSampler>(cfg, seed);
  }
  return std::make_unique<RandomSampler>(cfg, seed);
}

// ---------------------------------------------------------------- random

std::vector<json> RandomSampler::suggest(int n, const History& history) {
  std::vector<json> out;
  for (int i = 0; i < n; ++i) {
    int index = static_cast<int>(history.size()) + i;
    auto rng = trial_rng(seed_, index);
    json params = json::object();
    for (const auto& p : cfg_.parameters) params[p.name] = sample_parameter(p, rng);
    out.push_back(std::move(params));
  }
  return out;
}

// ---------------------------------------------------------------- grid

GridSampler::GridSampler(SweepConfig cfg) : cfg_(std::move(cfg)) {
  for (const auto& p : cfg_.parameters)
    if (p.kind != ExprKind::Choice) usage_error("grid sampling supports only choice; parameter '" + p.name + "' uses " + expr_name(p.kind));
  size_ = std::min<long long>(grid_size(cfg_.parameters), cfg_.max_total_runs > 0 ? cfg_.max_total_runs : (1LL << 62));
}

json GridSampler::point(long long k) const {
  json params = json::object();
  std::vector<size_t> idx(cfg_.parameters.size());
  for (size_t j = cfg_.parameters.size(); j-- > 0;) {
    long long n = static_cast<long long>(cfg_.parameters[j].options.size());
    idx[j] = static_cast<size_t>(k % n);
    k /= n;
  }
  for (size_t j = 0; j < cfg_.parameters.size(); ++j) params[cfg_.parameters[j].name] = cfg_.parameters[j].options[idx[j]];
  return params;
}

std::vector<json> GridSampler::suggest(int n, const History& history) {
  std::vector<json> out;
  for (int i = 0; i < n; ++i) {
    long long k = static_cast<long long>(history.size()) + i;
    if (k >= size_) break;
    out.push_back(point(k));
  }
  return out;
}

bool GridSampler::exhausted(const History& history) const { return static_cast<long long>(history.size()) >= size_; }

// ---------------------------------------------------------------- search space (GP and TPE)

SearchSpace::SearchSpace(const SweepConfig& cfg) : params_(cfg.parameters) {
  for (const auto& p : params_) {
    Dim d;
    switch (p.kind) {
      case ExprKind::Choice:
        d.categorical = true;
        d.n_choices = static_cast<int>(p.options.size());
        d.low = 0;
        d.high = d.n_choices - 1;
        break;
      case ExprKind::RandInt:
        d.low = 0;
        d.high = static_cast<double>(p.upper - 1);
        d.step = 1;
        break;
      case ExprKind::Uniform:
      case ExprKind::QUniform:
      case ExprKind::LogUniform:
      case ExprKind::QLogUniform:
        d.low = p.a;
        d.high = p.b;
        break;
      default:  // normal family: not allowed by the config for bayesian; model +-3 sigma to stay total
        d.low = p.a - 3 * p.b;
        d.high = p.a + 3 * p.b + (p.b == 0 ? 1 : 0);
        break;
    }
    dims_.push_back(d);
  }
}

json SearchSpace::random(std::mt19937_64& rng) const {
  json params = json::object();
  for (const auto& p : params_) params[p.name] = sample_parameter(p, rng);
  return params;
}

std::vector<double> SearchSpace::to_internal(const json& params) const {
  std::vector<double> x(params_.size());
  for (size_t j = 0; j < params_.size(); ++j) {
    const Parameter& p = params_[j];
    if (!params.contains(p.name)) return {};
    const json& v = params.at(p.name);
    const Dim& d = dims_[j];
    if (d.categorical) {
      auto it = std::find(p.options.begin(), p.options.end(), v);
      if (it == p.options.end()) return {};
      x[j] = static_cast<double>(it - p.options.begin());
      continue;
    }
    if (!v.is_number()) return {};
    double val = v.get<double>();
    switch (p.kind) {
      case ExprKind::LogUniform:
      case ExprKind::QLogUniform:
      case ExprKind::LogNormal:
      case ExprKind::QLogNormal: val = std::log(std::max(val, 1e-300)); break;
      default: break;
    }
    x[j] = std::clamp(val, d.low, d.high);
  }
  return x;
}

json SearchSpace::from_internal(const std::vector<double>& x) const {
  json params = json::object();
  for (size_t j = 0; j < params_.size(); ++j) {
    const Parameter& p = params_[j];
    double v = x[j];
    switch (p.kind) {
      case ExprKind::Choice: params[p.name] = p.options[static_cast<size_t>(std::clamp<double>(std::nearbyint(v), 0, static_cast<double>(p.options.size() - 1)))]; break;
      case ExprKind::RandInt: params[p.name] = static_cast<long long>(std::clamp<double>(std::nearbyint(v), 0, static_cast<double>(p.upper - 1))); break;
      case ExprKind::Uniform:
      case ExprKind::Normal: params[p.name] = v; break;
      case ExprKind::QUniform:
      case ExprKind::QNormal: params[p.name] = quantise(v, p.q); break;
      case ExprKind::LogUniform:
      case ExprKind::LogNormal: params[p.name] = std::exp(v); break;
      case ExprKind::QLogUniform:
      case ExprKind::QLogNormal: params[p.name] = quantise(std::exp(v), p.q); break;
    }
  }
  return params;
}

}  // namespace amlc::sweep
