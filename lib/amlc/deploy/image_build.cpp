// Building images: the image of an inference config, built only when its content-hash tag is new (ensure_image,
// for deploys and packages), and model package (the models baked in; or the Dockerfile and context on disk).
#include "amlc/core/error.hpp"
#include "amlc/deploy/internal.hpp"
#include "amlc/deploy/plan.hpp"

namespace amlc::deploy {

ImagePlan ensure_image(docker::Client& dc, const InferenceConfig& ic, bool* built, const Progress& progress,
                       const PlanOptions& options) {
  docker::ImageInfo base = dc.require_image(ic.base_image);
  ImagePlan plan = make_image_plan(ic, base.id, options);
  *built = false;
  if (dc.image_exists(plan.tag)) {
    say(progress, "image " + plan.tag + " is up to date (no build)");
    return plan;
  }
  say(progress, "building image " + plan.tag + " from " + ic.base_image);
  docker::BuildOptions bo;
  bo.tag = plan.tag;
  bo.labels = {{"amlc.managed", "true"}, {"amlc.image-hash", plan.hash}};
  bo.network_mode = "none";  // nothing can be downloaded here: fail fast instead of hanging
  bo.on_line = [&](std::string_view line) { say(progress, "  " + std::string(line)); };
  dc.build_image_from_memory(pack_context(plan), bo);
  *built = true;
  return plan;
}

json package(const Workspace& ws, const PackageRequest& req, Notes& notes, const Progress& progress) {
  if (!req.image_name.empty()) {
    static const std::string allowed = "abcdefghijklmnopqrstuvwxyz0123456789._-/:";
    if (req.image_name.find_first_not_of(allowed) != std::string::npos || req.image_name.front() == '-')
      usage_error("--image-name '" + req.image_name + "' is not a valid image reference",
                  "use lowercase letters, digits, '.', '_', '-', '/' and an optional ':tag'");
  }
  DeployPlan planned = plan_deployment(ws,
                                       {.model_ids = req.model_ids,
                                        .inference_config_file = req.inference_config_file,
                                        .inference_flags = req.inference_flags,
                                        .cwd = req.cwd},
                                       nullptr, notes);
  const InferenceConfig& ic = planned.ic;
  std::vector<ResolvedModel> models = materialize_models(ws, planned.model_records);
  PlanOptions po;
  po.repository = "amlc-pkg";
  po.bake_environment = true;
  for (const auto& m : models) po.baked_models.push_back({m.name, m.version, m.dir});
  json out;
  out["models"] = models_json(models);
  if (req.output_path) {
    ImagePlan plan = make_image_plan(ic, "", po);
    fs::path dir = fs::absolute(*req.output_path);
    write_context_dir(plan, dir);
    out["outputPath"] = dir.string();
    out["dockerfile"] = (dir / "Dockerfile").string();
    out["contextFiles"] = plan.files.size();
    out["buildCommand"] = "docker build -t NAME " + dir.string();
    return out;
  }
  docker::Client dc;
  dc.ping();
  bool built = false;
  ImagePlan plan = ensure_image(dc, ic, &built, progress, po);
  std::string name = plan.tag;
  if (!req.image_name.empty()) {
    name = req.image_name;
    if (name.find(':', name.rfind('/') == std::string::npos ? 0 : name.rfind('/')) == std::string::npos) name += ":latest";
    size_t colon = name.rfind(':');
    dc.call_json("POST", "/images/" + docker::encode_ref(plan.tag) + "/tag?repo=" +
                             docker::url_encode(name.substr(0, colon)) + "&tag=" + docker::url_encode(name.substr(colon + 1)));
  }
  docker::ImageInfo info = dc.require_image(name);
  out["imageName"] = name;
  out["imageTag"] = plan.tag;
  out["imageId"] = info.id;
  out["imageHash"] = plan.hash;
  out["imageBuilt"] = built;
  // As amlc runs its services: published on 127.0.0.1 only, the bridge address closed to other peers. (Not baked
  // into the image: elsewhere, e.g. behind a load balancer, the peers are others.)
  out["runCommand"] = "docker run --rm -p 127.0.0.1:8890:" + std::to_string(kContainerPort) +
                      " -e AMLC_ALLOWED_PEERS=" + kAllowedPeers + " " + name;
  return out;
}

}  // namespace amlc::deploy
