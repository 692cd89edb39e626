// Sweep configuration: both forms, normalisation, every validation error with file:line:col.
#include <doctest/doctest.h>

#include <string>

#include "amlc/core/error.hpp"
#include "amlc/sweep/config.hpp"

using namespace amlc::sweep;

namespace {

// The error message for a config text, or "" when it parses.
std::string err(const std::string& text) {
  try {
    parse_config_text(text, "sweep.yml");
  } catch (const amlc::Error& e) {
    CHECK(e.kind() == amlc::ErrorKind::Usage);
    return e.what();
  }
  return "";
}

std::string hint(const std::string& text) {
  try {
    parse_config_text(text, "sweep.yml");
  } catch (const amlc::Error& e) {
    return e.hint();
  }
  return "";
}

const char* kAz = R"(sampling:
  type: Random
  parameter_space:
  - name: --penalty
    expression: choice
    values: [0.5, 1, 1.5]
  - name: learning_rate
    expression: uniform
    values: [0.05, 0.1]
  - name: --batch
    expression: choice
    values: [[16, 32, 64]]
policy:
  type: BanditPolicy
  evaluation_interval: 2
  slack_factor: 0.2
  delay_evaluation: 5
primary_metric_name: Accuracy
primary_metric_goal: maximize
max_total_runs: 8
max_concurrent_runs: 2
max_duration_minutes: 100
)";

const std::string kNativeHead = "parameters:\n  lr: uniform(0.05, 0.1)\nprimary_metric: {name: acc, goal: maximize}\nmax_total_runs: 10\n";

}  // namespace

TEST_CASE("sweep config: az ml HyperDrive YAML is parsed and normalised") {
  SweepConfig c = parse_config_text(kAz, "hd.yml");
  CHECK(c.sampling == SamplingType::Random);
  REQUIRE(c.parameters.size() == 3);
  CHECK(c.parameters[0].name == "--penalty");
  CHECK(c.parameters[0].kind == ExprKind::Choice);
  CHECK(c.parameters[0].options == std::vector<json>{0.5, 1, 1.5});
  CHECK(c.parameters[1].kind == ExprKind::Uniform);
  CHECK(c.parameters[1].a == 0.05);
  CHECK(c.parameters[1].b == 0.1);
  CHECK(c.parameters[2].options == std::vector<json>{16, 32, 64});
  CHECK(c.policy.type == PolicyType::Bandit);
  CHECK(c.policy.evaluation_interval == 2);
  CHECK(c.policy.delay_evaluation == 5);
  CHECK(*c.policy.slack_factor == 0.2);
  CHECK_FALSE(c.policy.slack_amount);
  CHECK(c.primary_metric_name == "Accuracy");
  CHECK(c.goal == Goal::Maximize);
  CHECK(c.max_total_runs == 8);
  CHECK(c.max_concurrent_runs == 2);
  CHECK(*c.max_duration_minutes == 100);
  CHECK(c.max_failures == 3);  // max(3, 8/4) capped at 8
  json j = c.to_json();
  CHECK(j["primaryMetricGoal"] == "Maximize");
  CHECK(j["sampling"]["type"] == "random");
  CHECK(j["policy"]["type"] == "BanditPolicy");
  CHECK(j["sampling"]["parameter_space"][2]["values"] == json::array({16, 32, 64}));
  // to_json -> from_json round-trips
  SweepConfig back = SweepConfig::from_json(j);
  CHECK(back.to_json() == j);
}

