#include "amlc/runs/register.hpp"

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/runs/store.hpp"

namespace amlc::runs {

fs::path run_asset(const Workspace& ws, const std::string& run_id, const std::string& asset_path) {
  fs::path dir = run_dir(ws, run_id);
  if (asset_path.empty()) usage_error("--asset-path is empty", "e.g. --asset-path outputs/model.pkl");
  auto file = resolve_inside(dir, asset_path);
  if (!file) {
    usage_error("--asset-path '" + asset_path + "' leaves the run's folder",
                "give a path inside the run, e.g. outputs/model.pkl; a symlink may not lead out of it");
  }
  if (describe_file_type(*file) == "missing") {
    not_found("run '" + run_id + "' has no file '" + asset_path + "'",
              "see its outputs with 'amlc run download -r " + run_id + " -d DIR'");
  }
  return *file;
}

json register_from_run(const Workspace& ws, registry::RegisterRequest req, const std::string& run_id,
                       const std::string& asset_path, const std::string& experiment) {
  json run = load_run(ws, run_id);
  std::string run_experiment = run.value("experimentName", "");
  if (!experiment.empty() && experiment != run_experiment) {
    usage_error("run '" + run_id + "' belongs to experiment '" + run_experiment + "', not '" + experiment + "'");
  }
  req.path = run_asset(ws, run_id, asset_path);
  req.run_id = run_id;
  req.experiment_name = run_experiment;
  req.asset_path = fs::path(asset_path).lexically_normal().generic_string();
  return registry::register_model(ws, req);
}

}  // namespace amlc::runs
