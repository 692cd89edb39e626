// Run records on disk.
//
//   <ws>/experiments/<exp>/runs/<id>/run.json        the record (atomic writes, under <id>/.lock)
//                                   /logs/stdout.txt, stderr.txt, run.log (both streams, as they came)
//                                   /outputs/         files the script wrote to ./outputs
//                                   /metrics.jsonl    {"name","value","step","time","kind","source"} per line
//                                   /metrics.raw.jsonl  what the script appends ($AMLC_METRICS_FILE)
//                                   /wd/              the working directory while the run executes
//                                   /cancel           marker: a cancel was requested
//   <ws>/runs/<id> -> ../experiments/<exp>/runs/<id>  index: find a run by id alone
//   snapshot: in the blob store (<ws>/blobs/sha256/..), named by run.json "snapshot.sha256"
//
// Status: NotStarted -> Queued -> Preparing -> Running -> Completed | Failed | Canceled. Every transition
// is written to run.json ("status", "statusHistory"); Queued, Running and the final status are fsynced.
// Record updates are read-modify-write under the run's own lock (a flock of the run folder itself, no lock file):
// one writer at a time per run without serialising unrelated runs on the workspace lock.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/workspace/workspace.hpp"

namespace amlc::runs {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Status names (az ml's RunStatus spellings).
inline constexpr const char* kNotStarted = "NotStarted";
inline constexpr const char* kQueued = "Queued";
inline constexpr const char* kPreparing = "Preparing";
inline constexpr const char* kRunning = "Running";
inline constexpr const char* kCompleted = "Completed";
inline constexpr const char* kFailed = "Failed";
inline constexpr const char* kCanceled = "Canceled";
bool is_terminal(const std::string& status);
const std::vector<std::string>& status_names();

// --- for the registry (cmd_model.cpp) and everyone else -----------------------------------------------------
// The record; NotFound if there is no such run. Has "runId", "experimentName", "status".
json load_run(const Workspace& ws, const std::string& run_id);
fs::path run_dir(const Workspace& ws, const std::string& run_id);      // NotFound if missing
fs::path outputs_dir(const Workspace& ws, const std::string& run_id);  // <run dir>/outputs

// --- names and paths -------------------------------------------------------------------------------------------
// Experiment names: ^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$ (Usage error otherwise).
void validate_experiment_name(const std::string& name);
// Run ids: ^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$.
void validate_run_id(const std::string& id);
// "<experiment>_<unix seconds>_<8 hex>".
std::string new_run_id(const std::string& experiment);
fs::path experiments_dir(const Workspace& ws);
fs::path run_dir_for(const Workspace& ws, const std::string& experiment, const std::string& run_id);
fs::path index_dir(const Workspace& ws);  // <ws>/runs
std::optional<fs::path> find_run_dir(const Workspace& ws, const std::string& run_id);

// --- records ---------------------------------------------------------------------------------------------------
// Reads run.json under the run directory's shared flock (a non-durable record is rewritten in place under the
// exclusive one). Damaged if unreadable.
json read_run_record(const fs::path& dir);
// The same, for a caller that already holds the directory's exclusive lock (FileLock(dir)).
json read_run_record_locked(const fs::path& dir);
// Durable: a new file fsynced and renamed over run.json, then the directory fsynced. Not durable: run.json
// rewritten in place (callers other than create_run's staging hold FileLock(dir)).
void write_run_record(const fs::path& dir, const json& record, bool durable);
// Locks the run, reads run.json, calls fn, writes the result back (durable if fn returns true). Returns it.
json update_run(const fs::path& dir, const std::function<bool(json& record)>& fn);
// Appends {"status", "time"} to statusHistory and sets status (and startTimeUtc/endTimeUtc where due).
void set_status(json& record, const std::string& status);

// run update: adds/changes tags and removes tags (NotFound if one to remove is absent; nothing is written then).
// Works on a running run too: the record is updated under its lock, durably.
json update_tags(const Workspace& ws, const std::string& run_id, const std::map<std::string, std::string>& add,
                 const std::vector<std::string>& remove);

// run download: copies outputs/ (recursively; symlinks as symlinks) into `dest`. run download-logs: the files in
// logs/ (stdout.txt, stderr.txt, run.log, ...). Conflict if a file exists there and not `overwrite` (checked before
// anything is copied). Each file is copied to a temp name and renamed into place. Returns {runId, outputDir,
// files: [{path, bytes}]}.
json download_outputs(const Workspace& ws, const std::string& run_id, const fs::path& dest, bool overwrite);
json download_logs(const Workspace& ws, const std::string& run_id, const fs::path& dest, bool overwrite);

// --- queries ---------------------------------------------------------------------------------------------------
struct ListFilter {
  std::string experiment;              // "" = all
  std::string status;                  // "" = any
  std::map<std::string, std::string> tags;  // all must match (empty value: tag present)
  std::string parent_run_id;           // "" = any
  size_t last = 0;                     // 0 = all; else the newest N
};
// Newest first (by createdUtc, then id). Reconciles runs whose supervisor is gone (see reconcile).
std::vector<json> list_runs(const Workspace& ws, const ListFilter& filter);
// {"name", "runCount", "lastRunId", "lastCreatedUtc"} per experiment, by name.
std::vector<json> list_experiments(const Workspace& ws);

// --- supervision -----------------------------------------------------------------------------------------------
// {"pid", "startTicks", "host"} of this process (startTicks: /proc/<pid>/stat field 22, to detect pid reuse).
json supervisor_info(int pid);
bool supervisor_alive(const json& info);
// A run that is not finished but whose supervisor is gone becomes Failed (or Canceled if a cancel was
// requested); its leftover process group / container is killed. Returns the (possibly updated) record.
json reconcile(const Workspace& ws, const fs::path& dir);

// `workspace check` hook: every run record parses and names its run, the index points at it, the snapshot blob
// exists, no finished run still has a working directory.
// The index entry <ws>/runs/<id> -> ../experiments/<exp>/runs/<id> (created after the run's folder is in place).
void index_run(const Workspace& ws, const std::string& experiment, const std::string& run_id);
// Runs without an index entry (a crash between the two steps): {experiment, run id}. Readers find them anyway.
std::vector<std::pair<std::string, std::string>> unindexed_runs(const Workspace& ws);

// The snapshot blob of every run (for storage's one list of references).
void for_each_blob_ref(const Workspace& ws, const std::function<void(const std::string&)>& fn);

void check_runs(const Workspace& ws, std::vector<std::string>& problems, json& stats);

}  // namespace amlc::runs
