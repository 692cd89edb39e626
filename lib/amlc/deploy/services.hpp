// Service records: <ws>/services/<name>.json (written atomically under ws.lock()) and the service's keys in
// <ws>/services/<name>.keys.json (mode 0600; {"primaryKey", "secondaryKey"}; mounted read-only into the
// container when auth is on).
//
// A record: name, computeType "local", state (Transitioning | Healthy | Unhealthy | Failed), scoringUri,
// swaggerUri, port, models [{name, version}], pendingModels (while an update of an existing service is
// Transitioning: the models it is moving to), imageTag, imageHash, imageId, imageBuilt (by the last deploy),
// containerName, containerId, authEnabled, createdTime, updatedTime, inferenceConfig, deploymentConfig, error
// (Failed/Unhealthy), workspaceId.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/core/fs.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::deploy {

using json = nlohmann::json;

fs::path services_dir(const Workspace& ws);
fs::path service_record_path(const Workspace& ws, const std::string& name);
fs::path service_keys_path(const Workspace& ws, const std::string& name);

std::optional<json> read_service(const Workspace& ws, const std::string& name);
json require_service(const Workspace& ws, const std::string& name);  // NotFound with a hint
void write_service(const Workspace& ws, const json& record);         // caller holds ws.lock()
std::vector<json> list_service_records(const Workspace& ws);         // sorted by name
void remove_service_files(const Workspace& ws, const std::string& name);

struct ServiceKeys {
  std::string primary;
  std::string secondary;
};
std::optional<ServiceKeys> read_keys(const Workspace& ws, const std::string& name);
void write_keys(const Workspace& ws, const std::string& name, const ServiceKeys& keys);
std::string new_key();  // 32 random hex characters (amlc::random_hex: getrandom), independent of any other key

// Names of service records referencing model `name` version `version` in models or pendingModels (for
// `model delete`, which calls it under ws.lock(): deploys claim their models under the same lock).
std::vector<std::string> services_using_model(const Workspace& ws, const std::string& name, int version);

// `workspace check`: every record parses, has the required keys, names match files, keys files are 0600.
void check_services(const Workspace& ws, std::vector<std::string>& problems, json& stats);

// A record as the commands show it: without the stored inference and deployment configs.
json public_view(json record);
// "name:version" of each of the record's models.
std::vector<std::string> model_ids_of(const json& record);

// The workspace as services name it (workspaceId, the amlc.workspace container label): its id, else its root.
std::string service_workspace_id(const Workspace& ws);

// Serialises operations on one service: deploy, update, reload, regen-key and delete take it exclusively (they can
// take minutes: the workspace lock is held only for writes). The lock file is cache/locks/service-<name>.lock.
FileLock service_lock(const Workspace& ws, const std::string& name);
// Whether some amlc process holds the service's lock right now. A record left Transitioning while nobody holds it
// is the trace of a deploy that was killed. Probed by service show/list and by a deploy's pre-check, concurrently.
bool service_busy(const Workspace& ws, const std::string& name);

// The container name of a service: amlc-<service>-<first 8 of the workspace id> (service names are only
// unique within a workspace; the engine is shared).
std::string container_name(const Workspace& ws, const std::string& service);

}  // namespace amlc::deploy
