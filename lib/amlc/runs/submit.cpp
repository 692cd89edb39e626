// Submitting a run: snapshotting the source into the blob store (store_snapshot), checking a request and resolving
// the program it runs (check_request, resolve_command), and writing the new run folder, Queued, with its index link
// (create_run). Nothing here starts a process: that is Execution (executor.cpp).
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/process.hpp"
#include "amlc/core/util.hpp"
#include "amlc/docker/client.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/runs/executor.hpp"
#include "amlc/runs/metrics.hpp"
#include "amlc/runs/request.hpp"
#include "amlc/runs/store.hpp"

namespace amlc::runs {

namespace {

// The script as a path relative to the source directory (it may be given relative to it, or absolute).
std::string script_inside(const fs::path& source_dir, const std::string& script) {
  auto rel = lexically_inside(source_dir, script);
  if (!rel) {
    usage_error("script '" + script + "' is not inside the source directory " + source_dir.string(),
                "scripts run from the run's snapshot of --source-directory; move it there or point "
                "--source-directory at its folder");
  }
  return rel->generic_string();
}

}  // namespace

fs::path snapshot_cache_dir(const Workspace& ws, const std::string& sha256) {
  return ws.root() / "cache" / "snapshots" / sha256;
}

json SnapshotRef::to_json() const {
  return {{"sha256", sha256}, {"files", files}, {"bytes", bytes}, {"excluded", excluded}, {"archiveBytes", archive_bytes}};
}

SnapshotRef store_snapshot(const Workspace& ws, const fs::path& source_dir, const archive::SnapshotLimits& limits) {
  archive::WalkOptions wo;
  wo.exclude_paths = {ws.root()};
  auto listing = archive::list_source(source_dir, wo);
  archive::check_limits(source_dir, listing, limits);
  fs::create_directories(ws.tmp_dir());
  fs::path tmp = temp_sibling(ws.tmp_dir() / "snapshot.tar.gz");
  struct Remove {
    fs::path p;
    ~Remove() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } remove{tmp};
  auto info = archive::write_snapshot(source_dir, listing, tmp);
  BlobStore(ws.blobs_dir()).put_file(tmp, info.sha256);
  SnapshotRef ref;
  ref.sha256 = info.sha256;
  ref.files = info.files;
  ref.bytes = info.bytes;
  ref.excluded = info.excluded;
  ref.archive_bytes = info.archive_bytes;
  return ref;
}

std::vector<std::string> resolve_command(const RunRequest& r) {
  std::vector<std::string> argv = r.command;
  if (!argv.empty()) {
    if (!r.script.empty()) argv.push_back(r.script);
    argv.insert(argv.end(), r.arguments.begin(), r.arguments.end());
    return argv;
  }
  if (r.script.empty()) usage_error("nothing to run: give a SCRIPT, or 'command' in the run configuration");
  std::string ext = fs::path(r.script).extension().string();
  if (ext == ".py") argv = {r.interpreter, r.script};
  else if (ext == ".sh") argv = {"bash", r.script};
  else if (ext == ".R" || ext == ".r") argv = {"Rscript", r.script};
  else argv = {"./" + r.script};
  argv.insert(argv.end(), r.arguments.begin(), r.arguments.end());
  return argv;
}

namespace {

// The checks of a request that do not depend on the run's ids (the experiment name aside); normalises the script
// to its path inside the source directory.
void check_request_fields(RunRequest& req) {
  if (req.target != "local" && req.target != "docker") {
    std::string near = closest_match(req.target, {"local", "docker"});
    usage_error("unknown target '" + req.target + "'",
                near.empty() ? "use --target local or --target docker" : "did you mean '" + near + "'?");
  }
  if (!req.snapshot) {
    std::error_code ec;
    if (!fs::is_directory(req.source_dir, ec)) {
      not_found("source directory " + req.source_dir.string() + " does not exist" +
                    (fs::exists(req.source_dir, ec) ? " (it is " + describe_file_type(req.source_dir) + ")" : ""),
                "pass an existing folder with --source-directory");
    }
  }
  if (!req.script.empty()) {
    req.script = script_inside(req.source_dir, req.script);
    if (!req.snapshot) {
      fs::path sp = req.source_dir / req.script;
      std::error_code ec;
      if (!fs::is_regular_file(sp, ec)) {
        not_found("script '" + req.script + "' not found in source directory " +
                      fs::absolute(req.source_dir).lexically_normal().string() +
                      (fs::exists(sp, ec) ? " (it is " + describe_file_type(sp) + ")" : ""),
                  "the script path is relative to --source-directory (default: the current folder)");
      }
      std::string ext = sp.extension().string();
      if (req.command.empty() && ext != ".py" && ext != ".sh" && ext != ".R" && ext != ".r" &&
          ::access(sp.c_str(), X_OK) != 0) {
        usage_error("script '" + req.script + "' is neither a .py/.sh/.R file nor executable",
                    "chmod +x it, or give 'command' in the run configuration (e.g. command: [perl])");
      }
    }
  }
  (void)resolve_command(req);  // something to run
  if (!req.metrics_regex.empty()) MetricPattern check(req.metrics_regex, req.metrics_regex_where);
  if (req.grace_seconds < 0) usage_error("the cancel grace period must be >= 0 seconds");
  if (req.target == "docker") {
    docker::Client dc;
    dc.ping();
    dc.require_image(req.image);
  }
}

}  // namespace

void check_request(const RunRequest& request) {
  RunRequest req = request;
  validate_experiment_name(req.experiment);
  check_request_fields(req);
}

json create_run(const Workspace& ws, const RunRequest& req_in, int supervisor_pid) {
  RunRequest req = req_in;
  // 1. Validate everything before writing anything (what the caller checked once, it need not check again).
  if (!req.checked) validate_experiment_name(req.experiment);
  if (req.run_id.empty()) req.run_id = new_run_id(req.experiment);
  validate_run_id(req.run_id);
  if (!req.parent_run_id.empty()) validate_run_id(req.parent_run_id);
  if (!req.checked) check_request_fields(req);
  else if (!req.script.empty()) req.script = script_inside(req.source_dir, req.script);
  fs::path final_dir = run_dir_for(ws, req.experiment, req.run_id);
  {
    std::error_code ec;
    if (find_run_dir(ws, req.run_id) || fs::exists(final_dir, ec)) {
      conflict("run '" + req.run_id + "' already exists", "choose another run id");
    }
  }
  // 2. Snapshot (content-addressed: writing it twice is harmless). A snapshot given by the caller is referenced by
  // the caller's own record (a sweep's); one stored here is pinned until this run's record refers to it.
  std::optional<FileLock> pin;
  if (!req.snapshot) pin.emplace(BlobStore(ws.blobs_dir()).pin());
  SnapshotRef snap = req.snapshot ? *req.snapshot : store_snapshot(ws, req.source_dir, req.limits);

  // 3. The record, staged then renamed into place.
  json tags = json::object();
  for (const auto& [k, v] : req.tags) tags[k] = v;
  json record = {
      {"runId", req.run_id},
      {"experimentName", req.experiment},
      {"runType", req.run_type},
      {"parentRunId", req.parent_run_id.empty() ? json() : json(req.parent_run_id)},
      {"target", req.target},
      {"status", kNotStarted},
      {"statusHistory", json::array()},
      {"createdUtc", now_iso8601()},
      {"startTimeUtc", nullptr},
      {"endTimeUtc", nullptr},
      {"exitCode", nullptr},
      {"error", nullptr},
      {"tags", tags},
      {"properties", req.properties.is_object() ? req.properties : json::object()},
      {"runDefinition", request_to_json(req)},
      {"snapshot", snap.to_json()},
      {"supervisor", supervisor_info(supervisor_pid > 0 ? supervisor_pid : static_cast<int>(::getpid()))},
      {"logFiles", {{"stdout", "logs/stdout.txt"}, {"stderr", "logs/stderr.txt"}, {"combined", "logs/run.log"}}},
      {"durableRecords", req.durable},
  };
  set_status(record, kNotStarted);
  set_status(record, kQueued);

  FileLock guard = ws.lock();
  std::error_code ec;
  if (fs::exists(final_dir, ec)) conflict("run '" + req.run_id + "' already exists", "choose another run id");
  fs::create_directories(ws.tmp_dir());
  fs::path staging = temp_sibling(ws.tmp_dir() / ("run-" + req.run_id));
  try {
    fs::create_directories(staging / "logs");
    fs::create_directories(staging / "outputs");
    if (req.durable) {
      write_file_atomic(staging / "run.json", record_text(record));
      create_directories_durable(final_dir.parent_path());
      rename_durable(staging, final_dir);
    } else {
      write_run_record(staging, record, false);
      fs::create_directories(final_dir.parent_path());
      if (::rename(staging.c_str(), final_dir.c_str()) != 0) sys_fail("cannot move the new run into " + final_dir.string());
    }
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  index_run(ws, req.experiment, req.run_id);
  return record;
}

}  // namespace amlc::runs
