#include "amlc/sweep/scheduler.hpp"

#include "amlc/core/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/runs/metrics.hpp"
#include "amlc/runs/request.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/sweep/arguments.hpp"
#include "amlc/sweep/journal.hpp"
#include "amlc/sweep/policy.hpp"
#include "amlc/sweep/sampler.hpp"

extern char** environ;

namespace amlc::sweep {

namespace {

// ---- SIGCHLD wake-up: a trial's exit wakes the scheduler at once instead of at the next poll tick. ----------
int g_chld_pipe[2] = {-1, -1};

extern "C" void on_sigchld(int) {
  int saved = errno;
  if (g_chld_pipe[1] >= 0) {
    char c = 'c';
    ssize_t n = ::write(g_chld_pipe[1], &c, 1);
    (void)n;
  }
  errno = saved;
}

class ChildWakeup {
 public:
  ChildWakeup() {
    if (g_chld_pipe[0] < 0) {
      if (::pipe2(g_chld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        g_chld_pipe[0] = g_chld_pipe[1] = -1;
        return;
      }
    }
    struct sigaction sa {};
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    installed_ = ::sigaction(SIGCHLD, &sa, &old_) == 0;
  }
  ~ChildWakeup() {
    if (installed_) ::sigaction(SIGCHLD, &old_, nullptr);
  }
  int fd() const { return g_chld_pipe[0]; }
  void drain() const {
    char buf[256];
    while (g_chld_pipe[0] >= 0 && ::read(g_chld_pipe[0], buf, sizeof buf) > 0) {
    }
  }

 private:
  struct sigaction old_ {};
  bool installed_ = false;
};

bool better(double a, double b, Goal g) { return g == Goal::Maximize ? a > b : a < b; }

runs::SnapshotRef snapshot_from_json(const json& j) {
  runs::SnapshotRef s;
  s.sha256 = j.value("sha256", std::string());
  s.files = j.value("files", uint64_t{0});
  s.bytes = j.value("bytes", uint64_t{0});
  s.excluded = j.value("excluded", uint64_t{0});
  s.archive_bytes = j.value("archiveBytes", uint64_t{0});
  return s;
}

// What a sweep runs with, as recorded: the configuration and seed (the journal's sweep_started; for a journal that
// never got that record, e.g. a sweep created by an older amlc killed between its folder and its journal, the same
// values from the sweep record), the sampler and the trials' run definition. Throws when any of it is unusable.
struct Definition {
  SweepConfig cfg;
  std::uint64_t seed = 0;
  std::unique_ptr<Sampler> sampler;
  runs::RunRequest base;
  std::optional<json> missing_start;  // the sweep_started record the journal lacks (to append), if it lacks one
};

Definition load_definition(const json& record, const SweepState& st) {
  Definition d;
  json config = st.config;
  d.seed = st.seed;
  if (!st.started) {
    config = record.value("config", json());
    const json seed = record.value("seed", json());
    bool seed_ok = seed.is_number_unsigned() || (seed.is_number_integer() && seed.get<long long>() >= 0);
    if (!config.is_object() || !seed_ok)
      fail(ErrorKind::Damaged, "its journal has no sweep_started record and its record holds no configuration and seed");
    d.seed = seed.get<std::uint64_t>();
    d.missing_start = sweep_started_record(config, d.seed);
  }
  d.cfg = SweepConfig::from_json(config);
  d.sampler = make_sampler(d.cfg, d.seed);
  d.base = runs::request_from_json(record.value("runDefinition", json::object()), record.value("experimentName", std::string("default")),
                                   "the sweep record's runDefinition");
  return d;
}

// The runId of the latest attempt of each trial, from the journal's trial_started records.
std::map<int, std::string> run_ids_from_journal(const std::vector<json>& records) {
  std::map<int, std::string> out;
  for (const auto& r : records) {
    if (r.value("event", "") == "trial_started" && r.contains("runId") && r["runId"].is_string()) {
      out[r.value("index", -1)] = r["runId"].get<std::string>();
    }
  }
  return out;
}

// Best (per goal) finite value of the primary metric in a run's metrics file, and the metric names seen.
struct RunMetrics {
  std::vector<double> series;
  std::set<std::string> names;
};
RunMetrics read_run_metrics(const fs::path& run_dir, const std::string& primary) {
  RunMetrics m;
  for (const auto& x : runs::read_metrics(run_dir / "metrics.jsonl")) {
    m.names.insert(x.name);
    if (x.name != primary) continue;
    if (auto v = x.number()) m.series.push_back(*v);
  }
  return m;
}

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
  std::map<int, std::string> run_ids_;
  std::map<int, std::string> fail_reason_;  // trials that failed before their run existed
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
  auto records = read_journal(journal_path(dir_));
  st_ = replay(records, journal_path(dir_).string());
  if (st_.finished) {
    // The journal says it ended (a crash came before the record was updated): make the record agree.
    update_sweep(dir_, [&](json& r) {
      r["status"] = st_.finish_status;
      if (r.value("endTimeUtc", json()).is_null()) r["endTimeUtc"] = now_iso8601();
    });
    conflict("sweep '" + id_ + "' has already finished (" + st_.finish_status + ")");
  }
  run_ids_ = run_ids_from_journal(records);
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
    cfg_.goal = pm.is_object() && to_lower(pm.value("goal", std::string())) == "minimize" ? Goal::Minimize : Goal::Maximize;
    cfg_.max_total_runs = st_.created();
    cfg_.max_concurrent_runs = 1;
    cfg_.max_failures = std::numeric_limits<int>::max();
    sampler_.reset();
    stop_ = "canceled";
    stop_detail_ = trim(*marker).empty() ? "canceled" : trim(*marker);
  }
  snapshot_ = snapshot_from_json(record_.value("snapshot", json::object()));
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
    auto it = run_ids_.find(t.index);
    std::string rid = it != run_ids_.end() ? it->second : trial_run_id(id_, t.index, t.starts);
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
    auto it = run_ids_.find(t.index);
    if (it == run_ids_.end()) continue;
    if (auto dir = runs::find_run_dir(ws_, it->second)) {
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
  t.status = TrialStatus::Running;
  t.metrics.clear();
  t.best.reset();
  ++t.starts;
  run_ids_[index] = rid;

  runs::RunRequest rq = base_;
  rq.run_id = rid;
  rq.parent_run_id = id_;
  rq.snapshot = snapshot_;
  // The journal's trial_started (fsynced above) is the durable fact; a crash re-queues the trial on resume and
  // reconciles whatever run record exists, so the run record itself need not be fsynced.
  rq.durable = false;
  auto params_args = script_arguments(cfg_, t.params);
  rq.arguments.insert(rq.arguments.end(), params_args.begin(), params_args.end());
  rq.tags["hyperparameters"] = t.params.dump();
  rq.tags["sweepId"] = id_;
  rq.properties = {{"hyperparameters", t.params}, {"sweepId", id_}, {"trialIndex", index}, {"attempt", attempt},
                   {"primaryMetricName", cfg_.primary_metric_name}};
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
    fail_reason_[index] = e.what();
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
    auto v = t.best ? t.best : best_value(t.metrics, cfg_.goal);
    if (v && std::isfinite(*v) && (!p.best || better(*v, *p.best, cfg_.goal))) {
      p.best = v;
      auto it = run_ids_.find(t.index);
      p.best_run_id = it != run_ids_.end() ? it->second : "";
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
  int completed = st_.count(TrialStatus::Completed);
  int failed = st_.count(TrialStatus::Failed);
  bool any_value = std::any_of(st_.trials.begin(), st_.trials.end(), [&](const TrialRecord& t) {
    auto v = t.best ? t.best : best_value(t.metrics, cfg_.goal);
    return v.has_value();
  });
  std::string status = kSweepCompleted;
  json error = nullptr;
  std::string stop_reason = stop_detail_;
  auto first_failed = [&]() -> std::string {
    for (const auto& t : st_.trials) {
      if (t.status != TrialStatus::Failed) continue;
      auto it = run_ids_.find(t.index);
      if (fail_reason_.count(t.index)) return "trial " + std::to_string(t.index) + ": " + fail_reason_[t.index];
      if (it == run_ids_.end()) continue;
      return "first failure, run " + it->second + ", last lines of its log:\n" + run_log_tail(ws_, it->second, 20);
    }
    return {};
  };
  if (stop_ == "canceled" || stop_ == "interrupted") {
    status = kSweepCanceled;
    error = {{"message", stop_detail_}};
  } else if (stop_ == "max_failures") {
    status = kSweepFailed;
    error = {{"message", "the sweep stopped: " + stop_detail_}, {"details", first_failed()}};
  } else if (completed == 0 && failed > 0 && failed == st_.created()) {
    status = kSweepFailed;
    error = {{"message", "all " + std::to_string(failed) + " trial(s) failed"}, {"details", first_failed()}};
  } else if (!any_value && completed > 0) {
    std::set<std::string> names;
    for (const auto& [idx, rid] : run_ids_) {
      if (auto d = runs::find_run_dir(ws_, rid)) {
        auto m = read_run_metrics(*d, cfg_.primary_metric_name);
        names.insert(m.names.begin(), m.names.end());
      }
    }
    std::vector<std::string> seen(names.begin(), names.end());
    status = kSweepFailed;
    error = {{"message", "no trial logged the primary metric '" + cfg_.primary_metric_name + "'; " +
                             (seen.empty() ? std::string("the trials logged no metrics at all")
                                           : "the metrics the trials logged: " + join(seen, ", "))},
             {"expectedMetric", cfg_.primary_metric_name},
             {"loggedMetrics", seen}};
  }
  journal_.sweep_finished(status);
  flush();
  update_sweep(dir_, [&](json& r) {
    r["status"] = status;
    r["endTimeUtc"] = now_iso8601();
    r["error"] = error;
    r["stopReason"] = stop_reason.empty() ? json() : json(stop_reason);
  });
  std::error_code ec;
  fs::remove(dir_ / "cancel", ec);
  json summary = sweep_summary(ws_, id_);
  if (stop_ == "interrupted") summary["interrupted"] = true;
  return summary;
}

json trial_json(const Workspace& ws, const TrialRecord& t, const std::string& run_id, Goal goal) {
  auto v = t.best ? t.best : best_value(t.metrics, goal);
  json j{{"index", t.index},
         {"runId", run_id.empty() ? json() : json(run_id)},
         {"status", status_name(t.status)},
         {"parameters", t.params},
         {"bestMetric", v && std::isfinite(*v) ? json(*v) : json(nullptr)},
         {"intervals", t.metrics.size()},
         {"attempts", t.starts}};
  if (t.status == TrialStatus::Running && !run_id.empty()) {
    // Prepared ahead of a free slot: the journal has it started, its run is still waiting.
    if (auto d = runs::find_run_dir(ws, run_id)) {
      try {
        std::string rs = runs::read_run_record(*d).value("status", "");
        if (rs == runs::kQueued || rs == runs::kNotStarted) j["status"] = status_name(TrialStatus::Queued);
      } catch (const Error&) {
      }
    }
  }
  if (t.canceled_by) {
    j["canceledReason"] = t.canceled_by->reason;
    j["earlyTermination"] = t.canceled_by->to_json();
  } else if (t.status == TrialStatus::Canceled && !run_id.empty()) {
    if (auto d = runs::find_run_dir(ws, run_id)) {
      try {
        json rr = runs::read_run_record(*d);
        if (rr.value("cancelRequested", json()).is_object()) j["canceledReason"] = rr["cancelRequested"].value("reason", "");
      } catch (const Error&) {
      }
    }
  }
  return j;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

std::string run_log_tail(const Workspace& ws, const std::string& run_id, int lines) {
  auto dir = runs::find_run_dir(ws, run_id);
  if (!dir) return "(run " + run_id + " was not created)";
  std::string text = read_file_if_exists(*dir / "logs" / "run.log").value_or("");
  std::vector<std::string> all = split(text, '\n');
  while (!all.empty() && all.back().empty()) all.pop_back();
  if (all.empty()) {
    try {
      json rr = runs::read_run_record(*dir);
      if (rr.value("error", json()).is_object()) return rr["error"].value("message", std::string("(no output)"));
    } catch (const Error&) {
    }
    return "(no output)";
  }
  size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - static_cast<size_t>(lines) : 0;
  std::vector<std::string> tail(all.begin() + static_cast<long>(from), all.end());
  return join(tail, "\n");
}

json create_sweep(const Workspace& ws, const SubmitRequest& req_in) {
  SubmitRequest req = req_in;
  runs::RunRequest& r = req.run;
  runs::validate_experiment_name(r.experiment);
  if (r.target != "local" && r.target != "docker") {
    usage_error("unknown target '" + r.target + "'", "use local or docker");
  }
  std::error_code ec;
  if (!fs::is_directory(r.source_dir, ec)) {
    not_found("source directory " + r.source_dir.string() + " does not exist", "pass an existing folder with --source-directory");
  }
  if (r.script.empty() && r.command.empty()) {
    usage_error("no script given", "amlc sweep submit -f sweep.yml [options] SCRIPT [ARGS...]");
  }
  if (!r.script.empty()) {
    fs::path sp = fs::path(r.script).is_absolute() ? fs::path(r.script) : r.source_dir / r.script;
    if (!fs::is_regular_file(sp, ec)) {
      not_found("script '" + r.script + "' not found in source directory " + fs::absolute(r.source_dir).lexically_normal().string(),
                "the script path is relative to --source-directory (default: the current folder)");
    }
  }
  if (!r.metrics_regex.empty()) runs::MetricPattern check(r.metrics_regex, r.metrics_regex_where);
  (void)runs::resolve_command(r);
  std::vector<std::string> dropped;
  r.arguments = remove_parameter_arguments(req.config, r.arguments, &dropped);
  SweepConfig cfg = req.config;
  if (req.seed) cfg.seed = req.seed;
  if (!dropped.empty()) {
    cfg.warnings.push_back("the script arguments " + join(dropped, ", ") +
                           " name sweep parameters; the sweep's values replace them");
  }
  std::uint64_t seed = resolve_seed(cfg);
  // What resume reads back must load: the configuration is validated once here, through the same round trip.
  (void)SweepConfig::from_json(cfg.to_json());
  if (!r.script.empty() && fs::path(r.script).is_absolute()) {
    r.script = fs::path(r.script).lexically_normal().lexically_relative(fs::absolute(r.source_dir).lexically_normal()).generic_string();
  }
  std::string id = new_sweep_id(r.experiment);
  json record{{"sweepId", id},
              {"runType", "hyperdrive"},
              {"experimentName", r.experiment},
              {"status", kSweepRunning},
              {"createdUtc", now_iso8601()},
              {"startTimeUtc", nullptr},
              {"endTimeUtc", nullptr},
              {"primaryMetric", {{"name", cfg.primary_metric_name}, {"goal", goal_name(cfg.goal)}}},
              {"seed", seed},
              {"hyperdriveConfiguration", req.config_file.empty() ? json() : json(fs::absolute(req.config_file).lexically_normal().string())},
              {"runConfiguration", req.runconfig_file.empty() ? json() : json(fs::absolute(req.runconfig_file).lexically_normal().string())},
              {"runDefinition", runs::request_to_json(r)},
              {"snapshot", nullptr},
              {"supervisor", runs::supervisor_info(static_cast<int>(::getpid()))},
              {"error", nullptr},
              {"stopReason", nullptr}};
  std::string journal_text;
  try {  // paths (file names are bytes) must be valid UTF-8 to be recorded
    journal_text = journal_line(sweep_started_record(cfg.to_json(), seed)) + "\n";
    (void)record.dump();
  } catch (const json::exception&) {
    usage_error("a path given to the sweep (source directory, script, configuration file) is not valid UTF-8",
                "rename it, or run from a folder whose path is valid UTF-8");
  }
  // Writes start here: the snapshot, then the sweep folder with its journal's first record, in one rename. The
  // snapshot is pinned until the sweep's record refers to it.
  FileLock pin = BlobStore(ws.blobs_dir()).pin();
  record["snapshot"] = runs::store_snapshot(ws, r.source_dir, r.limits).to_json();
  create_sweep_dir(ws, id, record, journal_text);
  return record;
}

json run_sweep(const Workspace& ws, const std::string& sweep_id, const ScheduleOptions& options) {
  Scheduler s(ws, sweep_id, options);
  return s.run();
}

json sweep_summary(const Workspace& ws, const std::string& sweep_id, bool with_trials) {
  fs::path dir = sweep_dir(ws, sweep_id);
  json r = effective_record(read_sweep_record(dir));
  auto records = read_journal(journal_path(dir));
  SweepState st = replay(records, journal_path(dir).string());
  auto ids = run_ids_from_journal(records);
  Goal goal = to_lower(r["primaryMetric"].value("goal", std::string("Maximize"))) == "minimize" ? Goal::Minimize : Goal::Maximize;
  std::vector<json> trials;
  for (const auto& t : st.trials) {
    auto it = ids.find(t.index);
    trials.push_back(trial_json(ws, t, it != ids.end() ? it->second : "", goal));
  }
  std::stable_sort(trials.begin(), trials.end(), [&](const json& a, const json& b) {
    bool ha = a["bestMetric"].is_number(), hb = b["bestMetric"].is_number();
    if (ha != hb) return ha;
    if (!ha) return a["index"].get<int>() < b["index"].get<int>();
    double va = a["bestMetric"].get<double>(), vb = b["bestMetric"].get<double>();
    if (va != vb) return better(va, vb, goal);
    return a["index"].get<int>() < b["index"].get<int>();
  });
  json out = r;
  out.erase("supervisor");
  // The configuration is recorded once, in the journal's sweep_started (sweep records before that held a copy).
  if (st.started) out["config"] = st.config;
  // Running/queued as the trials show them: a trial prepared ahead of a free slot is queued.
  int prepared = static_cast<int>(std::count_if(trials.begin(), trials.end(), [&](const json& t) {
    return t["status"] == status_name(TrialStatus::Queued);
  })) - st.count(TrialStatus::Queued);
  out["trials"] = {{"total", st.created()},
                   {"completed", st.count(TrialStatus::Completed)},
                   {"failed", st.count(TrialStatus::Failed)},
                   {"canceled", st.count(TrialStatus::Canceled)},
                   {"running", st.count(TrialStatus::Running) - prepared},
                   {"queued", st.count(TrialStatus::Queued) + prepared}};
  if (!trials.empty() && trials.front()["bestMetric"].is_number()) {
    out["bestRunId"] = trials.front()["runId"];
    out["bestMetric"] = trials.front()["bestMetric"];
    out["bestParameters"] = trials.front()["parameters"];
  } else {
    out["bestRunId"] = nullptr;
    out["bestMetric"] = nullptr;
    out["bestParameters"] = nullptr;
  }
  if (with_trials) out["trialRuns"] = trials;
  return out;
}

std::string resume_blocker(const json& record, const SweepState& state) {
  try {
    (void)load_definition(record, state);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

json best_trial(const Workspace& ws, const std::string& sweep_id) {
  json s = sweep_summary(ws, sweep_id, true);
  if (s["bestRunId"].is_null()) {
    not_found("no trial of sweep '" + sweep_id + "' logged the primary metric '" + s["primaryMetric"].value("name", "") + "'",
              "see the trials with 'amlc sweep show " + sweep_id + "'");
  }
  const json& t = s["trialRuns"].front();
  json out{{"runId", t["runId"]},
           {"sweepId", sweep_id},
           {"experimentName", s["experimentName"]},
           {"parameters", t["parameters"]},
           {"metric", {{"name", s["primaryMetric"]["name"]}, {"goal", s["primaryMetric"]["goal"]}, {"value", t["bestMetric"]}}},
           {"status", t["status"]}};
  if (auto d = runs::find_run_dir(ws, t["runId"].get<std::string>())) {
    try {
      json rr = runs::read_run_record(*d);
      out["arguments"] = rr["runDefinition"].value("arguments", json::array());
    } catch (const Error&) {
    }
  }
  return out;
}

std::vector<json> list_sweeps(const Workspace& ws, const std::string& experiment) {
  std::vector<json> out;
  for (const auto& r : list_sweep_records(ws, experiment)) {
    try {
      out.push_back(sweep_summary(ws, r.value("sweepId", std::string())));
    } catch (const Error&) {
      out.push_back(r);
    }
  }
  return out;
}

json cancel_sweep(const Workspace& ws, const std::string& sweep_id, const std::string& reason, double wait_seconds) {
  fs::path dir = sweep_dir(ws, sweep_id);
  json r = read_sweep_record(dir);
  std::string status = r.value("status", "");
  if (status == kSweepCanceled) return sweep_summary(ws, sweep_id);
  if (sweep_status_terminal(status)) {
    conflict("sweep '" + sweep_id + "' already finished: " + status, "only a sweep that is not finished can be canceled");
  }
  update_sweep(dir, [&](json& rec) {
    if (!rec.contains("cancelRequested") || rec["cancelRequested"].is_null()) {
      rec["cancelRequested"] = {{"time", now_iso8601()}, {"reason", reason}, {"byPid", static_cast<int>(::getpid())}};
    }
  });
  write_file_atomic(dir / "cancel", reason + "\n");
  double t0 = monotonic_seconds();
  while (monotonic_seconds() - t0 < wait_seconds) {
    json cur = read_sweep_record(dir);
    if (sweep_status_terminal(cur.value("status", ""))) return sweep_summary(ws, sweep_id);
    if (!runs::supervisor_alive(cur.value("supervisor", json()))) {
      // Nobody supervises it: end it here. The scheduler sees the marker at once and cancels what runs.
      ScheduleOptions o;
      try {
        return run_sweep(ws, sweep_id, o);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::Conflict) throw;  // someone else took it over: keep waiting
      }
    }
    ::usleep(20000);
  }
  return sweep_summary(ws, sweep_id);
}

int spawn_sweep_supervisor(const Workspace& ws, const std::string& sweep_id) {
  fs::path dir = sweep_dir(ws, sweep_id);
  int pid = spawn_detached_self({"-w", ws.root().string(), "sweep", "_supervise", sweep_id}, dir / "supervisor.txt");
  int rc = pid < 0 ? -pid : 0;
  if (rc != 0) fail(ErrorKind::General, std::string("cannot start the sweep's supervisor: ") + std::strerror(rc));
  json info = runs::supervisor_info(pid);
  update_sweep(dir, [&](json& r) {
    if (r.value("supervisor", json::object()).value("pid", 0) == static_cast<int>(::getpid())) r["supervisor"] = info;
  });
  return pid;
}

}  // namespace amlc::sweep