TEST_CASE("sweep config: the native form with every expression") {
  SweepConfig c = parse_config_text(R"Y(parameters:
  learning_rate: uniform(0.05, 0.1)
  batch: choice(16, 32, 64)
  n: choice(range(1, 10, 2))
  layers: randint(4)
  q: quniform(0, 10, 2)
  lu: loguniform(-5, 0)
  qlu: qloguniform(0, 3, 1)
  nrm: normal(0, 1)
  qn: qnormal(5, 2, 0.5)
  ln: lognormal(0, 0.5)
  qln: "qlognormal(1, 0.2, 1)"
  opt: [adam, sgd]
  pair: choice([1, 2], [3, 4])
  word: choice(adam, 'rms prop', "x")
sampling: {type: random}
primary_metric: {name: loss, goal: Minimize}
max_total_runs: 20
seed: 42
max_failures: 5
)Y",
                                    "n.yml");
  REQUIRE(c.parameters.size() == 14);
  // file order kept
  CHECK(c.parameters[0].name == "learning_rate");
  CHECK(c.parameters[2].name == "n");
  CHECK(c.parameters[2].options == std::vector<json>{1, 3, 5, 7, 9});
  CHECK(c.parameters[3].kind == ExprKind::RandInt);
  CHECK(c.parameters[3].upper == 4);
  CHECK(c.parameters[4].kind == ExprKind::QUniform);
  CHECK(c.parameters[4].q == 2);
  CHECK(c.parameters[10].kind == ExprKind::QLogNormal);
  CHECK(c.parameters[11].options == std::vector<json>{"adam", "sgd"});
  CHECK(c.parameters[12].options == std::vector<json>{json::array({1, 2}), json::array({3, 4})});
  CHECK(c.parameters[13].options == std::vector<json>{"adam", "rms prop", "x"});
  CHECK(c.goal == Goal::Minimize);
  CHECK(*c.seed == 42);
  CHECK(c.max_failures == 5);
  CHECK(c.max_concurrent_runs == 20);
  CHECK(c.policy.type == PolicyType::None);
}

TEST_CASE("sweep config: defaults (concurrency, grid size, failures, sampling string)") {
  SweepConfig c = parse_config_text("parameters:\n  a: choice(1, 2, 3)\n  b: [x, y]\nsampling: GRID\nprimary_metric_name: m\nprimary_metric_goal: MAXIMIZE\n", "g.yml");
  CHECK(c.sampling == SamplingType::Grid);
  CHECK(c.max_total_runs == 6);
  CHECK(c.max_concurrent_runs == 6);
  CHECK(c.max_failures == 3);
  SweepConfig big = parse_config_text("parameters:\n  lr: uniform(0, 1)\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 400\n", "b.yml");
  CHECK(big.max_concurrent_runs == 100);
  CHECK(big.max_failures == 100);
  SweepConfig capped = parse_config_text(kNativeHead + "max_duration_minutes: 20000\n", "d.yml");
  CHECK(*capped.max_duration_minutes == 10080);
  REQUIRE(capped.warnings.size() == 1);
  CHECK(capped.warnings[0].find("10080") != std::string::npos);
}

TEST_CASE("sweep config: az form errors carry file:line:col and the key") {
  // missing sampling type
  CHECK(err("sampling:\n  parameter_space:\n  - {name: a, expression: choice, values: [1]}\nprimary_metric_name: m\nprimary_metric_goal: Maximize\nmax_total_runs: 2\n") ==
        "sweep.yml:2:3: key 'sampling': Please provide hyperparameter sampling type: random, grid or bayesian");
  // empty parameter space
  CHECK(err("sampling:\n  type: random\n  parameter_space: []\nprimary_metric_name: m\nprimary_metric_goal: Maximize\nmax_total_runs: 2\n") ==
        "sweep.yml:3:20: key 'sampling.parameter_space': Please provide parameter space: a list of {name, expression, values}");
  // unknown expression with did-you-mean
  std::string bad = "sampling:\n  type: random\n  parameter_space:\n  - name: a\n    expression: unifrom\n    values: [1, 2]\nprimary_metric_name: m\nprimary_metric_goal: Maximize\nmax_total_runs: 2\n";
  CHECK(err(bad) == "sweep.yml:5:17: key 'sampling.parameter_space[0].expression': unknown expression 'unifrom'");
  CHECK(hint(bad) == "did you mean 'uniform'?");
  // unknown top-level key
  std::string typo = std::string(kAz) + "max_concurent_runs: 3\n";
  CHECK(err(typo) == "sweep.yml:23:1: unknown key 'max_concurent_runs'");
  CHECK(hint(typo) == "did you mean 'max_concurrent_runs'?");
  // goal
  std::string goal = kAz;
  goal.replace(goal.find("goal: maximize"), 14, "goal: biggest");
  CHECK(err(goal) == "sweep.yml:19:22: key 'primary_metric_goal': expected Maximize or Minimize, got 'biggest'");
  // bandit without slack
  std::string noslack = kAz;
  noslack.replace(noslack.find("  slack_factor: 0.2\n"), 20, "");
  CHECK(err(noslack) == "sweep.yml:14:3: key 'policy': Please provide a slack factor or slack amount for BanditPolicy");
  // both slacks
  std::string both = kAz;
  both.replace(both.find("  slack_factor: 0.2\n"), 20, "  slack_factor: 0.2\n  slack_amount: 0.1\n");
  CHECK(err(both) == "sweep.yml:17:17: key 'policy.slack_amount': BanditPolicy takes slack_factor or slack_amount, not both");
}

