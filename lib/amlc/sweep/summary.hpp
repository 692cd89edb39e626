// What a sweep's record and journal say, for people and for the end of a sweep: the summaries behind `sweep show`,
// `sweep list` and `sweep best` (read-only: no lock, nothing written), and the status and error a sweep whose
// scheduler stopped ends with.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/sweep/config.hpp"
#include "amlc/sweep/journal.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::sweep {

// The sweep record with the trial counts and best run computed from the journal:
// {sweepId, status, experimentName, primaryMetric {name, goal}, bestRunId, bestMetric, bestParameters,
//  trials {total, completed, failed, canceled, running, queued}, config, seed, createdUtc, startTimeUtc,
//  endTimeUtc, error, stopReason, ...}. With `with_trials`, "trialRuns": every trial sorted by its best primary
// metric (goal-aware; trials without a value last): {index, runId, status, parameters, bestMetric, attempts,
// canceledReason, earlyTermination}.
json sweep_summary(const Workspace& ws, const std::string& sweep_id, bool with_trials = false);

// The best trial (az's get_best_run_by_primary_metric: each trial's best logged primary-metric value, failed and
// canceled trials included): {runId, sweepId, parameters, metric {name, goal, value}, status, arguments}.
// NotFound when no trial logged the primary metric.
json best_trial(const Workspace& ws, const std::string& sweep_id);

// The records of every sweep (newest first), with the summary counts.
std::vector<json> list_sweeps(const Workspace& ws, const std::string& experiment = "");

// The last `lines` lines of a trial run's log (logs/run.log), or its error message when it has no log.
std::string run_log_tail(const Workspace& ws, const std::string& run_id, int lines = 20);

// A trial run's series of the primary metric (finite or not, as logged) and the names of every metric it logged.
struct RunMetrics {
  std::vector<double> series;
  std::set<std::string> names;
};
RunMetrics read_run_metrics(const fs::path& run_dir, const std::string& primary);

// How a sweep whose scheduler stopped ends. `stop` says why it stopped ("" = no trial left to run, "canceled",
// "interrupted", "max_duration", "max_failures"), `stop_detail` in a sentence. Canceled for a cancel or a signal;
// Failed at max_failures, when every trial failed, or when trials completed and none logged the primary metric
// (error names the metrics they did log); Completed otherwise. `error` is null or {message, ...}.
struct Outcome {
  std::string status;
  json error;
};
Outcome sweep_outcome(const Workspace& ws, const SweepConfig& cfg, const SweepState& state, const std::string& stop,
                      const std::string& stop_detail);

}  // namespace amlc::sweep
