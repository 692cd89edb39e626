// Run configuration files (-c): az ml's .runconfig shape (YAML or JSON) plus amlc keys.
//
//   script: train.py                      # az: the script (a positional SCRIPT overrides it)
//   arguments: [--lr, 0.1]                # az: its arguments (positional ARGS override them)
//   target: local                         # az: local | docker
//   maxRunDurationSeconds: 3600           # az: then the run is canceled (status Failed, "timed out")
//   environment:
//     environmentVariables: {SEED: "1"}   # az
//     python: {interpreterPath: python3}  # az
//     docker: {enabled: true, baseImage: amlc/python:3-bookworm}   # az (enabled: true means target docker)
//   command: [bash, run.sh]               # amlc: any program (list), or a string run by /bin/sh -c
//   metrics: {regex: '...', fromStdout: true}   # amlc: stdout metrics pattern (named groups name/value)
//   snapshot: {maxFiles: 5000, maxSizeMB: 1000}  # amlc: snapshot limits
//   cancelGracePeriodSeconds: 10          # amlc: SIGTERM -> SIGKILL delay on cancel
// Other az runconfig keys (framework, communicator, history, docker, nodeCount, data, ...) are accepted and
// ignored; unknown keys are errors with a "did you mean".
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "amlc/config/document.hpp"
#include "amlc/runs/executor.hpp"

namespace amlc::runs {

namespace fs = std::filesystem;

struct RunConfig {
  std::string source;  // the file, for messages
  std::optional<std::string> script;
  std::optional<std::vector<std::string>> arguments;
  std::optional<std::string> target;
  std::optional<std::vector<std::string>> command;
  std::map<std::string, std::string> environment_variables;
  std::optional<std::string> interpreter;
  std::optional<std::string> base_image;
  std::optional<std::string> metrics_regex;
  std::string metrics_regex_where;  // file:line:col of metrics.regex
  bool metrics_from_stdout = true;
  std::optional<uint64_t> max_files;
  std::optional<uint64_t> max_mb;
  std::optional<double> grace_seconds;
  std::optional<double> max_duration_seconds;
};

RunConfig parse_run_config(const config::Document& doc);
RunConfig load_run_config(const fs::path& path);

// -c NAME: NAME as a path if it is a file, else <source dir>/.azureml/NAME.runconfig, ./.azureml/NAME.runconfig,
// then NAME.runconfig. NotFound naming the places looked at.
fs::path find_run_config(const std::string& name, const fs::path& source_dir);

// What the command line says about a run, on top of its run configuration.
struct RunFlags {
  std::string runconfig;                     // -c: a file, or NAME for .azureml/NAME.runconfig ("" = none)
  std::vector<std::string> script_and_args;  // SCRIPT [ARGS...] (empty = the file's script and arguments)
  std::string target;                        // --target ("" = the file's, else the request's)
};

// Usage error when SCRIPT looks like an option (`-x`): amlc's options go before SCRIPT.
void check_script_arguments(const std::vector<std::string>& script_and_args);

// Merges a run's settings onto `request` (whose source_dir is set): the run configuration named by
// flags.runconfig (found with find_run_config from request.source_dir; its script stays relative to the source
// directory), then the snapshot limits from AMLC_SNAPSHOT_MAX_FILES / AMLC_SNAPSHOT_MAX_MB, then the flags:
// flags win over the environment, the environment over the file. Errors in the file name its file:line:col and
// key. Returns the run configuration file used ("" = none).
fs::path apply_run_config(RunRequest& request, const RunFlags& flags);

}  // namespace amlc::runs