TEST_CASE("sweep config: expression argument checks") {
  auto native = [](const std::string& expr) { return err("parameters:\n  p: " + expr + "\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n"); };
  CHECK(native("uniform(0.1, 0.05)") == "sweep.yml:2:6: key 'parameters.p': uniform(lo, hi) needs lo < hi, got lo=0.1 hi=0.05");
  CHECK(native("uniform(1, 1)") == "sweep.yml:2:6: key 'parameters.p': uniform(lo, hi) needs lo < hi, got lo=1 hi=1");
  CHECK(native("uniform(1)") == "sweep.yml:2:6: key 'parameters.p': uniform takes 2 arguments, got 1");
  CHECK(native("quniform(0, 1, 0)") == "sweep.yml:2:6: key 'parameters.p': quniform needs q > 0, got q=0");
  CHECK(native("qloguniform(0, 1, -1)") == "sweep.yml:2:6: key 'parameters.p': qloguniform needs q > 0, got q=-1");
  CHECK(native("normal(0, -1)") == "sweep.yml:2:6: key 'parameters.p': normal needs sigma > 0, got sigma=-1");
  CHECK(native("lognormal(0, 1, 2)") == "sweep.yml:2:6: key 'parameters.p': lognormal takes 2 arguments, got 3");
  CHECK(native("randint(0)") == "sweep.yml:2:6: key 'parameters.p': randint(upper) needs an integer upper >= 1, got 0");
  CHECK(native("randint(2.5)") == "sweep.yml:2:6: key 'parameters.p': randint(upper) needs an integer upper >= 1, got 2.5");
  CHECK(native("choice()") == "sweep.yml:2:6: key 'parameters.p': choice needs at least one option");
  CHECK(native("choice(range(5, 1))") == "sweep.yml:2:6: key 'parameters.p': range(5, 1, 1) is empty (at character 19 of 'choice(range(5, 1))')");
  CHECK(native("uniform(a, 1)") == "sweep.yml:2:6: key 'parameters.p': uniform: lo must be a number, got \"a\"");
  CHECK(native("uniform(0, 1") == "sweep.yml:2:6: key 'parameters.p': expected ',' or ')' (at character 13 of 'uniform(0, 1')");
  CHECK(native("unifrom(0, 1)") == "sweep.yml:2:6: key 'parameters.p': unknown expression 'unifrom'");
  CHECK(native("uniform(0, 1) x") == "sweep.yml:2:6: key 'parameters.p': unexpected text after the closing ')' (at character 15 of 'uniform(0, 1) x')");
  CHECK(native("loguniform(0.0001, 1000)") ==
        "sweep.yml:2:6: key 'parameters.p': loguniform(lo, hi) samples exp(uniform(lo, hi)); lo and hi are natural logarithms and must lie in [-745, 700]");
  CHECK(native("{expression: uniform, values: [2, 1]}") == "sweep.yml:2:6: key 'parameters.p': uniform(lo, hi) needs lo < hi, got lo=2 hi=1");
  // az form: error points at values
  CHECK(err("sampling:\n  type: random\n  parameter_space:\n  - name: x\n    expression: normal\n    values: [0, -2]\nprimary_metric_name: m\nprimary_metric_goal: Maximize\nmax_total_runs: 2\n") ==
        "sweep.yml:6:13: key 'sampling.parameter_space[0].values': normal needs sigma > 0, got sigma=-2");
}

