#include "amlc/core/error.hpp"

#include <cerrno>
#include <cstring>

namespace amlc {

int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::General: return 1;
    case ErrorKind::Usage: return 2;
    case ErrorKind::NotFound: return 3;
    case ErrorKind::Conflict: return 4;
    case ErrorKind::DockerUnavailable: return 5;
    case ErrorKind::Damaged: return 6;
    case ErrorKind::Interrupted: return 130;
  }
  return 1;
}

const char* kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::General: return "error";
    case ErrorKind::Usage: return "usage";
    case ErrorKind::NotFound: return "not_found";
    case ErrorKind::Conflict: return "conflict";
    case ErrorKind::DockerUnavailable: return "docker_unavailable";
    case ErrorKind::Damaged: return "damaged";
    case ErrorKind::Interrupted: return "interrupted";
  }
  return "error";
}

void fail(ErrorKind kind, std::string message, std::string hint, std::string detail) {
  throw Error(kind, std::move(message), std::move(hint), std::move(detail));
}
void usage_error(std::string message, std::string hint) { fail(ErrorKind::Usage, std::move(message), std::move(hint)); }
void not_found(std::string message, std::string hint) { fail(ErrorKind::NotFound, std::move(message), std::move(hint)); }
void conflict(std::string message, std::string hint) { fail(ErrorKind::Conflict, std::move(message), std::move(hint)); }

void sys_fail(const std::string& what) {
  int e = errno;
  ErrorKind kind = ErrorKind::General;
  if (e == ENOENT) kind = ErrorKind::NotFound;
  throw Error(kind, what + ": " + std::strerror(e));
}

}  // namespace amlc
