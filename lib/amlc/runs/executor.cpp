#include "amlc/runs/executor.hpp"

#include "amlc/core/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "amlc/assets/assets.hpp"
#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/docker/client.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/runs/metrics.hpp"
#include "amlc/runs/request.hpp"
#include "amlc/runs/store.hpp"

extern char** environ;

namespace amlc::runs {

namespace {

constexpr const char* kContainerRunDir = "/amlc/run";
constexpr const char* kContainerPythonDir = "/amlc/python";
// A stdout line longer than this is no metric line: it is not kept in memory whole, nor matched.
constexpr size_t kMaxStdoutLineBytes = 65536;

void write_all_fd(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // logs are best effort once the run is going; the record is what matters
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

Fd open_append(const fs::path& p) {
  Fd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd.valid()) sys_fail("cannot open " + p.string());
  return fd;
}

// A pipe for a run's stdout or stderr: the read end is ours (non-blocking), the write end goes to the program or
// the thread that copies a container's logs.
struct Pipe {
  Fd read, write;
};
Pipe open_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) sys_fail("cannot create a pipe");
  Pipe pipe{Fd(p[0]), Fd(p[1])};
  ::fcntl(pipe.read.get(), F_SETFL, O_NONBLOCK);
  return pipe;
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGKILL: return "SIGKILL";
    case SIGINT: return "SIGINT";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGHUP: return "SIGHUP";
    case SIGPIPE: return "SIGPIPE";
    default: return "signal " + std::to_string(sig);
  }
}

// PATH lookup with the run's PATH (the child's environment), done before spawning.
std::string resolve_program(const std::string& prog, const std::map<std::string, std::string>& env, const fs::path& cwd) {
  if (prog.find('/') != std::string::npos) {
    fs::path p = prog;
    return (p.is_absolute() ? p : cwd / p).string();
  }
  auto it = env.find("PATH");
  std::string path = it != env.end() ? it->second : "/usr/local/bin:/usr/bin:/bin";
  for (const auto& d : split(path, ':')) {
    fs::path cand = fs::path(d.empty() ? "." : d) / prog;
    if (::access(cand.c_str(), X_OK) == 0) {
      struct stat st {};
      if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return cand.string();
    }
  }
  return {};
}

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string s = *e;
    auto eq = s.find('=');
    if (eq != std::string::npos) env[s.substr(0, eq)] = s.substr(eq + 1);
  }
  return env;
}

std::string rel_inside(const fs::path& source_dir, const std::string& script) {
  fs::path p = script;
  std::string rel;
  if (p.is_absolute()) {
    fs::path r = p.lexically_normal().lexically_relative(fs::absolute(source_dir).lexically_normal());
    rel = r.generic_string();
  } else {
    rel = p.lexically_normal().generic_string();
  }
  if (rel.empty() || rel == "." || rel.rfind("..", 0) == 0) {
    usage_error("script '" + script + "' is not inside the source directory " + source_dir.string(),
                "scripts run from the run's snapshot of --source-directory; move it there or point "
                "--source-directory at its folder");
  }
  return rel;
}

// Hard links (no data copied, no new inodes for files); directories and symlinks are recreated.
void link_copy(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  auto st = fs::symlink_status(from);
  if (fs::is_symlink(st)) {
    fs::copy_symlink(from, to);
    return;
  }
  if (!fs::is_directory(st)) {
    fs::create_hard_link(from, to);
    return;
  }
  fs::create_directory(to);
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator(); ++it) {
    fs::path dst = to / it->path().lexically_relative(from);
    auto est = it->symlink_status();
    if (fs::is_directory(est)) fs::create_directory(dst);
    else if (fs::is_symlink(est)) fs::copy_symlink(it->path(), dst);
    else fs::create_hard_link(it->path(), dst);
  }
}

// Gives the owner write and search permission on every folder under `dir`, so that remove_all can empty it.
void make_removable(const fs::path& dir) {
  std::error_code ec;
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (it->is_directory(e2) && !it->is_symlink(e2)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, e2);
  }
}

