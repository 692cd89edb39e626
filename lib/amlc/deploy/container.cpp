// Running a service's container: the container spec (models and keys mounted, the scoring server's environment,
// port 5001 published on 127.0.0.1), the host port, replacing the old container, the health wait, and the record
// written for the outcome (Healthy, or Failed/Unhealthy with the container's log tail).
#include <algorithm>
#include <cmath>
#include <thread>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/deploy/internal.hpp"
#include "amlc/deploy/services.hpp"
#include "amlc/net/ports.hpp"

namespace amlc::deploy {

net::Request service_request(const std::string& method, const std::string& url, std::chrono::milliseconds timeout) {
  net::Request r;
  r.method = method;
  r.url = url;
  r.timeout = timeout;
  r.connect_timeout = std::min(timeout, std::chrono::milliseconds(2000));
  return r;
}

bool answers_ok(const std::string& url, std::chrono::milliseconds timeout) {
  net::Response answer = net::perform(service_request("GET", url, timeout));
  return answer.answered() && answer.status == 200;
}

bool remove_containers(docker::Client& dc, const Workspace& ws, const std::string& service, bool* removing) {
  docker::RemoveOptions ro;
  ro.force = true;
  ro.missing_ok = true;
  bool removed = false;
  for (const auto& c :
       dc.list_containers({{"amlc.service", service}, {"amlc.workspace", service_workspace_id(ws)}}, true)) {
    if (removing) *removing = true;
    removed = dc.remove_container(c.id, ro) || removed;
  }
  return removed;
}

json models_json(const std::vector<ResolvedModel>& models) {
  json arr = json::array();
  for (const auto& m : models) arr.push_back({{"name", m.name}, {"version", m.version}});
  return arr;
}

namespace {

constexpr const char* kKeysMount = "/run/amlc/keys.json";

void save(const Workspace& ws, const json& record) {
  FileLock guard = ws.lock();
  write_service(ws, record);
}

std::string last_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines = split(text, '\n');
  while (!lines.empty() && trim(lines.back()).empty()) lines.pop_back();
  size_t start = lines.size() > n ? lines.size() - n : 0;
  std::string out;
  for (size_t i = start; i < lines.size(); ++i) out += "  | " + lines[i] + "\n";
  return out;
}

std::string log_tail(docker::Client& dc, const std::string& id, int n = 60) {
  try {
    docker::LogOptions lo;
    lo.tail = n;
    docker::Logs l = dc.container_logs(id, lo);
    return l.out + l.err;  // the scoring server writes its traceback to stderr
  } catch (const std::exception& e) {
    return std::string("(no logs: ") + e.what() + ")";
  }
}

std::string base_url(int port) { return "http://127.0.0.1:" + std::to_string(port); }

// Creates and starts the container, waits for health, writes the record. `created` turns true once the container
// exists: from then on a failure removes it and records the service as Failed (or Unhealthy) with the reason (the
// error carries the container's log tail); before that, the caller puts back what was there before.
json run_container(const Workspace& ws, docker::Client& dc, const Desired& d, const std::string& image_tag,
                   const std::string& image_hash, bool built, int port, bool port_auto, const json& previous,
                   double timeout_seconds, const Progress& progress, bool& created) {
  const std::string now = now_iso8601();
  json rec = json::object();
  rec["name"] = d.service;
  rec["computeType"] = "local";
  rec["state"] = "Transitioning";
  rec["scoringUri"] = base_url(port) + "/score";
  rec["swaggerUri"] = base_url(port) + "/swagger.json";
  rec["port"] = port;
  rec["portAssigned"] = port_auto ? "auto" : "fixed";
  rec["models"] = models_json(d.models);
  rec["imageTag"] = image_tag;
  rec["imageHash"] = image_hash;
  rec["imageBuilt"] = built;
  rec["containerName"] = container_name(ws, d.service);
  rec["containerId"] = nullptr;
  rec["authEnabled"] = d.dc.auth_enabled;
  rec["createdTime"] = previous.is_object() ? previous.value("createdTime", now) : now;
  rec["updatedTime"] = now;
  rec["workspaceId"] = service_workspace_id(ws);
  rec["inferenceConfig"] = d.ic.to_json();
  rec["deploymentConfig"] = d.dc.to_json();
  rec["error"] = nullptr;

  // Keys: kept across redeploys; keys from the deployment config win. Two independent random keys otherwise.
  if (d.dc.auth_enabled) {
    std::optional<ServiceKeys> kept = read_keys(ws, d.service);
    ServiceKeys keys;
    keys.primary = d.dc.primary_key ? *d.dc.primary_key : kept ? kept->primary : new_key();
    keys.secondary = d.dc.secondary_key ? *d.dc.secondary_key : kept ? kept->secondary : new_key();
    FileLock guard = ws.lock();
    write_keys(ws, d.service, keys);
  }

  docker::ContainerSpec spec;
  spec.name = container_name(ws, d.service);
  spec.image = image_tag;
  spec.labels = {{"amlc.managed", "true"}, {"amlc.service", d.service}, {"amlc.workspace", service_workspace_id(ws)},
                 {"amlc.image-hash", image_hash}};
  std::vector<ModelId> ids;
  for (const auto& m : d.models) {
    ids.push_back({m.name, m.version});
    spec.mounts.push_back({m.dir.string(), model_mount_path(m.name, m.version), true, "bind"});
  }
  for (const auto& [k, v] : d.ic.environment_variables) spec.env[k] = v;
  for (const auto& [k, v] : d.dc.environment_variables) spec.env[k] = v;
  spec.env["AZUREML_MODEL_DIR"] = model_dir_env(ids);
  spec.env["AZUREML_ENTRY_SCRIPT"] = d.ic.entry_script;
  spec.env["AML_APP_ROOT"] = kAppRoot;
  // Docker's default bridge, port 5001 published on 127.0.0.1:PORT. The server listens on the container's bridge
  // address too (the port proxy connects there), so it accepts loopback and the container's default gateway only
  // (the host side of the bridge: Docker's port proxy and the host itself) and closes every other peer's connection
  // at accept: other containers, machines routing to the bridge. Set after the user's variables: not overridable.
  spec.env["AMLC_HOST"] = "0.0.0.0";
  spec.env["AMLC_PORT"] = std::to_string(kContainerPort);
  spec.env["AMLC_ALLOWED_PEERS"] = kAllowedPeers;
  spec.ports.push_back({kContainerPort, "tcp", "127.0.0.1", port});
  spec.env["SERVICE_NAME"] = d.service;
  spec.env["WORKER_COUNT"] = std::to_string(d.dc.worker_count.value_or(1));
  if (d.dc.scoring_timeout_ms) spec.env["SCORING_TIMEOUT_MS"] = std::to_string(*d.dc.scoring_timeout_ms);
  if (d.dc.auth_enabled) {
    spec.mounts.push_back({service_keys_path(ws, d.service).string(), kKeysMount, true, "bind"});
    spec.env["AMLC_AUTH_KEYS_FILE"] = kKeysMount;
  }
  if (d.dc.cpu_cores) spec.cpus = *d.dc.cpu_cores;
  if (d.dc.memory_gb) spec.memory_bytes = static_cast<int64_t>(std::llround(*d.dc.memory_gb * 1024.0 * 1024.0 * 1024.0));
  spec.stop_timeout = 5;

  save(ws, rec);  // Transitioning, with the new models: visible to `service list` while we wait
  std::string id;
  auto fail_rollout = [&](const std::string& state, const std::string& message) {
    rec["state"] = state;
    rec["error"] = message;
    rec["containerId"] = nullptr;
    rec["updatedTime"] = now_iso8601();
    try {
      remove_containers(dc, ws, d.service);
    } catch (const std::exception&) {
    }
    save(ws, rec);
  };
  auto port_taken = [&] {
    conflict("port " + std::to_string(port) + " on 127.0.0.1 is already in use", "choose another --port (or omit it)");
  };
  say(progress, "starting container " + spec.name + " on 127.0.0.1:" + std::to_string(port));
  try {
    docker::CreateResult cr = dc.create_container(spec);
    id = cr.id;
  } catch (const docker::DockerError& e) {
    if (e.code() == docker::DockerErrc::PortInUse) port_taken();
    throw;
  }
  created = true;
  rec["containerId"] = id;
  try {
    dc.start_container(id);
  } catch (const docker::DockerError& e) {
    fail_rollout("Failed", e.what());
    if (e.code() == docker::DockerErrc::PortInUse) port_taken();
    throw;
  } catch (const Error& e) {
    fail_rollout("Failed", e.what());
    throw;
  }

  // Health wait: GET / until 200 "Healthy", checking the container each round.
  const double deadline = monotonic_seconds() + timeout_seconds;
  const std::string url = base_url(port) + "/";
  int delay_ms = 50;
  try {
    for (;;) {
      throw_if_interrupted();
      docker::ContainerInfo info = dc.inspect_container(id);
      if (!info.state.running) {
        std::string logs = log_tail(dc, id);
        std::string msg = "service '" + d.service + "' failed: the container exited with code " +
                          std::to_string(info.state.exit_code) + (info.state.oom_killed ? " (out of memory)" : "") +
                          " before answering health checks (did init() fail?)";
        fail_rollout("Failed", msg + "\n" + last_lines(logs, 40));
        fail(ErrorKind::General, msg + "; container log tail:\n" + last_lines(logs, 40),
             "fix the entry script and deploy again (the failed container was removed)");
      }
      if (answers_ok(url, std::chrono::milliseconds(2000))) break;
      if (monotonic_seconds() > deadline) {
        std::string logs = log_tail(dc, id);
        std::string msg = "service '" + d.service + "' is unhealthy: no 200 from GET " + url + " within " +
                          std::to_string(static_cast<int>(timeout_seconds)) + " s";
        fail_rollout("Unhealthy", msg + "\n" + last_lines(logs, 40));
        fail(ErrorKind::General, msg + "; container log tail:\n" + last_lines(logs, 40),
             "check the logs above; raise --timeout if init() is slow (the container was removed)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      delay_ms = std::min(delay_ms * 2, 250);
    }
  } catch (const Error& e) {
    if (rec["state"] == "Transitioning") fail_rollout("Failed", e.what());
    throw;
  }
  rec["state"] = "Healthy";
  rec["updatedTime"] = now_iso8601();
  save(ws, rec);
  say(progress, "service '" + d.service + "' is healthy at " + rec["scoringUri"].get<std::string>());
  return rec;
}

// Chooses the host port: an explicit one must be free (unless the service's own old container holds it);
// otherwise keep an auto-assigned port across redeploys, or pick a free one.
int choose_port(const DeployConfig& dc, const json& previous, bool* port_auto) {
  int prev_port = previous.is_object() ? previous.value("port", 0) : 0;
  bool prev_live = previous.is_object() && !previous.value("containerId", json(nullptr)).is_null();
  if (dc.port) {
    *port_auto = false;
    if (!(prev_live && prev_port == *dc.port) && !net::local_port_free(*dc.port))
      conflict("port " + std::to_string(*dc.port) + " on 127.0.0.1 is already in use",
               "choose another --port (or omit it to get a free one)");
    return *dc.port;
  }
  *port_auto = true;
  if (prev_port > 0 && previous.value("portAssigned", "") == "auto" && (prev_live || net::local_port_free(prev_port)))
    return prev_port;
  return net::pick_free_port();
}

}  // namespace

json rollout(const Workspace& ws, docker::Client& dc, const Desired& d, const json& previous, double timeout_seconds,
             const Progress& progress, RolloutStage& stage, const std::optional<std::string>& reuse_image) {
  bool built = false;
  std::string tag, hash;
  if (reuse_image) {
    if (!dc.image_exists(*reuse_image))
      not_found("image " + *reuse_image + " of service '" + d.service + "' no longer exists",
                "run 'amlc service update -n " + d.service + "' to build it again");
    tag = *reuse_image;
    hash = previous.value("imageHash", "");
  } else {
    ImagePlan plan = ensure_image(dc, d.ic, &built, progress);
    tag = plan.tag;
    hash = plan.hash;
  }
  bool port_auto = true;
  int port = choose_port(d.dc, previous, &port_auto);
  remove_containers(dc, ws, d.service, &stage.old_removed);
  return run_container(ws, dc, d, tag, hash, built, port, port_auto, previous, timeout_seconds, progress, stage.created);
}

}  // namespace amlc::deploy
