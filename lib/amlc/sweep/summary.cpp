// The read side of sweeps (summary.hpp): summaries for show/list/best, trial run logs and metrics, and the status and
// error a stopped sweep ends with.
#include "amlc/sweep/summary.hpp"

#include <algorithm>
#include <cmath>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/util.hpp"
#include "amlc/runs/metrics.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/sweep/definition.hpp"
#include "amlc/sweep/policy.hpp"
#include "amlc/sweep/store.hpp"

namespace amlc::sweep {

namespace {

json trial_json(const Workspace& ws, const TrialRecord& t, Goal goal) {
  const std::string& run_id = t.run_id;
  auto v = t.value(goal);
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

json sweep_summary(const Workspace& ws, const std::string& sweep_id, bool with_trials) {
  fs::path dir = sweep_dir(ws, sweep_id);
  json r = effective_record(read_sweep_record(dir));
  SweepState st = replay(read_journal(journal_path(dir)), journal_path(dir).string());
  Goal goal = recorded_goal(r);
  std::vector<json> trials;
  for (const auto& t : st.trials) trials.push_back(trial_json(ws, t, goal));
  std::stable_sort(trials.begin(), trials.end(), [&](const json& a, const json& b) {
    bool ha = a["bestMetric"].is_number(), hb = b["bestMetric"].is_number();
    if (ha != hb) return ha;
    if (!ha) return a["index"].get<int>() < b["index"].get<int>();
    double va = a["bestMetric"].get<double>(), vb = b["bestMetric"].get<double>();
    if (va != vb) return is_better(va, vb, goal);
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

RunMetrics read_run_metrics(const fs::path& run_dir, const std::string& primary) {
  RunMetrics m;
  for (const auto& x : runs::read_metrics(run_dir / "metrics.jsonl")) {
    m.names.insert(x.name);
    if (x.name != primary) continue;
    if (auto v = x.number()) m.series.push_back(*v);
  }
  return m;
}

Outcome sweep_outcome(const Workspace& ws, const SweepConfig& cfg, const SweepState& state, const std::string& stop,
                      const std::string& stop_detail) {
  int completed = state.count(TrialStatus::Completed);
  int failed = state.count(TrialStatus::Failed);
  bool any_value = std::any_of(state.trials.begin(), state.trials.end(), [&](const TrialRecord& t) { return t.value(cfg.goal).has_value(); });
  std::string status = kSweepCompleted;
  json error = nullptr;
  auto first_failed = [&]() -> std::string {
    for (const auto& t : state.trials) {
      if (t.status != TrialStatus::Failed) continue;
      if (!t.error.empty()) return "trial " + std::to_string(t.index) + ": " + t.error;
      if (t.run_id.empty()) continue;
      return "first failure, run " + t.run_id + ", last lines of its log:\n" + run_log_tail(ws, t.run_id, 20);
    }
    return {};
  };
  if (stop == "canceled" || stop == "interrupted") {
    status = kSweepCanceled;
    error = {{"message", stop_detail}};
  } else if (stop == "max_failures") {
    status = kSweepFailed;
    error = {{"message", "the sweep stopped: " + stop_detail}, {"details", first_failed()}};
  } else if (completed == 0 && failed > 0 && failed == state.created()) {
    status = kSweepFailed;
    error = {{"message", "all " + std::to_string(failed) + " trial(s) failed"}, {"details", first_failed()}};
  } else if (!any_value && completed > 0) {
    std::set<std::string> names;
    for (const auto& t : state.trials) {
      if (t.run_id.empty()) continue;
      if (auto d = runs::find_run_dir(ws, t.run_id)) {
        auto m = read_run_metrics(*d, cfg.primary_metric_name);
        names.insert(m.names.begin(), m.names.end());
      }
    }
    std::vector<std::string> seen(names.begin(), names.end());
    status = kSweepFailed;
    error = {{"message", "no trial logged the primary metric '" + cfg.primary_metric_name + "'; " +
                             (seen.empty() ? std::string("the trials logged no metrics at all")
                                           : "the metrics the trials logged: " + join(seen, ", "))},
             {"expectedMetric", cfg.primary_metric_name},
             {"loggedMetrics", seen}};
  }
  return {status, error};
}

}  // namespace amlc::sweep
