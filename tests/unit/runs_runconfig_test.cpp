// runs::apply_run_config: a run configuration file plus the command line's flags onto a run request.
#include <cstdlib>

#include <doctest/doctest.h>

#include "amlc/core/error.hpp"
#include "amlc/runs/runconfig.hpp"
#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using namespace amlc::runs;

namespace {

// The error `fn` throws, as "message | hint" with its kind; "" when it throws none.
template <class Fn>
std::string error_of(Fn fn, amlc::ErrorKind* kind = nullptr) {
  try {
    fn();
  } catch (const amlc::Error& e) {
    if (kind) *kind = e.kind();
    return std::string(e.what()) + " | " + e.hint();
  }
  return "";
}

const char* kFullConfig =
    "script: from_file.py\n"
    "arguments: [--lr, 0.5]\n"
    "target: docker\n"
    "environment:\n"
    "  environmentVariables: {SEED: 7}\n"
    "  python: {interpreterPath: /usr/bin/python3.11}\n"
    "  docker: {baseImage: 'img:2'}\n"
    "metrics: {regex: '(?P<name>\\w+): (?P<value>\\S+)', fromStdout: false}\n"
    "snapshot: {maxFiles: 50, maxSizeMB: 3}\n"
    "cancelGracePeriodSeconds: 4\n"
    "maxRunDurationSeconds: 90\n";

}  // namespace

TEST_CASE("runconfig: apply: without -c only the flags count, and the request's defaults stay") {
  RunRequest req;
  CHECK(apply_run_config(req, {"", {"train.py", "--epochs", "3"}, ""}).empty());
  CHECK(req.script == "train.py");
  CHECK(req.arguments == std::vector<std::string>{"--epochs", "3"});
  CHECK(req.target == "local");
  CHECK(req.interpreter == "python3");
  CHECK(req.image == kDefaultDockerImage);
}

TEST_CASE("runconfig: apply: the file's settings land on the request, and flags win over the file") {
  t::TempDir tmp;
  t::write_text(tmp / "rc.yml", kFullConfig);

  RunRequest from_file;
  from_file.source_dir = tmp.path();
  CHECK(apply_run_config(from_file, {(tmp / "rc.yml").string(), {}, ""}) == tmp / "rc.yml");
  CHECK(from_file.script == "from_file.py");
  CHECK(from_file.arguments == std::vector<std::string>{"--lr", "0.5"});
  CHECK(from_file.target == "docker");
  CHECK(from_file.interpreter == "/usr/bin/python3.11");
  CHECK(from_file.image == "img:2");
  CHECK(from_file.environment == std::map<std::string, std::string>{{"SEED", "7"}});
  CHECK(from_file.metrics_regex == "(?P<name>\\w+): (?P<value>\\S+)");
  CHECK(from_file.metrics_regex_where.find("rc.yml:8:") != std::string::npos);
  CHECK_FALSE(from_file.metrics_from_stdout);
  CHECK(from_file.limits.max_files == 50);
  CHECK(from_file.limits.max_bytes == 3ull * 1024 * 1024);
  CHECK(from_file.grace_seconds == 4);
  CHECK(from_file.max_duration_seconds == 90);

  RunRequest flagged;
  flagged.source_dir = tmp.path();
  apply_run_config(flagged, {(tmp / "rc.yml").string(), {"other.py", "--lr", "0.1"}, "local"});
  CHECK(flagged.script == "other.py");
  CHECK(flagged.arguments == std::vector<std::string>{"--lr", "0.1"});  // the file's arguments are replaced
  CHECK(flagged.target == "local");
  CHECK(flagged.image == "img:2");  // what no flag says still comes from the file
  CHECK(flagged.environment == std::map<std::string, std::string>{{"SEED", "7"}});

  RunRequest script_only;  // SCRIPT alone: no arguments, not the file's
  script_only.source_dir = tmp.path();
  apply_run_config(script_only, {(tmp / "rc.yml").string(), {"other.py"}, ""});
  CHECK(script_only.arguments.empty());
  CHECK(script_only.target == "docker");
}

TEST_CASE("runconfig: apply: the snapshot limits of the environment win over the file's") {
  t::TempDir tmp;
  t::write_text(tmp / "rc.yml", "snapshot: {maxFiles: 50, maxSizeMB: 3}\n");
  ::setenv("AMLC_SNAPSHOT_MAX_FILES", "12", 1);
  RunRequest req;
  apply_run_config(req, {(tmp / "rc.yml").string(), {"a.py"}, ""});
  ::unsetenv("AMLC_SNAPSHOT_MAX_FILES");
  CHECK(req.limits.max_files == 12);
  CHECK(req.limits.max_bytes == 3ull * 1024 * 1024);
}

TEST_CASE("runconfig: apply: -c NAME is found under the source directory, and the script stays relative to it") {
  t::TempDir tmp;
  t::write_text(tmp / "src/.azureml/train.runconfig", "script: sub/train.py\n");
  RunRequest req;
  req.source_dir = tmp / "src";
  fs::path used = apply_run_config(req, {"train", {}, ""});
  CHECK(used == tmp / "src/.azureml/train.runconfig");
  CHECK(req.script == "sub/train.py");  // relative to the source directory, not to the .azureml folder

  amlc::ErrorKind kind{};
  RunRequest missing;
  missing.source_dir = tmp / "src";
  std::string err = error_of([&] { apply_run_config(missing, {"nosuch", {}, ""}); }, &kind);
  CHECK(kind == amlc::ErrorKind::NotFound);
  CHECK(err.find((tmp / "src/.azureml/nosuch.runconfig").string()) != std::string::npos);
}

TEST_CASE("runconfig: apply: errors name file:line:col and the key, and leave the request as it was") {
  t::TempDir tmp;
  t::write_text(tmp / "rc.yml", "script: a.py\nsnapshot:\n  maxFiles: -1\n");
  RunRequest req;
  req.script = "before.py";
  amlc::ErrorKind kind{};
  std::string err = error_of([&] { apply_run_config(req, {(tmp / "rc.yml").string(), {"b.py"}, ""}); }, &kind);
  CHECK(kind == amlc::ErrorKind::Usage);
  CHECK(err.find("rc.yml:3:13") != std::string::npos);
  CHECK(err.find("snapshot.maxFiles") != std::string::npos);
  CHECK(req.script == "before.py");

  t::write_text(tmp / "typo.yml", "scrpit: a.py\n");
  err = error_of([&] { apply_run_config(req, {(tmp / "typo.yml").string(), {}, ""}); });
  CHECK(err.find("typo.yml:1:1") != std::string::npos);
  CHECK(err.find("did you mean 'script'") != std::string::npos);
}

TEST_CASE("runconfig: apply: an option after amlc's options but before SCRIPT is a usage error") {
  RunRequest req;
  amlc::ErrorKind kind{};
  std::string err = error_of([&] { apply_run_config(req, {"", {"--lr", "0.1"}, ""}); }, &kind);
  CHECK(kind == amlc::ErrorKind::Usage);
  CHECK(err.find("unknown option '--lr' before the script") != std::string::npos);
  CHECK(req.script.empty());
  CHECK(error_of([] { check_script_arguments({"train.py", "--lr", "0.1"}); }) == "");
}
