// Executing one run: Execution prepares it (the record Preparing, the working folder, metrics files, environment),
// launches it (local_exec.cpp or docker_exec.cpp), then poll() pumps its stdout/stderr into logs/ and metrics,
// watches the cancel marker and the time limit (SIGTERM, then SIGKILL after the grace period) and writes the final
// record. Creating runs is submit.cpp; the working folder workdir.cpp; cancel from outside and the detached
// supervisor supervise.cpp. What these files share: execution_impl.hpp.
#include "amlc/runs/executor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "amlc/assets/assets.hpp"
#include "amlc/core/error.hpp"
#include "amlc/core/process.hpp"
#include "amlc/core/util.hpp"
#include "amlc/runs/execution_impl.hpp"
#include "amlc/runs/request.hpp"
#include "amlc/runs/store.hpp"

namespace amlc::runs {

namespace {

// A stdout line longer than this is no metric line: it is not kept in memory whole, nor matched.
constexpr size_t kMaxStdoutLineBytes = 65536;
// The longest cancel marker read for its reason; a longer one (or any other thing named "cancel") cancels with the
// reason "canceled".
constexpr size_t kMaxCancelReasonBytes = 65536;

Fd open_append(const fs::path& p) {
  Fd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd.valid()) sys_fail("cannot open " + p.string());
  return fd;
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

}  // namespace

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

Pipe open_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) sys_fail("cannot create a pipe");
  Pipe pipe{Fd(p[0]), Fd(p[1])};
  ::fcntl(pipe.read.get(), F_SETFL, O_NONBLOCK);
  return pipe;
}

void Execution::Impl::log(bool is_out, const char* data, size_t len) {
  Fd& fd = is_out ? log_out : log_err;
  if (!fd.valid()) fd = open_append(dir / "logs" / (is_out ? "stdout.txt" : "stderr.txt"));
  if (!log_all.valid()) log_all = open_append(dir / "logs" / "run.log");
  write_all_fd(fd.get(), data, len);
  write_all_fd(log_all.get(), data, len);
}

Execution::Impl::~Impl() {
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

void Execution::Impl::pump(bool is_out) {
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

void Execution::Impl::match_line(const std::string& line) {
  std::string l = line;
  if (!l.empty() && l.back() == '\r') l.pop_back();
  for (auto& [name, text] : pattern->find_all(l)) {
    auto v = parse_metric_number(text);
    if (v) metrics->add(name, *v, "scalar", "stdout");
  }
}

void Execution::Impl::poll_raw(bool force) {
  double now = monotonic_seconds();
  if (!force && now - last_raw_poll < 0.05) return;
  last_raw_poll = now;
  for (const auto& line : raw->poll_lines()) metrics->add_raw_line(line);
}

void Execution::Impl::signal_run(int sig) {
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

void Execution::Impl::request_cancel(const std::string& reason) {
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

std::optional<std::string> Execution::Impl::cancel_marker() const {
  std::string reason;
  try {
    reason = trim(read_input_file(dir / "cancel", kMaxCancelReasonBytes, "cancel marker"));
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::NotFound) return std::nullopt;
    // There, but not a small file to read a reason from: it still says "cancel".
  }
  return reason.empty() ? std::string("canceled") : reason;
}

void Execution::Impl::check_marker() {
  double now = monotonic_seconds();
  if (now - last_marker_check < 0.1) return;
  last_marker_check = now;
  if (!cancel_requested) {
    if (auto reason = cancel_marker()) request_cancel(*reason);
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

void Execution::Impl::finalize(std::optional<int> exit_code, int term_signal, const std::string& error_text) {
  // A cancel from another process (cancel_run) writes the marker, then signals: a program that dies of the signal
  // ends before check_marker(), which looks only every 0.1 s, has seen the marker. The end is the cancel's.
  if (!cancel_requested) {
    if (auto reason = cancel_marker()) {
      cancel_requested = true;
      cancel_reason = *reason;
    }
  }
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
  m.durable = m.rec.value("durableRecords", true);
  if (!cancel_req.is_null() || m.cancel_marker()) {
    m.cancel_requested = true;
    m.cancel_reason = "canceled before it started";
    m.finalize(std::nullopt, 0, "");
    return ex;
  }

  fs::path wd = m.dir / "wd";
  std::vector<std::string>& argv = m.argv;
  std::map<std::string, std::string>& env = m.env;
  try {
    const std::string experiment = m.rec.value("experimentName", "");
    const RunRequest req = request_from_json(m.rec.value("runDefinition", json()), experiment,
                                             "the runDefinition of run " + run_id);
    m.target = req.target;
    m.image = req.image;
    m.grace = req.grace_seconds;
    m.max_duration = req.max_duration_seconds;
    argv = resolve_command(req);
    make_workdir(ws, m.dir, m.rec["snapshot"], options.reuse_extracted, options.adopt_workdir);
    m.metrics = std::make_unique<MetricsWriter>(m.dir / "metrics.jsonl");
    m.raw = std::make_unique<MetricsTail>(m.dir / "metrics.raw.jsonl");
    if (req.metrics_from_stdout) m.pattern.emplace(req.metrics_regex.empty() ? kDefaultMetricsRegex : req.metrics_regex);
    m.helpers = assets::materialize(ws.root() / "cache");
    const fs::path& helpers = m.helpers;
    bool docker = m.target == "docker";
    if (!docker) env = current_environment();
    for (const auto& [k, v] : req.environment) env[k] = v;
    std::string rd = docker ? kContainerRunDir : m.dir.string();
    std::string py = docker ? kContainerPythonDir : helpers.string();
    env["AMLC_RUN_ID"] = run_id;
    env["AZUREML_RUN_ID"] = run_id;
    env["AMLC_EXPERIMENT"] = experiment;
    env["AZUREML_EXPERIMENT_NAME"] = experiment;
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
  } catch (const std::exception& e) {
    m.finalize(std::nullopt, 0, std::string("the run could not be started: ") + e.what());
  }
  return ex;
}

void Execution::launch() {
  Impl& m = *impl_;
  if (m.finished || m.launched) return;
  m.launched = true;
  try {
    // The write ends are closed when the program has them (local) or the log thread ends (docker), and on any
    // error before that.
    Pipe out = open_pipe(), err = open_pipe();
    m.out_fd = std::move(out.read);
    m.err_fd = std::move(err.read);
    if (m.target == "docker") m.launch_docker(std::move(out.write), std::move(err.write));
    else m.launch_local(std::move(out.write), std::move(err.write));
  } catch (const std::exception& e) {
    m.finalize(std::nullopt, 0, std::string("the run could not be started: ") + e.what());
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
  return m.target == "docker" ? m.poll_docker() : m.poll_local();
}

}  // namespace amlc::runs
