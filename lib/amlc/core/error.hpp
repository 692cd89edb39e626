// Errors: one exception type carrying a kind (mapped to a documented exit code by the CLI),
// a one-sentence message, an optional hint (what to do) and optional detail (shown with --debug).
#pragma once

#include <stdexcept>
#include <string>

namespace amlc {

enum class ErrorKind {
  General,            // exit 1: the operation failed
  Usage,              // exit 2: bad option, argument, name or config value
  NotFound,           // exit 3: model, run, sweep, service, file does not exist
  Conflict,           // exit 4: already exists, in use, locked
  DockerUnavailable,  // exit 5: no Docker engine answers
  Damaged,            // exit 6: workspace check found damage
  Interrupted,        // exit 130: SIGINT/SIGTERM
};

int exit_code(ErrorKind kind);
const char* kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message, std::string hint = {}, std::string detail = {})
      : std::runtime_error(std::move(message)), kind_(kind), hint_(std::move(hint)), detail_(std::move(detail)) {}

  ErrorKind kind() const noexcept { return kind_; }
  const std::string& hint() const noexcept { return hint_; }
  const std::string& detail() const noexcept { return detail_; }

 private:
  ErrorKind kind_;
  std::string hint_;
  std::string detail_;
};

// Shorthands used throughout lib/.
[[noreturn]] void fail(ErrorKind kind, std::string message, std::string hint = {}, std::string detail = {});
[[noreturn]] void usage_error(std::string message, std::string hint = {});
[[noreturn]] void not_found(std::string message, std::string hint = {});
[[noreturn]] void conflict(std::string message, std::string hint = {});
// An OS call failed: message plus strerror(errno) as detail, kind General.
[[noreturn]] void sys_fail(const std::string& what);

}  // namespace amlc