TEST_CASE("sweep config: every parameter a sampler could trip over is refused at submit") {
  auto native = [](const std::string& expr) { return err("parameters:\n  p: \"" + expr + "\"\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n"); };
  const std::string at = "sweep.yml:2:6: key 'parameters.p': ";
  // sigma must be > 0 for the whole normal family
  CHECK(native("normal(0, 0)") == at + "normal needs sigma > 0, got sigma=0");
  CHECK(native("qnormal(0, 0, 1)") == at + "qnormal needs sigma > 0, got sigma=0");
  CHECK(native("lognormal(0, 0)") == at + "lognormal needs sigma > 0, got sigma=0");
  CHECK(native("qlognormal(0, -1, 1)") == at + "qlognormal needs sigma > 0, got sigma=-1");
  CHECK(native("qnormal(0, 1, 0)") == at + "qnormal needs q > 0, got q=0");
  CHECK(native("qlognormal(0, 1, -2)") == at + "qlognormal needs q > 0, got q=-2");
  // samples must stay finite
  CHECK(native("normal(1e308, 1e308)") == at + "normal(mu, sigma): mu +- 9 sigma must be finite numbers, got mu=1e+308 sigma=1e+308");
  CHECK(native("lognormal(0, 100)") ==
        at + "lognormal(mu, sigma) samples exp(normal(mu, sigma)); mu + 9 sigma must be at most 709 so that exp() stays finite, got 900");
  CHECK(native("uniform(-1e308, 1e308)") == at + "uniform(lo, hi): hi - lo must be a finite number, got lo=-1e+308 hi=1e+308");
  CHECK(native("quniform(0, 1e300, 1e-300)") ==
        at + "quniform: q=1e-300 is too small for values up to 1e+300 (round(value / q) * q would overflow)");
  CHECK(native("qloguniform(0, 700, 1e-10)").find("qloguniform: q=1e-10 is too small") != std::string::npos);
  CHECK(native("qnormal(0, 1e307, 1e-300)").find("qnormal: q=1e-300 is too small") != std::string::npos);
  CHECK(native("uniform(0, 1e999)") == at + "'1e999' is not a number (at character 12 of 'uniform(0, 1e999)')");
  CHECK(err("parameters:\n  p: {expression: uniform, values: [0, .inf]}\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n") ==
        at + "uniform: hi must be finite");
  CHECK(native("loguniform(1, 1)") == at + "loguniform(lo, hi) needs lo < hi, got lo=1 hi=1");
  // randint: an integer 1..2^53 (2^63-1 and 1e300 used to pass and fail once the sweep had been written)
  CHECK(native("randint(1e300)") == at + "randint(upper) needs upper <= 9007199254740992 (2^53), got 1e+300");
  CHECK(native("randint(9223372036854775807)") == at + "randint(upper) needs upper <= 9007199254740992 (2^53), got 9223372036854775807");
  CHECK(native("randint(-3)") == at + "randint(upper) needs an integer upper >= 1, got -3");
  // 1.4e38 is no long long: refused before any conversion (converting it is undefined behaviour)
  CHECK(native("randint(144444444444444444444444444444444444440)").rfind(at + "randint(upper) needs upper <= 9007199254740992 (2^53), got 1.44", 0) == 0);
  CHECK(native("randint(-144444444444444444444444444444444444440)") == at + "randint(upper) needs an integer upper >= 1, got -1.4444444444444444e+38");
  CHECK(parse_config_text("parameters:\n  p: randint(9007199254740992)\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n", "ok.yml")
            .parameters[0]
            .upper == 9007199254740992LL);
  // range() near the integer limits neither overflows nor loops
  SweepConfig edge = parse_config_text(
      "parameters:\n  p: choice(range(9223372036854775800, 9223372036854775807, 5))\n  q: choice(range(-9223372036854775807, -9223372036854775800, 4))\n"
      "primary_metric: {name: a, goal: max}\nmax_total_runs: 5\n",
      "r.yml");
  CHECK(edge.parameters[0].options == std::vector<json>{9223372036854775800LL, 9223372036854775805LL});
  CHECK(edge.parameters[1].options == std::vector<json>{-9223372036854775807LL, -9223372036854775803LL});
  CHECK(native("choice(range(0, 9223372036854775807))") ==
        at + "range() is too large (more than 100000 values) (at character 37 of 'choice(range(0, 9223372036854775807))')");
}

