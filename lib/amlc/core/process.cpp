#include "amlc/core/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <cstdlib>

#include "amlc/core/fs.hpp"

extern char** environ;

namespace amlc {

std::string proc_stat(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return {};
  char buf[1024];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) < 0 && errno == EINTR) {
  }
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

namespace {

// The fields after the command name "(...)", which may itself hold spaces and parentheses.
const char* stat_fields(const std::string& s) {
  auto close_paren = s.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= s.size()) return nullptr;
  return s.c_str() + close_paren + 2;
}

}  // namespace

long long proc_start_ticks(int pid) {
  std::string s = proc_stat(pid);
  const char* p = stat_fields(s);
  if (!p) return -1;
  // state(3) ppid(4) ... starttime(22).
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (!p) return -1;
    ++p;
  }
  return std::atoll(p);
}

const std::string& host_name() {
  static const std::string name = [] {
    char buf[256] = {0};
    ::gethostname(buf, sizeof buf - 1);
    return std::string(buf);
  }();
  return name;
}

const ProcessIdentity& this_process() {
  // Per process: a forked child must not inherit its parent's answer.
  thread_local ProcessIdentity self;
  int pid = static_cast<int>(::getpid());
  if (self.pid != pid) self = process_identity(pid);
  return self;
}

ProcessIdentity process_identity(int pid) { return {pid, proc_start_ticks(pid), host_name()}; }

bool process_alive(const ProcessIdentity& id) {
  if (id.pid <= 0) return false;
  if (!id.host.empty() && id.host != host_name()) return true;  // another machine: cannot tell
  if (::kill(id.pid, 0) != 0 && errno == ESRCH) return false;
  std::string s = proc_stat(id.pid);
  const char* p = stat_fields(s);
  if (!p) return false;
  if (*p == 'Z') return false;  // exited, not yet reaped
  if (id.start_ticks >= 0 && proc_start_ticks(id.pid) != id.start_ticks) return false;  // the pid was reused
  return true;
}

void init_child_spawnattr(posix_spawnattr_t* attr, short extra_flags) {
  posix_spawnattr_init(attr);
  sigset_t def_sigs, empty;
  sigemptyset(&def_sigs);
  sigaddset(&def_sigs, SIGINT);
  sigaddset(&def_sigs, SIGTERM);
  sigaddset(&def_sigs, SIGPIPE);
  sigaddset(&def_sigs, SIGHUP);
  sigemptyset(&empty);
  posix_spawnattr_setsigdefault(attr, &def_sigs);
  posix_spawnattr_setsigmask(attr, &empty);
  posix_spawnattr_setflags(attr, static_cast<short>(extra_flags | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK));
}

int spawn_detached_self(const std::vector<std::string>& args, const std::filesystem::path& stderr_log) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::string> all = {self};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& s : all) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, stderr_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawnattr_t attr;
  init_child_spawnattr(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, self.c_str(), &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return rc != 0 ? -rc : pid;
}

}  // namespace amlc
