// The sweep scheduler: runs a HyperDrive-style sweep's trials as child runs of the runs layer.
//
//   json rec = sweep::create_sweep(ws, req);             // control.hpp: validated, snapshotted once, recorded (Running)
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
// - A sweep is stopped from another process with cancel_sweep() (control.hpp: a marker file the scheduler polls) and by
//   SIGINT/SIGTERM in the supervising process (amlc::interrupted()): running trials are canceled, the sweep
//   ends Canceled; run_sweep then throws Interrupted for a signal.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/workspace/workspace.hpp"

namespace amlc::sweep {

using json = nlohmann::json;

struct Progress {
  int total = 0;  // max_total_runs (or the grid size)
  int completed = 0, failed = 0, canceled = 0, running = 0;
  std::optional<double> best;
  std::string best_run_id;
};

struct ScheduleOptions {
  std::function<void(const Progress&)> on_progress;          // after every change
  std::function<void(const json& trial)> on_trial_finished;  // {index, runId, status, parameters, bestMetric, canceledReason}
  std::function<void(const std::string&)> on_warning;        // one sentence
  int poll_interval_ms = 100;  // the longest sleep between checks (cancel marker, file metrics, deadline)
};

// Runs the sweep to its end in this process: a new sweep (create_sweep) or one to continue (resume; a detached
// supervisor). Conflict if another live process supervises it or it has finished. Returns the summary.
json run_sweep(const Workspace& ws, const std::string& sweep_id, const ScheduleOptions& options = {});

}  // namespace amlc::sweep
