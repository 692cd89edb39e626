// Sweep configuration files (config.hpp): the az and native forms, the policy block, the sampling rules and budgets,
// and the recorded form read back for resume. Expressions are expression.cpp.
#include "amlc/sweep/config.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "amlc/core/error.hpp"
#include "amlc/core/util.hpp"

namespace amlc::sweep {

const char* sampling_name(SamplingType t) {
  switch (t) {
    case SamplingType::Random: return "random";
    case SamplingType::Grid: return "grid";
    case SamplingType::Bayesian: return "bayesian";
  }
  return "random";
}
const char* goal_name(Goal g) { return g == Goal::Maximize ? "Maximize" : "Minimize"; }
const char* policy_name(PolicyType t) {
  switch (t) {
    case PolicyType::None: return "NoTerminationPolicy";
    case PolicyType::Bandit: return "BanditPolicy";
    case PolicyType::MedianStopping: return "MedianStoppingPolicy";
    case PolicyType::TruncationSelection: return "TruncationSelectionPolicy";
  }
  return "NoTerminationPolicy";
}

json PolicyConfig::to_json() const {
  json j{{"type", policy_name(type)}};
  if (type == PolicyType::None) return j;
  j["evaluation_interval"] = evaluation_interval;
  j["delay_evaluation"] = delay_evaluation;
  if (type == PolicyType::Bandit) {
    if (slack_factor) j["slack_factor"] = *slack_factor;
    if (slack_amount) j["slack_amount"] = *slack_amount;
  }
  if (type == PolicyType::TruncationSelection) {
    j["truncation_percentage"] = truncation_percentage;
    j["exclude_finished_jobs"] = exclude_finished_jobs;
  }
  return j;
}

json SweepConfig::to_json() const {
  json params = json::array();
  for (const auto& p : parameters) params.push_back(p.to_json());
  json j{{"source", source},
         {"sampling", {{"type", sampling_name(sampling)}, {"parameter_space", params}}},
         {"policy", policy.to_json()},
         {"primaryMetricName", primary_metric_name},
         {"primaryMetricGoal", goal_name(goal)},
         {"maxTotalRuns", max_total_runs},
         {"maxConcurrentRuns", max_concurrent_runs},
         {"maxDurationMinutes", max_duration_minutes ? json(*max_duration_minutes) : json(nullptr)},
         {"maxFailures", max_failures},
         {"seed", seed ? json(*seed) : json(nullptr)},
         {"warnings", warnings}};
  return j;
}

SweepConfig SweepConfig::from_json(const json& j) {
  // The journal stores to_json(): read it back through the normal parser (a Document over the JSON itself, no text
  // in between), so a damaged or no longer accepted configuration is caught by the same checks as a file.
  try {
    json az;
    az["sampling"] = {{"type", j.at("sampling").at("type")}, {"parameter_space", j.at("sampling").at("parameter_space")}};
    az["policy"] = j.at("policy");
    az["primary_metric_name"] = j.at("primaryMetricName");
    az["primary_metric_goal"] = j.at("primaryMetricGoal");
    az["max_total_runs"] = j.at("maxTotalRuns");
    az["max_concurrent_runs"] = j.at("maxConcurrentRuns");
    if (!j.at("maxDurationMinutes").is_null()) az["max_duration_minutes"] = j.at("maxDurationMinutes");
    az["max_failures"] = j.at("maxFailures");
    if (!j.at("seed").is_null()) az["seed"] = j.at("seed");
    for (auto& p : az["sampling"]["parameter_space"])
      if (p.at("expression") == "choice") p["values"] = json::array({p.at("values")});
    SweepConfig c = parse_config(config::Document("the sweep's recorded configuration (from " + j.value("source", std::string("?")) + ")",
                                                  std::move(az), {}));
    c.source = j.value("source", c.source);
    return c;
  } catch (const json::exception& e) {
    fail(ErrorKind::Damaged, std::string("the sweep configuration recorded in the journal is damaged: ") + e.what());
  }
}

namespace {

std::optional<SamplingType> parse_sampling(std::string s) {
  s = to_lower(trim(s));
  if (s == "random") return SamplingType::Random;
  if (s == "grid") return SamplingType::Grid;
  if (s == "bayesian" || s == "bayesianoptimization") return SamplingType::Bayesian;
  return std::nullopt;
}

PolicyConfig parse_policy(const config::Document& doc) {
  PolicyConfig p;
  const json* node = doc.find("/policy");
  if (!node || node->is_null()) return p;
  doc.check_keys("/policy", {"type", "evaluation_interval", "delay_evaluation", "slack_factor", "slack_amount",
                             "truncation_percentage", "exclude_finished_jobs"});
  std::string type = doc.get_string("/policy/type").value_or("NoTerminationPolicy");
  std::string t = to_lower(trim(type));
  if (t.size() > 6 && t.substr(t.size() - 6) == "policy") t = t.substr(0, t.size() - 6);
  if (t == "bandit") p.type = PolicyType::Bandit;
  else if (t == "medianstopping" || t == "median") p.type = PolicyType::MedianStopping;
  else if (t == "truncationselection" || t == "truncation") p.type = PolicyType::TruncationSelection;
  else if (t == "notermination" || t == "none" || t == "default") p.type = PolicyType::None;
  else {
    std::vector<std::string> names{"BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy", "NoTerminationPolicy"};
    std::string s = closest_match(type, names);
    doc.error("/policy/type", "unknown policy type '" + type + "'",
              s.empty() ? "use one of: " + join(names, ", ") : "did you mean '" + s + "'?");
  }
  auto not_for = [&](const char* key) {
    if (doc.find(std::string("/policy/") + key))
      doc.error(std::string("/policy/") + key, std::string("does not apply to ") + policy_name(p.type), "remove it");
  };
  if (p.type == PolicyType::None) {
    for (const char* k : {"evaluation_interval", "delay_evaluation", "slack_factor", "slack_amount", "truncation_percentage", "exclude_finished_jobs"})
      not_for(k);
    return p;
  }
  if (auto v = doc.get_int("/policy/evaluation_interval")) {
    if (*v < 1) doc.error("/policy/evaluation_interval", "must be >= 1, got " + std::to_string(*v));
    if (*v > 1000000) doc.error("/policy/evaluation_interval", "is too large (at most 1000000)");
    p.evaluation_interval = static_cast<int>(*v);
  }
  if (auto v = doc.get_int("/policy/delay_evaluation")) {
    if (*v < 0) doc.error("/policy/delay_evaluation", "must be >= 0, got " + std::to_string(*v));
    if (*v > 1000000) doc.error("/policy/delay_evaluation", "is too large (at most 1000000)");
    p.delay_evaluation = static_cast<int>(*v);
  }
  if (p.type != PolicyType::Bandit) {
    not_for("slack_factor");
    not_for("slack_amount");
  }
  if (p.type != PolicyType::TruncationSelection) {
    not_for("truncation_percentage");
    not_for("exclude_finished_jobs");
  }
  if (p.type == PolicyType::Bandit) {
    p.slack_factor = doc.get_number("/policy/slack_factor");
    p.slack_amount = doc.get_number("/policy/slack_amount");
    if (p.slack_factor && p.slack_amount)
      doc.error("/policy/slack_amount", "BanditPolicy takes slack_factor or slack_amount, not both", "remove one of them");
    if (!p.slack_factor && !p.slack_amount)
      doc.error("/policy", "Please provide a slack factor or slack amount for BanditPolicy",
                "add slack_factor: 0.1 (a run is canceled below best/(1+0.1)) or slack_amount: 0.05");
    if (p.slack_factor && !(*p.slack_factor > 0 && std::isfinite(*p.slack_factor)))
      doc.error("/policy/slack_factor", "must be a number > 0, got " + exact_number(*p.slack_factor));
    if (p.slack_amount && !(*p.slack_amount >= 0 && std::isfinite(*p.slack_amount)))
      doc.error("/policy/slack_amount", "must be a number >= 0, got " + exact_number(*p.slack_amount));
  }
  if (p.type == PolicyType::TruncationSelection) {
    auto v = doc.get_int("/policy/truncation_percentage");
    if (!v) doc.error("/policy", "TruncationSelectionPolicy needs truncation_percentage (an integer 1 to 99)", "add truncation_percentage: 20");
    if (*v < 1 || *v > 99) doc.error("/policy/truncation_percentage", "must be an integer from 1 to 99, got " + std::to_string(*v));
    p.truncation_percentage = static_cast<int>(*v);
    p.exclude_finished_jobs = doc.get_bool("/policy/exclude_finished_jobs").value_or(false);
  }
  return p;
}

Goal parse_goal(const config::Document& doc, const std::string& pointer) {
  std::string g = doc.require_string(pointer);
  std::string l = to_lower(trim(g));
  if (l == "maximize" || l == "max") return Goal::Maximize;
  if (l == "minimize" || l == "min") return Goal::Minimize;
  doc.error(pointer, "expected Maximize or Minimize, got '" + g + "'");
}

void validate_grid_option(const config::Document& doc, const std::string& where, const Parameter& p) {
  bool any_string = false, all_string = true;
  for (const auto& o : p.options) {
    if (!(o.is_string() || (o.is_number() && !o.is_boolean())))
      doc.error(where, "grid sampling needs choice options that are integers, floats or strings; parameter '" + p.name +
                           "' has " + o.dump());
    any_string |= o.is_string();
    all_string &= o.is_string();
  }
  if (any_string && !all_string)
    doc.error(where, "grid sampling needs the options of parameter '" + p.name + "' to be all strings or all numbers");
}

}  // namespace

SweepConfig parse_config(const config::Document& doc) {
  SweepConfig c;
  c.source = doc.source();
  if (!doc.root().is_object()) doc.error("", "a sweep file must be a mapping (sampling:, policy:, primary_metric_name:, ...)");
  bool native = doc.find("/parameters") != nullptr;
  std::vector<std::string> param_where;  // pointer for each parameter (errors)

  if (native) {
    doc.check_keys("", {"parameters", "sampling", "policy", "primary_metric", "primary_metric_name", "primary_metric_goal",
                        "max_total_runs", "max_concurrent_runs", "max_duration_minutes", "max_failures", "seed"});
    const json* s = doc.find("/sampling");
    if (!s || s->is_null()) {
      c.sampling = SamplingType::Random;
    } else if (s->is_object()) {
      doc.check_keys("/sampling", {"type"});
      std::string t = doc.require_string("/sampling/type");
      auto st = parse_sampling(t);
      if (!st) doc.error("/sampling/type", "expected random, grid or bayesian, got '" + t + "'");
      c.sampling = *st;
    } else {
      std::string t = doc.require_string("/sampling");
      auto st = parse_sampling(t);
      if (!st) doc.error("/sampling", "expected random, grid or bayesian, got '" + t + "'");
      c.sampling = *st;
    }
    const json& params = *doc.find("/parameters");
    if (!params.is_object()) doc.error("/parameters", "expected a mapping of parameter name to expression, e.g. learning_rate: uniform(0.05, 0.1)");
    if (params.empty()) doc.error("/parameters", "Please provide parameter space: at least one parameter", "add e.g. learning_rate: uniform(0.05, 0.1)");
    if (params.size() > kMaxParameters) doc.error("/parameters", "more than " + std::to_string(kMaxParameters) + " parameters");
    // nlohmann::json objects are sorted by key; recover file order from the marks.
    std::vector<std::pair<std::pair<int, int>, std::string>> ordered;
    for (const auto& [key, value] : params.items()) {
      auto m = doc.key_mark("/parameters/" + config::pointer_token(key));
      ordered.push_back({{m.line, m.col}, key});
    }
    std::sort(ordered.begin(), ordered.end());
    for (const auto& [pos, key] : ordered) {
      std::string ptr = "/parameters/" + config::pointer_token(key);
      const json& v = params.at(key);
      Parameter p;
      p.name = key;
      if (v.is_string()) {
        parse_expression(doc, ptr, v.get<std::string>(), p);
      } else if (v.is_array()) {
        p.kind = ExprKind::Choice;
        build_parameter(doc, ptr, p, std::vector<ExprArg>{ExprArg{v, true}});
      } else if (v.is_object()) {
        doc.check_keys(ptr, {"expression", "values"});
        std::string e = doc.require_string(ptr + "/expression");
        const json* vals = doc.find(ptr + "/values");
        if (!vals || !vals->is_array()) doc.error(ptr + "/values", "expected a list of the expression's arguments");
        std::vector<ExprArg> args;
        for (const auto& a : *vals) args.push_back({a, a.is_array()});
        p.kind = expression_kind(doc, ptr + "/expression", e);
        build_parameter(doc, ptr, p, args);
      } else {
        doc.error(ptr, "expected an expression string such as uniform(0.05, 0.1) or a list of choices");
      }
      c.parameters.push_back(std::move(p));
      param_where.push_back(ptr);
    }
    if (doc.find("/primary_metric")) {
      if (doc.find("/primary_metric_name") || doc.find("/primary_metric_goal"))
        doc.error("/primary_metric", "give primary_metric: {name, goal} or primary_metric_name/primary_metric_goal, not both");
      const json* pm = doc.find("/primary_metric");
      if (pm->is_string()) doc.error("/primary_metric", "expected a mapping {name: accuracy, goal: maximize}");
      doc.check_keys("/primary_metric", {"name", "goal"});
      c.primary_metric_name = doc.require_string("/primary_metric/name");
      c.goal = parse_goal(doc, "/primary_metric/goal");
    } else {
      if (!doc.find("/primary_metric_name")) doc.error("", "primary_metric is required", "add primary_metric: {name: accuracy, goal: maximize}");
      c.primary_metric_name = doc.require_string("/primary_metric_name");
      c.goal = parse_goal(doc, "/primary_metric_goal");
    }
  } else {
    doc.check_keys("", {"sampling", "policy", "primary_metric_name", "primary_metric_goal", "max_total_runs", "max_concurrent_runs",
                        "max_duration_minutes", "max_failures", "seed"});
    if (!doc.find("/sampling")) doc.error("", "sampling is required (or use the native form with parameters:)",
                                          "add sampling: {type: random, parameter_space: [...]}");
    const json* s = doc.find("/sampling");
    if (!s->is_object()) doc.error("/sampling", "expected a mapping with type and parameter_space");
    doc.check_keys("/sampling", {"type", "parameter_space"});
    auto t = doc.get_string("/sampling/type");
    if (!t) doc.error("/sampling", "Please provide hyperparameter sampling type: random, grid or bayesian", "add type: random");
    auto st = parse_sampling(*t);
    if (!st) doc.error("/sampling/type", "expected random, grid or bayesian, got '" + *t + "'");
    c.sampling = *st;
    const json* ps = doc.find("/sampling/parameter_space");
    if (!ps || ps->is_null() || (ps->is_array() && ps->empty()))
      doc.error(ps ? "/sampling/parameter_space" : "/sampling", "Please provide parameter space: a list of {name, expression, values}",
                "add parameter_space: [{name: --learning_rate, expression: uniform, values: [0.05, 0.1]}]");
    if (!ps->is_array()) doc.error("/sampling/parameter_space", "expected a list of {name, expression, values}");
    if (ps->size() > kMaxParameters) doc.error("/sampling/parameter_space", "more than " + std::to_string(kMaxParameters) + " parameters");
    for (size_t i = 0; i < ps->size(); ++i) {
      std::string ptr = "/sampling/parameter_space/" + std::to_string(i);
      if (!(*ps)[i].is_object()) doc.error(ptr, "expected a mapping {name, expression, values}");
      doc.check_keys(ptr, {"name", "expression", "values"});
      Parameter p;
      p.name = doc.require_string(ptr + "/name");
      if (trim(p.name).empty()) doc.error(ptr + "/name", "must not be empty");
      p.kind = expression_kind(doc, ptr + "/expression", doc.require_string(ptr + "/expression"));
      const json* vals = doc.find(ptr + "/values");
      if (!vals) doc.error(ptr, "values is required (the expression's arguments as a list)");
      std::vector<ExprArg> args;
      if (vals->is_array()) {
        for (const auto& a : *vals) args.push_back({a, a.is_array()});
      } else {
        args.push_back({*vals, false});
      }
      build_parameter(doc, ptr + "/values", p, args);
      c.parameters.push_back(std::move(p));
      param_where.push_back(ptr);
    }
    if (!doc.find("/primary_metric_name")) doc.error("", "primary_metric_name is required", "add primary_metric_name: accuracy");
    c.primary_metric_name = doc.require_string("/primary_metric_name");
    if (!doc.find("/primary_metric_goal")) doc.error("", "primary_metric_goal is required", "add primary_metric_goal: Maximize");
    c.goal = parse_goal(doc, "/primary_metric_goal");
  }
  if (trim(c.primary_metric_name).empty())
    doc.error(native && doc.find("/primary_metric") ? "/primary_metric/name" : "/primary_metric_name", "must not be empty");

  // (Text that is not UTF-8, which the sweep record and journal could not hold, never gets here: config::parse
  // refuses it at its line:col.)
  // Parameter names: unique once leading '-' are stripped.
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < c.parameters.size(); ++i) {
    std::string bare = bare_parameter_name(c.parameters[i].name);
    if (bare.empty()) doc.error(param_where[i], "parameter name '" + c.parameters[i].name + "' has no letters after the dashes");
    auto [it, inserted] = seen.emplace(bare, i);
    if (!inserted)
      doc.error(param_where[i], "parameter '" + c.parameters[i].name + "' is the same script argument as '" + c.parameters[it->second].name + "'",
                "remove one of them");
  }

