// The one parse-and-validate step of model deploy, service update and model package: the inference and deployment
// configurations (a file, else a stored record's, else the defaults; then the flags), the health-wait timeout and
// the models, all checked before anything is written or the engine is asked. (service reload has no plan: it
// starts the stored record again as it is, with its image.)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/deploy/config.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::deploy {

struct PlanRequest {
  std::vector<std::string> model_ids;  // "name:version", "name@alias", "name:latest"; empty: the stored record's
  std::optional<fs::path> inference_config_file;
  InferenceFlags inference_flags;
  std::optional<fs::path> deploy_config_file;
  DeployFlags deploy_flags;
  std::optional<double> timeout_seconds;  // the health wait (deploy, update): must be positive
  fs::path cwd = fs::current_path();      // flag paths are relative to it
};

struct DeployPlan {
  InferenceConfig ic;  // validated: the entry script and every file it names exist
  DeployConfig dc;
  std::vector<std::string> model_ids;
  std::vector<nlohmann::json> model_records;  // resolved (read-only; deploys claim them again under ws.lock())
};

// Errors: Usage (a config error names file:line:col and the key; a flag names itself), NotFound (a model).
// `stored`: the service record whose inferenceConfig, deploymentConfig and models are the base where no file and no
// model id is given (service update); null for model deploy and package (the defaults).
DeployPlan plan_deployment(const Workspace& ws, const PlanRequest& req, const nlohmann::json& stored, Notes& notes);

}  // namespace amlc::deploy
