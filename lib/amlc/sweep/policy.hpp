// Early-termination policies (HyperDrive semantics, reference §3), as a pure function of the metric
// series reported so far. The scheduler calls decide() whenever new primary-metric values arrive and
// cancels the runs it returns; every decision carries the numbers it was based on.
//
// Definitions (interval k = the k-th value a run reported for the primary metric, 1-based):
//   Evaluation points: k >= 1, k % evaluation_interval == 0 and k >= delay_evaluation.
//   A run that is still running and has reported N values is evaluated at E = the largest evaluation point
//   <= N (if any). Using "largest <= N" rather than "== N" means a run that reported several values
//   between two decide() calls is still evaluated; decide() is idempotent for unchanged input.
//   The comparison population at E = every run (running, finished, canceled or failed; the run itself
//   included) that reported at least E values; TruncationSelection with exclude_finished_jobs drops
//   runs that are no longer running (the evaluated run is always in).
//   Runs that are not running are never canceled. NaN/inf values are ignored when computing the
//   population statistics; a running run whose value at E is NaN is canceled by every policy (rule "nan").
//
//   Bandit: v = the run's value at E; best = the best value at E over the population (per goal).
//     slack_factor s: maximize: cutoff = best / (1 + s); minimize: cutoff = best * (1 + s).
//       (For a negative best these formulas would put the cutoff on the wrong side of best; amlc then
//       uses the mirror: maximize best * (1 + s), minimize best / (1 + s), so the cutoff is always no
//       better than best. An interpretation: Azure documents only positive metrics.)
//     slack_amount a: maximize: cutoff = best - a; minimize: cutoff = best + a.
//     Cancel when v is strictly worse than cutoff (v < cutoff maximizing, v > cutoff minimizing).
//   MedianStopping: b = the run's best value over intervals 1..E; for every run in the population its
//     running average over intervals 1..E; median = the median of those averages (the mean of the two
//     middle ones for an even count). Cancel when b is strictly worse than the median.
//   TruncationSelection: values at E over the population (count n); k = floor(n * pct / 100). Cancel when
//     the run is in the bottom k for certain: the number of runs strictly better than it is >= n - k
//     (ties at the boundary are kept). cutoff = the k-th worst value.
//   NoTerminationPolicy: never cancels.
#pragma once

#include <string>
#include <vector>

#include "amlc/sweep/config.hpp"

namespace amlc::sweep {

struct RunSeries {
  int run = 0;                  // trial index
  std::vector<double> values;   // primary metric, one per interval (values[k-1] is interval k)
  bool running = true;          // false once finished (Completed, Failed, Canceled)
};

struct Decision {
  int run = 0;
  int interval = 0;             // E, 1-based
  std::string rule;             // "bandit_slack_factor" | "bandit_slack_amount" | "median_stopping" | "truncation_selection" | "nan"
  json numbers;                 // the values used: value, best, cutoff, median, count, ...
  std::string reason;           // one human sentence with the numbers
  json to_json() const;
};

// The evaluation point for a run that reported n values, or 0 when none applies yet.
int evaluation_point(const PolicyConfig& policy, int n);

std::vector<Decision> decide(const PolicyConfig& policy, const std::vector<RunSeries>& runs, Goal goal);

// Whether `a` is strictly better than `b` for the goal.
bool is_better(double a, double b, Goal goal);

// Best value of a series per goal (NaNs ignored); nullopt when empty/all-NaN. Used for trial values.
std::optional<double> best_value(const std::vector<double>& values, Goal goal);

}  // namespace amlc::sweep