// Turns `to`, an earlier run's working folder, back into an exact hard-link copy of the snapshot cache `from`:
// entries that still match (the same inode, the same symlink target, a folder) stay, anything the run added or
// replaced goes, anything it removed comes back. The top-level "outputs" link is the run's own and is left alone.
void relink_tree(const fs::path& from, const fs::path& to, bool top) {
  std::set<std::string> kept;
  for (const auto& e : fs::directory_iterator(to)) {
    std::string name = e.path().filename().string();
    if (top && name == "outputs") continue;
    fs::path src = from / name;
    struct stat a {}, b {};
    bool keep = false;
    if (::lstat(src.c_str(), &a) == 0 && ::lstat(e.path().c_str(), &b) == 0) {
      if (S_ISDIR(a.st_mode) && S_ISDIR(b.st_mode)) {
        relink_tree(src, e.path(), false);
        keep = true;
      } else if (S_ISREG(a.st_mode) && S_ISREG(b.st_mode)) {
        keep = a.st_ino == b.st_ino && a.st_dev == b.st_dev;
      } else if (S_ISLNK(a.st_mode) && S_ISLNK(b.st_mode)) {
        keep = fs::read_symlink(src) == fs::read_symlink(e.path());
      }
    }
    if (keep) kept.insert(name);
    else fs::remove_all(e.path());
  }
  for (const auto& e : fs::directory_iterator(from)) {
    std::string name = e.path().filename().string();
    if ((top && name == "outputs") || kept.count(name)) continue;
    link_copy(e.path(), to / name);
  }
}

// What extracting a run's snapshot may create: the content the run record says the snapshot holds (its "bytes", the
// sum of the sizes the archive declares, recorded when it was made), so a blob swapped in the store cannot fill the
// disk. Entries keep the archive's own bound: the record counts files and symlinks, not directories. A record
// without the figure (or with a damaged one) keeps the archive's defaults.
archive::ExtractLimits snapshot_extract_limits(const json& snapshot) {
  archive::ExtractLimits limits;
  if (!snapshot.is_object()) return limits;
  if (auto it = snapshot.find("bytes"); it != snapshot.end() && it->is_number_unsigned())
    limits.max_bytes = std::min(limits.max_bytes, it->get<uint64_t>());
  return limits;
}

// Fills `wd` with the snapshot. With `reuse`, the snapshot is extracted once into the workspace cache and hard-
// linked from there; `adopt` (a finished run's kept working folder of the same snapshot) is then moved into place
// and brought back to the snapshot's state instead of building a new one: a sweep creates and deletes no folder
// per trial.
void extract_into(const Workspace& ws, const std::string& sha, const archive::ExtractLimits& limits, const fs::path& wd,
                  bool reuse, const fs::path& adopt) {
  BlobStore blobs(ws.blobs_dir());
  fs::path blob = blobs.path_of(sha);
  if (!blobs.contains(sha)) {
    fail(ErrorKind::Damaged, "the run's snapshot " + sha + " is missing from the blob store",
         "run 'amlc workspace check'; resubmit the run");
  }
  std::error_code ec;
  if (!reuse) {
    fs::remove_all(wd, ec);
    archive::extract_snapshot(blob, wd, limits);
    return;
  }
  fs::path cache = snapshot_cache_dir(ws, sha);
  if (!fs::is_directory(cache, ec)) {
    fs::create_directories(cache.parent_path());
    fs::path staging = temp_sibling(cache);
    try {
      archive::extract_snapshot(blob, staging, limits);
    } catch (...) {
      make_removable(staging);  // a refused archive leaves a partial tree, maybe with unwritable folders
      fs::remove_all(staging, ec);
      throw;
    }
    // Read-only files: runs share them through hard links, so an in-place write must fail, not leak.
    for (auto it = fs::recursive_directory_iterator(staging); it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_regular_file() && !it->is_symlink()) {
        fs::permissions(it->path(), fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                        fs::perm_options::remove);
      }
    }
    if (::rename(staging.c_str(), cache.c_str()) != 0) fs::remove_all(staging, ec);  // another process won
  }
  if (!adopt.empty()) {
    fs::remove_all(wd, ec);
    if (::rename(adopt.c_str(), wd.c_str()) == 0) {
      try {
        relink_tree(cache, wd, true);
        return;
      } catch (const std::exception&) {
        // Something the run left cannot be undone in place (e.g. a folder it made read-only): start afresh.
        make_removable(wd);
      }
    } else {
      fs::remove_all(adopt, ec);
    }
  }
  fs::remove_all(wd, ec);
  link_copy(cache, wd);
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
    req.script = rel_inside(req.source_dir, req.script);
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
  else if (!req.script.empty()) req.script = rel_inside(req.source_dir, req.script);
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

// ---------------------------------------------------------------------------------------------------------------
// Execution

struct Execution::Impl {
  fs::path ws_root;
  fs::path dir;
  std::string run_id;
  json rec;
  std::string target;
  bool echo = false;
  bool keep_workdir = false;
  bool durable = true;
  // Prepared by prepare(), used by launch().
  bool launched = false;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::vector<std::string> env_strings;
  std::string program;  // argv[0] resolved on the run's PATH (local runs)
  fs::path helpers;
  json preparing_entry;
  double grace = 10;
  double max_duration = 0;
  double started = 0;  // monotonic
  bool finished = false;

  // Output.
  Fd out_fd, err_fd;  // read ends
  Fd log_out, log_err, log_all;  // opened on first output (no files for silent runs)

