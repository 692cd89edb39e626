// Samplers: distributions and ranges of every expression, grid order and cap, reproducibility, TPE.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "amlc/sweep/config.hpp"
#include "amlc/sweep/sampler.hpp"
#include "amlc/sweep/sampler_tpe.hpp"

using namespace amlc::sweep;

namespace {

SweepConfig cfg(const std::string& params, const std::string& extra = "sampling: random\nmax_total_runs: 1000\n") {
  return parse_config_text("parameters:\n" + params + "primary_metric: {name: m, goal: minimize}\n" + extra, "t.yml");
}

std::vector<double> draws(const std::string& expr, int n, std::uint64_t seed = 7) {
  SweepConfig c = cfg("  p: " + expr + "\n");
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    auto rng = trial_rng(seed, i);
    out.push_back(sample_parameter(c.parameters[0], rng).get<double>());
  }
  return out;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}
double stddev(const std::vector<double>& v) {
  double m = mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

}  // namespace

TEST_CASE("sampler: uniform, loguniform, randint ranges and moments") {
  auto u = draws("uniform(2, 5)", 20000);
  CHECK(*std::min_element(u.begin(), u.end()) >= 2);
  CHECK(*std::max_element(u.begin(), u.end()) < 5);
  CHECK(mean(u) == doctest::Approx(3.5).epsilon(0.01));
  CHECK(stddev(u) == doctest::Approx(3 / std::sqrt(12.0)).epsilon(0.02));

  auto lu = draws("loguniform(-6.9, 0)", 20000);  // exp(U(-6.9, 0)) in [0.001, 1)
  CHECK(*std::min_element(lu.begin(), lu.end()) >= std::exp(-6.9));
  CHECK(*std::max_element(lu.begin(), lu.end()) < 1.0);
  std::vector<double> logs;
  for (double x : lu) logs.push_back(std::log(x));
  CHECK(mean(logs) == doctest::Approx(-3.45).epsilon(0.02));  // uniform on the log scale

  SweepConfig c = cfg("  p: randint(5)\n");
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 10000; ++i) {
    auto rng = trial_rng(3, i);
    json v = sample_parameter(c.parameters[0], rng);
    REQUIRE(v.is_number_integer());
    int k = v.get<int>();
    REQUIRE(k >= 0);
    REQUIRE(k < 5);
    ++counts[static_cast<size_t>(k)];
  }
  for (int k : counts) CHECK(std::abs(k - 2000) < 200);  // ~4.5 sigma
}

TEST_CASE("sampler: quantised expressions are multiples of q") {
  for (const char* e : {"quniform(0, 10, 2.5)", "qloguniform(0, 3, 0.5)", "qnormal(0, 3, 0.25)", "qlognormal(1, 0.5, 0.5)"}) {
    CAPTURE(e);
    for (double v : draws(e, 2000)) {
      double k = v / (std::string(e).find("0.25") != std::string::npos ? 0.25 : (std::string(e).find("2.5") != std::string::npos ? 2.5 : 0.5));
      CHECK(std::fabs(k - std::round(k)) < 1e-9);
    }
  }
  // integral q: values are JSON integers within the rounded range
  SweepConfig c = cfg("  p: quniform(1, 9, 2)\n");
  std::set<long long> seen;
  for (int i = 0; i < 2000; ++i) {
    auto rng = trial_rng(1, i);
    json v = sample_parameter(c.parameters[0], rng);
    REQUIRE(v.is_number_integer());
    seen.insert(v.get<long long>());
  }
  CHECK(seen == std::set<long long>{2, 4, 6, 8});  // round(U(1,9)/2)*2: U/2 in [0.5, 4.5) rounds to 1..4
}

TEST_CASE("sampler: normal and lognormal moments, choice frequencies") {
  auto n = draws("normal(3, 2)", 20000);
  CHECK(mean(n) == doctest::Approx(3).epsilon(0.02));
  CHECK(stddev(n) == doctest::Approx(2).epsilon(0.03));
  auto ln = draws("lognormal(0, 0.5)", 20000);
  CHECK(*std::min_element(ln.begin(), ln.end()) > 0);
  std::vector<double> logs;
  for (double x : ln) logs.push_back(std::log(x));
  CHECK(std::fabs(mean(logs)) < 0.02);
  CHECK(stddev(logs) == doctest::Approx(0.5).epsilon(0.03));

  SweepConfig c = cfg("  p: choice(a, b, c, d)\n");
  std::map<std::string, int> counts;
  for (int i = 0; i < 8000; ++i) {
    auto rng = trial_rng(5, i);
    counts[sample_parameter(c.parameters[0], rng).get<std::string>()]++;
  }
  REQUIRE(counts.size() == 4);
  for (auto& [k, v] : counts) CHECK(std::abs(v - 2000) < 200);
}

