// A sweep's life as commands see it: create_sweep (submit: validate, snapshot, record), spawn_sweep_supervisor
// (--async: a detached process runs the scheduler) and cancel_sweep (from any process). The scheduling itself is
// scheduler.hpp; what a sweep's records say is summary.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "amlc/runs/executor.hpp"
#include "amlc/sweep/config.hpp"
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

// Validates everything (the run request as runs::check_request does: experiment name, target, script in the source
// directory, command, metrics pattern, for docker the engine and image; the configuration through the round trip
// resume reads it back with), then snapshots the source and writes the sweep record (status Running, supervised by
// this process) and the journal's sweep_started. Base arguments naming a sweep parameter are dropped, with a
// warning in the recorded configuration. Nothing is written when validation fails. Returns the record.
json create_sweep(const Workspace& ws, const SubmitRequest& req);

// For --async: starts `amlc -w WS sweep _supervise ID` in a new session (stderr to <sweep>/supervisor.txt) and
// records it as the supervisor. Returns its pid.
int spawn_sweep_supervisor(const Workspace& ws, const std::string& sweep_id);

// From any process: asks the supervisor to stop (running trials are canceled) and waits up to `wait_seconds`
// for the sweep to end. When no process supervises it, does the work itself. Returns the summary.
json cancel_sweep(const Workspace& ws, const std::string& sweep_id, const std::string& reason, double wait_seconds = 30);

}  // namespace amlc::sweep
