#include "amlc/core/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

extern char** environ;

namespace amlc {

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
