#include "amlc/sweep/journal.hpp"

#include <algorithm>
#include <cmath>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/json.hpp"
#include "amlc/core/util.hpp"

namespace amlc::sweep {

namespace {

[[noreturn]] void damaged(const std::string& where, const std::string& what) {
  fail(ErrorKind::Damaged, where + ": " + what, "the sweep journal is damaged; inspect it or start a new sweep");
}

}  // namespace

void TrialRecord::start(const std::string& attempt_run_id) {
  status = TrialStatus::Running;
  metrics.clear();
  best.reset();
  ++starts;
  run_id = attempt_run_id;
}

void TrialRecord::requeue() {
  status = TrialStatus::Queued;
  metrics.clear();
  best.reset();
}

int SweepState::count(TrialStatus s) const {
  return static_cast<int>(std::count_if(trials.begin(), trials.end(), [&](const TrialRecord& t) { return t.status == s; }));
}

History SweepState::history(Goal goal) const {
  History h;
  for (const auto& t : trials) {
    Trial tr;
    tr.index = t.index;
    tr.params = t.params;
    tr.status = t.status;
    tr.value = t.value(goal);
    h.push_back(std::move(tr));
  }
  return h;
}

std::vector<RunSeries> SweepState::series() const {
  std::vector<RunSeries> out;
  for (const auto& t : trials) {
    if (t.status == TrialStatus::Queued) continue;
    out.push_back({t.index, t.metrics, t.status == TrialStatus::Running});
  }
  return out;
}

std::vector<int> SweepState::requeue_interrupted() {
  std::vector<int> out;
  for (auto& t : trials) {
    if (t.status == TrialStatus::Running) {
      t.requeue();
      out.push_back(t.index);
    }
  }
  return out;
}

std::vector<int> SweepState::queued() const {
  std::vector<int> out;
  for (const auto& t : trials)
    if (t.status == TrialStatus::Queued) out.push_back(t.index);
  return out;
}

bool SweepState::failures_reached(const SweepConfig& cfg) const { return count(TrialStatus::Failed) >= cfg.max_failures; }

bool SweepState::may_create(const SweepConfig& cfg, const Sampler& sampler, const History& h) const {
  return created() < cfg.max_total_runs && !sampler.exhausted(h);
}

std::vector<json> read_journal(const std::filesystem::path& path, bool* torn) {
  if (torn) *torn = false;
  auto text = read_file_if_exists(path);
  std::vector<json> out;
  if (!text) return out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    bool complete = nl != std::string::npos;
    std::string line = text->substr(pos, complete ? nl - pos : std::string::npos);
    pos = complete ? nl + 1 : text->size();
    ++line_no;
    bool last = pos >= text->size();
    if (trim(line).empty()) {
      if (!complete && torn) *torn = true;
      continue;
    }
    json j;
    bool ok = true;
    try {
      j = parse_json(line);
    } catch (const json::exception&) {
      ok = false;
    }
    if (!complete || (!ok && last)) {  // torn tail: ignore
      if (torn) *torn = true;
      continue;
    }
    if (!ok || !j.is_object() || !j.contains("event") || !j["event"].is_string())
      damaged(path.string() + ":" + std::to_string(line_no), "not a journal record");
    j["_line"] = line_no;
    out.push_back(std::move(j));
  }
  return out;
}

