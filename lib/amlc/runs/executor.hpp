// Creating and executing runs (local process or Docker container), cancelling them from anywhere.
//
// One run:
//   json rec = runs::create_run(ws, req);                 // validated, snapshotted, recorded (Queued)
//   auto ex = runs::Execution::start(ws, rec["runId"], {.echo = true});
//   while (!ex->poll(200)) if (interrupted()) ex->cancel("interrupted");
//   json done = ex->record();                              // Completed | Failed | Canceled
//
// Many runs from one process (sweeps): snapshot once with store_snapshot(), pass it in RunRequest::snapshot
// with run_id/parent_run_id/arguments per trial, start each with {.reuse_extracted = true} (the snapshot is
// extracted once into <ws>/cache/snapshots/<sha>/ and copied per trial), then call poll(0) on every live
// Execution (or wait_any() to sleep until one has news). Execution::cancel(reason) is non-blocking; the
// SIGTERM -> SIGKILL escalation happens in poll().
//
// The environment of the script: AMLC_RUN_ID, AZUREML_RUN_ID, AMLC_EXPERIMENT, AMLC_OUTPUTS_DIR,
// AMLC_METRICS_FILE, PYTHONPATH (the embedded Python helpers first), PYTHONUNBUFFERED=1, plus the run config's
// environmentVariables. The working directory is a fresh copy of the snapshot; ./outputs in it is a symlink to
// the run's outputs/ folder, so what the script writes there stays with the run.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/archive/snapshot.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::runs {

namespace fs = std::filesystem;
using json = nlohmann::json;

inline constexpr const char* kDefaultDockerImage = "amlc/python:3-bookworm";

struct SnapshotRef {
  std::string sha256;
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t excluded = 0;
  uint64_t archive_bytes = 0;
  json to_json() const;
};

// Snapshots `source_dir` (ignore rules, limits; the workspace itself is left out) into the blob store.
// <ws>/cache/snapshots/<sha256>: a snapshot extracted once (read-only files) for runs to hard-link from.
fs::path snapshot_cache_dir(const Workspace& ws, const std::string& sha256);
SnapshotRef store_snapshot(const Workspace& ws, const fs::path& source_dir, const archive::SnapshotLimits& limits);

struct RunRequest {
  std::string experiment = "default";
  std::string run_id;         // "" = new_run_id(experiment)
  std::string parent_run_id;  // "" = none
  std::string run_type = "script";
  fs::path source_dir = ".";
  std::optional<SnapshotRef> snapshot;  // reuse a stored snapshot (the script is then not checked on disk)
  std::string script;                   // relative to the source directory
  std::vector<std::string> arguments;
  std::vector<std::string> command;  // a program to run (script and arguments appended); empty = from script
  std::string interpreter = "python3";
  std::string target = "local";  // local | docker
  std::string image = kDefaultDockerImage;
  std::map<std::string, std::string> environment;
  std::map<std::string, std::string> tags;
  json properties = json::object();
  std::string metrics_regex;  // "" = the default name=value pattern
  std::string metrics_regex_where;
  bool metrics_from_stdout = true;
  archive::SnapshotLimits limits;
  double grace_seconds = 10;
  double max_duration_seconds = 0;  // 0 = no limit
  // fsync the record at creation, Running and the end (and the metrics file at the end). A sweep whose own
  // journal is durable may pass false: records are still replaced atomically (rename), just not fsynced, which
  // makes trial start-up several times cheaper on disks where fsync costs milliseconds.
  bool durable = true;
  // The caller has run check_request() on this request once for many runs (a sweep, for its trials): create_run
  // then checks only the run's ids and that the run does not exist yet.
  bool checked = false;
};

// What create_run checks about a request, the run's ids aside: experiment name, target, source directory and
// script (unless request.snapshot), the command, the metrics pattern, the grace period, and for docker the
// engine and the image. Throws the error create_run would.
void check_request(const RunRequest& request);

