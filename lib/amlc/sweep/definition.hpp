// What a recorded sweep runs with, read back from its record and journal: the configuration and seed, the
// sampler, the run definition every trial starts from, and the run request of one trial. The scheduler loads it to run (or resume) a sweep;
// `workspace check` asks whether it still loads (resume_blocker).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "amlc/runs/executor.hpp"
#include "amlc/sweep/config.hpp"
#include "amlc/sweep/journal.hpp"
#include "amlc/sweep/sampler.hpp"

namespace amlc::sweep {

// The configuration and seed come from the journal's sweep_started; for a journal that never got that record (a
// sweep created by an older amlc killed between its folder and its journal) the same values come from the sweep
// record, and missing_start is the record to append.
struct Definition {
  SweepConfig cfg;
  std::uint64_t seed = 0;
  std::unique_ptr<Sampler> sampler;
  runs::RunRequest base;              // the record's runDefinition
  std::optional<json> missing_start;  // the sweep_started record the journal lacks, if it lacks one
};

// Throws (Damaged, or the configuration's Usage error naming the key) when any of it is unusable.
Definition load_definition(const json& record, const SweepState& state);

// Why `sweep resume` cannot continue this sweep ("" = it can): load_definition's error. `sweep cancel` still ends
// such a sweep. Used by `workspace check`.
std::string resume_blocker(const json& record, const SweepState& state);

// What attempt `attempt` of trial `t` (started: t.run_id set) runs: `base` from the stored snapshot with the trial's
// parameters appended to its arguments ("--name value"), as a child run of the sweep (tags and properties
// hyperparameters, sweepId; properties trialIndex, attempt, primaryMetricName). Its record is not fsynced: the
// journal's trial_started is the durable fact, and a crash re-queues the trial and reconciles whatever run exists.
runs::RunRequest trial_request(const runs::RunRequest& base, const SweepConfig& cfg, const std::string& sweep_id,
                               const runs::SnapshotRef& snapshot, const TrialRecord& t, int attempt);

// The goal in a sweep record's primaryMetric: Minimize when it says so (any case), else Maximize.
Goal recorded_goal(const json& record);
// The snapshot a sweep record names (its "snapshot" object; missing fields are empty).
runs::SnapshotRef recorded_snapshot(const json& record);

}  // namespace amlc::sweep