TEST_CASE("sampler: random is reproducible for a seed and differs across seeds") {
  SweepConfig c = cfg("  lr: uniform(0, 1)\n  b: choice(16, 32, 64)\n  q: qloguniform(0, 3, 1)\n");
  auto a = RandomSampler(c, 42).suggest(20, {});
  auto b = RandomSampler(c, 42).suggest(20, {});
  auto other = RandomSampler(c, 43).suggest(20, {});
  CHECK(a == b);
  CHECK(a != other);
  // stateless: proposing 5 at a time after a history of 15 gives the same trials 15..19
  History h;
  for (int i = 0; i < 15; ++i) h.push_back({i, a[static_cast<size_t>(i)], 0.5, TrialStatus::Completed});
  auto tail = RandomSampler(c, 42).suggest(5, h);
  CHECK(tail == std::vector<json>(a.begin() + 15, a.end()));
  // make_sampler picks it
  auto s = make_sampler(c, 42);
  CHECK(s->suggest(20, {}) == a);
  CHECK_FALSE(s->exhausted(h));
}

TEST_CASE("sampler: grid enumerates the cartesian product in odometer order, capped by max_total_runs") {
  SweepConfig c = cfg("  a: choice(1, 2)\n  b: choice(x, y, z)\n", "sampling: grid\n");
  CHECK(c.max_total_runs == 6);
  GridSampler g(c);
  auto all = g.suggest(10, {});
  REQUIRE(all.size() == 6);
  CHECK(all[0] == json{{"a", 1}, {"b", "x"}});
  CHECK(all[1] == json{{"a", 1}, {"b", "y"}});
  CHECK(all[2] == json{{"a", 1}, {"b", "z"}});
  CHECK(all[3] == json{{"a", 2}, {"b", "x"}});
  CHECK(all[5] == json{{"a", 2}, {"b", "z"}});
  History h;
  CHECK_FALSE(g.exhausted(h));
  for (int i = 0; i < 6; ++i) h.push_back({i, all[static_cast<size_t>(i)], std::nullopt, TrialStatus::Completed});
  CHECK(g.exhausted(h));
  CHECK(g.suggest(1, h).empty());
  // resumed half-way: continues at the next point
  History half(h.begin(), h.begin() + 4);
  CHECK(g.suggest(5, half) == std::vector<json>{all[4], all[5]});

  SweepConfig capped = cfg("  a: choice(1, 2)\n  b: choice(x, y, z)\n", "sampling: grid\nmax_total_runs: 4\n");
  GridSampler gc(capped);
  CHECK(gc.size() == 4);
  CHECK(gc.suggest(10, {}).size() == 4);
}

TEST_CASE("sampler: TPE internal coordinates round-trip every supported expression") {
  SweepConfig c = cfg("  a: choice(16, 32, 64)\n  b: randint(10)\n  c: uniform(-1, 1)\n  d: quniform(0, 10, 2)\n  e: loguniform(-5, 0)\n  f: qloguniform(0, 4, 1)\n",
                      "sampling: bayesian\nmax_total_runs: 200\n");
  TpeSampler t(c, 1);
  json p{{"a", 32}, {"b", 7}, {"c", 0.25}, {"d", 4}, {"e", std::exp(-2.0)}, {"f", 12}};
  auto x = t.to_internal(p);
  REQUIRE(x.size() == 6);
  CHECK(x[0] == 1);
  CHECK(x[4] == doctest::Approx(-2.0));
  json back = t.from_internal(x);
  CHECK(back["a"] == 32);
  CHECK(back["b"] == 7);
  CHECK(back["c"] == 0.25);
  CHECK(back["d"] == 4);
  CHECK(back["e"].get<double>() == doctest::Approx(std::exp(-2.0)));
  CHECK(back["f"] == 12);
  CHECK(t.to_internal(json{{"a", 17}, {"b", 1}, {"c", 0}, {"d", 0}, {"e", 1}, {"f", 1}}).empty());  // 17 is not an option
}

