// Processes: starting amlc itself again as a detached supervisor (for --async runs and sweeps).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <spawn.h>

namespace amlc {

// Initialises `attr` for a child of amlc: SIGINT/SIGTERM/SIGPIPE/SIGHUP back to their defaults (amlc
// catches or ignores them), an empty signal mask, plus `extra_flags` (e.g. POSIX_SPAWN_SETSID or
// POSIX_SPAWN_SETPGROUP). The caller destroys it.
void init_child_spawnattr(posix_spawnattr_t* attr, short extra_flags);

// Starts this executable (/proc/self/exe) with `args` in a new session, stdin/stdout on /dev/null, stderr
// appended to `stderr_log`, default signal dispositions and an empty signal mask. Returns the pid, or
// -errno-like negative value (the posix_spawn error) when it could not start.
int spawn_detached_self(const std::vector<std::string>& args, const std::filesystem::path& stderr_log);

}  // namespace amlc
