// Reading back what a recorded sweep runs with, and what each trial runs (definition.hpp).
#include "amlc/sweep/definition.hpp"

#include "amlc/core/error.hpp"
#include "amlc/core/util.hpp"
#include "amlc/runs/request.hpp"
#include "amlc/sweep/arguments.hpp"

namespace amlc::sweep {

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

std::string resume_blocker(const json& record, const SweepState& state) {
  try {
    (void)load_definition(record, state);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

runs::RunRequest trial_request(const runs::RunRequest& base, const SweepConfig& cfg, const std::string& sweep_id,
                               const runs::SnapshotRef& snapshot, const TrialRecord& t, int attempt) {
  runs::RunRequest rq = base;
  rq.run_id = t.run_id;
  rq.parent_run_id = sweep_id;
  rq.snapshot = snapshot;
  rq.durable = false;
  auto params_args = script_arguments(cfg, t.params);
  rq.arguments.insert(rq.arguments.end(), params_args.begin(), params_args.end());
  rq.tags["hyperparameters"] = t.params.dump();
  rq.tags["sweepId"] = sweep_id;
  rq.properties = {{"hyperparameters", t.params}, {"sweepId", sweep_id}, {"trialIndex", t.index}, {"attempt", attempt},
                   {"primaryMetricName", cfg.primary_metric_name}};
  return rq;
}

Goal recorded_goal(const json& record) {
  const json pm = record.value("primaryMetric", json::object());
  return pm.is_object() && to_lower(pm.value("goal", std::string())) == "minimize" ? Goal::Minimize : Goal::Maximize;
}

runs::SnapshotRef recorded_snapshot(const json& record) {
  const json j = record.value("snapshot", json::object());
  runs::SnapshotRef s;
  s.sha256 = j.value("sha256", std::string());
  s.files = j.value("files", uint64_t{0});
  s.bytes = j.value("bytes", uint64_t{0});
  s.excluded = j.value("excluded", uint64_t{0});
  s.archive_bytes = j.value("archiveBytes", uint64_t{0});
  return s;
}

}  // namespace amlc::sweep
