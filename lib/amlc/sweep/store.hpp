// Sweep records on disk.
//
//   <ws>/sweeps/<id>/sweep.json      the sweep record (atomic writes; read-modify-write under <id>/.lock)
//                   /journal.jsonl   the append-only journal (amlc/sweep/journal.hpp): the source of truth
//                                    for trials and the configuration (its sweep_started); sweep.json holds the
//                                    run definition, the snapshot and the final summary (records written before
//                                    the configuration was stored once also hold a copy of it, read when the
//                                    journal never got its sweep_started)
//                   /cancel          marker: `sweep cancel` asked the supervising process to stop
//                   /supervisor.txt  stderr of a detached (--async) supervisor
//
// Sweep ids: "<experiment>_sweep_<unix seconds>_<8 hex>"; the trials are runs of the same experiment with
// ids "<sweep id>_<n>" (n from 0, as HyperDrive's "<parent>_<index>"), parentRunId = the sweep id. A trial
// re-queued by `sweep resume` (its amlc process died while it ran) runs again with the SAME parameters as
// "<sweep id>_<n>_r<k>" (k = 1, 2, ...); the interrupted attempt's run stays, Canceled, for the record.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/workspace/workspace.hpp"

namespace amlc::sweep {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Sweep statuses: Running while a process supervises it, then Completed | Failed | Canceled.
// "NotResponding" is shown (never stored) for a Running sweep whose supervising process is gone:
// `amlc sweep resume ID` continues it.
inline constexpr const char* kSweepRunning = "Running";
inline constexpr const char* kSweepCompleted = "Completed";
inline constexpr const char* kSweepFailed = "Failed";
inline constexpr const char* kSweepCanceled = "Canceled";
inline constexpr const char* kSweepNotResponding = "NotResponding";
bool sweep_status_terminal(const std::string& status);

std::string new_sweep_id(const std::string& experiment);
// The trial run id for attempt `attempt` (1-based) of trial `index`.
std::string trial_run_id(const std::string& sweep_id, int index, int attempt);

fs::path sweeps_dir(const Workspace& ws);
fs::path sweep_dir(const Workspace& ws, const std::string& sweep_id);       // NotFound if missing
fs::path sweep_dir_for(const Workspace& ws, const std::string& sweep_id);   // no check
fs::path journal_path(const fs::path& dir);

// The snapshot blob of every sweep (for storage's one list of references).
void for_each_blob_ref(const Workspace& ws, const std::function<void(const std::string&)>& fn);
json read_sweep_record(const fs::path& dir);  // Damaged if unreadable
// Locks the sweep (<dir>/.lock), reads sweep.json, calls fn, writes it back atomically. Returns it.
json update_sweep(const fs::path& dir, const std::function<void(json& record)>& fn);
// Writes a new sweep directory: sweep.json and the journal's first records (`journal_text`, complete lines) are
// staged, then renamed into place under the workspace lock, so a sweep never exists without its sweep_started.
// Conflict if it exists.
void create_sweep_dir(const Workspace& ws, const std::string& sweep_id, const json& record, const std::string& journal_text);

// The record with "status" adjusted for a dead supervisor (NotResponding), as shown to users.
json effective_record(const json& record);
// Every sweep record (effective), newest first; `experiment` "" = all.
std::vector<json> list_sweep_records(const Workspace& ws, const std::string& experiment);

// `workspace check` hook: every sweep record parses and names its sweep, its journal replays without damage,
// the trials the journal names exist as runs whose parentRunId is the sweep, a finished journal matches the
// record's status.
void check_sweeps(const Workspace& ws, std::vector<std::string>& problems, json& stats);

}  // namespace amlc::sweep
