// Sweep (HyperDrive) configuration: parsing, validation and the normalised SweepConfig.
//
// Two input forms are accepted (YAML or JSON, loaded with amlc::config::Document so every error carries
// file:line:col and the key path):
//
// (a) az ml v1's HyperDrive YAML for `run submit-hyperdrive` (reference §2.3):
//       sampling: {type: random|grid|bayesian (case-insensitive), parameter_space: [{name, expression, values}]}
//       policy: {type: BanditPolicy|MedianStoppingPolicy|TruncationSelectionPolicy|NoTerminationPolicy,
//                evaluation_interval, delay_evaluation, slack_factor, slack_amount, truncation_percentage,
//                exclude_finished_jobs}          (optional here; az requires it; absent = NoTerminationPolicy)
//       primary_metric_name, primary_metric_goal: Maximize|Minimize (case-insensitive)
//       max_total_runs, max_concurrent_runs, max_duration_minutes
//     `values` are the positional arguments of the expression, exactly as az ml passes them:
//     choice's `values: [16, 32, 64]` is choice(16, 32, 64); `values: [[16, 32, 64]]` is choice([16,32,64]),
//     which (as in the SDK) means the same three options.
//
// (b) the native form, chosen when the top level has `parameters:`:
//       parameters: {learning_rate: "uniform(0.05, 0.1)", batch: "choice(16, 32, 64)",
//                    n: "choice(range(1, 10, 2))", opt: [adam, sgd]  (a plain list = choice)}
//       sampling: random | {type: random}
//       policy: same mapping as az
//       primary_metric: {name, goal}   (or the az keys primary_metric_name/primary_metric_goal)
//       max_total_runs, max_concurrent_runs, max_duration_minutes, max_failures, seed
//     Both forms also accept the amlc extensions `max_failures` and `seed`.
//
// Expressions (reference §3): choice(opts...) (one list/range argument = its elements are the options;
// otherwise each argument, lists included, is one option), randint(upper) in [0, upper),
// uniform(lo, hi), quniform(lo, hi, q) = round(uniform(lo, hi)/q)*q, loguniform(lo, hi) = exp(uniform(lo, hi)),
// qloguniform(lo, hi, q) = round(exp(uniform(lo, hi))/q)*q, normal(mu, sigma), qnormal(mu, sigma, q),
// lognormal(mu, sigma) = exp(normal(mu, sigma)), qlognormal(mu, sigma, q). Rounding is half-to-even
// (numpy.round). Quantised values are integers when q is a whole number, floats otherwise.
// Checks (all at submit time, so that sampling a valid configuration can neither fail nor produce a non-finite
// number): every number finite; lo < hi with hi - lo finite; sigma > 0 with mu +- 9 sigma finite; q > 0 with
// round(value / q) * q finite over the whole range; loguniform bounds in [-745, 700] and lognormal's
// mu + 9 sigma <= 709 (exp stays finite); randint's upper an integer in 1..2^53; choice non-empty; range step
// != 0 and non-empty; text valid UTF-8. Sizes: the values of one expression nest at most kMaxExpressionDepth
// lists deep and hold at most kMaxExpressionValues values (range() included); at most kMaxParameters parameters.
//
// Validation (HyperDrive rules, plus what amlc's samplers can do):
//   - grid: only choice (error names the parameter); options must be int, float or string, and either all
//     or none strings. max_total_runs defaults to the grid size (capped at 1000) and caps the grid.
//   - bayesian: choice, uniform, quniform (HyperDrive's set) AND randint, loguniform, qloguniform (amlc's
//     model-based samplers handle them: randint as an integer dimension, loguniform/qloguniform on the log
//     scale, quniform/qloguniform rounded on output, choice as a categorical dimension).
//     normal, qnormal, lognormal, qlognormal are errors. Any early-termination policy other than
//     NoTerminationPolicy is an error ("No early termination policy is currently supported with Bayesian
//     sampling"). Warnings (not errors) as the SDK: max_total_runs < 20 x parameters, max_concurrent_runs > 20.
//   - max_total_runs 1..1000 (required except for grid); max_concurrent_runs 1..100, default
//     min(max_total_runs, 100); max_duration_minutes > 0, values above 10080 are capped with a warning,
//     absent = no limit; max_failures >= 1, default max(3, max_total_runs / 4) capped at max_total_runs
//     (the sweep stops creating trials once that many trials failed; Katib's maxFailedTrialCount);
//     seed: any integer >= 0 (absent = chosen at sweep start and recorded in the journal).
//   - policy: evaluation_interval >= 1 (default 1), delay_evaluation >= 0 (default 0); Bandit needs exactly
//     one of slack_factor (> 0) / slack_amount (>= 0); TruncationSelection needs truncation_percentage 1..99;
//     a key that does not apply to the policy type is an error.
//   - unknown keys are errors with a did-you-mean hint; parameter names must be unique once leading '-'
//     are stripped (they become the same script argument).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/config/document.hpp"

