// Internal to runs/ (not for other modules): what the files that carry out a run share. Execution::Impl, the state
// of one run being executed, with its methods split by what they do: executor.cpp (prepare, output and metrics,
// cancel and timeout, the final record), local_exec.cpp (a process on this machine), docker_exec.cpp (a container);
// the working folder helpers of workdir.cpp, and the small pieces of plumbing they all use.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/archive/snapshot.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/docker/client.hpp"
#include "amlc/runs/executor.hpp"
#include "amlc/runs/metrics.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::runs {

// Where a container sees the run folder and the Python helpers.
inline constexpr const char* kContainerRunDir = "/amlc/run";
inline constexpr const char* kContainerPythonDir = "/amlc/python";

// write(2) until all is written; errors are ignored: logs are best effort once the run is going, the record is what
// matters.
void write_all_fd(int fd, const char* p, size_t n);

// A pipe for a run's stdout or stderr: the read end is ours (non-blocking), the write end goes to the program or
// the thread that copies a container's logs.
struct Pipe {
  Fd read, write;
};
Pipe open_pipe();

// --- workdir.cpp ---------------------------------------------------------------------------------------------

// Makes the run folder `dir` ready to run in: wd/ from the snapshot its record names (`snapshot`: {sha256, bytes}),
// outputs/ and logs/, and wd/outputs a link to ../outputs. `reuse` and `adopt`: StartOptions::reuse_extracted and
// adopt_workdir. Throws when the snapshot is missing or its archive breaks the extraction rules or limits.
void make_workdir(const Workspace& ws, const fs::path& dir, const json& snapshot, bool reuse, const fs::path& adopt);

// --- local_exec.cpp ------------------------------------------------------------------------------------------

// The environment of this process, as a map.
std::map<std::string, std::string> current_environment();
// `prog` looked up on the PATH of `env` (the child's environment), or made absolute against `cwd` when it has a
// '/'; "" when not found.
std::string resolve_program(const std::string& prog, const std::map<std::string, std::string>& env, const fs::path& cwd);

// --- Execution::Impl -----------------------------------------------------------------------------------------

struct Execution::Impl {
  fs::path ws_root;
  fs::path dir;
  std::string run_id;
  json rec;
  std::string target;  // local | docker
  std::string image;   // docker
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

  ~Impl();

  // executor.cpp
  void log(bool is_out, const char* data, size_t len);  // into logs/stdout.txt or stderr.txt, and run.log
  // Reads what the program wrote to stdout (is_out) or stderr until the pipe is empty; closes it at its end.
  void pump(bool is_out);
  void match_line(const std::string& line);
  void poll_raw(bool force);  // $AMLC_METRICS_FILE into metrics.jsonl (at most every 50 ms unless forced)
  void signal_run(int sig);   // the process group, or the container
  void request_cancel(const std::string& reason);
  std::optional<std::string> cancel_marker() const;  // the reason in <run>/cancel, if cancel_run wrote it
  void check_marker();  // the cancel marker, the time limit, SIGKILL after the grace period
  // Writes the final record (Completed, Failed or Canceled) and removes the working folder (unless kept).
  void finalize(std::optional<int> exit_code, int term_signal, const std::string& error_text);

  // local_exec.cpp: starts the program (Running), or records why it could not start (Failed). Throws on errors of
  // amlc itself (no socket, no record).
  void launch_local(Fd out, Fd err);
  bool poll_local();  // true once the process has ended and the run is finalized

  // docker_exec.cpp: creates and starts the container (Running) and the thread that copies its logs into `out` and
  // `err`. Throws what the engine answers.
  void launch_docker(Fd out, Fd err);
  bool poll_docker();  // true once the container has ended and the run is finalized
};

}  // namespace amlc::runs
