// Test harness: run the real amlc binary, temp directories, JSON parsing of output.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/core/error.hpp"

namespace amlc::test {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
  json json_out() const;  // parses stdout; fails the test with stderr shown if it is not JSON
};

struct RunOptions {
  std::map<std::string, std::string> env;  // added to (or, with empty value "\x01unset", removed from) the environment
  std::string input;                       // stdin
  fs::path cwd;                            // default: current directory
  double timeout_seconds = 120;            // killed (SIGKILL) after this times time_scale(); code = -9
};

// How many times slower than a release build this test build runs: 4 under AddressSanitizer, else 1;
// AMLC_TEST_TIME_SCALE overrides it (a loaded CI machine). Every deadline in a test is multiplied by it.
double time_scale();
// Polls `cond` every 20 ms until it holds or `seconds` * time_scale() have passed; returns whether it held.
// Tests wait on conditions with this, never for a fixed time.
bool wait_until(const std::function<bool()>& cond, double seconds = 30);

// The kind of amlc::Error that `fn` throws; nullopt if it throws none (other exceptions propagate).
std::optional<amlc::ErrorKind> error_kind_of(const std::function<void()>& fn);

// Runs `program` with `args`. Output is captured in full.
Result run_process(const std::string& program, const std::vector<std::string>& args, const RunOptions& opts = {});
// This process's environment with `changes` applied (a value "\x01unset" removes the variable), as KEY=VALUE.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& changes);
// Runs the amlc binary under test.
Result run_amlc(const std::vector<std::string>& args, const RunOptions& opts = {});

// A temp directory removed at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  fs::path path_;
};

// A fresh workspace in a temp directory; `args({...})` prefixes -w <root>.
class Workspace {
 public:
  Workspace();
  const fs::path& dir() const { return tmp_.path(); }
  fs::path root() const { return tmp_.path() / "ws" / ".amlc"; }  // the workspace store itself
  Result run(std::vector<std::string> args, const RunOptions& opts = {}) const;
  // Runs and requires exit 0 and JSON stdout.
  json ok(std::vector<std::string> args, const RunOptions& opts = {}) const;

 private:
  TempDir tmp_;
};

void write_text(const fs::path& path, const std::string& text);
std::string read_text(const fs::path& path);
// A listing of every file under `dir` with its content hash: for "nothing changed on disk" checks.
std::map<std::string, std::string> snapshot_tree(const fs::path& dir);

}  // namespace amlc::test