TEST_CASE("sweep config: nesting and size of expressions are bounded with a clear error") {
  auto native = [](const std::string& expr) { return err("parameters:\n  p: \"" + expr + "\"\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n"); };
  auto nested = [](int depth) { return "choice(" + std::string(static_cast<size_t>(depth), '[') + "1" + std::string(static_cast<size_t>(depth), ']') + ")"; };
  // Options nested 32 lists deep are fine, 33 are not (the outer list of choice([...]) only holds the options);
  // 20,000 levels (a stack overflow in a recursive parser) end just as cleanly.
  CHECK(native(nested(33)).empty());
  CHECK(native(nested(32) .replace(6, 1, "(2, ")).empty());
  CHECK(native(nested(33).replace(6, 1, "(2, ")) == "sweep.yml:2:6: key 'parameters.p': choice: the values are nested deeper than 32 levels");
  std::string e34 = native(nested(34));
  CHECK(e34.rfind("sweep.yml:2:6: key 'parameters.p': the expression is nested deeper than 32 levels (at character 41 of '", 0) == 0);
  std::string deep = native(nested(20000));
  CHECK(deep.find("sweep.yml:2:6: key 'parameters.p': the expression is nested deeper than 32 levels") == 0);
  CHECK(deep.size() < 300);  // the expression is not repeated in full
  CHECK(native(nested(600)).find("nested deeper than 32 levels") != std::string::npos);
  // 100,000 levels (200 KB, far below the 4 MB a config may have): a parser that recursed once per '[' without
  // counting overflowed the stack at about 30,000.
  std::string e100k = native(nested(100000));
  CHECK(e100k.rfind("sweep.yml:2:6: key 'parameters.p': the expression is nested deeper than 32 levels (at character 41 of '", 0) == 0);
  CHECK(e100k.size() < 300);
  // the az form and the list form: YAML lists
  auto az = [](const std::string& values) {
    return err("sampling:\n  type: random\n  parameter_space:\n  - name: x\n    expression: choice\n    values: " + values +
               "\nprimary_metric_name: m\nprimary_metric_goal: Maximize\nmax_total_runs: 2\n");
  };
  std::string az_deep = std::string(50, '[') + "1" + std::string(50, ']');
  CHECK(az(az_deep) == "sweep.yml:6:13: key 'sampling.parameter_space[0].values': choice: the values are nested deeper than 32 levels");
  CHECK(err("parameters:\n  p: " + az_deep + "\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n") ==
        "sweep.yml:2:6: key 'parameters.p': choice: the values are nested deeper than 32 levels");
  // Deeper than any config may nest: refused by the config reader itself, before the sweep looks at it.
  std::string yaml_deep = std::string(200, '[') + "1" + std::string(200, ']');
  std::string e200 = err("parameters:\n  p: " + yaml_deep + "\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n");
  CHECK(e200.find("sweep.yml:2:") == 0);
  CHECK(e200.find("key 'parameters.p[0][0]") != std::string::npos);
  CHECK(e200.find("nested more than 100 levels deep") != std::string::npos);
  CHECK(e200.size() < 300);
  // sizes
  std::string many = "choice(";
  for (int i = 0; i <= 100000; ++i) many += (i ? ",1" : "1");
  many += ")";
  CHECK(native(many).find("the expression has more than 100000 values") != std::string::npos);
  std::string many_az = "[";
  for (int i = 0; i <= 100000; ++i) many_az += (i ? ",1" : "1");
  many_az += "]";
  CHECK(az(many_az) == "sweep.yml:6:13: key 'sampling.parameter_space[0].values': choice: more than 100000 values");
  std::string params = "parameters:\n";
  for (int i = 0; i <= 1000; ++i) params += "  p" + std::to_string(i) + ": uniform(0, 1)\n";
  CHECK(err(params + "primary_metric: {name: a, goal: max}\nmax_total_runs: 5\n") == "sweep.yml:2:3: key 'parameters': more than 1000 parameters");
}

TEST_CASE("sweep config: text that is not valid UTF-8 is refused up front") {
  CHECK(err("parameters:\n  p: [\"a\xff\"]\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n") ==
        "sweep.yml:2:9: not valid UTF-8 (byte 0xFF)");
  CHECK(err("parameters:\n  p\xfe: [1]\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n") ==
        "sweep.yml:2:4: not valid UTF-8 (byte 0xFE)");
  CHECK(err("parameters:\n  p: [1]\nprimary_metric: {name: \"a\xfe\", goal: max}\nmax_total_runs: 5\n") ==
        "sweep.yml:3:26: not valid UTF-8 (byte 0xFE)");
}

