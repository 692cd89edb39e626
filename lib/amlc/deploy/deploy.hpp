// Local deployments: registered models + inference config -> image (built only when its content hash is new)
// -> container amlc-<service> on Docker's default bridge, port 5001 published on 127.0.0.1:<port> -> health wait
// -> service record.
//
// Who reaches a service: 127.0.0.1:<port>, i.e. this machine. The container's bridge address (172.17.0.x:5001)
// answers only loopback and the container's default gateway, the host side of the bridge (Docker's port proxy and
// the host itself, which reaches 127.0.0.1 anyway): the scoring server closes every other peer's connection at
// accept (AMLC_ALLOWED_PEERS=gateway), so other containers and machines routing to the bridge get no answer,
// whatever dockerd's iptables setting. The user's code keeps its own network namespace. The same for a rootless
// engine (whose bridge is in its own namespace, out of the host's reach).
//
// States: Transitioning (from the moment the command claims the models until the container answers) -> Healthy,
// or Failed (the container exited: the log tail, usually the init() traceback, is in the error) / Unhealthy (no
// "Healthy" answer before the timeout). A failed rollout removes its container and records the service as Failed
// with the error, so `service show` explains it and `model deploy` (without --overwrite) may replace it. Failures
// before any container exists (bad config, engine down, missing base image, build error, port in use, Ctrl-C)
// leave the records exactly as they were, except once the service's previous container has been removed: then the
// previous record is kept as Failed with the error and no container (`service reload` starts it again).
//
// Code: plan.* (parse and validate), deploy.cpp (deploy, update, reload: claim and rollback), container.cpp (the
// container and its health wait), image_build.cpp (image builds, package), service_ops.cpp (delete, show, list, logs,
// score, keys); internal.hpp is what they share.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/deploy/config.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::deploy {

// Progress lines for people (stderr); may be empty.
using Progress = std::function<void(const std::string&)>;

struct DeployRequest {
  std::string service;
  std::vector<std::string> model_ids;  // "name:version", "name@alias", "name:latest"
  std::optional<fs::path> inference_config_file;
  std::optional<fs::path> deploy_config_file;
  InferenceFlags inference_flags;
  DeployFlags deploy_flags;
  bool overwrite = false;
  double timeout_seconds = 120;  // health wait
  fs::path cwd = fs::current_path();
};

// model deploy. Conflict (exit 4) if the service exists (and is not Failed) without `overwrite`.
json deploy(const Workspace& ws, const DeployRequest& req, Notes& notes, const Progress& progress = {});

// One line for people after a deploy or update: how to call the service (with its key when auth is on).
std::string how_to_call(const json& service_record);

struct UpdateRequest {
  std::string service;
  std::vector<std::string> model_ids;  // empty: keep the models
  std::optional<fs::path> inference_config_file;
  std::optional<fs::path> deploy_config_file;
  InferenceFlags inference_flags;
  DeployFlags deploy_flags;
  double timeout_seconds = 120;
  fs::path cwd = fs::current_path();
};
// service update: re-plans the image (rebuilds only if its hash changed) and recreates the container.
json update(const Workspace& ws, const UpdateRequest& req, Notes& notes, const Progress& progress = {});
// service reload: recreates the container from the recorded image (no build) with the recorded models/config.
json reload(const Workspace& ws, const std::string& service, double timeout_seconds, const Progress& progress = {});

// service delete: removes the container(s), keys and record; with delete_image also the image when no other
// service uses it. A service that does not exist is not an error: {"deleted": false}.
json remove(const Workspace& ws, const std::string& service, bool delete_image);

// service show / list: records reconciled with the engine (Missing: container gone; Stopped/Failed: container
// not running; Healthy/Unhealthy from a 1 s GET /).
json show(const Workspace& ws, const std::string& service);
// az ml service list's filters; empty fields match everything.
struct ServiceFilter {
  std::string model_name;    // serves some version of this model
  std::string model_id;      // serves NAME:VERSION
  std::string compute_type;  // "local" (the only kind amlc deploys; anything else matches nothing)
  std::string state;         // the reconciled state (Healthy, Unhealthy, Failed, Transitioning, Stopped, Missing;
                             // Unknown when no engine answers), case-insensitive
};
json list(const Workspace& ws, Notes& notes, const ServiceFilter& filter = {});

// service logs: streams the container's output to `sink`.
void logs(const Workspace& ws, const std::string& service, std::optional<int> tail, bool follow,
          const std::function<void(std::string_view)>& sink);

// service run -d @FILE: the largest request body read from a file.
inline constexpr size_t kMaxRequestBytes = 100u << 20;
// service run: the largest answer read back (a larger one is an error, not a cut one).
inline constexpr size_t kMaxAnswerBytes = size_t{1} << 30;

// service run: one scoring request (POST, application/json), with the primary key when auth is on. Returns the
// status and body.
struct ScoreResult {
  long status = 0;
  std::string body;
  std::string content_type;
};
ScoreResult score(const Workspace& ws, const std::string& service, const std::string& body, double timeout_seconds = 60);

// service get-keys / regen-key (the keys file is rewritten in place; the running server's workers re-read it every
// 0.2 s, and regen-key returns once all of them use the new key, without a restart). regen-key asks the engine
// first (exit 5 changes nothing) and puts the old keys back if the running service does not take the new one.
json get_keys(const Workspace& ws, const std::string& service);
json regen_key(const Workspace& ws, const std::string& service, const std::string& which,
               const std::optional<std::string>& value, double timeout_seconds, const Progress& progress = {});

struct PackageRequest {
  std::vector<std::string> model_ids;
  std::optional<fs::path> inference_config_file;
  InferenceFlags inference_flags;
  std::string image_name;            // "" = amlc-pkg:<hash16>
  std::optional<fs::path> output_path;  // write Dockerfile + context instead of building
  fs::path cwd = fs::current_path();
};
// model package: a self-contained image with the models baked in (or its Dockerfile + context on disk).
json package(const Workspace& ws, const PackageRequest& req, Notes& notes, const Progress& progress = {});

}  // namespace amlc::deploy
