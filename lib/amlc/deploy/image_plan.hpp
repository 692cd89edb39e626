// Image plan: the generated Dockerfile and build context for a scoring image, and its content-hash tag.
//
// Layers, from the least to the most often changed:
//   FROM <base image>
//   dependency spec files (conda YAML) + extraDockerfileSteps   (amlc installs no packages: the base image
//                                                                 must provide them; they are recorded)
//   the scoring server and azureml shims (amlc's embedded Python assets) -> /amlc/python
//   the code: the source directory (or the entry script alone)           -> /var/azureml-app
//   (model package only) the models                                      -> /var/azureml-app/azureml-models
// Models are NOT part of a service image: they are bind-mounted, so a new model version needs no build.
//
// The tag is amlc-img:<first 16 hex of sha256(context tar, base image id)>; the context tar is
// deterministic (sorted entries, zero times and owners, normalised modes), so equal inputs give equal tags.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/deploy/config.hpp"

namespace amlc::deploy {

struct ContextFile {
  std::string path;  // inside the context, '/'-separated
  std::string data;
  unsigned mode = 0644;
};

struct BakedModel {  // for model package: models copied into the image
  std::string name;
  int version = 0;
  fs::path dir;  // the materialized model folder
};

struct ImagePlan {
  std::string dockerfile;
  std::vector<ContextFile> files;  // sorted by path; includes the Dockerfile
  std::string base_image;
  std::string base_image_id;
  CondaSpec packages;
  std::string entry_script;  // relative to /var/azureml-app
  std::string hash;          // full sha256 hex
  std::string tag;           // "<repo>:<hash16>"
  json summary() const;      // for records and output (no file data)
};

struct PlanOptions {
  std::string repository = "amlc-img";  // tag repository
  std::vector<BakedModel> baked_models;  // model package
  bool bake_environment = false;         // environment variables as ENV (model package)
};

// Builds the plan: reads the source directory (skipping .git, __pycache__, *.pyc and .amlc) and the assets.
ImagePlan make_image_plan(const InferenceConfig& ic, const std::string& base_image_id, const PlanOptions& options = {});

// The Dockerfile text alone (exposed for tests).
std::string render_dockerfile(const InferenceConfig& ic, const CondaSpec& packages, bool has_deps,
                              const std::vector<BakedModel>& baked, bool bake_environment,
                              const std::string& extra_steps);

// The build context as an uncompressed, deterministic tar.
std::string pack_context(const ImagePlan& plan);
// Writes the Dockerfile and context files under `dir` (created; must be empty or absent).
void write_context_dir(const ImagePlan& plan, const fs::path& dir);

// AZUREML_MODEL_DIR with az semantics: one model -> its folder, several (or none) -> the models root.
struct ModelId {
  std::string name;
  int version = 0;
};
std::string model_dir_env(const std::vector<ModelId>& models);
std::string model_mount_path(const std::string& name, int version);

}  // namespace amlc::deploy