TEST_CASE("sweep config: every valid configuration survives the record round trip that resume depends on") {
  for (const char* params : {"  p: randint(9007199254740992)\n", "  p: choice([[[[[[1]]]]]], x)\n", "  p: lognormal(600, 12)\n",
                             "  p: qloguniform(-745, 700, 1e-300)\n", "  p: choice(range(9223372036854775800, 9223372036854775807, 5))\n",
                             "  p: normal(-1e300, 1e299)\n"}) {
    CAPTURE(params);
    std::string text = std::string("parameters:\n") + params + "primary_metric: {name: a, goal: max}\nmax_total_runs: 5\n";
    std::string e = err(text);
    if (!e.empty()) {
      CHECK(e.find("too small") != std::string::npos);  // qloguniform with that q is refused, which is also fine
      continue;
    }
    SweepConfig c = parse_config_text(text, "ok.yml");
    SweepConfig back = SweepConfig::from_json(c.to_json());
    CHECK(back.to_json() == c.to_json());
  }
  // the deepest options accepted, in both spellings of choice
  {
    std::string opt = std::string(32, '[') + "1" + std::string(32, ']');
    for (const std::string& expr : {"choice([" + opt + "])", "choice(2, " + opt + ")"}) {
      CAPTURE(expr);
      SweepConfig c = parse_config_text("parameters:\n  p: \"" + expr + "\"\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n", "d.yml");
      CHECK(SweepConfig::from_json(c.to_json()).to_json() == c.to_json());
    }
  }
}

TEST_CASE("sweep config: sampling rules (grid only choice, bayesian set, bayesian + policy)") {
  CHECK(err("parameters:\n  a: choice(1, 2)\n  b: uniform(0, 1)\nsampling: grid\nprimary_metric: {name: m, goal: max}\n") ==
        "sweep.yml:3:6: key 'parameters.b': grid sampling supports only choice; parameter 'b' uses uniform");
  CHECK(err("parameters:\n  a: choice(1, x)\nsampling: grid\nprimary_metric: {name: m, goal: max}\n") ==
        "sweep.yml:2:6: key 'parameters.a': grid sampling needs the options of parameter 'a' to be all strings or all numbers");
  CHECK(err("parameters:\n  a: normal(0, 1)\nsampling: bayesian\nprimary_metric: {name: m, goal: max}\nmax_total_runs: 5\n") ==
        "sweep.yml:2:6: key 'parameters.a': bayesian sampling supports choice, uniform, quniform, randint, loguniform and qloguniform; parameter 'a' uses normal");
  CHECK(err("parameters:\n  a: uniform(0, 1)\nsampling: bayesian\npolicy: {type: MedianStoppingPolicy}\nprimary_metric: {name: m, goal: max}\nmax_total_runs: 5\n") ==
        "sweep.yml:4:9: key 'policy': No early termination policy is currently supported with Bayesian sampling");
  // bayesian accepts the documented set, and NoTerminationPolicy
  SweepConfig ok = parse_config_text(
      "parameters:\n  a: uniform(0, 1)\n  b: quniform(0, 8, 2)\n  c: choice(1, 2)\n  d: randint(5)\n  e: loguniform(-3, 0)\n  f: qloguniform(0, 3, 1)\n"
      "sampling: bayesian\npolicy: {type: NoTerminationPolicy}\nprimary_metric: {name: m, goal: max}\nmax_total_runs: 30\nmax_concurrent_runs: 25\n",
      "b.yml");
  CHECK(ok.sampling == SamplingType::Bayesian);
  CHECK(ok.warnings.size() == 2);  // runs < 20 x params, concurrency > 20
}

