// The scheduler (scheduler.hpp): runs a sweep's trials in this process until the sweep ends. Creating, detaching
// and canceling sweeps are control.cpp; summaries and the final status are summary.cpp.
#include "amlc/sweep/scheduler.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <limits>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/runs/metrics.hpp"
#include "amlc/runs/request.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/sweep/child_wakeup.hpp"
#include "amlc/sweep/definition.hpp"
#include "amlc/sweep/journal.hpp"
#include "amlc/sweep/policy.hpp"
#include "amlc/sweep/sampler.hpp"
#include "amlc/sweep/store.hpp"
#include "amlc/sweep/summary.hpp"

namespace amlc::sweep {

namespace {

// ---- the scheduler ------------------------------------------------------------------------------------------

class Scheduler {
 public:
  Scheduler(const Workspace& ws, std::string id, const ScheduleOptions& opt)
      : ws_(ws), id_(std::move(id)), opt_(opt), dir_(sweep_dir(ws, id_)), journal_(journal_path(dir_), true) {}

  json run();

 private:
  struct Live {
    int index = 0;
    std::string run_id;
    std::unique_ptr<runs::Execution> ex;
    std::unique_ptr<runs::MetricsTail> tail;
    bool cancel_sent = false;
    double launched_at = 0;  // monotonic
  };

  void load();
  void take_over();
  void recover_interrupted();
  void flush() { journal_.flush(); }
  bool prepare_trial(int index, Live& l);
  void launch(Live l);
  void launch_ready();  // launches ready_ (which must be set) and clears it
  void drop_ready(const std::string& reason);
  int next_trial();
  bool check_failures();
  bool fill_slots();
  void tail_metrics(Live& l, bool final_read);
  void finish_trial(Live& l);
  void apply_policy();
  void cancel_live(const std::string& reason);
  void progress();
  json finish();
  double elapsed_limit_left() const;

