// The model registry (az ml model ...): versioned models with tags, immutable properties, aliases,
// and contents stored once in the workspace's blob store.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/workspace/workspace.hpp"

namespace amlc::registry {

using json = nlohmann::json;

struct RegisterRequest {
  std::string name;
  fs::path path;  // file or folder
  std::map<std::string, std::string> tags;
  std::map<std::string, std::string> properties;
  std::string description;
  std::string framework;
  std::string framework_version;
  std::string run_id;           // set when registering from a run's outputs
  std::string experiment_name;  // idem
  std::string asset_path;       // idem (e.g. outputs/model.pkl)
};

struct ListFilter {
  std::string name;
  std::vector<std::string> tags;        // "k" or "k=v"
  std::vector<std::string> properties;  // "k" or "k=v"
  std::string run_id;
  bool latest = false;
};

struct UpdateRequest {
  std::map<std::string, std::string> add_tags;
  std::vector<std::string> remove_tags;
  std::map<std::string, std::string> add_properties;
  std::optional<std::string> description;
};

// A model record as stored in models/<name>/<version>.json and as printed (az ml's camelCase keys):
// id, name, version, description, createdTime, updatedTime, tags, properties, framework,
// frameworkVersion, runId, experimentName, assetPath, sourcePath, kind ("file"|"folder"),
// files [{path, sha256, size, mode}], size, fileCount.
json register_model(const Workspace& ws, const RegisterRequest& req);

// Resolves "NAME:VERSION", "NAME:latest", "NAME@ALIAS" or bare "NAME" (latest) to a model record.
json resolve(const Workspace& ws, const std::string& model_id);
// The model id ("modelId") in a metadata file written by `model register -t FILE` (az ml's
// --output-metadata-file / --model-metadata-file pair). Usage error naming the file if it is not such a file.
std::string model_id_from_metadata_file(const std::string& path);
json show(const Workspace& ws, const std::string& name, std::optional<int> version);
std::vector<json> list(const Workspace& ws, const ListFilter& filter);
json update(const Workspace& ws, const std::string& model_id, const UpdateRequest& req);
// Writes the model's files under `target_dir` (a file model: the file; a folder model: the folder's
// contents). Refuses to overwrite existing files unless `overwrite`. Returns {"files": [...], ...}.
json download(const Workspace& ws, const std::string& model_id, const fs::path& target_dir, bool overwrite);
// Called by remove() under ws.lock(), before anything changes, with the version about to go: throws (e.g. a
// Conflict naming the services that use it) to refuse the delete. storage::delete_model passes the one that knows
// every user of a model (storage::model_users); the registry itself knows none.
using BeforeRemove = std::function<void(const std::string& name, int version)>;
// Deletes one version's record (refused if `before_remove` throws) and the aliases pointing at it. Frees no
// storage: returns {"id", "deleted", "removedAliases", "blobs": [sha256...]}, the blobs it referred to, for
// storage::free_unreferenced (storage::delete_model does both). Version numbers are never given again: the name
// keeps a record of the last one given (models/<name>/model.json).
json remove(const Workspace& ws, const std::string& model_id, const BeforeRemove& before_remove);

// Every blob a model version refers to (for storage's one list of references).
void for_each_blob_ref(const Workspace& ws, const std::function<void(const std::string&)>& fn);
// "NAME@ALIAS" of aliases left pointing at a deleted version (an interrupted delete); every reader ignores them.
std::vector<std::string> dangling_aliases(const Workspace& ws);
void remove_dangling_aliases(const Workspace& ws);

json set_alias(const Workspace& ws, const std::string& name, const std::string& alias, int version);
json delete_alias(const Workspace& ws, const std::string& name, const std::string& alias);

// Parses "NAME:VERSION" etc. into name and a selector without touching disk.
struct ModelRef {
  std::string name;
  std::optional<int> version;  // nullopt = latest
  std::string alias;           // set for NAME@ALIAS
};
ModelRef parse_model_id(const std::string& model_id);

// For `workspace check`: verifies every manifest and the blobs it references; appends problems.
void check(const Workspace& ws, std::vector<std::string>& problems, json& stats);

}  // namespace amlc::registry
