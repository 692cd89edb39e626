#include "support/harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <doctest/doctest.h>

#include "amlc/core/hash.hpp"

extern char** environ;

namespace amlc::test {

double time_scale() {
  static const double scale = [] {
    if (const char* env = std::getenv("AMLC_TEST_TIME_SCALE")) {
      double v = std::atof(env);
      if (v >= 1) return v;
    }
#if defined(__SANITIZE_ADDRESS__)
    return 4.0;
#else
    return 1.0;
#endif
  }();
  return scale;
}

bool wait_until(const std::function<bool()>& cond, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds * time_scale());
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

json Result::json_out() const {
  try {
    return json::parse(out);
  } catch (const std::exception& e) {
    FAIL("stdout is not JSON (exit " << code << "): " << e.what() << "\nstdout: " << out << "\nstderr: " << err);
  }
  return {};
}

std::vector<std::string> child_environment(const std::map<std::string, std::string>& changes) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string s = *e;
    auto eq = s.find('=');
    if (eq != std::string::npos) env[s.substr(0, eq)] = s.substr(eq + 1);
  }
  for (const auto& [k, v] : changes) {
    if (v == "\x01unset") env.erase(k);
    else env[k] = v;
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  return env_strings;
}

Result run_process(const std::string& program, const std::vector<std::string>& args, const RunOptions& opts) {
  std::vector<std::string> env_strings = child_environment(opts.env);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings{program};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  std::string cwd = opts.cwd.empty() ? std::string() : opts.cwd.string();
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, program.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    throw std::runtime_error("cannot spawn " + program + ": " + std::strerror(rc));
  }
  signal(SIGPIPE, SIG_IGN);
  size_t written = 0;
  if (opts.input.empty()) {
    close(in_pipe[1]);
    in_pipe[1] = -1;
  } else {
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  }
  Result r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(opts.timeout_seconds * time_scale());
  bool out_open = true, err_open = true, killed = false;
  char buf[65536];
  while (out_open || err_open) {
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({out_pipe[0], POLLIN, 0});
    if (err_open) fds.push_back({err_pipe[0], POLLIN, 0});
    if (in_pipe[1] >= 0) fds.push_back({in_pipe[1], POLLOUT, 0});
    int n = poll(fds.data(), fds.size(), 200);
    if (std::chrono::steady_clock::now() > deadline && !killed) {
      kill(-pid, SIGKILL);
      killed = true;
    }
    if (n <= 0) continue;
    for (auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == in_pipe[1]) {
        ssize_t w = write(in_pipe[1], opts.input.data() + written, opts.input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == opts.input.size()) {
          close(in_pipe[1]);
          in_pipe[1] = -1;
        }
        continue;
      }
      ssize_t got = read(p.fd, buf, sizeof buf);
      if (got <= 0) {
        if (p.fd == out_pipe[0]) out_open = false;
        else err_open = false;
        continue;
      }
      (p.fd == out_pipe[0] ? r.out : r.err).append(buf, static_cast<size_t>(got));
    }
  }
  if (in_pipe[1] >= 0) close(in_pipe[1]);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) r.code = -WTERMSIG(status);
  return r;
}

Result run_amlc(const std::vector<std::string>& args, const RunOptions& opts) { return run_process(AMLC_BIN, args, opts); }

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "amlc-test.XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Workspace::Workspace() {
  Result r = run_amlc({"workspace", "create", (tmp_.path() / "ws").string(), "--name", "test"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
}

Result Workspace::run(std::vector<std::string> args, const RunOptions& opts) const {
  args.insert(args.begin(), {"-w", root().string()});
  return run_amlc(args, opts);
}

json Workspace::ok(std::vector<std::string> args, const RunOptions& opts) const {
  Result r = run(args, opts);
  std::string cmd;
  for (const auto& a : args) cmd += a + " ";
  REQUIRE_MESSAGE(r.code == 0, "amlc " << cmd << "exited " << r.code << "\nstderr: " << r.err);
  return r.out.empty() ? json() : r.json_out();
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::string read_text(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> snapshot_tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string rel = fs::relative(e.path(), dir).string();
    if (rel == ".lock") continue;  // the lock file's existence is not state
    if (e.is_regular_file()) out[rel] = amlc::sha256_file(e.path());
    else if (e.is_directory()) out[rel + "/"] = "dir";
    else out[rel] = "other";
  }
  return out;
}

std::optional<amlc::ErrorKind> error_kind_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const amlc::Error& e) {
    return e.kind();
  }
  return std::nullopt;
}

}  // namespace amlc::test