// The program and arguments a request runs.
std::vector<std::string> resolve_command(const RunRequest& request);

// Validates everything (names, target, script, command, Docker engine and image for docker), snapshots (unless
// request.snapshot), then writes the run (status Queued) with `supervisor_pid` as its supervisor. Nothing is
// written when validation fails. Conflict if run_id exists. Returns the record.
json create_run(const Workspace& ws, const RunRequest& request, int supervisor_pid = 0 /* 0 = this process */);

struct StartOptions {
  bool echo = false;             // copy the run's stdout/stderr to our stderr as it comes
  bool reuse_extracted = false;  // extract once per snapshot into the cache and copy per run
  // With reuse_extracted: move this finished run's kept working folder (same snapshot) into place and relink it
  // instead of building a new one.
  std::filesystem::path adopt_workdir;
  bool keep_workdir = false;  // leave wd/ in the run folder at the end, for a later run to adopt
};

class Execution {
 public:
  // Preparing -> Running. A cancel requested before the start gives Canceled at once (finished() true).
  // If the program cannot be started the run is Failed (finished() true) and no exception is thrown.
  static std::unique_ptr<Execution> start(const Workspace& ws, const std::string& run_id, const StartOptions& options = {});
  // start() in two steps, so that a scheduler can do the slow part while other runs execute: prepare() does all
  // but starting the process (working folder, metrics files, environment); the record stays Queued. launch()
  // starts it (Running). A prepared run that will not be launched must be abandon()ed: Canceled with `reason`.
  // A local program starts only once the run record names its process (a /bin/sh waits for the word, then execs
  // it): an amlc killed in between leaves no process the record does not know.
  static std::unique_ptr<Execution> prepare(const Workspace& ws, const std::string& run_id, const StartOptions& options = {});
  void launch();
  void abandon(const std::string& reason);
  bool launched() const;
  // A local run's process has exited with status 0 (not reaped yet: poll() will record the end).
  bool exited_successfully() const;
  ~Execution();
  Execution(const Execution&) = delete;
  Execution& operator=(const Execution&) = delete;

  // Pumps output, metrics and cancel/timeout handling, waiting up to `timeout_ms` for output. Returns true once
  // the run has finished and its final record is written.
  bool poll(int timeout_ms = 0);
  // Requests cancellation (non-blocking): SIGTERM to the process group (or the container) now, SIGKILL after
  // the grace period. The final status will be Canceled, with `reason` in the record.
  void cancel(const std::string& reason);
  bool finished() const;
  const std::string& run_id() const;
  const fs::path& dir() const;
  json record() const;
  std::vector<int> fds() const;  // fds to poll(2) for POLLIN on: output pipes and the process's pidfd
  bool has_exit_fd() const;      // fds() includes an fd that wakes up when the process exits

 private:
  Execution();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Waits (poll(2)) until one of the executions has output or `timeout_ms` passes; then polls them all. Returns
// the executions that finished in this call.
std::vector<Execution*> wait_any(const std::vector<Execution*>& executions, int timeout_ms);

// Cancels a run from any process: records the request and reason, signals the run's process group or container,
// and waits up to `wait_seconds` for the supervisor to record the end (reconciling if it died). Canceled runs
// are returned as they are; Completed/Failed runs are a Conflict.
json cancel_run(const Workspace& ws, const std::string& run_id, const std::string& reason, double wait_seconds = 30);

// For --async: starts a detached supervisor (`amlc -w WS run _supervise -r ID`, new session, output to
// <run>/logs/supervisor.txt) and records it as the run's supervisor. Returns its pid.
int spawn_supervisor(const Workspace& ws, const std::string& run_id);

// The body of the hidden `run _supervise` command: starts the run and polls it to the end. SIGTERM/SIGINT to
// the supervisor cancel the run. Returns the final record.
json supervise(const Workspace& ws, const std::string& run_id, bool echo);

}  // namespace amlc::runs
