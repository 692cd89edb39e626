#include "amlc/runs/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"
#include "amlc/core/process.hpp"
#include "amlc/core/util.hpp"
#include "amlc/docker/client.hpp"
#include "amlc/registry/blob_store.hpp"

namespace amlc::runs {

namespace {

bool valid_name(const std::string& s, bool allow_dot) {
  if (s.empty() || s.size() > 255) return false;
  if (!std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') continue;
    if (allow_dot && c == '.') continue;
    return false;
  }
  return true;
}

// Rewrites the file in place (one pwrite at offset 0), padding with blanks when the new text is shorter, so the
// file keeps its inode: no temp file is created and no old inode is freed. A sweep rewrites its trials' records
// several times per trial, and on ext4 every freed inode slows down later inode allocations in the same group
// for minutes. Callers hold the run directory's exclusive lock and readers take the shared one, so nobody sees a
// half-written record. Used for non-durable records only: a durable one is replaced by rename after an fsync.
void rewrite_in_place(const fs::path& path, const std::string& text) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) sys_fail("cannot open " + path.string());
  overwrite_in_place(fd.get(), text, path);
}

}  // namespace

bool is_terminal(const std::string& status) {
  return status == kCompleted || status == kFailed || status == kCanceled;
}

const std::vector<std::string>& status_names() {
  static const std::vector<std::string> names{kNotStarted, kQueued, kPreparing, kRunning,
                                              kCompleted, kFailed, kCanceled};
  return names;
}

void validate_experiment_name(const std::string& name) {
  if (!valid_name(name, false)) {
    usage_error("experiment name '" + name + "' is not valid",
                "use 1-255 letters, digits, '_' or '-', starting with a letter or digit");
  }
}

void validate_run_id(const std::string& id) {
  if (!valid_name(id, true)) {
    usage_error("run id '" + id + "' is not valid", "use 1-255 letters, digits, '_', '-' or '.', starting with a letter or digit");
  }
}

std::string new_run_id(const std::string& experiment) {
  return experiment + "_" + std::to_string(static_cast<long long>(now_unix())) + "_" + random_hex(4);
}

fs::path experiments_dir(const Workspace& ws) { return ws.root() / "experiments"; }
fs::path index_dir(const Workspace& ws) { return ws.root() / "runs"; }

fs::path run_dir_for(const Workspace& ws, const std::string& experiment, const std::string& run_id) {
  return experiments_dir(ws) / experiment / "runs" / run_id;
}

std::optional<fs::path> find_run_dir(const Workspace& ws, const std::string& run_id) {
  if (!valid_name(run_id, true)) return std::nullopt;
  std::error_code ec;
  fs::path link = index_dir(ws) / run_id;
  if (fs::is_symlink(link, ec)) {
    fs::path target = fs::read_symlink(link, ec);
    if (!ec) {
      fs::path dir = (link.parent_path() / target).lexically_normal();
      if (fs::is_regular_file(dir / "run.json", ec)) return dir;
    }
  }
  // No index entry (e.g. a crash between the rename and the link): scan the experiments.
  if (!fs::is_directory(experiments_dir(ws), ec)) return std::nullopt;
  for (const auto& exp : fs::directory_iterator(experiments_dir(ws), ec)) {
    fs::path dir = exp.path() / "runs" / run_id;
    if (fs::is_regular_file(dir / "run.json", ec)) return dir;
  }
  return std::nullopt;
}

fs::path run_dir(const Workspace& ws, const std::string& run_id) {
  auto dir = find_run_dir(ws, run_id);
  if (!dir) {
    // "Did you mean" over the index.
    std::vector<std::string> ids;
    std::error_code ec;
    if (fs::is_directory(index_dir(ws), ec)) {
      for (const auto& e : fs::directory_iterator(index_dir(ws), ec)) ids.push_back(e.path().filename().string());
    }
    std::string near = closest_match(run_id, ids);
    not_found("run '" + run_id + "' not found in workspace " + ws.root().string(),
              near.empty() ? "list runs with 'amlc run list'" : "did you mean '" + near + "'?");
  }
  return *dir;
}

json load_run(const Workspace& ws, const std::string& run_id) { return read_run_record(run_dir(ws, run_id)); }

fs::path outputs_dir(const Workspace& ws, const std::string& run_id) { return run_dir(ws, run_id) / "outputs"; }

json read_run_record(const fs::path& dir) {
  // Non-durable records are rewritten in place under the directory's exclusive flock: read under the shared one.
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid()) {
    while (::flock(dfd.get(), LOCK_SH) != 0 && errno == EINTR) {
    }
  }
  return read_record(dir / "run.json");
}

json read_run_record_locked(const fs::path& dir) { return read_record(dir / "run.json"); }

