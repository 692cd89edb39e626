// The sweep scheduler: runs a HyperDrive-style sweep's trials as child runs of the runs layer.
//
//   json rec = sweep::create_sweep(ws, req);             // validated, snapshotted once, recorded (Running)
//   json summary = sweep::run_sweep(ws, rec["sweepId"], opts);   // to the end, in this process
//
// - The source directory is snapshotted once; every trial is a run "<sweep>_<n>" (parentRunId = the sweep,
//   tags/properties "hyperparameters" = its parameters as JSON) started from that snapshot
//   ({.reuse_extracted = true}), with the sampled parameters appended to the script arguments
//   ("--name value", sweep::script_arguments). Arguments of the base command that name a sweep parameter are
//   dropped (HyperDrive's parameter_space overrides the runconfig's arguments), with a warning.
// - At most max_concurrent_runs trials run at once (a trial canceled by the policy keeps its slot until its
//   process has ended); trials are created until max_total_runs (or the grid is exhausted); max_duration_minutes
//   (counted from the sweep's first start) cancels the running trials with reason "max_duration_minutes reached"
//   and ends the sweep (Completed, stopReason says why). Failed trials are recorded; once max_failures trials
//   failed no new trial starts, the running ones finish, and the sweep is Failed.
// - Metrics: each live trial's metrics.jsonl is tailed (only when a policy needs the series; otherwise read
//   once when the trial ends); the k-th value of the primary metric is interval k. The policy runs whenever new
//   values arrive; a trial it selects is canceled with the decision's sentence as the cancel reason, and the
//   decision (rule, numbers, interval) is in the journal and in the run record (properties.earlyTermination).
// - Every state change is in the journal (<sweep>/journal.jsonl). Records produced in one scheduling step are
//   written with one write()+fsync; trial_started is durable before the trial's run is created.
// - Resume (`sweep resume`, also how a detached supervisor starts): replays the journal; a trial that was
//   Running is looked up in the runs layer: Completed there -> taken as finished; otherwise its leftover process
//   group is killed (runs::reconcile), that attempt's run is marked Canceled ("re-queued by sweep resume") and
//   the trial runs again with the SAME parameters as "<sweep>_<n>_r<k>" (it is still one trial: it counts once
//   toward max_total_runs).
// - A sweep is stopped from another process with cancel_sweep() (a marker file the scheduler polls) and by
//   SIGINT/SIGTERM in the supervising process (amlc::interrupted()): running trials are canceled, the sweep
//   ends Canceled; run_sweep then throws Interrupted for a signal.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/runs/executor.hpp"
#include "amlc/sweep/config.hpp"
#include "amlc/sweep/journal.hpp"
#include "amlc/sweep/store.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::sweep {

struct SubmitRequest {
  SweepConfig config;
  // What every trial runs: experiment, source_dir, script, arguments (the sweep's parameters are appended),
  // command, interpreter, target, image, environment, metrics pattern, grace and duration limits, snapshot limits.
  runs::RunRequest run;
  std::optional<std::uint64_t> seed;  // overrides config.seed
  std::string config_file;            // for the record
  std::string runconfig_file;         // idem ("" = none)
};

// Validates everything (experiment name, target, script present in the source directory, command, metrics
// pattern), then snapshots the source and writes the sweep record (status Running, supervised by this process)
// and the journal's sweep_started. Nothing is written when validation fails. Returns the record.
json create_sweep(const Workspace& ws, const SubmitRequest& req);

struct Progress {
  int total = 0;  // max_total_runs (or the grid size)
  int completed = 0, failed = 0, canceled = 0, running = 0;
  std::optional<double> best;
  std::string best_run_id;
};

struct ScheduleOptions {
  std::function<void(const Progress&)> on_progress;          // after every change
  std::function<void(const json& trial)> on_trial_finished;  // a trial summary (see trial list in summary)
  std::function<void(const std::string&)> on_warning;        // one sentence
  int poll_interval_ms = 100;  // the longest sleep between checks (cancel marker, file metrics, deadline)
};

// Runs the sweep to its end in this process: a new sweep (create_sweep) or one to continue (resume; a detached
// supervisor). Conflict if another live process supervises it or it has finished. Returns the summary.
json run_sweep(const Workspace& ws, const std::string& sweep_id, const ScheduleOptions& options = {});

// From any process: asks the supervisor to stop (running trials are canceled) and waits up to `wait_seconds`
// for the sweep to end. When no process supervises it, does the work itself. Returns the summary.
json cancel_sweep(const Workspace& ws, const std::string& sweep_id, const std::string& reason, double wait_seconds = 30);

// The sweep record with the trial counts and best run computed from the journal:
// {sweepId, status, experimentName, primaryMetric {name, goal}, bestRunId, bestMetric, bestParameters,
//  trials {total, completed, failed, canceled, running, queued}, config, seed, createdUtc, startTimeUtc,
//  endTimeUtc, error, stopReason, ...}. With `with_trials`, "trialRuns": every trial sorted by its best primary
// metric (goal-aware; trials without a value last): {index, runId, status, parameters, bestMetric, attempts,
// canceledReason, earlyTermination}.
json sweep_summary(const Workspace& ws, const std::string& sweep_id, bool with_trials = false);

// Why `sweep resume` cannot continue this sweep ("" = it can): its recorded configuration (the journal's
// sweep_started, or the sweep record's for a journal that never got that record) or its run definition is unusable.
// `sweep cancel` still ends such a sweep. Used by `workspace check`.
std::string resume_blocker(const json& record, const SweepState& state);

// The best trial (az's get_best_run_by_primary_metric: each trial's best logged primary-metric value, failed and
// canceled trials included): {runId, sweepId, parameters, metric {name, goal, value}, status, arguments}.
// NotFound when no trial logged the primary metric.
json best_trial(const Workspace& ws, const std::string& sweep_id);

// The records of every sweep (newest first), with the summary counts.
std::vector<json> list_sweeps(const Workspace& ws, const std::string& experiment = "");

// For --async: starts `amlc -w WS sweep _supervise ID` in a new session (stderr to <sweep>/supervisor.txt) and
// records it as the supervisor. Returns its pid.
int spawn_sweep_supervisor(const Workspace& ws, const std::string& sweep_id);

// The last `lines` lines of a trial run's log (logs/run.log), or its error message when it has no log.
std::string run_log_tail(const Workspace& ws, const std::string& run_id, int lines = 20);

}  // namespace amlc::sweep
