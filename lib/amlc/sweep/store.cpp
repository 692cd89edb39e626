#include "amlc/sweep/store.hpp"

#include <algorithm>
#include <set>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/util.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/sweep/journal.hpp"
#include "amlc/sweep/definition.hpp"

namespace amlc::sweep {

bool sweep_status_terminal(const std::string& status) {
  return status == kSweepCompleted || status == kSweepFailed || status == kSweepCanceled;
}

std::string new_sweep_id(const std::string& experiment) {
  return experiment + "_sweep_" + std::to_string(static_cast<long long>(now_unix())) + "_" + random_hex(4);
}

std::string trial_run_id(const std::string& sweep_id, int index, int attempt) {
  std::string id = sweep_id + "_" + std::to_string(index);
  if (attempt > 1) id += "_r" + std::to_string(attempt - 1);
  return id;
}

fs::path sweeps_dir(const Workspace& ws) { return ws.root() / "sweeps"; }

fs::path sweep_dir_for(const Workspace& ws, const std::string& sweep_id) { return sweeps_dir(ws) / sweep_id; }

fs::path sweep_dir(const Workspace& ws, const std::string& sweep_id) {
  if (sweep_id.empty() || sweep_id.find('/') != std::string::npos || sweep_id == "." || sweep_id == "..") {
    usage_error("'" + sweep_id + "' is not a sweep id", "list sweeps with 'amlc sweep list'");
  }
  fs::path dir = sweep_dir_for(ws, sweep_id);
  std::error_code ec;
  if (!fs::is_regular_file(dir / "sweep.json", ec)) {
    not_found("no sweep '" + sweep_id + "' in workspace " + ws.root().string(), "list sweeps with 'amlc sweep list'");
  }
  return dir;
}

fs::path journal_path(const fs::path& dir) { return dir / "journal.jsonl"; }

json read_sweep_record(const fs::path& dir) { return read_record(dir / "sweep.json"); }

json update_sweep(const fs::path& dir, const std::function<void(json&)>& fn) {
  FileLock lock(dir / ".lock");
  json record = read_sweep_record(dir);
  fn(record);
  write_file_atomic(dir / "sweep.json", record_text(record));
  return record;
}

void create_sweep_dir(const Workspace& ws, const std::string& sweep_id, const json& record, const std::string& journal_text) {
  fs::path final_dir = sweep_dir_for(ws, sweep_id);
  FileLock guard = ws.lock();
  std::error_code ec;
  if (fs::exists(final_dir, ec)) conflict("sweep '" + sweep_id + "' already exists", "submit it again (a new id is chosen)");
  fs::create_directories(ws.tmp_dir());
  fs::path staging = temp_sibling(ws.tmp_dir() / ("sweep-" + sweep_id));
  try {
    fs::create_directories(staging);
    write_file_atomic(staging / "sweep.json", record_text(record));
    write_file_atomic(journal_path(staging), journal_text);
    create_directories_durable(final_dir.parent_path());
    rename_durable(staging, final_dir);
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
}

json effective_record(const json& record) {
  json r = record;
  if (r.value("status", "") == kSweepRunning && !runs::supervisor_alive(r.value("supervisor", json()))) {
    r["status"] = kSweepNotResponding;
    r["hint"] = "the amlc process supervising this sweep is gone; continue it with 'amlc sweep resume " +
                r.value("sweepId", std::string("ID")) + "'";
  }
  return r;
}

std::vector<json> list_sweep_records(const Workspace& ws, const std::string& experiment) {
  std::vector<json> out;
  std::error_code ec;
  fs::path root = sweeps_dir(ws);
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.is_directory() || !fs::is_regular_file(e.path() / "sweep.json")) continue;
    json r = effective_record(read_sweep_record(e.path()));
    if (!experiment.empty() && r.value("experimentName", "") != experiment) continue;
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    auto ka = a.value("createdUtc", std::string()), kb = b.value("createdUtc", std::string());
    if (ka != kb) return ka > kb;
    return a.value("sweepId", std::string()) > b.value("sweepId", std::string());
  });
  return out;
}

void check_sweeps(const Workspace& ws, std::vector<std::string>& problems, json& stats) {
  std::error_code ec;
  fs::path root = sweeps_dir(ws);
  int count = 0, trials = 0;
  if (fs::is_directory(root, ec)) {
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (!e.is_directory()) continue;
      fs::path dir = e.path();
      std::string id = dir.filename().string();
      ++count;
      json rec;
      try {
        rec = read_sweep_record(dir);
      } catch (const Error& err) {
        problems.push_back((dir / "sweep.json").string() + ": " + err.what());
        continue;
      }
      if (rec.value("sweepId", "") != id) {
        problems.push_back((dir / "sweep.json").string() + ": names sweep '" + rec.value("sweepId", "") +
                           "', expected '" + id + "'");
      }
      std::string status = rec.value("status", "");
      const bool unfinished = !sweep_status_terminal(status);
      SweepState st;
      std::vector<json> records;
      try {
        records = read_journal(journal_path(dir));
        st = replay(records, journal_path(dir).string());
      } catch (const Error& err) {
        problems.push_back(std::string(err.what()) +
                           (unfinished ? "; sweep " + id + " can be neither resumed nor canceled" : std::string()));
        continue;
      }
      trials += st.created();
      // An unfinished sweep must be resumable: what 'sweep resume' would refuse (and exit 6 for) is reported here.
      if (unfinished && !st.finished) {
        std::string why = resume_blocker(rec, st);
        if (!why.empty()) {
          problems.push_back((dir / "sweep.json").string() + ": sweep " + id + " cannot be resumed: " + why +
                             " (end it with 'amlc sweep cancel " + id + "')");
        }
      }
      if (st.finished && sweep_status_terminal(status) && st.finish_status != status) {
        problems.push_back((dir / "sweep.json").string() + ": status " + status + " but the journal says " + st.finish_status);
      }
      if (sweep_status_terminal(status) && !st.finished) {
        problems.push_back(journal_path(dir).string() + ": the sweep is " + status + " but its journal has no sweep_finished");
      }
      // Every trial run the journal started and that exists must point back at this sweep.
      std::set<std::string> seen;
      for (const auto& r : records) {
        if (r.value("event", "") != "trial_started" || !r.contains("runId") || !r["runId"].is_string()) continue;
        std::string run = r["runId"];
        if (!seen.insert(run).second) continue;
        auto rd = runs::find_run_dir(ws, run);
        if (!rd) continue;  // crashed between the journal record and the run's creation: legitimate
        try {
          json rr = runs::read_run_record(*rd);
          if (rr.value("parentRunId", json()) != json(id)) {
            problems.push_back((*rd / "run.json").string() + ": trial of sweep " + id + " has parentRunId " +
                               rr.value("parentRunId", json()).dump());
          }
        } catch (const Error&) {
          // the runs checker reports unreadable run records
        }
      }
    }
  }
  stats["sweeps"] = count;
  stats["sweepTrials"] = trials;
}

void for_each_blob_ref(const Workspace& ws, const std::function<void(const std::string&)>& fn) {
  // Strict (see registry::for_each_blob_ref): a sweep that cannot be read throws, and nothing may be freed.
  for (const auto& dir : list_dir_strict(sweeps_dir(ws))) {
    if (!is_directory_strict(dir) || !exists_strict(dir / "sweep.json")) continue;  // not a sweep (a staging folder lives in tmp/)
    const json snap = read_sweep_record(dir).value("snapshot", json());
    if (snap.is_object()) fn(snap.value("sha256", ""));
  }
}

}  // namespace amlc::sweep