void write_run_record(const fs::path& dir, const json& record, bool durable) {
  if (durable) write_file_atomic(dir / "run.json", record_text(record));
  else rewrite_in_place(dir / "run.json", record_text(record));
}

json update_run(const fs::path& dir, const std::function<bool(json&)>& fn) {
  FileLock lock(dir);  // flock on the run directory itself: no lock file to create
  json record = read_run_record_locked(dir);
  bool durable = fn(record);
  write_run_record(dir, record, durable);
  return record;
}

json update_tags(const Workspace& ws, const std::string& run_id, const std::map<std::string, std::string>& add,
                 const std::vector<std::string>& remove) {
  for (const auto& k : remove)
    if (k.empty()) usage_error("--remove-tag needs a tag name");
  fs::path dir = run_dir(ws, run_id);
  return update_run(dir, [&](json& r) {
    if (!r.contains("tags") || !r["tags"].is_object()) r["tags"] = json::object();
    for (const auto& k : remove) {
      if (!r["tags"].contains(k)) not_found("run '" + run_id + "' has no tag '" + k + "'", "see its tags with 'amlc run show -r " + run_id + "'");
    }
    for (const auto& k : remove) r["tags"].erase(k);
    for (const auto& [k, v] : add) r["tags"][k] = v;
    return true;
  });
}

