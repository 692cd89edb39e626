// Registering a run's file as a model (az ml model register --run-id --asset-path, and sweep best --register-model):
// the file is named by its path inside the run's folder, and may not lead out of it.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "amlc/registry/registry.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::runs {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The file or folder `asset_path` (e.g. outputs/model.pkl) of run `run_id`, every symlink resolved. Usage error if
// the path is empty, absolute or leads out of the run's folder (by ".." or through a symlink the run's script made);
// NotFound if the run or the file does not exist.
fs::path run_asset(const Workspace& ws, const std::string& run_id, const std::string& asset_path);

// Registers run `run_id`'s `asset_path` as model req.name, recording the run, its experiment and the asset path on
// the model (req.path, run_id, experiment_name and asset_path are filled here). `experiment`, if not empty, must be
// the run's experiment (Usage error otherwise).
json register_from_run(const Workspace& ws, registry::RegisterRequest req, const std::string& run_id,
                       const std::string& asset_path, const std::string& experiment = {});

}  // namespace amlc::runs
