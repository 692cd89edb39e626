// Sweep (HyperDrive) configuration files: parsing, validation and the normalised SweepConfig, with its recorded form
// (to_json/from_json). The parameter expressions inside are expression.hpp; how parameters become script arguments
// is arguments.hpp.
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
// Expressions and their checks: expression.hpp.
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
#include "amlc/sweep/expression.hpp"

namespace amlc::sweep {

using json = nlohmann::json;

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

// A parameter's name without its leading dashes ("--lr" -> "lr"): two parameters (or a parameter and a base
// argument) with the same bare name are the same script argument.
std::string bare_parameter_name(const std::string& name);

}  // namespace amlc::sweep
