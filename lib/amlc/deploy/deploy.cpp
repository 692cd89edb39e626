// model deploy, service update and service reload: plan, claim the models (the record Transitioning under the
// workspace lock), then the rollout (container.cpp); a failure before the new container exists puts back what the
// claim replaced.
#include "amlc/deploy/deploy.hpp"

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/util.hpp"
#include "amlc/deploy/internal.hpp"
#include "amlc/deploy/plan.hpp"
#include "amlc/deploy/services.hpp"

namespace amlc::deploy {

namespace {

// A deploy, update or reload claims its models before anything slow: under ws.lock(), the same lock `model delete`
// checks the service records under, it resolves the model ids and writes the service record as Transitioning with
// them (a new service lists them as its models; an existing one keeps its models, still served by its container,
// and lists the new ones as pendingModels), so a model being deployed cannot be deleted. If the command fails
// before its container exists, restore() puts back exactly what was there (the previous record and keys, or none).
// If amlc is killed meanwhile, the Transitioning record stays: `service show` reports it, `service delete` removes it.
struct Claim {
  std::string service;
  json previous;  // the record before (null: a new service)
  std::optional<ServiceKeys> previous_keys;
  std::vector<json> model_records;
};

Claim claim_service(const Workspace& ws, const std::string& service, const std::vector<std::string>& model_ids,
                    bool auth_enabled, const std::function<void(const json& previous)>& check_previous) {
  Claim c;
  c.service = service;
  FileLock guard = ws.lock();
  c.previous = read_service(ws, service).value_or(json(nullptr));
  if (check_previous) check_previous(c.previous);
  c.model_records = resolve_model_records(ws, model_ids);
  c.previous_keys = read_keys(ws, service);
  json models = json::array();
  for (const auto& m : c.model_records) models.push_back({{"name", m.at("name")}, {"version", m.at("version")}});
  const std::string now = now_iso8601();
  json rec;
  if (c.previous.is_object()) {
    rec = c.previous;
    rec["pendingModels"] = models;
  } else {
    rec = {{"name", service}, {"computeType", "local"}, {"scoringUri", ""}, {"swaggerUri", ""}, {"port", 0},
           {"portAssigned", ""}, {"models", models}, {"imageTag", ""}, {"imageHash", ""}, {"imageBuilt", false},
           {"containerName", container_name(ws, service)}, {"containerId", nullptr}, {"authEnabled", auth_enabled},
           {"createdTime", now}, {"workspaceId", service_workspace_id(ws)}};
  }
  rec["state"] = "Transitioning";
  rec["error"] = nullptr;
  rec["updatedTime"] = now;
  write_service(ws, rec);
  return c;
}

// Removes `path` if it exists (and makes that durable); an error if it cannot.
void remove_file_or_fail(const fs::path& path) {
  std::error_code ec;
  if (fs::remove(path, ec)) fsync_path(path.parent_path());
  if (ec) fail(ErrorKind::General, "cannot remove " + path.string() + ": " + ec.message());
}

// Puts back what the claim replaced: the previous record (none for a new service), or `record` instead when given,
// and the previous keys.
void restore(const Workspace& ws, const Claim& c, const json* record = nullptr) {
  FileLock guard = ws.lock();
  if (record) {
    write_service(ws, *record);
  } else if (c.previous.is_object()) {
    write_service(ws, c.previous);
  } else {
    remove_file_or_fail(service_record_path(ws, c.service));
  }
  if (c.previous_keys) {
    auto now = read_keys(ws, c.service);
    if (!now || now->primary != c.previous_keys->primary || now->secondary != c.previous_keys->secondary)
      write_keys(ws, c.service, *c.previous_keys);
  } else {
    remove_file_or_fail(service_keys_path(ws, c.service));
  }
}

// The previous record once its container is gone: Failed with `error`, no container; its models and configuration
// stay (`service reload` starts that version again) and the models this command was deploying are released.
json failed_previous(const Claim& c, const std::string& error) {
  json rec = c.previous;
  rec["state"] = "Failed";
  rec["error"] = error;
  rec["containerId"] = nullptr;
  rec["updatedTime"] = now_iso8601();
  rec.erase("pendingModels");
  return rec;
}

// The text of the exception being handled (call from a catch block).
std::string current_error_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

// Rethrows the exception being handled (call from a catch block) with `more` added to its message and `hint` to
// its hint; its kind (hence the exit code) is kept.
[[noreturn]] void rethrow_with(const std::string& more, const std::string& hint) {
  auto join = [](const std::string& a, const std::string& b) { return a.empty() ? b : b.empty() ? a : a + "; " + b; };
  try {
    throw;
  } catch (const Error& e) {
    throw Error(e.kind(), e.what() + more, join(e.hint(), hint), e.detail());
  } catch (const std::exception& e) {
    throw Error(ErrorKind::General, e.what() + more, hint);
  } catch (...) {
    throw Error(ErrorKind::General, "unknown error" + more, hint);
  }
}

// Materializes the claimed models and rolls out. A failure before the new container exists puts back the claim;
// once the previous container was removed, the service is recorded as Failed with the error instead (the previous
// record would describe a container that no longer exists).
json rollout_claimed(const Workspace& ws, docker::Client& dc, const Claim& claim, InferenceConfig ic, DeployConfig dcfg,
                     double timeout_seconds, const Progress& progress,
                     const std::optional<std::string>& reuse_image = std::nullopt) {
  RolloutStage stage;
  try {
    Desired d{claim.service, materialize_models(ws, claim.model_records), std::move(ic), std::move(dcfg)};
    return rollout(ws, dc, d, claim.previous, timeout_seconds, progress, stage, reuse_image);
  } catch (...) {
    if (stage.created) throw;  // run_container recorded the outcome
    const bool gone = stage.old_removed && claim.previous.is_object();
    std::string restore_error;
    try {
      if (gone) {
        const json failed = failed_previous(claim, current_error_text());
        restore(ws, claim, &failed);
      } else {
        restore(ws, claim);
      }
    } catch (const std::exception& e) {
      restore_error = e.what();
    }
    // The record stays Transitioning: the error says why, after the original one.
    if (!restore_error.empty())
      rethrow_with("; the previous record of service '" + claim.service + "' could not be put back: " + restore_error,
                   "service '" + claim.service + "' stays Transitioning ('amlc service show -n " + claim.service +
                       "'): deploy it again with --overwrite, or 'amlc service delete -n " + claim.service + "'");
    if (gone)
      rethrow_with("", "service '" + claim.service + "' is now Failed: its previous container was already removed; 'amlc "
                       "service reload -n " + claim.service + "' starts the previous version again");
    throw;
  }
}

// What DeployRequest and UpdateRequest ask of the plan.
template <class Request>
PlanRequest plan_request(const Request& req) {
  return {.model_ids = req.model_ids,
          .inference_config_file = req.inference_config_file,
          .inference_flags = req.inference_flags,
          .deploy_config_file = req.deploy_config_file,
          .deploy_flags = req.deploy_flags,
          .timeout_seconds = req.timeout_seconds,
          .cwd = req.cwd};
}

}  // namespace

std::string how_to_call(const json& rec) {
  const std::string name = rec.value("name", "");
  const std::string uri = rec.value("scoringUri", "");
  if (rec.value("authEnabled", false))
    return "service '" + name + "' requires a key: POST " + uri + " with 'Authorization: Bearer KEY' (the keys: 'amlc service get-keys -n " +
           name + "'); 'amlc service run -n " + name + " -d @request.json' sends it for you";
  return "service '" + name + "' answers anyone on this machine at " + uri +
         " without a key; deploy with --auth-enabled to require one";
}

json deploy(const Workspace& ws, const DeployRequest& req, Notes& notes, const Progress& progress) {
  validate_service_name(req.service);
  // Everything parsed and validated before anything is touched (unknown model: exit 3 even without Docker).
  DeployPlan plan = plan_deployment(ws, plan_request(req), nullptr, notes);
  // `locked`: we hold the service lock, so a Transitioning record is the trace of a deploy that was killed.
  auto check_conflict = [&](const json& previous, bool locked) {
    if (!previous.is_object() || req.overwrite) return;
    const std::string state = previous.value("state", "?");
    if (state == "Failed") return;
    if (state == "Transitioning" && !locked && service_busy(ws, req.service))
      conflict("service '" + req.service + "' is being deployed or updated by another amlc command",
               "wait for it to finish, then see 'amlc service show -n " + req.service + "'");
    conflict("service '" + req.service + "' already exists (state " + state + ")",
             state == "Transitioning"
                 ? "an earlier deploy did not finish: pass --overwrite to replace it, or 'amlc service delete -n " + req.service + "'"
                 : "pass --overwrite to replace it, or 'amlc service update -n " + req.service + "'");
  };
  // A fast check before the engine is asked; nothing is written yet.
  check_conflict(read_service(ws, req.service).value_or(json(nullptr)), false);
  docker::Client dc;
  dc.ping();
  FileLock slock = service_lock(ws, req.service);
  Claim claim = claim_service(ws, req.service, plan.model_ids, plan.dc.auth_enabled,
                              [&](const json& previous) { check_conflict(previous, true); });
  return public_view(
      rollout_claimed(ws, dc, claim, std::move(plan.ic), std::move(plan.dc), req.timeout_seconds, progress));
}

json update(const Workspace& ws, const UpdateRequest& req, Notes& notes, const Progress& progress) {
  validate_service_name(req.service);
  FileLock slock = service_lock(ws, req.service);
  json previous = require_service(ws, req.service);
  DeployPlan plan = plan_deployment(ws, plan_request(req), previous, notes);
  docker::Client dc;
  dc.ping();
  Claim claim = claim_service(ws, req.service, plan.model_ids, plan.dc.auth_enabled, {});
  return public_view(
      rollout_claimed(ws, dc, claim, std::move(plan.ic), std::move(plan.dc), req.timeout_seconds, progress));
}

json reload(const Workspace& ws, const std::string& service, double timeout_seconds, const Progress& progress) {
  validate_service_name(service);
  FileLock slock = service_lock(ws, service);
  json previous = require_service(ws, service);
  InferenceConfig ic = InferenceConfig::from_json(previous.value("inferenceConfig", json::object()));
  DeployConfig dcfg = DeployConfig::from_json(previous.value("deploymentConfig", json::object()));
  docker::Client dc;
  dc.ping();
  Claim claim = claim_service(ws, service, model_ids_of(previous), dcfg.auth_enabled, {});
  return public_view(
      rollout_claimed(ws, dc, claim, std::move(ic), std::move(dcfg), timeout_seconds, progress, previous.value("imageTag", "")));
}

}  // namespace amlc::deploy
