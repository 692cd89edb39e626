// Inference and deployment configurations (az ml --ic / --dc, JSON or YAML) for local deployments.
//
// Paths inside an --ic file (sourceDirectory, entryScript, condaFile, extraDockerfileSteps) resolve
// against the folder holding the file; entryScript, condaFile and extraDockerfileSteps are relative to
// sourceDirectory when it is set (az ml's rule). Paths given as flags resolve against the current
// directory. Flags win over file values.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlc::deploy {

namespace fs = std::filesystem;
using json = nlohmann::json;

inline constexpr const char* kDefaultBaseImage = "amlc/python:3-bookworm";
inline constexpr int kContainerPort = 5001;
inline constexpr const char* kAppRoot = "/var/azureml-app";

// Warnings for people (cloud-only keys ignored, GPU requested, ...): the CLI prints them on stderr.
using Notes = std::vector<std::string>;

struct CondaSpec {
  std::vector<std::string> conda;  // conda packages ("python=3.11", "numpy")
  std::vector<std::string> pip;    // pip packages
  std::vector<std::string> channels;
};

struct InferenceConfig {
  std::optional<fs::path> source_directory;        // absolute
  std::string entry_script;                        // relative to source_directory (or a bare file name)
  fs::path entry_script_path;                      // absolute path of the script on the host
  std::optional<fs::path> conda_file;              // absolute
  std::optional<fs::path> extra_dockerfile_steps;  // absolute
  std::string runtime = "python";
  std::string base_image = kDefaultBaseImage;
  std::string description;
  std::string environment_name;
  std::string environment_version;
  json conda_dependencies;  // inline environment.python.condaDependencies (object) or null
  bool user_managed_dependencies = false;
  std::map<std::string, std::string> environment_variables;
  std::string inferencing_stack_version;

  CondaSpec packages() const;  // from conda_file or conda_dependencies (validated at load)
  json to_json() const;        // the resolved config, as stored in the service record
  static InferenceConfig from_json(const json& j);
};

// Bounds of the numeric deployment settings (file keys and flags alike).
inline constexpr long long kMaxScoringTimeoutMs = 24LL * 3600 * 1000;  // a day
inline constexpr int kMaxWorkerCount = 64;
inline constexpr double kMaxCpuCores = 1024;
inline constexpr double kMaxMemoryGb = 1024.0 * 1024.0;  // 1 PiB: far above any machine, far below int64 bytes

struct DeployConfig {
  std::optional<int> port;  // host port on 127.0.0.1; nullopt = a free one
  // Key auth. Off unless set, except for an az AKS deployment config (computeType: AKS), where az turns it on.
  bool auth_enabled = false;
  bool auth_set = false;  // authEnabled was given (a file, a flag or a stored config): no compute-type default
  std::optional<double> cpu_cores;  // -> NanoCpus
  std::optional<double> memory_gb;  // -> Memory
  std::optional<long long> scoring_timeout_ms;
  std::optional<int> worker_count;
  std::map<std::string, std::string> environment_variables;
  std::optional<std::string> primary_key;
  std::optional<std::string> secondary_key;

  json to_json() const;
  static DeployConfig from_json(const json& j);
};

// Values given as command-line flags (each overrides the file value when set).
struct InferenceFlags {
  std::optional<std::string> entry_script;
  std::optional<std::string> source_directory;
  std::optional<std::string> conda_file;
  std::optional<std::string> base_image;
  std::optional<std::string> runtime;
  std::optional<std::string> extra_docker_file_steps;
  bool any() const {
    return entry_script || source_directory || conda_file || base_image || runtime || extra_docker_file_steps;
  }
};

struct DeployFlags {
  std::optional<int> port;
  std::optional<bool> auth_enabled;
  std::optional<long long> scoring_timeout_ms;
  std::optional<int> worker_count;
  std::optional<double> cpu_cores;
  std::optional<double> memory_gb;
  std::optional<std::string> compute_type;
  bool any() const {
    return port || auth_enabled || scoring_timeout_ms || worker_count || cpu_cores || memory_gb || compute_type;
  }
};

// Reads an --ic file (JSON or YAML). Errors: file:line:col + key + what was expected.
InferenceConfig load_inference_config(const fs::path& file, Notes& notes);
InferenceConfig parse_inference_config(const std::string& text, const std::string& source_name,
                                       const fs::path& base_dir, Notes& notes);
// Reads a --dc file. computeType: local, or an az ACI / AKS config (deployed locally all the same: their cloud-only
// keys are ignored with a note; AKS turns authEnabled on unless the file says otherwise, as az does).
DeployConfig load_deploy_config(const fs::path& file, Notes& notes);
DeployConfig parse_deploy_config(const std::string& text, const std::string& source_name, Notes& notes);

// Applies flags (paths relative to `cwd`) and validates the result (entry script exists, ...).
// `base` is the starting point (a loaded file, a stored config, or default-constructed).
InferenceConfig apply_inference_flags(InferenceConfig base, const InferenceFlags& flags, const fs::path& cwd,
                                      bool had_file);
DeployConfig apply_deploy_flags(DeployConfig base, const DeployFlags& flags);
// Checks everything that must hold before building: entry script present, files readable.
void validate_inference_config(const InferenceConfig& ic);

// az ml's service name rule: ^[a-z]([-a-z0-9]*[a-z0-9])?$, 3 to 32 characters.
void validate_service_name(const std::string& name);
bool is_service_name(const std::string& name);

// A service key given by the user (deployment config keys, regen-key --set-key): 8 to 256 printable ASCII characters
// without spaces or quotes (it travels in an HTTP header). Generated keys are 32 random hex characters.
bool is_valid_service_key(const std::string& key);
inline constexpr const char* kServiceKeyRule = "8 to 256 printable ASCII characters without spaces or quotes";

// Conda environment YAML (name, channels, dependencies [str | {pip: [str]}]).
CondaSpec load_conda_file(const fs::path& file);

}  // namespace amlc::deploy
