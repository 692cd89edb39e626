// Processes: who is alive (pid + start time + host, safe against pid reuse), and starting amlc itself again as a
// detached supervisor (for --async runs and sweeps).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <spawn.h>

namespace amlc {

// /proc/PID/stat in one read(2) (O_CLOEXEC); empty if the process is gone.
std::string proc_stat(int pid);
// Field 22 of /proc/PID/stat (clock ticks after boot): with the pid, it names one process for this boot. -1 if gone.
long long proc_start_ticks(int pid);
// This machine's host name.
const std::string& host_name();

// One process, told apart from a later one that reuses its pid.
struct ProcessIdentity {
  int pid = 0;
  long long start_ticks = -1;
  std::string host;
};
// This process (computed once) or another one on this host (read now).
const ProcessIdentity& this_process();
ProcessIdentity process_identity(int pid);
// Alive: same host, the pid exists with the same start time, and it is not a zombie. A process on another host
// cannot be checked: it counts as alive.
bool process_alive(const ProcessIdentity& id);

// Initialises `attr` for a child of amlc: SIGINT/SIGTERM/SIGPIPE/SIGHUP back to their defaults (amlc
// catches or ignores them), an empty signal mask, plus `extra_flags` (e.g. POSIX_SPAWN_SETSID or
// POSIX_SPAWN_SETPGROUP). The caller destroys it.
void init_child_spawnattr(posix_spawnattr_t* attr, short extra_flags);

// Starts this executable (/proc/self/exe) with `args` in a new session, stdin/stdout on /dev/null, stderr
// appended to `stderr_log`, default signal dispositions and an empty signal mask. Returns the pid, or
// -errno-like negative value (the posix_spawn error) when it could not start.
int spawn_detached_self(const std::vector<std::string>& args, const std::filesystem::path& stderr_log);

}  // namespace amlc