TEST_CASE("sampler: bayesian (TPE) beats random on a 2-D quadratic with a fixed seed, and respects maximize") {
  for (Goal goal : {Goal::Minimize, Goal::Maximize}) {
    CAPTURE(goal_name(goal));
    std::string g = goal == Goal::Minimize ? "minimize" : "maximize";
    auto make = [&](const char* sampling) {
      return parse_config_text(std::string("parameters:\n  x: uniform(-10, 10)\n  y: uniform(-10, 10)\nprimary_metric: {name: m, goal: ") + g +
                                   "}\nsampling: " + sampling + "\nmax_total_runs: 60\n",
                               "q.yml");
    };
    auto run = [&](Sampler& s) {
      History h;
      double best = INFINITY;
      for (int i = 0; i < 60; ++i) {
        json p = s.suggest(1, h).at(0);
        double f = std::pow(p["x"].get<double>() - 1, 2) + std::pow(p["y"].get<double>() - 2, 2);
        best = std::min(best, f);
        h.push_back({i, p, goal == Goal::Minimize ? f : -f, TrialStatus::Completed});
      }
      return best;
    };
    double tpe_sum = 0, rnd_sum = 0;
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
      TpeSampler tpe(make("bayesian"), seed);
      RandomSampler rnd(make("random"), seed);
      tpe_sum += run(tpe);
      rnd_sum += run(rnd);
    }
    CHECK(tpe_sum * 4 < rnd_sum);
  }
}

TEST_CASE("sampler: TPE is reproducible and spreads concurrent proposals (constant liar)") {
  SweepConfig c = cfg("  x: uniform(0, 1)\n  k: choice(a, b, c)\n  n: randint(4)\n", "sampling: bayesian\nmax_total_runs: 100\n");
  History h;
  for (int i = 0; i < 20; ++i) {
    auto rng = trial_rng(99, i);
    json p{{"x", uniform01(rng)}, {"k", std::string(1, static_cast<char>('a' + i % 3))}, {"n", i % 4}};
    h.push_back({i, p, p["x"].get<double>(), TrialStatus::Completed});
  }
  auto a = TpeSampler(c, 5).suggest(4, h);
  auto b = TpeSampler(c, 5).suggest(4, h);
  CHECK(a == b);
  std::set<double> xs;
  for (auto& p : a) {
    CHECK(p["x"].get<double>() >= 0);
    CHECK(p["x"].get<double>() <= 1);
    CHECK(p["n"].is_number_integer());
    xs.insert(p["x"].get<double>());
  }
  CHECK(xs.size() == 4);
  // running trials are taken into account: with a running trial at the same spot, the proposal differs
  History running = h;
  running.push_back({20, a[0], std::nullopt, TrialStatus::Running});
  auto next = TpeSampler(c, 5).suggest(1, running);
  CHECK(next[0] != a[0]);
  // failed trials are ignored (no value needed)
  History failed = h;
  failed.push_back({20, a[0], std::nullopt, TrialStatus::Failed});
  CHECK(TpeSampler(c, 5).suggest(1, failed).size() == 1);
}

TEST_CASE("sampler: bayesian (GP-EI, the default) beats random on a quadratic, is reproducible, spreads concurrent proposals") {
  for (Goal goal : {Goal::Minimize, Goal::Maximize}) {
    CAPTURE(goal_name(goal));
    std::string g = goal == Goal::Minimize ? "minimize" : "maximize";
    auto make = [&](const char* sampling) {
      return parse_config_text(std::string("parameters:\n  x: uniform(-10, 10)\n  y: uniform(-10, 10)\n  k: choice(a, b)\n  n: randint(5)\n"
                                           "primary_metric: {name: m, goal: ") +
                                   g + "}\nsampling: " + sampling + "\nmax_total_runs: 30\n",
                               "q.yml");
    };
    auto f = [](const json& p) {
      return std::pow(p["x"].get<double>() - 1, 2) + std::pow(p["y"].get<double>() - 2, 2) + (p["k"] == "a" ? 0.0 : 5.0) +
             std::abs(p["n"].get<int>() - 3);
    };
    auto run = [&](Sampler& s) {
      History h;
      double best = INFINITY;
      for (int i = 0; i < 30; ++i) {
        json p = s.suggest(1, h).at(0);
        REQUIRE(p["n"].is_number_integer());
        best = std::min(best, f(p));
        h.push_back({i, p, goal == Goal::Minimize ? f(p) : -f(p), TrialStatus::Completed});
      }
      return std::pair{best, h};
    };
    auto gp = make_sampler(make("bayesian"), 3);
    auto rnd = make_sampler(make("random"), 3);
    auto [gp_best, gp_hist] = run(*gp);
    auto [rnd_best, rnd_hist] = run(*rnd);
    CHECK(gp_best < 1.0);
    CHECK(gp_best * 4 < rnd_best);
    // reproducible, and concurrent proposals differ (constant liar)
    History part(gp_hist.begin(), gp_hist.begin() + 15);
    auto a = make_sampler(make("bayesian"), 3)->suggest(3, part);
    auto b = make_sampler(make("bayesian"), 3)->suggest(3, part);
    CHECK(a == b);
    CHECK(a[0] != a[1]);
    CHECK(a[1] != a[2]);
  }
}