SweepState replay(const std::vector<json>& records, const std::string& source) {
  SweepState st;
  for (const auto& r : records) {
    std::string where = source + (r.contains("_line") ? ":" + std::to_string(r["_line"].get<int>()) : "");
    try {
      const std::string ev = r.at("event").get<std::string>();
      auto trial = [&]() -> TrialRecord& {
        int idx = r.at("index").get<int>();
        if (idx < 0 || idx >= static_cast<int>(st.trials.size())) damaged(where, "event " + ev + " for unknown trial " + std::to_string(idx));
        return st.trials[static_cast<size_t>(idx)];
      };
      if (ev == "sweep_started") {
        if (st.started) {
          if (r.at("config") != st.config || r.at("seed").get<std::uint64_t>() != st.seed) damaged(where, "a second sweep_started with a different configuration");
          ++st.ignored;
          continue;
        }
        st.started = true;
        st.config = r.at("config");
        st.seed = r.at("seed").get<std::uint64_t>();
      } else if (ev == "sweep_resumed") {
        // the interrupted trials go back to the queue (same params); their next trial_started restarts them
        for (const auto& i : r.at("requeued")) {
          int idx = i.get<int>();
          if (idx < 0 || idx >= static_cast<int>(st.trials.size())) damaged(where, "sweep_resumed names unknown trial " + std::to_string(idx));
          TrialRecord& t = st.trials[static_cast<size_t>(idx)];
          if (t.status == TrialStatus::Running) t.requeue();
        }
      } else if (ev == "trial_created") {
        int idx = r.at("index").get<int>();
        const json& params = r.at("params");
        if (idx < static_cast<int>(st.trials.size()) && idx >= 0) {
          if (st.trials[static_cast<size_t>(idx)].params != params) damaged(where, "trial " + std::to_string(idx) + " created twice with different parameters");
          ++st.ignored;
          continue;
        }
        if (idx != static_cast<int>(st.trials.size()))
          damaged(where, "trial " + std::to_string(idx) + " created before trial " + std::to_string(st.trials.size()));
        TrialRecord t;
        t.index = idx;
        t.params = params;
        st.trials.push_back(std::move(t));
      } else if (ev == "trial_started") {
        TrialRecord& t = trial();
        std::string run_id = r.contains("runId") && r["runId"].is_string() ? r["runId"].get<std::string>() : t.run_id;
        if (is_terminal(t.status) || t.status == TrialStatus::Running) {
          t.run_id = run_id;  // the latest attempt's run as recorded, even when the record changes nothing else
          ++st.ignored;
          continue;
        }
        t.start(run_id);
      } else if (ev == "trial_metric") {
        TrialRecord& t = trial();
        int interval = r.at("interval").get<int>();
        if (t.status != TrialStatus::Running || interval != static_cast<int>(t.metrics.size()) + 1) {
          ++st.ignored;
          continue;
        }
        const json& v = r.at("value");
        t.metrics.push_back(v.is_number() ? v.get<double>() : std::nan(""));
      } else if (ev == "trial_canceled") {
        TrialRecord& t = trial();
        if (is_terminal(t.status)) {
          ++st.ignored;
          continue;
        }
        const json& d = r.at("decision");
        Decision dec;
        dec.run = d.value("run", t.index);
        dec.interval = d.value("interval", 0);
        dec.rule = d.value("rule", std::string());
        dec.numbers = d.value("numbers", json::object());
        dec.reason = d.value("reason", std::string());
        t.canceled_by = dec;
        t.status = TrialStatus::Canceled;
      } else if (ev == "trial_finished") {
        TrialRecord& t = trial();
        TrialStatus s = parse_status(r.at("status").get<std::string>());
        if (!is_terminal(s)) damaged(where, "trial_finished with a non-final status " + std::string(status_name(s)));
        std::optional<double> best;
        if (r.contains("best") && r["best"].is_number()) best = r["best"].get<double>();
        if (is_terminal(t.status)) {
          // canceled by the policy, then the process ended: keep Canceled, take the final best.
          if (t.canceled_by && s == TrialStatus::Canceled && best && !t.best) t.best = best;
          else ++st.ignored;
          continue;
        }
        if (r.contains("error") && r["error"].is_string()) t.error = r["error"].get<std::string>();
        if (t.status != TrialStatus::Running) {  // finished without being started (e.g. failed to launch)
          t.metrics.clear();
        }
        t.status = s;
        t.best = best;
      } else if (ev == "sweep_finished") {
        st.finished = true;
        st.finish_status = r.value("status", std::string("Completed"));
      } else {
        ++st.ignored;  // unknown events from a newer amlc are skipped
      }
    } catch (const json::exception& e) {
      damaged(where, std::string("malformed record: ") + e.what());
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Damaged) throw;
      damaged(where, e.what());
    }
  }
  return st;
}

SweepState replay(const std::filesystem::path& path) {
  bool torn = false;
  auto recs = read_journal(path, &torn);
  SweepState st = replay(recs, path.string());
  st.torn_tail = torn;
  return st;
}

Journal::Journal(std::filesystem::path path, bool batched) : path_(std::move(path)), batched_(batched) {
  auto text = read_file_if_exists(path_);
  if (text && !text->empty() && text->back() != '\n') {
    size_t keep = text->rfind('\n');
    keep = keep == std::string::npos ? 0 : keep + 1;
    std::error_code ec;
    std::filesystem::resize_file(path_, keep, ec);
    if (ec) fail(ErrorKind::General, "cannot repair the torn last line of " + path_.string() + ": " + ec.message());
    fsync_path(path_);
  }
}

std::string journal_line(json record) {
  record["time"] = now_iso8601();
  return record.dump();
}

json sweep_started_record(const json& config, std::uint64_t seed) {
  return {{"event", "sweep_started"}, {"config", config}, {"seed", seed}};
}

void Journal::append(json record) {
  pending_.push_back(journal_line(std::move(record)));
  if (!batched_) flush();
}

void Journal::flush() {
  if (pending_.empty()) return;
  append_line_durable(path_, join(pending_, "\n"));
  pending_.clear();
}

void Journal::sweep_started(const SweepConfig& cfg, std::uint64_t seed) { append(sweep_started_record(cfg.to_json(), seed)); }
void Journal::sweep_resumed(const std::vector<int>& requeued) { append({{"event", "sweep_resumed"}, {"requeued", requeued}}); }
void Journal::trial_created(int index, const json& params) { append({{"event", "trial_created"}, {"index", index}, {"params", params}}); }
void Journal::trial_started(int index, const std::string& run_id, int attempt) {
  json r{{"event", "trial_started"}, {"index", index}};
  if (!run_id.empty()) r["runId"] = run_id;
  if (attempt > 0) r["attempt"] = attempt;
  append(std::move(r));
}
void Journal::trial_metric(int index, int interval, double value) {
  append({{"event", "trial_metric"}, {"index", index}, {"interval", interval}, {"value", std::isfinite(value) ? json(value) : json(nullptr)}});
}
void Journal::trial_canceled(int index, const Decision& decision, const std::string& run_id) {
  json r{{"event", "trial_canceled"}, {"index", index}, {"decision", decision.to_json()}};
  if (!run_id.empty()) r["runId"] = run_id;
  append(std::move(r));
}
void Journal::trial_finished(int index, TrialStatus status, std::optional<double> best, const std::string& error) {
  json r{{"event", "trial_finished"}, {"index", index}, {"status", status_name(status)}, {"best", best ? json(*best) : json(nullptr)}};
  if (!error.empty()) r["error"] = error;
  append(std::move(r));
}
void Journal::sweep_finished(const std::string& status) { append({{"event", "sweep_finished"}, {"status", status}}); }

}  // namespace amlc::sweep
