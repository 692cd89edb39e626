// The sweep journal: an append-only JSON-lines file (one event per line, written with
// amlc::append_line_durable, i.e. one write() + fsync per record) from which the whole sweep state can be
// rebuilt after a crash.
//
// Events (every record has "event" and "time"):
//   sweep_started   {config: SweepConfig::to_json(), seed}
//   sweep_resumed   {requeued: [index...]}     (those Running trials go back to Queued: same params, series cleared)
//   trial_created   {index, params}
//   trial_started   {index, runId, attempt}      (a re-start after resume clears the trial's metric series)
//   trial_metric    {index, interval, value}     (interval = 1-based position in the series)
//   trial_canceled  {index, decision: Decision::to_json(), runId}   (policy decision; the trial is Canceled from here)
//   trial_finished  {index, status: Completed|Failed|Canceled, best, error}   (error: why its run was not created)
//   sweep_finished  {status}
//
// Reading: a last line that does not end in '\n' or does not parse is a torn write and is ignored;
// an unparsable line elsewhere is damage (ErrorKind::Damaged naming file:line). Replay is idempotent per
// record: a duplicate trial_created with the same params, a second trial_finished/trial_canceled for an
// already finished trial, or a metric for an interval already recorded is ignored (counted in
// SweepState::ignored), so no trial is ever counted twice. trial_created with other params for an existing
// index, or an index that skips ahead, is damage.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "amlc/sweep/config.hpp"
#include "amlc/sweep/policy.hpp"
#include "amlc/sweep/sampler.hpp"

namespace amlc::sweep {

struct TrialRecord {
  int index = 0;
  json params = json::object();
  TrialStatus status = TrialStatus::Queued;
  std::vector<double> metrics;          // primary metric series of the current attempt
  std::optional<double> best;           // from trial_finished, else the best of `metrics`
  std::optional<Decision> canceled_by;  // the policy decision, if any
  int starts = 0;                       // how many times it was started (re-queued after a crash: > 1)
  std::string run_id;                   // the run of its latest attempt (the last trial_started's runId), "" = none
  std::string error;                    // why it failed before its run existed (trial_finished's error), if it did

  std::optional<double> value(Goal goal) const { return best ? best : best_value(metrics, goal); }  // its best so far
  void start(const std::string& attempt_run_id);  // a new attempt: Running, its series cleared
  void requeue();                                 // back to Queued (same params), its series cleared
};

struct SweepState {
  bool started = false;
  json config;                 // as recorded (SweepConfig::to_json())
  std::uint64_t seed = 0;
  std::vector<TrialRecord> trials;  // trials[i].index == i
  bool finished = false;
  std::string finish_status;
  int ignored = 0;             // duplicate / late records skipped
  bool torn_tail = false;      // the last line was torn and ignored

  int count(TrialStatus s) const;
  int active() const { return count(TrialStatus::Running); }
  int created() const { return static_cast<int>(trials.size()); }

  // The history for the sampler: params, status and value (best) of every trial.
  History history(Goal goal) const;
  // Metric series for the policy (running = status Running).
  std::vector<RunSeries> series() const;
  // After a crash: trials that were Running go back to Queued (same params, series cleared); returns them.
  std::vector<int> requeue_interrupted();
  // Queued trials in index order (to start next).
  std::vector<int> queued() const;

  // The scheduler's rules (slots are the scheduler's: it counts live processes, not journal states):
  // max_failures trials have failed: no new trial starts.
  bool failures_reached(const SweepConfig& cfg) const;
  // A new trial may be created: fewer than max_total_runs so far and the sampler (given history(goal)) has more.
  bool may_create(const SweepConfig& cfg, const Sampler& sampler, const History& history) const;
};

// One journal line (without its '\n'): `record` with "time" added.
std::string journal_line(json record);
// The sweep_started record for a configuration (SweepConfig::to_json()) and the sweep's resolved seed.
json sweep_started_record(const json& config, std::uint64_t seed);

// Reads all complete records. Sets *torn when a torn last line was skipped.
std::vector<json> read_journal(const std::filesystem::path& path, bool* torn = nullptr);
SweepState replay(const std::vector<json>& records, const std::string& source = "journal");
SweepState replay(const std::filesystem::path& path);

// The writer of the journal: the records above, typed. Unbatched, each record is written (one write() + fsync) when
// it is made. Batched (the scheduler), records wait until flush(), which writes them all with one write() + fsync:
// what one scheduling step produced costs one fsync.
class Journal {
 public:
  // Opens (creating the file lazily on first append). If the file ends in a torn line, it is cut back to
  // the end of the last complete line so the next record starts on a fresh line.
  explicit Journal(std::filesystem::path path, bool batched = false);
  const std::filesystem::path& path() const { return path_; }

  void sweep_started(const SweepConfig& cfg, std::uint64_t seed);
  void sweep_resumed(const std::vector<int>& requeued);
  void trial_created(int index, const json& params);
  // run_id "" / attempt 0: not recorded.
  void trial_started(int index, const std::string& run_id = "", int attempt = 0);
  void trial_metric(int index, int interval, double value);  // a non-finite value is recorded as null
  void trial_canceled(int index, const Decision& decision, const std::string& run_id = "");
  void trial_finished(int index, TrialStatus status, std::optional<double> best, const std::string& error = "");
  void sweep_finished(const std::string& status);
  void append(json record);  // adds "time"; one line
  void flush();              // writes what a batched journal holds (nothing to do otherwise)
  bool has_pending() const { return !pending_.empty(); }

 private:
  std::filesystem::path path_;
  bool batched_ = false;
  std::vector<std::string> pending_;
};

}  // namespace amlc::sweep