namespace {

// Copies the files under `src` (recursively when asked) into `dest`, keeping their relative paths; symlinks are
// copied as symlinks. Existing files are a conflict unless `overwrite`, checked before anything is copied.
json copy_run_files(const std::string& run_id, const fs::path& src, const fs::path& dest, bool overwrite, bool recursive) {
  std::error_code ec;
  std::vector<fs::path> todo;
  if (fs::is_directory(src, ec)) {
    if (recursive) {
      for (auto it = fs::recursive_directory_iterator(src, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_regular_file() || it->is_symlink()) todo.push_back(it->path());
    } else {
      for (const auto& e : fs::directory_iterator(src, ec))
        if (e.is_regular_file(ec)) todo.push_back(e.path());
    }
  }
  std::sort(todo.begin(), todo.end());
  if (fs::exists(dest, ec) && !fs::is_directory(dest, ec)) {
    conflict(dest.string() + " exists and is " + describe_file_type(dest), "pass a folder with -d");
  }
  for (const auto& f : todo) {
    fs::path to = dest / f.lexically_relative(src);
    if (fs::exists(fs::symlink_status(to, ec)) && !overwrite) {
      conflict(to.string() + " exists", "pass --overwrite to replace it, or pick another -d");
    }
  }
  json files = json::array();
  for (const auto& f : todo) {
    fs::path rel = f.lexically_relative(src);
    fs::path to = dest / rel;
    fs::create_directories(to.parent_path());
    // A copy of what is there now (a running run's files keep changing), renamed into place.
    fs::path tmp = temp_sibling(to);
    fs::copy(f, tmp, fs::copy_options::copy_symlinks, ec);
    if (!ec && ::rename(tmp.c_str(), to.c_str()) != 0) ec = std::error_code(errno, std::generic_category());
    if (ec) {
      std::error_code ignore;
      fs::remove(tmp, ignore);
      fail(ErrorKind::General, "cannot copy " + f.string() + " to " + to.string() + ": " + ec.message());
    }
    files.push_back({{"path", rel.generic_string()}, {"bytes", fs::is_regular_file(fs::symlink_status(to)) ? fs::file_size(to) : 0}});
  }
  return {{"runId", run_id}, {"outputDir", fs::absolute(dest).lexically_normal().string()}, {"files", files}};
}

}  // namespace

json download_outputs(const Workspace& ws, const std::string& run_id, const fs::path& dest, bool overwrite) {
  return copy_run_files(run_id, run_dir(ws, run_id) / "outputs", dest, overwrite, true);
}

json download_logs(const Workspace& ws, const std::string& run_id, const fs::path& dest, bool overwrite) {
  return copy_run_files(run_id, run_dir(ws, run_id) / "logs", dest, overwrite, false);
}

void set_status(json& record, const std::string& status) {
  std::string now = now_iso8601();
  record["status"] = status;
  if (!record.contains("statusHistory") || !record["statusHistory"].is_array()) record["statusHistory"] = json::array();
  record["statusHistory"].push_back({{"status", status}, {"time", now}});
  if (status == kRunning && record.value("startTimeUtc", json()).is_null()) record["startTimeUtc"] = now;
  if (is_terminal(status)) record["endTimeUtc"] = now;
}

json supervisor_info(int pid) {
  // The supervisor is usually this process, asked once per run state change.
  const ProcessIdentity id = pid == static_cast<int>(::getpid()) ? this_process() : process_identity(pid);
  return {{"pid", id.pid}, {"startTicks", id.start_ticks}, {"host", id.host}};
}

bool supervisor_alive(const json& info) {
  if (!info.is_object() || !info.contains("pid")) return false;
  return process_alive({info.value("pid", 0), info.value("startTicks", -1LL), info.value("host", host_name())});
}

json reconcile(const Workspace& ws, const fs::path& dir) {
  (void)ws;
  json record = read_run_record(dir);
  if (is_terminal(record.value("status", ""))) return record;
  if (supervisor_alive(record.value("supervisor", json()))) return record;
  return update_run(dir, [&](json& r) {
    if (is_terminal(r.value("status", ""))) return false;
    if (supervisor_alive(r.value("supervisor", json()))) return false;
    // Kill what is left of the run: its process group (if the leader is still the one we started) or container.
    const json proc = r.value("process", json());
    if (proc.is_object() && proc.contains("pgid")) {
      int pgid = proc.value("pgid", 0);
      long long ticks = proc.value("startTicks", -1LL);
      if (pgid > 0 && ticks >= 0 && proc_start_ticks(pgid) == ticks) ::kill(-pgid, SIGKILL);
    }
    if (r.contains("containerId") && r["containerId"].is_string()) {
      try {
        docker::Client dc;
        dc.remove_container(r["containerId"].get<std::string>(), {.force = true, .volumes = false, .missing_ok = true});
      } catch (const std::exception&) {
        // No daemon: nothing more we can do; the record still must not claim Running.
      }
    }
    bool cancel = r.contains("cancelRequested") && !r["cancelRequested"].is_null();
    int sup_pid = r.value("supervisor", json::object()).value("pid", 0);
    r["error"] = {{"message", "the supervising amlc process (pid " + std::to_string(sup_pid) +
                                  ") ended before the run finished"}};
    set_status(r, cancel ? kCanceled : kFailed);
    std::error_code ec;
    fs::remove_all(dir / "wd", ec);
    return true;
  });
}

std::vector<json> list_runs(const Workspace& ws, const ListFilter& filter) {
  std::vector<json> out;
  std::error_code ec;
  if (!filter.experiment.empty()) validate_experiment_name(filter.experiment);
  std::vector<fs::path> exp_dirs;
  if (!filter.experiment.empty()) {
    exp_dirs.push_back(experiments_dir(ws) / filter.experiment);
  } else if (fs::is_directory(experiments_dir(ws), ec)) {
    for (const auto& e : fs::directory_iterator(experiments_dir(ws), ec)) exp_dirs.push_back(e.path());
  }
  for (const auto& exp : exp_dirs) {
    fs::path runs = exp / "runs";
    if (!fs::is_directory(runs, ec)) continue;
    for (const auto& r : fs::directory_iterator(runs, ec)) {
      if (!fs::is_regular_file(r.path() / "run.json", ec)) continue;
      json rec;
      try {
        rec = reconcile(ws, r.path());
      } catch (const Error&) {
        continue;  // a damaged record: 'workspace check' reports it
      }
      if (!filter.status.empty() && rec.value("status", "") != filter.status) continue;
      if (!filter.parent_run_id.empty() && rec.value("parentRunId", json()) != filter.parent_run_id) continue;
      bool tags_ok = true;
      for (const auto& [k, v] : filter.tags) {
        const json tags = rec.value("tags", json::object());
        if (!tags.contains(k) || (!v.empty() && tags[k] != v)) tags_ok = false;
      }
      if (!tags_ok) continue;
      out.push_back(std::move(rec));
    }
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    std::string ca = a.value("createdUtc", ""), cb = b.value("createdUtc", "");
    if (ca != cb) return ca > cb;
    return a.value("runId", "") > b.value("runId", "");
  });
  if (filter.last > 0 && out.size() > filter.last) out.resize(filter.last);
  return out;
}

std::vector<json> list_experiments(const Workspace& ws) {
  std::vector<json> out;
  std::error_code ec;
  if (!fs::is_directory(experiments_dir(ws), ec)) return out;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(experiments_dir(ws), ec)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    size_t count = 0;
    std::string last_id, last_time;
    for (const auto& r : fs::directory_iterator(d / "runs", ec)) {
      if (!fs::is_regular_file(r.path() / "run.json", ec)) continue;
      ++count;
      try {
        json rec = read_run_record(r.path());
        std::string t = rec.value("createdUtc", "");
        if (t > last_time || (t == last_time && rec.value("runId", "") > last_id)) {
          last_time = t;
          last_id = rec.value("runId", "");
        }
      } catch (const Error&) {
      }
    }
    out.push_back({{"name", d.filename().string()},
                   {"runCount", count},
                   {"lastRunId", last_id.empty() ? json() : json(last_id)},
                   {"lastCreatedUtc", last_time.empty() ? json() : json(last_time)}});
  }
  return out;
}

