// Creating, detaching and canceling sweeps (control.hpp).
#include "amlc/sweep/control.hpp"

#include <unistd.h>

#include <cstring>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/process.hpp"
#include "amlc/core/util.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/runs/request.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/sweep/arguments.hpp"
#include "amlc/sweep/journal.hpp"
#include "amlc/sweep/sampler.hpp"
#include "amlc/sweep/scheduler.hpp"
#include "amlc/sweep/store.hpp"
#include "amlc/sweep/summary.hpp"

namespace amlc::sweep {

json create_sweep(const Workspace& ws, const SubmitRequest& req_in) {
  SubmitRequest req = req_in;
  runs::RunRequest& r = req.run;
  // What every trial runs is checked as a run is (experiment name, target, source directory, script inside it,
  // something to run, metrics pattern, grace period; for docker the engine and the image).
  runs::check_request(r);
  // Recorded relative to the source directory, as a run records it (check_request refused a script outside it).
  if (!r.script.empty())
    if (auto rel = lexically_inside(r.source_dir, r.script)) r.script = rel->generic_string();
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

}  // namespace amlc::sweep