  c.policy = parse_policy(doc);

  // Sampling-specific rules.
  for (size_t i = 0; i < c.parameters.size(); ++i) {
    const Parameter& p = c.parameters[i];
    if (c.sampling == SamplingType::Grid) {
      if (p.kind != ExprKind::Choice)
        doc.error(param_where[i], std::string("grid sampling supports only choice; parameter '") + p.name + "' uses " + expr_name(p.kind),
                  "use random or bayesian sampling, or turn it into choice(...)");
      validate_grid_option(doc, param_where[i], p);
    }
    if (c.sampling == SamplingType::Bayesian) {
      bool ok = p.kind == ExprKind::Choice || p.kind == ExprKind::Uniform || p.kind == ExprKind::QUniform || p.kind == ExprKind::RandInt ||
                p.kind == ExprKind::LogUniform || p.kind == ExprKind::QLogUniform;
      if (!ok)
        doc.error(param_where[i], std::string("bayesian sampling supports choice, uniform, quniform, randint, loguniform and qloguniform; parameter '") +
                                      p.name + "' uses " + expr_name(p.kind),
                  "use random sampling, or a uniform/loguniform range");
    }
  }
  if (c.sampling == SamplingType::Bayesian && c.policy.type != PolicyType::None)
    doc.error("/policy", "No early termination policy is currently supported with Bayesian sampling",
              "remove the policy block or use random sampling");