TEST_CASE("sweep config: budget and policy ranges") {
  CHECK(err(kNativeHead + "max_concurrent_runs: 0\n") == "sweep.yml:5:22: key 'max_concurrent_runs': must be an integer from 1 to 100, got 0");
  CHECK(err(kNativeHead + "max_concurrent_runs: 101\n") == "sweep.yml:5:22: key 'max_concurrent_runs': must be an integer from 1 to 100, got 101");
  CHECK(err("parameters:\n  lr: uniform(0, 1)\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 1001\n") ==
        "sweep.yml:4:17: key 'max_total_runs': must be an integer from 1 to 1000, got 1001");
  CHECK(err("parameters:\n  lr: uniform(0, 1)\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 0\n") ==
        "sweep.yml:4:17: key 'max_total_runs': must be an integer from 1 to 1000, got 0");
  CHECK(err("parameters:\n  lr: uniform(0, 1)\nprimary_metric: {name: a, goal: max}\n") == "sweep.yml:1:1: max_total_runs is required (an integer from 1 to 1000)");
  CHECK(err(kNativeHead + "max_duration_minutes: 0\n") == "sweep.yml:5:23: key 'max_duration_minutes': must be a number > 0, got 0");
  CHECK(err(kNativeHead + "max_failures: 0\n") == "sweep.yml:5:15: key 'max_failures': must be an integer >= 1, got 0");
  CHECK(err(kNativeHead + "seed: -1\n") == "sweep.yml:5:7: key 'seed': must be an integer >= 0, got -1");
  CHECK(err(kNativeHead + "policy: {type: TruncationSelectionPolicy, truncation_percentage: 100}\n") ==
        "sweep.yml:5:66: key 'policy.truncation_percentage': must be an integer from 1 to 99, got 100");
  CHECK(err(kNativeHead + "policy: {type: TruncationSelectionPolicy}\n") ==
        "sweep.yml:5:9: key 'policy': TruncationSelectionPolicy needs truncation_percentage (an integer 1 to 99)");
  CHECK(err(kNativeHead + "policy: {type: MedianStoppingPolicy, evaluation_interval: 0}\n") ==
        "sweep.yml:5:59: key 'policy.evaluation_interval': must be >= 1, got 0");
  CHECK(err(kNativeHead + "policy: {type: MedianStoppingPolicy, delay_evaluation: -1}\n") ==
        "sweep.yml:5:56: key 'policy.delay_evaluation': must be >= 0, got -1");
  CHECK(err(kNativeHead + "policy: {type: MedianStoppingPolicy, slack_factor: 0.1}\n") ==
        "sweep.yml:5:52: key 'policy.slack_factor': does not apply to MedianStoppingPolicy");
  CHECK(err(kNativeHead + "policy: {type: BanditPolicy, slack_factor: 0}\n") == "sweep.yml:5:44: key 'policy.slack_factor': must be a number > 0, got 0");
  CHECK(err(kNativeHead + "policy: {type: Banditt}\n") == "sweep.yml:5:16: key 'policy.type': unknown policy type 'Banditt'");
  CHECK(err(kNativeHead + "policy: {type: MedianStoppingPolicy, evaluaton_interval: 1}\n") == "sweep.yml:5:38: unknown key 'policy.evaluaton_interval'");
  CHECK(hint(kNativeHead + "policy: {type: MedianStoppingPolicy, evaluaton_interval: 1}\n") == "did you mean 'evaluation_interval'?");
  CHECK(err("parameters:\n  lr: uniform(0, 1)\n  --lr: uniform(0, 2)\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 3\n") ==
        "sweep.yml:3:9: key 'parameters.--lr': parameter '--lr' is the same script argument as 'lr'");
  CHECK(err("parameters: {}\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 3\n") ==
        "sweep.yml:1:13: key 'parameters': Please provide parameter space: at least one parameter");
  CHECK(err("parameters:\n  lr: uniform(0, 1)\nprimary_metric: {name: a}\nmax_total_runs: 3\n") == "sweep.yml:3:17: key 'primary_metric.goal': is required");
  CHECK(err("parameters:\n  lr: uniform(0, 1)\nsampling: sobol\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 3\n") ==
        "sweep.yml:3:11: key 'sampling': expected random, grid or bayesian, got 'sobol'");
}

TEST_CASE("sweep config: a recorded configuration is read back directly, with the file's checks naming the key") {
  SweepConfig c = parse_config_text("parameters:\n  x: uniform(0, 1)\nprimary_metric: {name: a, goal: max}\nmax_total_runs: 5\n", "ok.yml");
  json j = c.to_json();
  j["sampling"]["parameter_space"][0] = {{"name", "x"}, {"expression", "normal"}, {"values", {0, 0}}};  // accepted once, refused now
  try {
    (void)SweepConfig::from_json(j);
    FAIL("no error");
  } catch (const amlc::Error& e) {
    CHECK(e.kind() == amlc::ErrorKind::Usage);
    // No text was parsed, so no line:col: the source and the key.
    CHECK(std::string(e.what()).rfind("the sweep's recorded configuration (from ok.yml): key 'sampling.parameter_space[0]", 0) == 0);
    CHECK(std::string(e.what()).find("normal needs sigma > 0") != std::string::npos);
  }
  json junk = c.to_json();
  junk.erase("maxTotalRuns");
  try {
    (void)SweepConfig::from_json(junk);
    FAIL("no error");
  } catch (const amlc::Error& e) {
    CHECK(e.kind() == amlc::ErrorKind::Damaged);
  }
}
