// What the files behind deploy.hpp share (deploy.cpp, container.cpp, image_build.cpp, service_ops.cpp): the image
// build, a service's containers and requests to a running service. Not for use outside lib/amlc/deploy.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "amlc/deploy/deploy.hpp"
#include "amlc/deploy/image_plan.hpp"
#include "amlc/deploy/models.hpp"
#include "amlc/docker/client.hpp"
#include "amlc/net/http.hpp"

namespace amlc::deploy {

// The scoring server's AMLC_ALLOWED_PEERS: loopback and the container's default gateway only.
inline constexpr const char* kAllowedPeers = "gateway";

inline void say(const Progress& p, const std::string& s) {
  if (p) p(s);
}

// [{name, version}] of the models, as records list them.
json models_json(const std::vector<ResolvedModel>& models);

// image_build.cpp. Ensures the image of `ic` exists (building it if its tag is new). Returns the plan; sets *built.
ImagePlan ensure_image(docker::Client& dc, const InferenceConfig& ic, bool* built, const Progress& progress,
                       const PlanOptions& options = {});

// container.cpp. Removes the service's containers; returns whether there were any. *removing turns true as soon as
// one is about to be removed.
bool remove_containers(docker::Client& dc, const Workspace& ws, const std::string& service, bool* removing = nullptr);
// A request to a service on 127.0.0.1 (or its bridge address): `timeout` for all of it, at most 2 s of it to connect.
net::Request service_request(const std::string& method, const std::string& url, std::chrono::milliseconds timeout);
// Whether GET `url` answers 200 within `timeout` (health probes).
bool answers_ok(const std::string& url, std::chrono::milliseconds timeout);

// What a deploy, update or reload wants running.
struct Desired {
  std::string service;
  std::vector<ResolvedModel> models;
  InferenceConfig ic;
  DeployConfig dc;
};

// How far a rollout got, for what its failure leaves behind.
struct RolloutStage {
  bool old_removed = false;  // the service's previous container was (being) removed: the previous record is void
  bool created = false;      // the new container exists: the rollout recorded the outcome itself
};

// container.cpp. The image (built if new, or `reuse_image` as it is), the host port, then the service's old
// containers out and the new one in, health wait, record written (Healthy; or Failed/Unhealthy once the new
// container exists). `stage` says how far it got.
json rollout(const Workspace& ws, docker::Client& dc, const Desired& d, const json& previous, double timeout_seconds,
             const Progress& progress, RolloutStage& stage, const std::optional<std::string>& reuse_image = std::nullopt);

}  // namespace amlc::deploy