  // Budgets.
  long long grid = c.sampling == SamplingType::Grid ? grid_size(c.parameters) : 0;
  if (auto v = doc.get_int("/max_total_runs")) {
    if (*v < 1 || *v > 1000) doc.error("/max_total_runs", "must be an integer from 1 to 1000, got " + std::to_string(*v));
    c.max_total_runs = static_cast<int>(*v);
  } else if (c.sampling == SamplingType::Grid) {
    c.max_total_runs = static_cast<int>(std::min<long long>(grid, 1000));
    if (grid > 1000) c.warnings.push_back("the grid has " + std::to_string(grid) + " points; only the first 1000 run (max_total_runs defaults to min(grid size, 1000))");
  } else {
    doc.error("", "max_total_runs is required (an integer from 1 to 1000)", "add max_total_runs: 20");
  }
  if (c.sampling == SamplingType::Grid && grid > c.max_total_runs && doc.find("/max_total_runs"))
    c.warnings.push_back("the grid has " + std::to_string(grid) + " points; max_total_runs " + std::to_string(c.max_total_runs) + " runs only the first ones");
  if (auto v = doc.get_int("/max_concurrent_runs")) {
    if (*v < 1 || *v > 100) doc.error("/max_concurrent_runs", "must be an integer from 1 to 100, got " + std::to_string(*v));
    c.max_concurrent_runs = static_cast<int>(*v);
  } else {
    c.max_concurrent_runs = std::min(c.max_total_runs, 100);
  }
  if (auto v = doc.get_number("/max_duration_minutes")) {
    if (!(*v > 0) || !std::isfinite(*v)) doc.error("/max_duration_minutes", "must be a number > 0, got " + exact_number(*v));
    if (*v > 10080) {
      c.warnings.push_back("max_duration_minutes " + exact_number(*v) + " is above the limit of 10080 (7 days); using 10080");
      c.max_duration_minutes = 10080;
    } else {
      c.max_duration_minutes = *v;
    }
  }
  if (auto v = doc.get_int("/max_failures")) {
    if (*v < 1) doc.error("/max_failures", "must be an integer >= 1, got " + std::to_string(*v));
    c.max_failures = static_cast<int>(std::min<long long>(*v, 1000000));
  } else {
    c.max_failures = std::min(c.max_total_runs, std::max(3, c.max_total_runs / 4));
  }
  if (const json* sv = doc.find("/seed"); sv && !sv->is_null()) {
    if (sv->is_number_unsigned()) c.seed = sv->get<std::uint64_t>();
    else if (sv->is_number_integer() && sv->get<long long>() >= 0) c.seed = static_cast<std::uint64_t>(sv->get<long long>());
    else doc.error("/seed", "must be an integer >= 0, got " + sv->dump());
  }
  if (c.sampling == SamplingType::Bayesian) {
    size_t n = c.parameters.size();
    if (static_cast<size_t>(c.max_total_runs) < 20 * n)
      c.warnings.push_back("bayesian sampling works best with max_total_runs >= 20 x the number of parameters (" + std::to_string(20 * n) + ")");
    if (c.max_concurrent_runs > 20)
      c.warnings.push_back("bayesian sampling converges better with max_concurrent_runs <= 20: each new sample learns from more finished runs");
  }
  return c;
}

std::string bare_parameter_name(const std::string& name) { return name.substr(std::min(name.find_first_not_of('-'), name.size())); }

SweepConfig load_config(const std::filesystem::path& path) { return parse_config(config::load_file(path)); }

SweepConfig parse_config_text(const std::string& text, const std::string& source_name) {
  return parse_config(config::parse(text, source_name));
}

}  // namespace amlc::sweep