  void log(bool is_out, const char* data, size_t len) {
    Fd& fd = is_out ? log_out : log_err;
    if (!fd.valid()) fd = open_append(dir / "logs" / (is_out ? "stdout.txt" : "stderr.txt"));
    if (!log_all.valid()) log_all = open_append(dir / "logs" / "run.log");
    write_all_fd(fd.get(), data, len);
    write_all_fd(log_all.get(), data, len);
  }
  std::string line_buf;  // partial stdout line for metric matching
  bool line_dropped = false;  // the current stdout line went over kMaxStdoutLineBytes: no metric, up to its newline
  std::optional<MetricPattern> pattern;
  std::unique_ptr<MetricsWriter> metrics;
  std::unique_ptr<MetricsTail> raw;
  double last_raw_poll = 0;
  double last_marker_check = 0;

  // Local process; pidfd becomes readable when it exits (so poll(2) wakes up at once).
  pid_t pid = -1;
  Fd pidfd;

  // Docker.
  std::string container_id;
  std::unique_ptr<docker::Client> dc;
  std::thread waiter;
  std::atomic<bool> container_done{false};
  std::atomic<long long> container_exit{-1};
  std::string container_error;
  std::mutex mu;

  // Cancel / timeout.
  bool cancel_requested = false;
  std::string cancel_reason;
  double term_sent_at = -1;
  bool kill_sent = false;
  bool timed_out = false;

  ~Impl() {
    if (waiter.joinable()) {
      if (dc && !container_id.empty()) {
        try {
          dc->kill_container(container_id, "SIGKILL");
        } catch (const std::exception&) {
        }
      }
      waiter.join();
    }
  }

  // Reads what the program wrote to stdout (is_out) or stderr until the pipe is empty; closes it at its end.
  void pump(bool is_out) {
    Fd& fd = is_out ? out_fd : err_fd;
    char buf[65536];
    while (fd.valid()) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // EAGAIN: nothing more now
      }
      if (n == 0) {
        fd.reset();
        if (is_out && !line_buf.empty() && !line_dropped) match_line(line_buf);
        if (is_out) {
          line_buf.clear();
          line_dropped = false;
        }
        return;
      }
      size_t len = static_cast<size_t>(n);
      log(is_out, buf, len);
      if (echo) write_all_fd(STDERR_FILENO, buf, len);
      if (is_out && pattern) {
        size_t start = 0;
        for (size_t i = 0; i < len; ++i) {
          if (buf[i] == '\n') {
            if (!line_dropped) {
              line_buf.append(buf + start, i - start);
              if (line_buf.size() <= kMaxStdoutLineBytes) match_line(line_buf);
            }
            line_buf.clear();
            line_dropped = false;
            start = i + 1;
          }
        }
        if (!line_dropped) line_buf.append(buf + start, len - start);
        if (line_buf.size() > kMaxStdoutLineBytes) {  // a giant line is no metric: skip the rest of it too
          line_buf.clear();
          line_dropped = true;
        }
      }
    }
  }

  void match_line(const std::string& line) {
    std::string l = line;
    if (!l.empty() && l.back() == '\r') l.pop_back();
    for (auto& [name, text] : pattern->find_all(l)) {
      auto v = parse_metric_number(text);
      if (v) metrics->add(name, *v, "scalar", "stdout");
    }
  }

  void poll_raw(bool force) {
    double now = monotonic_seconds();
    if (!force && now - last_raw_poll < 0.05) return;
    last_raw_poll = now;
    for (const auto& line : raw->poll_lines()) metrics->add_raw_line(line);
  }

  void signal_run(int sig) {
    if (target == "docker") {
      if (!dc || container_id.empty()) return;
      try {
        dc->kill_container(container_id, sig == SIGKILL ? "SIGKILL" : "SIGTERM");
      } catch (const std::exception&) {
        // Already stopped, or the daemon is gone: the waiter thread will notice.
      }
      return;
    }
    if (pid > 0) ::kill(-pid, sig);
  }

  void request_cancel(const std::string& reason) {
    if (finished || cancel_requested) return;
    cancel_requested = true;
    cancel_reason = reason;
    try {
      update_run(dir, [&](json& r) {
        if (!r.contains("cancelRequested") || r["cancelRequested"].is_null()) {
          r["cancelRequested"] = {{"time", now_iso8601()}, {"reason", reason}};
        }
        return false;
      });
    } catch (const std::exception&) {
    }
    signal_run(SIGTERM);
    term_sent_at = monotonic_seconds();
  }

  void check_marker() {
    double now = monotonic_seconds();
    if (now - last_marker_check < 0.1) return;
    last_marker_check = now;
    if (!cancel_requested) {
      struct stat st {};
      if (::stat((dir / "cancel").c_str(), &st) == 0) {
        std::string reason = "canceled";
        if (auto t = read_file_if_exists(dir / "cancel"); t && !trim(*t).empty()) reason = trim(*t);
        request_cancel(reason);
      }
    }
    if (!cancel_requested && max_duration > 0 && now - started > max_duration) {
      timed_out = true;
      cancel_requested = true;
      cancel_reason = "exceeded maxRunDurationSeconds (" + std::to_string(static_cast<long long>(max_duration)) + " s)";
      signal_run(SIGTERM);
      term_sent_at = now;
    }
    if (cancel_requested && !kill_sent && term_sent_at >= 0 && now - term_sent_at >= grace) {
      signal_run(SIGKILL);
      kill_sent = true;
    }
  }

  void finalize(std::optional<int> exit_code, int term_signal, const std::string& error_text) {
    pump(true);
    pump(false);
    if (!line_buf.empty() && pattern && !line_dropped) match_line(line_buf);
    line_buf.clear();
    line_dropped = false;
    out_fd.reset();
    err_fd.reset();
    if (raw) poll_raw(true);
    if (metrics && durable) metrics->sync();
    std::string status;
    json error = nullptr;
    if (timed_out) {
      status = kFailed;
      error = {{"message", "the run " + cancel_reason}};
    } else if (cancel_requested) {
      status = kCanceled;
    } else if (!error_text.empty()) {
      status = kFailed;
      error = {{"message", error_text}};
    } else if (exit_code && *exit_code == 0) {
      status = kCompleted;
    } else {
      status = kFailed;
      error = {{"message", term_signal ? "the script was killed by " + signal_name(term_signal)
                                       : "the script exited with code " + std::to_string(exit_code.value_or(-1))}};
    }
    json tags = metrics ? json(metrics->tags()) : json::object();
    size_t count = metrics ? metrics->count() : 0;
    rec = update_run(dir, [&](json& r) {
      set_status(r, status);
      r["exitCode"] = exit_code ? json(*exit_code) : (term_signal ? json(128 + term_signal) : json());
      if (term_signal) r["signal"] = signal_name(term_signal);
      r["error"] = error;
      if (cancel_requested && !timed_out) {
        if (!r.contains("cancelRequested") || r["cancelRequested"].is_null()) {
          r["cancelRequested"] = {{"time", now_iso8601()}, {"reason", cancel_reason}};
        }
      }
      if (!tags.empty()) {
        if (!r.contains("tags") || !r["tags"].is_object()) r["tags"] = json::object();
        for (const auto& [k, v] : tags.items()) r["tags"][k] = v.is_string() ? v : json(v.dump());
      }
      r["metricsCount"] = count;
      return durable;
    });
    std::error_code ec;
    if (!keep_workdir) fs::remove_all(dir / "wd", ec);
    log_out.reset();
    log_err.reset();
    log_all.reset();
    finished = true;
  }
};