void index_run(const Workspace& ws, const std::string& experiment, const std::string& run_id) {
  // A relative symlink: symlink(2) is atomic; a stale entry is replaced through a temp name.
  std::error_code ec;
  fs::create_directories(index_dir(ws));
  fs::path link = index_dir(ws) / run_id;
  fs::path target = fs::path("..") / "experiments" / experiment / "runs" / run_id;
  if (::symlink(target.c_str(), link.c_str()) != 0) {
    fs::path tmp_link = temp_sibling(link);
    fs::create_symlink(target, tmp_link, ec);
    if (!ec && ::rename(tmp_link.c_str(), link.c_str()) != 0) fs::remove(tmp_link, ec);
  }
}

std::vector<std::pair<std::string, std::string>> unindexed_runs(const Workspace& ws) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  for (const auto& exp : fs::directory_iterator(experiments_dir(ws), ec)) {
    std::error_code ec2;
    for (const auto& r : fs::directory_iterator(exp.path() / "runs", ec2)) {
      std::string id = r.path().filename().string();
      if (temp_state(id, 0) != TempState::NotTemp || !fs::is_regular_file(r.path() / "run.json", ec2)) continue;
      if (!fs::is_symlink(index_dir(ws) / id, ec2)) out.emplace_back(exp.path().filename().string(), id);
    }
  }
  return out;
}

void for_each_blob_ref(const Workspace& ws, const std::function<void(const std::string&)>& fn) {
  // Strict (see registry::for_each_blob_ref): a run that cannot be read throws, and nothing may be freed.
  for (const auto& exp : list_dir_strict(experiments_dir(ws))) {
    if (!is_directory_strict(exp / "runs")) continue;
    for (const auto& r : list_dir_strict(exp / "runs")) {
      if (temp_state(r.filename().string(), 0) != TempState::NotTemp || !is_directory_strict(r)) continue;
      if (!exists_strict(r / "run.json")) continue;  // not a run folder
      json rec;
      try {
        rec = read_run_record(r);
      } catch (const Error&) {
        if (exists_strict(r / "run.json")) throw;
        continue;  // gone meanwhile
      }
      const json snap = rec.value("snapshot", json());
      if (snap.is_object()) fn(snap.value("sha256", ""));
    }
  }
}

void check_runs(const Workspace& ws, std::vector<std::string>& problems, json& stats) {
  std::error_code ec;
  size_t runs = 0;
  BlobStore blobs(ws.blobs_dir());
  if (fs::is_directory(experiments_dir(ws), ec)) {
    for (const auto& exp : fs::directory_iterator(experiments_dir(ws), ec)) {
      for (const auto& r : fs::directory_iterator(exp.path() / "runs", ec)) {
        if (r.path().filename().string().find(".tmp.") != std::string::npos) continue;
        fs::path file = r.path() / "run.json";
        ++runs;
        json rec;
        try {
          rec = read_run_record(r.path());
        } catch (const std::exception& e) {
          problems.push_back(e.what());
          continue;
        }
        std::string id = r.path().filename().string();
        if (rec.value("runId", "") != id) {
          problems.push_back(file.string() + ": runId '" + rec.value("runId", "") + "' does not match its folder '" + id + "'");
        }
        if (rec.value("experimentName", "") != exp.path().filename().string()) {
          problems.push_back(file.string() + ": experimentName does not match its folder");
        }
        std::string status = rec.value("status", "");
        if (std::find(status_names().begin(), status_names().end(), status) == status_names().end()) {
          problems.push_back(file.string() + ": unknown status '" + status + "'");
        }
        const json snap = rec.value("snapshot", json());
        if (snap.is_object() && snap.contains("sha256")) {
          std::string sha = snap.value("sha256", "");
          if (!is_sha256_hex(sha) || !blobs.contains(sha)) {
            problems.push_back(file.string() + ": snapshot blob " + sha + " is missing from the blob store");
          }
        }
        fs::path link = index_dir(ws) / id;
        // A missing entry is a leftover (a crash between the run's rename and its link; readers find the run
        // without it), listed by unindexed_runs() and restored by 'workspace gc'.
        if (fs::is_symlink(link, ec)) {
          fs::path target = (link.parent_path() / fs::read_symlink(link, ec)).lexically_normal();
          if (target != r.path().lexically_normal()) {
            problems.push_back(link.string() + ": index entry points at " + target.string() + ", not " + r.path().string());
          }
        }
      }
    }
  }
  // Index entries must point at existing runs.
  if (fs::is_directory(index_dir(ws), ec)) {
    for (const auto& e : fs::directory_iterator(index_dir(ws), ec)) {
      if (!fs::exists(e.path() / "run.json", ec)) {
        problems.push_back(e.path().string() + ": index entry points at no run");
      }
    }
  }
  stats["runs"] = runs;
}

}  // namespace amlc::runs
