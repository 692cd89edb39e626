// Runs seen from outside their Execution: waiting on many at once (wait_any), cancelling one from any process
// (cancel_run), and the detached supervisor of an --async run (spawn_supervisor, and supervise, the body of the
// hidden `run _supervise`).
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/process.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/runs/executor.hpp"
#include "amlc/runs/request.hpp"
#include "amlc/runs/store.hpp"

namespace amlc::runs {

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
  double grace = RunRequest{}.grace_seconds;  // the default, for a record too damaged to say: cancel still works
  try {
    grace = request_from_json(rec.value("runDefinition", json()), "").grace_seconds;
  } catch (const Error&) {
  }
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
