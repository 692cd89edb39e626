// Models for deployments: resolve "name:version" ids through the registry and materialize each model
// version once under <ws>/cache/models/<name>/<version>/ (hard links to the blobs, or copies), staged then
// renamed into place, so containers can bind-mount it read-only.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/workspace/workspace.hpp"

namespace amlc::deploy {

struct ResolvedModel {
  std::string name;
  int version = 0;
  fs::path dir;  // the materialized folder
};

// Resolves ids to model records (read-only; NotFound for an unknown model or alias); Usage error on a duplicate
// model name (az ml allows one version per name). Deploys call it under ws.lock() to claim the models.
std::vector<nlohmann::json> resolve_model_records(const Workspace& ws, const std::vector<std::string>& model_ids);
// Materializes resolved records.
std::vector<ResolvedModel> materialize_models(const Workspace& ws, const std::vector<nlohmann::json>& records);
// Both of the above.
std::vector<ResolvedModel> resolve_models(const Workspace& ws, const std::vector<std::string>& model_ids);
// Materializes one model record ({"name","version","files":[{path,sha256,size,mode}]}); returns its folder.
fs::path materialize_model(const Workspace& ws, const nlohmann::json& record);
// <ws>/cache/models/<name>/<version>: a model version's files, hard-linked from the blob store for read-only mounts.
fs::path model_cache_root(const Workspace& ws);
fs::path model_cache_dir(const Workspace& ws, const std::string& name, int version);

}  // namespace amlc::deploy