Execution::Execution() : impl_(std::make_unique<Impl>()) {}
Execution::~Execution() = default;

bool Execution::finished() const { return impl_->finished; }
bool Execution::has_exit_fd() const { return impl_->pidfd.valid(); }
const std::string& Execution::run_id() const { return impl_->run_id; }
const fs::path& Execution::dir() const { return impl_->dir; }
json Execution::record() const { return impl_->rec; }

std::vector<int> Execution::fds() const {
  std::vector<int> v;
  for (const Fd* fd : {&impl_->out_fd, &impl_->err_fd, &impl_->pidfd})
    if (fd->valid()) v.push_back(fd->get());
  return v;
}

void Execution::cancel(const std::string& reason) { impl_->request_cancel(reason); }

std::unique_ptr<Execution> Execution::start(const Workspace& ws, const std::string& run_id, const StartOptions& options) {
  auto ex = prepare(ws, run_id, options);
  ex->launch();
  return ex;
}

std::unique_ptr<Execution> Execution::prepare(const Workspace& ws, const std::string& run_id, const StartOptions& options) {
  std::unique_ptr<Execution> ex(new Execution());
  Impl& m = *ex->impl_;
  m.ws_root = ws.root();
  m.run_id = run_id;
  m.dir = run_dir(ws, run_id);
  m.echo = options.echo;
  m.keep_workdir = options.keep_workdir;
  json cancel_req;
  {
    FileLock lock(m.dir);
    json r = read_run_record_locked(m.dir);
    std::string st = r.value("status", "");
    if (st != kQueued && st != kNotStarted) {
      conflict("run '" + run_id + "' is " + st + "; only a Queued run can be started");
    }
    r["supervisor"] = supervisor_info(::getpid());
    cancel_req = r.value("cancelRequested", json());
    set_status(r, kPreparing);
    m.preparing_entry = r["statusHistory"].back();
    // Durable runs record Preparing now; others fold it into the Running write (one rename less per run).
    if (r.value("durableRecords", true)) write_run_record(m.dir, r, false);
    m.rec = std::move(r);
  }
  const json def = m.rec["runDefinition"];
  m.target = m.rec.value("target", "local");
  m.durable = m.rec.value("durableRecords", true);
  m.grace = def.value("cancelGracePeriodSeconds", 10.0);
  m.max_duration = def.value("maxRunDurationSeconds", json()).is_number() ? def["maxRunDurationSeconds"].get<double>() : 0;
  struct stat st {};
  if ((!cancel_req.is_null()) || ::stat((m.dir / "cancel").c_str(), &st) == 0) {
    m.cancel_requested = true;
    m.cancel_reason = "canceled before it started";
    m.finalize(std::nullopt, 0, "");
    return ex;
  }

  fs::path wd = m.dir / "wd";
  std::vector<std::string>& argv = m.argv;
  std::map<std::string, std::string>& env = m.env;
  try {
    const json& snap = m.rec["snapshot"];
    extract_into(ws, snap.value("sha256", ""), snapshot_extract_limits(snap), wd, options.reuse_extracted,
                 options.adopt_workdir);
    fs::create_directories(m.dir / "outputs");
    fs::create_directories(m.dir / "logs");
    std::error_code ec;
    if (!fs::is_symlink(wd / "outputs", ec) || fs::read_symlink(wd / "outputs", ec) != "../outputs") {
      if (fs::exists(fs::symlink_status(wd / "outputs"))) fs::remove_all(wd / "outputs");
      fs::create_symlink("../outputs", wd / "outputs");
    }
    m.metrics = std::make_unique<MetricsWriter>(m.dir / "metrics.jsonl");
    m.raw = std::make_unique<MetricsTail>(m.dir / "metrics.raw.jsonl");
    const json& mdef = def.value("metrics", json::object());
    if (mdef.value("fromStdout", true)) {
      std::string rx = mdef.value("regex", json()).is_string() ? mdef["regex"].get<std::string>() : kDefaultMetricsRegex;
      m.pattern.emplace(rx);
    }
    m.helpers = assets::materialize(ws.root() / "cache");
    const fs::path& helpers = m.helpers;
    argv = def.value("command", std::vector<std::string>{});
    if (argv.empty()) fail(ErrorKind::Damaged, "run " + run_id + " has no command in its record");
    bool docker = m.target == "docker";
    if (!docker) env = current_environment();
    const json user_env = def["environment"].value("environmentVariables", json::object());
    for (const auto& [k, v] : user_env.items()) {
      env[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
    std::string rd = docker ? kContainerRunDir : m.dir.string();
    std::string py = docker ? kContainerPythonDir : helpers.string();
    env["AMLC_RUN_ID"] = run_id;
    env["AZUREML_RUN_ID"] = run_id;
    env["AMLC_EXPERIMENT"] = m.rec.value("experimentName", "");
    env["AZUREML_EXPERIMENT_NAME"] = m.rec.value("experimentName", "");
    env["AMLC_OUTPUTS_DIR"] = rd + "/outputs";
    env["AMLC_METRICS_FILE"] = rd + "/metrics.raw.jsonl";
    env["AMLC_PARENT_RUN_ID"] = m.rec.value("parentRunId", json()).is_string() ? m.rec["parentRunId"].get<std::string>() : "";
    auto pp = env.find("PYTHONPATH");
    env["PYTHONPATH"] = py + (pp != env.end() && !pp->second.empty() ? ":" + pp->second : "");
    if (!env.count("PYTHONUNBUFFERED")) env["PYTHONUNBUFFERED"] = "1";
    if (m.target != "docker") {
      m.program = resolve_program(argv[0], env, wd);
      m.env_strings.clear();
      for (const auto& [k, v] : env) m.env_strings.push_back(k + "=" + v);
    }
  } catch (const Error& e) {
    m.finalize(std::nullopt, 0, std::string("the run could not be started: ") + e.what());
  } catch (const std::exception& e) {
    m.finalize(std::nullopt, 0, std::string("the run could not be started: ") + e.what());
  }
  return ex;
}

void Execution::launch() {
  Impl& m = *impl_;
  if (m.finished || m.launched) return;
  m.launched = true;
  const std::vector<std::string>& argv = m.argv;
  const std::string& run_id = m.run_id;
  const fs::path wd = m.dir / "wd";
  const json& preparing_entry = m.preparing_entry;
  const bool docker = m.target == "docker";
  try {
    // The write ends are closed when the program has them (local) or the log thread ends (docker), and on any
    // error before that.
    Pipe outp = open_pipe(), errp = open_pipe();
    m.out_fd = std::move(outp.read);
    m.err_fd = std::move(errp.read);

    if (!docker) {
      const std::string& prog = m.program;
      if (prog.empty() || ::access(prog.c_str(), X_OK) != 0) {
        std::string msg = "cannot run '" + argv[0] + "': " +
                          (prog.empty() ? std::string("not found on PATH") : std::string(std::strerror(errno)));
        m.log(false, (msg + "\n").data(), msg.size() + 1);
        if (m.echo) write_all_fd(STDERR_FILENO, ("amlc: " + msg + "\n").data(), msg.size() + 7);
        m.finalize(std::nullopt, 0, msg);
        return;
      }
      // The program must not run before the run record names its process: an amlc killed in between would leave a
      // process that nothing can stop or tell apart from a run that never started. So /bin/sh comes first, reading
      // one line from a socket (its stdin) before it execs the program (stdin back to /dev/null); the line is sent
      // once the record names the process. If amlc dies first, the socket closes: the shell exits 125, nothing ran.
      int gate_fds[2] = {-1, -1};
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gate_fds) != 0) sys_fail("cannot create a socket pair");
      Fd gate_write(gate_fds[0]);
      Fd gate_read(gate_fds[1]);
      // (an fd below 3 would be dup2()ed onto itself, which keeps close-on-exec)
      if (gate_read.get() <= STDERR_FILENO) gate_read.reset(::fcntl(gate_read.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
      if (!gate_read.valid()) sys_fail("cannot duplicate a socket");
      std::vector<std::string> gated = {"/bin/sh", "-c", "IFS= read -r go || exit 125; exec \"$@\" </dev/null", "amlc-run", prog};
      gated.insert(gated.end(), m.argv.begin() + 1, m.argv.end());
      std::vector<char*> envp, cargv;
      for (auto& s : m.env_strings) envp.push_back(s.data());
      envp.push_back(nullptr);
      for (auto& s : gated) cargv.push_back(s.data());
      cargv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_adddup2(&fa, gate_read.get(), STDIN_FILENO);
      posix_spawn_file_actions_adddup2(&fa, outp.write.get(), STDOUT_FILENO);
      posix_spawn_file_actions_adddup2(&fa, errp.write.get(), STDERR_FILENO);
      posix_spawn_file_actions_addchdir_np(&fa, wd.c_str());
      posix_spawnattr_t attr;
      init_child_spawnattr(&attr, POSIX_SPAWN_SETPGROUP);  // its own process group: cancel signals the group
      posix_spawnattr_setpgroup(&attr, 0);
      pid_t pid = -1;
      int rc = ::posix_spawn(&pid, "/bin/sh", &fa, &attr, cargv.data(), envp.data());
      posix_spawn_file_actions_destroy(&fa);
      posix_spawnattr_destroy(&attr);
      outp.write.reset();
      errp.write.reset();
      gate_read.reset();
      if (rc != 0) {
        std::string msg = "cannot run '" + argv[0] + "': " + std::strerror(rc);
        m.log(false, (msg + "\n").data(), msg.size() + 1);
        m.finalize(std::nullopt, 0, msg);
        return;
      }
      m.pid = pid;
      m.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));  // -1 on old kernels: we poll instead
      if (m.pidfd.valid()) ::fcntl(m.pidfd.get(), F_SETFD, FD_CLOEXEC);
      json proc = supervisor_info(pid);
      proc["pgid"] = pid;
      m.started = monotonic_seconds();
      m.rec = update_run(m.dir, [&](json& r) {
        if (r.value("status", "") != kPreparing) {
          r["supervisor"] = m.rec["supervisor"];
          r["statusHistory"].push_back(preparing_entry);
        }
        r["process"] = proc;
        set_status(r, kRunning);
        return m.durable;
      });
      // A failed send leaves the shell to exit 125 on its own (or it was killed already): poll() records the end.
      ssize_t sent = ::send(gate_write.get(), "go\n", 3, MSG_NOSIGNAL);
      (void)sent;
      return;
    }

    // Docker: the same run in a container; the run folder and the helpers are mounted.
    m.dc = std::make_unique<docker::Client>();
    docker::ContainerSpec spec;
    spec.image = m.rec["runDefinition"]["environment"]["docker"].value("baseImage", kDefaultDockerImage);
    spec.cmd = argv;
    spec.env = m.env;
    spec.env["HOME"] = "/tmp";
    spec.working_dir = std::string(kContainerRunDir) + "/wd";
    spec.user = std::to_string(::getuid()) + ":" + std::to_string(::getgid());
    spec.labels = {{"amlc.managed", "true"}, {"amlc.run", run_id}};
    spec.mounts.push_back({m.dir.string(), kContainerRunDir, false, "bind"});
    spec.mounts.push_back({m.helpers.string(), kContainerPythonDir, true, "bind"});
    spec.name = "amlc-run-" + to_lower(run_id);
    if (spec.name.size() > 120) spec.name = "amlc-run-" + random_hex(8);
    for (char& c : spec.name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '-';
    m.container_id = m.dc->create_container(spec).id;
    m.rec = update_run(m.dir, [&](json& r) {
      if (r.value("status", "") != kPreparing) {
        r["supervisor"] = m.rec["supervisor"];
        r["statusHistory"].push_back(preparing_entry);
        r["status"] = kPreparing;
      }
      r["containerId"] = m.container_id;
      return false;
    });
    m.dc->start_container(m.container_id);
    m.started = monotonic_seconds();
    m.rec = update_run(m.dir, [&](json& r) {
      set_status(r, kRunning);
      return true;
    });
    Impl* self = &m;
    m.waiter = std::thread([self, wout = std::move(outp.write), werr = std::move(errp.write)]() mutable {
      std::string err;
      try {
        docker::LogOptions lo;
        lo.follow = true;
        self->dc->container_logs(self->container_id, lo, [&](docker::LogStream s, std::string_view data) {
          write_all_fd(s == docker::LogStream::Stderr ? werr.get() : wout.get(), data.data(), data.size());
        });
        self->container_exit = self->dc->wait_container(self->container_id);
      } catch (const std::exception& e) {
        err = e.what();
        try {
          auto code = self->dc->wait_container_for(self->container_id, std::chrono::milliseconds(2000));
          if (code) self->container_exit = *code;
        } catch (const std::exception&) {
        }
      }
      {
        std::lock_guard<std::mutex> lock(self->mu);
        self->container_error = err;
      }
      wout.reset();  // the reader sees the end of both pipes once container_done is set
      werr.reset();
      self->container_done = true;
    });
    return;
  } catch (const Error& e) {
    m.finalize(std::nullopt, 0, std::string("the run could not be started: ") + e.what());
    return;
  } catch (const std::exception& e) {
    m.finalize(std::nullopt, 0, std::string("the run could not be started: ") + e.what());
    return;
  }
}

void Execution::abandon(const std::string& reason) {
  Impl& m = *impl_;
  if (m.finished || m.launched) return;
  m.cancel_requested = true;
  m.cancel_reason = reason;
  m.finalize(std::nullopt, 0, "");
}

bool Execution::launched() const { return impl_->launched; }

bool Execution::exited_successfully() const {
  const Impl& m = *impl_;
  if (!m.launched || m.finished || m.pid <= 0 || m.cancel_requested) return false;
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(m.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return false;
  return info.si_code == CLD_EXITED && info.si_status == 0;
}

bool Execution::poll(int timeout_ms) {
  Impl& m = *impl_;
  if (m.finished) return true;
  if (!m.launched) return false;  // prepared only: nothing runs yet
  std::vector<pollfd> pfds;
  for (int fd : fds()) pfds.push_back({fd, POLLIN, 0});
  if (!pfds.empty()) {
    int n = ::poll(pfds.data(), pfds.size(), timeout_ms);
    if (n > 0) {
      for (const auto& p : pfds) {
        if (!p.revents) continue;
        if (p.fd == m.out_fd.get()) m.pump(true);
        else if (p.fd == m.err_fd.get()) m.pump(false);
      }
    }
  } else if (timeout_ms > 0) {
    ::usleep(static_cast<useconds_t>(std::min(timeout_ms, 50)) * 1000);
  }
  m.poll_raw(false);
  m.check_marker();

  if (m.target == "docker") {
    if (!m.container_done) return false;
    // Drain what the log thread wrote before it closed its ends.
    m.pump(true);
    m.pump(false);
    if (m.waiter.joinable()) m.waiter.join();
    long long code = m.container_exit;
    std::string err;
    {
      std::lock_guard<std::mutex> lock(m.mu);
      err = m.container_error;
    }
    try {
      m.dc->remove_container(m.container_id, {.force = true, .volumes = true, .missing_ok = true});
    } catch (const std::exception&) {
    }
    if (code < 0) {
      m.finalize(std::nullopt, 0, err.empty() ? "the container ended without an exit code" : "docker: " + err);
    } else {
      int c = static_cast<int>(code);
      int sig = (c > 128 && c < 160 && m.cancel_requested) ? c - 128 : 0;
      m.finalize(c, sig, "");
    }
    return true;
  }

  if (m.pid <= 0) return false;
  siginfo_t info{};
  info.si_pid = 0;
  if (::waitid(P_PID, static_cast<id_t>(m.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == EINTR) return false;
    sys_fail("cannot wait for run " + m.run_id);
  }
  if (info.si_pid == 0) return false;  // still running
  // Exited: kill what is left of its process group (the leader is not reaped yet, so the pgid is still ours).
  ::kill(-m.pid, SIGKILL);
  int status = 0;
  while (::waitpid(m.pid, &status, 0) < 0 && errno == EINTR) {
  }
  m.pid = -1;
  m.pidfd.reset();
  if (WIFEXITED(status)) m.finalize(WEXITSTATUS(status), 0, "");
  else if (WIFSIGNALED(status)) m.finalize(std::nullopt, WTERMSIG(status), "");
  else m.finalize(std::nullopt, 0, "the script ended in an unknown way");
  return true;
}

std::vector<Execution*> wait_any(const std::vector<Execution*>& executions, int timeout_ms) {
  std::vector<pollfd> pfds;
  for (auto* e : executions) {
    if (!e || e->finished()) continue;
    for (int fd : e->fds()) pfds.push_back({fd, POLLIN, 0});
  }
  // With pidfds every exit wakes poll(2); without (old kernels, docker runs) cap the sleep.
  bool all_pidfd = true;
  for (auto* e : executions)
    if (e && !e->finished() && !e->has_exit_fd()) all_pidfd = false;
  int t = all_pidfd ? timeout_ms : std::min(timeout_ms, 20);
  if (!pfds.empty()) ::poll(pfds.data(), pfds.size(), t);
  else if (t > 0) ::usleep(static_cast<useconds_t>(t) * 1000);
  std::vector<Execution*> done;
  for (auto* e : executions) {
    if (!e || e->finished()) continue;
    if (e->poll(0)) done.push_back(e);
  }
  return done;
}

json cancel_run(const Workspace& ws, const std::string& run_id, const std::string& reason, double wait_seconds) {
  fs::path dir = run_dir(ws, run_id);
  json rec = reconcile(ws, dir);
  std::string st = rec.value("status", "");
  if (st == kCanceled) return rec;
  if (is_terminal(st)) {
    conflict("run '" + run_id + "' already finished: " + st, "only a run that is not finished can be canceled");
  }
  rec = update_run(dir, [&](json& r) {
    if (!r.contains("cancelRequested") || r["cancelRequested"].is_null()) {
      r["cancelRequested"] = {{"time", now_iso8601()}, {"reason", reason}, {"byPid", static_cast<int>(::getpid())}};
    }
    return true;
  });
  write_file_atomic(dir / "cancel", reason + "\n");
  auto signal_group = [&](int sig) {
    json proc = read_run_record(dir).value("process", json());
    if (!proc.is_object()) return;
    int pgid = proc.value("pgid", 0);
    long long ticks = proc.value("startTicks", -1LL);
    json check = supervisor_info(pgid);
    if (pgid > 0 && ticks >= 0 && check.value("startTicks", -2LL) == ticks) ::kill(-pgid, sig);
  };
  signal_group(SIGTERM);
  double grace = rec["runDefinition"].value("cancelGracePeriodSeconds", 10.0);
  double t0 = monotonic_seconds();
  bool killed = false;
  while (monotonic_seconds() - t0 < wait_seconds) {
    rec = reconcile(ws, dir);
    if (is_terminal(rec.value("status", ""))) return rec;
    if (!killed && monotonic_seconds() - t0 > grace + 1) {
      signal_group(SIGKILL);
      killed = true;
    }
    ::usleep(20000);
  }
  return read_run_record(dir);
}

int spawn_supervisor(const Workspace& ws, const std::string& run_id) {
  fs::path dir = run_dir(ws, run_id);
  int pid = spawn_detached_self({"-w", ws.root().string(), "run", "_supervise", "-r", run_id},
                                dir / "logs" / "supervisor.txt");
  int rc = pid < 0 ? -pid : 0;
  if (rc != 0) {
    update_run(dir, [&](json& r) {
      r["error"] = {{"message", std::string("cannot start the run's supervisor: ") + std::strerror(rc)}};
      set_status(r, kFailed);
      return true;
    });
    fail(ErrorKind::General, std::string("cannot start the run's supervisor: ") + std::strerror(rc));
  }
  json info = supervisor_info(pid);
  update_run(dir, [&](json& r) {
    // The supervisor may already have recorded itself; only replace our own (exiting) pid.
    if (r.value("supervisor", json::object()).value("pid", 0) == static_cast<int>(::getpid())) r["supervisor"] = info;
    return true;
  });
  return pid;
}

json supervise(const Workspace& ws, const std::string& run_id, bool echo) {
  auto ex = Execution::start(ws, run_id, {.echo = echo, .reuse_extracted = false});
  bool canceled = false;
  while (!ex->poll(200)) {
    if (interrupted() && !canceled) {
      ex->cancel(std::string("interrupted (") + (interrupt_signal() == SIGINT ? "SIGINT" : "SIGTERM") + ")");
      canceled = true;
    }
  }
  return ex->record();
}

}  // namespace amlc::runs