  const Workspace& ws_;
  std::string id_;
  ScheduleOptions opt_;
  fs::path dir_;
  Journal journal_;  // batched: what one scheduling step records is written with one write() + fsync
  json record_;
  SweepConfig cfg_;
  std::unique_ptr<Sampler> sampler_;
  SweepState st_;
  runs::RunRequest base_;
  runs::SnapshotRef snapshot_;
  std::vector<Live> live_;
  bool new_values_ = false;
  bool policy_active_ = false;
  double start_unix_ = 0;
  std::string stop_;        // "", "canceled", "interrupted", "max_duration", "max_failures"
  std::string stop_detail_;
  double last_marker_check_ = 0;
  Progress last_progress_;
  bool warned_no_metric_ = false;
  // Working folders of finished trials, kept for the next trials to adopt: a trial then creates and deletes no
  // folder of its own. On ext4 every freed inode slows later allocations in its group down for minutes, which made
  // folder churn the largest cost of a sweep of short trials. What is left at the end is removed by finish().
  std::vector<fs::path> spare_workdirs_;
  // The next trial, prepared while all slots are busy (its run exists and is Queued; no process yet).
  std::optional<Live> ready_;
  bool prepare_ahead_ = false;
  static constexpr double kPrepareAheadBelowSeconds = 2.0;
  double last_trial_seconds_ = 1e18;  // wall time of the last trial that ran
};

void Scheduler::take_over() {
  const int me = static_cast<int>(::getpid());
  const int parent = static_cast<int>(::getppid());
  record_ = update_sweep(dir_, [&](json& r) {
    std::string status = r.value("status", "");
    if (sweep_status_terminal(status)) {
      conflict("sweep '" + id_ + "' has already finished (" + status + ")", "see it with 'amlc sweep show " + id_ + "'");
    }
    json sup = r.value("supervisor", json());
    int pid = sup.is_object() ? sup.value("pid", 0) : 0;
    if (pid != me && pid != parent && runs::supervisor_alive(sup)) {
      conflict("sweep '" + id_ + "' is being run by process " + std::to_string(pid),
               "wait for it, or stop it with 'amlc sweep cancel " + id_ + "'");
    }
    r["supervisor"] = runs::supervisor_info(me);
    r["status"] = kSweepRunning;
    if (r.value("startTimeUtc", json()).is_null()) {
      r["startTimeUtc"] = now_iso8601();
      r["startUnix"] = now_unix();
    }
  });
}

void Scheduler::load() {
  st_ = replay(read_journal(journal_path(dir_)), journal_path(dir_).string());
  if (st_.finished) {
    // The journal says it ended (a crash came before the record was updated): make the record agree.
    update_sweep(dir_, [&](json& r) {
      r["status"] = st_.finish_status;
      if (r.value("endTimeUtc", json()).is_null()) r["endTimeUtc"] = now_iso8601();
    });
    conflict("sweep '" + id_ + "' has already finished (" + st_.finish_status + ")");
  }
  try {
    Definition d = load_definition(record_, st_);
    if (d.missing_start) {
      journal_.append(*d.missing_start);
      st_.started = true;
      st_.config = (*d.missing_start)["config"];
      st_.seed = d.seed;
    }
    cfg_ = std::move(d.cfg);
    sampler_ = std::move(d.sampler);
    base_ = std::move(d.base);
  } catch (const Error& e) {
    // A sweep that cannot run trials any more can still be canceled: with a cancel asked for, end it without them
    // (nothing new starts; what the journal says runs is reconciled and canceled).
    auto marker = read_file_if_exists(dir_ / "cancel");
    if (!marker) {
      fail(ErrorKind::Damaged, "sweep '" + id_ + "' cannot be resumed: " + e.what(), "end it with 'amlc sweep cancel " + id_ + "'");
    }
    cfg_ = SweepConfig{};
    const json pm = record_.value("primaryMetric", json::object());
    cfg_.primary_metric_name = pm.is_object() ? pm.value("name", std::string()) : std::string();
    cfg_.goal = recorded_goal(record_);
    cfg_.max_total_runs = st_.created();
    cfg_.max_concurrent_runs = 1;
    cfg_.max_failures = std::numeric_limits<int>::max();
    sampler_.reset();
    stop_ = "canceled";
    stop_detail_ = trim(*marker).empty() ? "canceled" : trim(*marker);
  }
  snapshot_ = recorded_snapshot(record_);
  // What every trial runs is checked once for the sweep, not once per trial. If the check fails (e.g. the Docker
  // engine is down), each trial checks again, and one that fails is recorded as before.
  if (sampler_) {
    runs::RunRequest probe = base_;
    probe.snapshot = snapshot_;
    try {
      runs::check_request(probe);
      base_.checked = true;
    } catch (const Error&) {
    }
  }
  policy_active_ = cfg_.policy.type != PolicyType::None;
  prepare_ahead_ = cfg_.sampling != SamplingType::Bayesian;
  start_unix_ = record_.value("startUnix", now_unix());
}

void Scheduler::recover_interrupted() {
  // Trials the journal says are running: their process died with the previous supervisor (or is about to).
  for (auto& t : st_.trials) {
    if (t.status != TrialStatus::Running) continue;
    std::string rid = !t.run_id.empty() ? t.run_id : trial_run_id(id_, t.index, t.starts);
    auto dir = runs::find_run_dir(ws_, rid);
    if (dir) {
      json rr = runs::read_run_record(*dir);
      if (rr.value("status", "") == runs::kCompleted) {
        // It ended just before the crash: take its result.
        auto m = read_run_metrics(*dir, cfg_.primary_metric_name);
        t.metrics = m.series;
        t.status = TrialStatus::Completed;
        t.best = best_value(m.series, cfg_.goal);
        for (size_t k = 0; k < m.series.size(); ++k) journal_.trial_metric(t.index, static_cast<int>(k + 1), m.series[k]);
        journal_.trial_finished(t.index, TrialStatus::Completed, t.best);
        continue;
      }
      if (!runs::is_terminal(rr.value("status", ""))) {
        runs::update_run(*dir, [&](json& r) {
          if (!r.contains("cancelRequested") || r["cancelRequested"].is_null()) {
            r["cancelRequested"] = {{"time", now_iso8601()},
                                    {"reason", "interrupted: the sweep's amlc process ended; the trial was re-queued by 'sweep resume'"}};
          }
          return false;
        });
        runs::reconcile(ws_, *dir);  // kills the leftover process group, records the end
      }
    }
  }
  // The others go back to the queue, to run again with the same parameters.
  std::vector<int> requeue = st_.requeue_interrupted();
  // Working folders that finished trials kept for their successors when the previous process died: hand them on.
  for (const auto& t : st_.trials) {
    if (t.status == TrialStatus::Queued || t.status == TrialStatus::Running) continue;
    if (t.run_id.empty()) continue;
    if (auto dir = runs::find_run_dir(ws_, t.run_id)) {
      std::error_code ec;
      if (fs::is_directory(*dir / "wd", ec)) spare_workdirs_.push_back(*dir / "wd");
    }
  }
  if (!requeue.empty() || journal_.has_pending()) {
    journal_.sweep_resumed(requeue);
    flush();
  }
  if (!requeue.empty() && opt_.on_warning) {
    std::vector<std::string> names;
    for (int i : requeue) names.push_back(std::to_string(i));
    opt_.on_warning("re-queued interrupted trial(s) " + join(names, ", ") + " with the same parameters");
  }
}

// Everything a trial needs before its process starts: the journal's trial_started (durable first), its run, its
// working folder. The run stays Queued until launch(). Returns false if the trial failed already.
bool Scheduler::prepare_trial(int index, Live& l) {
  TrialRecord& t = st_.trials[static_cast<size_t>(index)];
  int attempt = t.starts + 1;
  std::string rid = trial_run_id(id_, index, attempt);
  while (runs::find_run_dir(ws_, rid)) {  // a leftover of a crash between our records: never reuse
    auto d = runs::find_run_dir(ws_, rid);
    runs::reconcile(ws_, *d);
    rid = trial_run_id(id_, index, ++attempt);
  }
  journal_.trial_started(index, rid, attempt);
  flush();  // durable before the run exists: a crash from here on re-queues the trial
  t.start(rid);

  runs::RunRequest rq = trial_request(base_, cfg_, id_, snapshot_, t, attempt);
  l.index = index;
  l.run_id = rid;
  fs::path adopt;  // trials hand their working folder on to the next one (see spare_workdirs_)
  auto keep_spare = [&] {
    std::error_code ec;
    if (!adopt.empty() && fs::is_directory(adopt, ec)) spare_workdirs_.push_back(adopt);  // not taken
  };
  try {
    runs::create_run(ws_, rq);
    if (!spare_workdirs_.empty()) {
      adopt = spare_workdirs_.back();
      spare_workdirs_.pop_back();
    }
    l.ex = runs::Execution::prepare(ws_, rid, {.echo = false, .reuse_extracted = true, .adopt_workdir = adopt, .keep_workdir = true});
    keep_spare();
  } catch (const Error& e) {
    keep_spare();
    // The run could not even be created: the trial failed.
    t.error = e.what();
    t.status = TrialStatus::Failed;
    journal_.trial_finished(index, TrialStatus::Failed, std::nullopt, e.what());
    return false;
  }
  if (policy_active_) l.tail = std::make_unique<runs::MetricsTail>(l.ex->dir() / "metrics.jsonl");
  return true;
}

void Scheduler::launch(Live l) {
  l.launched_at = monotonic_seconds();
  l.ex->launch();
  live_.push_back(std::move(l));
}

void Scheduler::launch_ready() {
  Live l = std::move(*ready_);
  ready_.reset();
  launch(std::move(l));
}

void Scheduler::drop_ready(const std::string& reason) {
  if (!ready_) return;
  ready_->ex->abandon(reason);
  finish_trial(*ready_);
  ready_.reset();
}

// The next trial to run: a re-queued one, else a new one from the sampler; -1 if there is none.
int Scheduler::next_trial() {
  auto queued = st_.queued();
  if (!queued.empty()) return queued.front();
  History h = st_.history(cfg_.goal);
  if (!st_.may_create(cfg_, *sampler_, h)) return -1;
  auto next = sampler_->suggest(1, h);
  if (next.empty()) return -1;
  int index = st_.created();
  TrialRecord t;
  t.index = index;
  t.params = next.front();
  st_.trials.push_back(t);
  journal_.trial_created(index, next.front());
  return index;
}

bool Scheduler::check_failures() {
  if (!st_.failures_reached(cfg_)) return true;
  stop_ = "max_failures";
  stop_detail_ = std::to_string(st_.count(TrialStatus::Failed)) + " trial(s) failed (max_failures " +
                 std::to_string(cfg_.max_failures) + ")";
  return false;
}

bool Scheduler::fill_slots() {
  if (!sampler_) return false;  // canceling a sweep whose definition is unusable
  bool started = false;
  while (stop_.empty() && static_cast<int>(live_.size()) < cfg_.max_concurrent_runs) {
    if (!check_failures()) break;
    if (ready_) {
      launch_ready();
      started = true;
      continue;
    }
    int index = next_trial();
    if (index < 0) break;
    Live l;
    if (prepare_trial(index, l)) launch(std::move(l));
    started = true;
  }
  // All slots busy and trials short: prepare the next trial now, so that a freed slot only has to start a
  // process (for trials of a few tens of milliseconds the preparation is a tenth of their time; for long ones it
  // does not matter, and a trial prepared long before its slot frees would only be canceled unstarted when the
  // sweep stops). Not for bayesian sampling, whose next suggestion should see the result of the ending trial.
  // Nor when the running trials failing would stop the sweep at max_failures: a prepared trial is only worth it
  // if nothing but a cancel or max_duration can keep it from running.
  if (stop_.empty() && !ready_ && prepare_ahead_ && last_trial_seconds_ < kPrepareAheadBelowSeconds &&
      static_cast<int>(live_.size()) >= cfg_.max_concurrent_runs &&
      st_.count(TrialStatus::Failed) + static_cast<int>(live_.size()) < cfg_.max_failures) {
    int index = next_trial();
    if (index >= 0) {
      Live l;
      if (prepare_trial(index, l)) ready_ = std::move(l);
    }
  }
  return started;
}

void Scheduler::tail_metrics(Live& l, bool final_read) {
  TrialRecord& t = st_.trials[static_cast<size_t>(l.index)];
  if (!l.tail) {
    if (!final_read) return;
    l.tail = std::make_unique<runs::MetricsTail>(l.ex->dir() / "metrics.jsonl");
  }
  for (const auto& m : l.tail->poll()) {
    if (m.name != cfg_.primary_metric_name) continue;
    auto v = m.number();
    if (!v || t.status != TrialStatus::Running) continue;
    t.metrics.push_back(*v);
    journal_.trial_metric(l.index, static_cast<int>(t.metrics.size()), *v);
    new_values_ = true;
  }
}

void Scheduler::finish_trial(Live& l) {
  if (l.ex->launched()) last_trial_seconds_ = monotonic_seconds() - l.launched_at;
  tail_metrics(l, true);
  std::error_code ec;
  if (fs::is_directory(l.ex->dir() / "wd", ec)) spare_workdirs_.push_back(l.ex->dir() / "wd");
  TrialRecord& t = st_.trials[static_cast<size_t>(l.index)];
  json rr = l.ex->record();
  std::string status = rr.value("status", std::string(runs::kFailed));
  TrialStatus ts = status == runs::kCompleted ? TrialStatus::Completed
                   : status == runs::kCanceled ? TrialStatus::Canceled
                                               : TrialStatus::Failed;
  auto best = best_value(t.metrics, cfg_.goal);
  if (t.status == TrialStatus::Running) t.status = ts;
  if (!t.best) t.best = best;
  journal_.trial_finished(l.index, t.canceled_by ? TrialStatus::Canceled : ts, best);
  if (ts == TrialStatus::Completed && !best && !warned_no_metric_ && opt_.on_warning) {
    warned_no_metric_ = true;
    auto m = read_run_metrics(l.ex->dir(), cfg_.primary_metric_name);
    std::vector<std::string> names(m.names.begin(), m.names.end());
    opt_.on_warning("trial " + l.run_id + " completed without logging the primary metric '" + cfg_.primary_metric_name +
                    "'" + (names.empty() ? " (it logged no metrics)" : " (it logged: " + join(names, ", ") + ")"));
  }
  if (opt_.on_trial_finished) {
    json j{{"index", l.index}, {"runId", l.run_id}, {"status", status_name(t.status)}, {"parameters", t.params},
           {"bestMetric", best ? json(*best) : json(nullptr)}};
    if (t.canceled_by) j["canceledReason"] = t.canceled_by->reason;
    opt_.on_trial_finished(j);
  }
}

void Scheduler::apply_policy() {
  if (!policy_active_ || !new_values_) return;
  new_values_ = false;
  for (const auto& d : decide(cfg_.policy, st_.series(), cfg_.goal)) {
    auto it = std::find_if(live_.begin(), live_.end(), [&](const Live& l) { return l.index == d.run; });
    if (it == live_.end() || it->cancel_sent) continue;
    TrialRecord& t = st_.trials[static_cast<size_t>(d.run)];
    if (t.status != TrialStatus::Running) continue;
    journal_.trial_canceled(d.run, d, it->run_id);
    flush();
    t.status = TrialStatus::Canceled;
    t.canceled_by = d;
    it->cancel_sent = true;
    try {
      runs::update_run(it->ex->dir(), [&](json& r) {
        if (!r["properties"].is_object()) r["properties"] = json::object();
        r["properties"]["earlyTermination"] = d.to_json();
        return false;
      });
    } catch (const Error&) {
    }
    it->ex->cancel("early termination: " + d.reason);
  }
}

void Scheduler::cancel_live(const std::string& reason) {
  for (auto& l : live_) {
    if (l.cancel_sent) continue;
    l.cancel_sent = true;
    l.ex->cancel(reason);
  }
}

double Scheduler::elapsed_limit_left() const {
  if (!cfg_.max_duration_minutes) return 1e18;
  return start_unix_ + *cfg_.max_duration_minutes * 60.0 - now_unix();
}

void Scheduler::progress() {
  Progress p;
  p.total = cfg_.max_total_runs;
  if (cfg_.sampling == SamplingType::Grid) p.total = static_cast<int>(std::min<long long>(grid_size(cfg_.parameters), cfg_.max_total_runs));
  p.completed = st_.count(TrialStatus::Completed);
  p.failed = st_.count(TrialStatus::Failed);
  p.canceled = st_.count(TrialStatus::Canceled);
  p.running = static_cast<int>(live_.size());
  for (const auto& t : st_.trials) {
    auto v = t.value(cfg_.goal);
    if (v && std::isfinite(*v) && (!p.best || is_better(*v, *p.best, cfg_.goal))) {
      p.best = v;
      p.best_run_id = t.run_id;
    }
  }
  bool changed = p.completed != last_progress_.completed || p.failed != last_progress_.failed ||
                 p.canceled != last_progress_.canceled || p.running != last_progress_.running ||
                 p.best != last_progress_.best;
  last_progress_ = p;
  if (changed && opt_.on_progress) opt_.on_progress(p);
}

json Scheduler::run() {
  take_over();
  load();
  recover_interrupted();
  ChildWakeup wake;
  // A cancel that arrived while nobody supervised the sweep.
  for (;;) {
    // Stop conditions.
    double now = monotonic_seconds();
    if (now - last_marker_check_ >= 0.05 || live_.empty()) {
      last_marker_check_ = now;
      if (stop_ != "canceled" && stop_ != "interrupted") {
        if (auto marker = read_file_if_exists(dir_ / "cancel")) {
          stop_ = "canceled";
          stop_detail_ = trim(*marker).empty() ? "canceled" : trim(*marker);
          cancel_live("sweep canceled: " + stop_detail_);
        }
      }
    }
    if (interrupted() && stop_ != "interrupted") {
      stop_ = "interrupted";
      stop_detail_ = std::string("interrupted (") + (interrupt_signal() == SIGINT ? "SIGINT" : "SIGTERM") + ")";
      cancel_live(stop_detail_);
    }
    if (stop_.empty() && elapsed_limit_left() <= 0) {
      stop_ = "max_duration";
      stop_detail_ = "max_duration_minutes reached (" + format_number(*cfg_.max_duration_minutes) + ")";
      cancel_live("max_duration_minutes reached");
    }
    fill_slots();
    if (!stop_.empty()) drop_ready("the sweep stopped before the trial started: " + stop_detail_);
    flush();
    progress();
    if (live_.empty()) break;

    // Wait for output, a child's exit, or the next check.
    std::vector<pollfd> pfds;
    if (wake.fd() >= 0) pfds.push_back({wake.fd(), POLLIN, 0});
    for (const auto& l : live_)
      for (int fd : l.ex->fds()) pfds.push_back({fd, POLLIN, 0});
    int timeout = opt_.poll_interval_ms;
    bool has_fd_less = std::any_of(live_.begin(), live_.end(), [](const Live& l) { return l.ex->fds().empty(); });
    if (has_fd_less && wake.fd() < 0) timeout = std::min(timeout, 10);
    if (policy_active_) timeout = std::min(timeout, 50);  // file metrics are collected every 50 ms
    double left = elapsed_limit_left();
    if (left < 1e17) timeout = static_cast<int>(std::clamp(left * 1000.0 + 1, 1.0, static_cast<double>(timeout)));
    if (::poll(pfds.data(), pfds.size(), timeout) < 0 && errno != EINTR) sys_fail("poll");
    wake.drain();

    // A trial ended well: its successor starts first, the bookkeeping of the ended one comes after.
    if (ready_ && stop_.empty() &&
        std::any_of(live_.begin(), live_.end(), [](const Live& l) { return l.ex->exited_successfully(); })) {
      launch_ready();
    }
    for (size_t i = 0; i < live_.size();) {
      Live& l = live_[i];
      bool done = l.ex->poll(0);
      tail_metrics(l, false);
      if (done) {
        finish_trial(l);
        live_.erase(live_.begin() + static_cast<long>(i));
        // The slot is free: start the prepared trial before anything else.
        if (ready_ && stop_.empty() && check_failures()) launch_ready();  // appended: the loop polls it too
        continue;
      }
      ++i;
    }
    apply_policy();
  }
  return finish();
}

json Scheduler::finish() {
  drop_ready("the sweep ended before the trial started");
  for (const auto& wd : spare_workdirs_) {
    std::error_code ec;
    fs::remove_all(wd, ec);
  }
  spare_workdirs_.clear();
  // Trials that never started (re-queued, then the sweep stopped) end Canceled.
  for (auto& t : st_.trials) {
    if (t.status == TrialStatus::Queued) {
      t.status = TrialStatus::Canceled;
      journal_.trial_finished(t.index, TrialStatus::Canceled, std::nullopt);
    }
  }
  const Outcome outcome = sweep_outcome(ws_, cfg_, st_, stop_, stop_detail_);
  journal_.sweep_finished(outcome.status);
  flush();
  update_sweep(dir_, [&](json& r) {
    r["status"] = outcome.status;
    r["endTimeUtc"] = now_iso8601();
    r["error"] = outcome.error;
    r["stopReason"] = stop_detail_.empty() ? json() : json(stop_detail_);
  });
  std::error_code ec;
  fs::remove(dir_ / "cancel", ec);
  json summary = sweep_summary(ws_, id_);
  if (stop_ == "interrupted") summary["interrupted"] = true;
  return summary;
}

}  // namespace

json run_sweep(const Workspace& ws, const std::string& sweep_id, const ScheduleOptions& options) {
  Scheduler s(ws, sweep_id, options);
  return s.run();
}

}  // namespace amlc::sweep