namespace amlc::sweep {

using json = nlohmann::json;

inline constexpr int kMaxExpressionDepth = 32;
inline constexpr size_t kMaxExpressionValues = 100000;
inline constexpr long long kMaxRandIntUpper = 1LL << 53;
inline constexpr size_t kMaxParameters = 1000;

enum class ExprKind { Choice, RandInt, Uniform, QUniform, LogUniform, QLogUniform, Normal, QNormal, LogNormal, QLogNormal };
const char* expr_name(ExprKind kind);

struct Parameter {
  std::string name;             // as written ("--penalty" or "learning_rate")
  ExprKind kind = ExprKind::Choice;
  std::vector<json> options;    // choice
  double a = 0, b = 0, q = 0;   // uniform-like: lo, hi; normal-like: mu, sigma; q for the quantised ones
  long long upper = 0;          // randint
  json to_json() const;         // {"name", "expression", "values"} (az form, expanded choice options)
  bool quantised() const;
};

enum class SamplingType { Random, Grid, Bayesian };
enum class Goal { Maximize, Minimize };
enum class PolicyType { None, Bandit, MedianStopping, TruncationSelection };
const char* sampling_name(SamplingType t);  // "random" | "grid" | "bayesian"
const char* goal_name(Goal g);              // "Maximize" | "Minimize"
const char* policy_name(PolicyType t);      // az names: "BanditPolicy", ... "NoTerminationPolicy"

struct PolicyConfig {
  PolicyType type = PolicyType::None;
  int evaluation_interval = 1;
  int delay_evaluation = 0;
  std::optional<double> slack_factor;     // Bandit: exactly one of these two
  std::optional<double> slack_amount;
  int truncation_percentage = 0;          // TruncationSelection
  bool exclude_finished_jobs = false;     // TruncationSelection
  json to_json() const;
};

struct SweepConfig {
  std::string source;                     // file name it came from
  SamplingType sampling = SamplingType::Random;
  std::vector<Parameter> parameters;      // in file order
  PolicyConfig policy;
  std::string primary_metric_name;
  Goal goal = Goal::Maximize;
  int max_total_runs = 0;
  int max_concurrent_runs = 0;
  std::optional<double> max_duration_minutes;
  int max_failures = 0;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> warnings;      // non-fatal remarks (capped duration, bayesian budget...)

  json to_json() const;                   // normalised, camelCase keys where az ml has them
  // Inverse of to_json (for the journal), with every check of parse_config: Damaged on junk, Usage for a
  // configuration the checks refuse (errors name the key, not a line).
  static SweepConfig from_json(const json& j);
};

SweepConfig parse_config(const config::Document& doc);
SweepConfig load_config(const std::filesystem::path& path);
SweepConfig parse_config_text(const std::string& text, const std::string& source_name);

// Parses one native expression string ("uniform(0.05, 0.1)") into `out` (name preset). Errors via doc at pointer.
void parse_expression(const config::Document& doc, const std::string& pointer, const std::string& text, Parameter& out);

// Number of grid points (product of choice sizes), saturating at 2^62.
long long grid_size(const std::vector<Parameter>& params);

// Script arguments for one trial's parameters, in the config's parameter order:
// "--name" (or the name verbatim when it already starts with '-') followed by the formatted value.
std::vector<std::string> script_arguments(const SweepConfig& cfg, const json& params);
// Same, in the object's own key order.
std::vector<std::string> script_arguments(const json& params);
// Value formatting: integers as integers; floats as the shortest string that round-trips, with ".0"
// added to whole numbers (Python repr: 1.0, 0.1, 1e-05 -> "1e-05"); strings verbatim; true/false/null as
// Python's True/False/None; lists and mappings as compact JSON.
std::string format_value(const json& v);
std::string argument_name(const std::string& name);  // "lr" -> "--lr", "-x" -> "-x"

}  // namespace amlc::sweep
