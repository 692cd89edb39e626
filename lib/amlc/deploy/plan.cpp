// plan_deployment: configs from a file, a stored record or the defaults, flags on top, then validation, the
// timeout and the models - in that order, so that a bad input is named before any state is looked at.
#include "amlc/deploy/plan.hpp"

#include "amlc/core/error.hpp"
#include "amlc/deploy/models.hpp"
#include "amlc/deploy/services.hpp"

namespace amlc::deploy {

DeployPlan plan_deployment(const Workspace& ws, const PlanRequest& req, const json& stored, Notes& notes) {
  const bool has_stored = stored.is_object();
  DeployPlan p;
  if (req.inference_config_file) p.ic = load_inference_config(*req.inference_config_file, notes);
  else if (has_stored) p.ic = InferenceConfig::from_json(stored.value("inferenceConfig", json::object()));
  p.ic = apply_inference_flags(std::move(p.ic), req.inference_flags, req.cwd,
                               req.inference_config_file.has_value() || has_stored);
  validate_inference_config(p.ic);
  if (req.deploy_config_file) p.dc = load_deploy_config(*req.deploy_config_file, notes);
  else if (has_stored) p.dc = DeployConfig::from_json(stored.value("deploymentConfig", json::object()));
  p.dc = apply_deploy_flags(std::move(p.dc), req.deploy_flags);
  if (req.timeout_seconds && !(*req.timeout_seconds > 0)) usage_error("--timeout: expected a positive number of seconds");
  p.model_ids = req.model_ids.empty() && has_stored ? model_ids_of(stored) : req.model_ids;
  p.model_records = resolve_model_records(ws, p.model_ids);
  return p;
}

}  // namespace amlc::deploy
