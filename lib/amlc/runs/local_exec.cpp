// A run as a process on this machine: the program resolved on the run's PATH, started behind a /bin/sh gate in its
// own process group (so that cancel signals all it started), with a pidfd so that poll(2) wakes when it exits; and
// reaping it at its end.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "amlc/core/error.hpp"
#include "amlc/core/process.hpp"
#include "amlc/core/util.hpp"
#include "amlc/runs/execution_impl.hpp"
#include "amlc/runs/store.hpp"

extern char** environ;

namespace amlc::runs {

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

void Execution::Impl::launch_local(Fd out, Fd err) {
  const fs::path wd = dir / "wd";
  const std::string& prog = program;
  if (prog.empty() || ::access(prog.c_str(), X_OK) != 0) {
    out.reset();
    err.reset();
    std::string msg = "cannot run '" + argv[0] + "': " +
                      (prog.empty() ? std::string("not found on PATH") : std::string(std::strerror(errno)));
    log(false, (msg + "\n").data(), msg.size() + 1);
    if (echo) write_all_fd(STDERR_FILENO, ("amlc: " + msg + "\n").data(), msg.size() + 7);
    finalize(std::nullopt, 0, msg);
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
  gated.insert(gated.end(), argv.begin() + 1, argv.end());
  std::vector<char*> envp, cargv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& s : gated) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, gate_read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, err.get(), STDERR_FILENO);
  posix_spawn_file_actions_addchdir_np(&fa, wd.c_str());
  posix_spawnattr_t attr;
  init_child_spawnattr(&attr, POSIX_SPAWN_SETPGROUP);  // its own process group: cancel signals the group
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t child = -1;
  int rc = ::posix_spawn(&child, "/bin/sh", &fa, &attr, cargv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  out.reset();
  err.reset();
  gate_read.reset();
  if (rc != 0) {
    std::string msg = "cannot run '" + argv[0] + "': " + std::strerror(rc);
    log(false, (msg + "\n").data(), msg.size() + 1);
    finalize(std::nullopt, 0, msg);
    return;
  }
  pid = child;
  pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));  // -1 on old kernels: we poll instead
  if (pidfd.valid()) ::fcntl(pidfd.get(), F_SETFD, FD_CLOEXEC);
  json proc = supervisor_info(child);
  proc["pgid"] = child;
  started = monotonic_seconds();
  rec = update_run(dir, [&](json& r) {
    if (r.value("status", "") != kPreparing) {
      r["supervisor"] = rec["supervisor"];
      r["statusHistory"].push_back(preparing_entry);
    }
    r["process"] = proc;
    set_status(r, kRunning);
    return durable;
  });
  // A failed send leaves the shell to exit 125 on its own (or it was killed already): poll() records the end.
  ssize_t sent = ::send(gate_write.get(), "go\n", 3, MSG_NOSIGNAL);
  (void)sent;
}

bool Execution::Impl::poll_local() {
  if (pid <= 0) return false;
  siginfo_t info{};
  info.si_pid = 0;
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == EINTR) return false;
    sys_fail("cannot wait for run " + run_id);
  }
  if (info.si_pid == 0) return false;  // still running
  // Exited: kill what is left of its process group (the leader is not reaped yet, so the pgid is still ours).
  ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  pid = -1;
  pidfd.reset();
  if (WIFEXITED(status)) finalize(WEXITSTATUS(status), 0, "");
  else if (WIFSIGNALED(status)) finalize(std::nullopt, WTERMSIG(status), "");
  else finalize(std::nullopt, 0, "the script ended in an unknown way");
  return true;
}

bool Execution::exited_successfully() const {
  const Impl& m = *impl_;
  if (!m.launched || m.finished || m.pid <= 0 || m.cancel_requested) return false;
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(m.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return false;
  return info.si_code == CLD_EXITED && info.si_status == 0;
}

}  // namespace amlc::runs
