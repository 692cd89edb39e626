#include "amlc/deploy/deploy.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <thread>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/deploy/image_plan.hpp"
#include "amlc/deploy/models.hpp"
#include "amlc/deploy/services.hpp"
#include "amlc/docker/client.hpp"
#include "amlc/net/http.hpp"
#include "amlc/net/ports.hpp"

namespace amlc::deploy {

namespace {

constexpr const char* kKeysMount = "/run/amlc/keys.json";
// The scoring server's AMLC_ALLOWED_PEERS: loopback and the container's default gateway only.
constexpr const char* kAllowedPeers = "gateway";
// Longer than the scoring server's keys reload interval (Keys.RELOAD_SECONDS = 0.2 s in amlc_scoring/app.py).
constexpr std::chrono::milliseconds kKeysReloadWait{250};

// One request to a service on 127.0.0.1 (a connect takes at most 2 s).
net::Response ask_service(const std::string& method, const std::string& url, std::chrono::milliseconds timeout,
                          const std::vector<std::string>& headers = {}) {
  net::Request r;
  r.method = method;
  r.url = url;
  r.timeout = timeout;
  r.connect_timeout = std::min(timeout, std::chrono::milliseconds(2000));
  r.headers = headers;
  return net::perform(r);
}

void say(const Progress& p, const std::string& s) {
  if (p) p(s);
}

std::string ws_id(const Workspace& ws) {
  std::string id = ws.info().value("id", "");
  return id.empty() ? ws.root().string() : id;
}

// The lock files live in the rebuildable cache, not among the records.
fs::path service_lock_path(const Workspace& ws, const std::string& name) {
  return ws.root() / "cache" / "locks" / ("service-" + name + ".lock");
}

// Serialises operations on one service (deploys can take minutes: the workspace lock is held only for writes).
FileLock service_lock(const Workspace& ws, const std::string& name) {
  fs::path path = service_lock_path(ws, name);
  create_directories_durable(path.parent_path());
  return FileLock(path);
}

// Whether `lock_file` is held exclusively right now: a try-lock that takes it shared without waiting (and drops it
// at once). A shared probe only fails against an exclusive holder, never against another probe: two readers
// asking at the same moment do not take each other for a writer.
bool held_exclusively(const fs::path& lock_file) {
  Fd fd(::open(lock_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;  // no lock file: nobody ever locked it
  while (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK;
  }
  return false;  // released with the descriptor
}

// Whether some amlc process holds the service's lock right now (a deploy, update, reload, regen-key or delete is
// at work: they take it exclusively, service_lock()). A record left Transitioning while nobody holds it is the
// trace of a deploy that was killed. Probed by service show/list and by a deploy's pre-check, concurrently.
bool service_busy(const Workspace& ws, const std::string& name) {
  return held_exclusively(service_lock_path(ws, name));
}

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

// Removes the service's containers; *removing turns true as soon as one is about to be removed.
void remove_containers(docker::Client& dc, const Workspace& ws, const std::string& service, bool* removing = nullptr) {
  docker::RemoveOptions ro;
  ro.force = true;
  ro.missing_ok = true;
  for (const auto& c : dc.list_containers({{"amlc.service", service}, {"amlc.workspace", ws_id(ws)}}, true)) {
    if (removing) *removing = true;
    dc.remove_container(c.id, ro);
  }
}

struct Desired {
  std::string service;
  std::vector<ResolvedModel> models;
  InferenceConfig ic;
  DeployConfig dc;
};

// How far a rollout got, for what its failure leaves behind.
struct RolloutStage {
  bool old_removed = false;  // the service's previous container was (being) removed: the previous record is void
  bool created = false;      // the new container exists: run_container records the outcome itself
};

json models_json(const std::vector<ResolvedModel>& models) {
  json arr = json::array();
  for (const auto& m : models) arr.push_back({{"name", m.name}, {"version", m.version}});
  return arr;
}

// Ensures the image exists (building it if its tag is new). Returns the plan; sets *built.
ImagePlan ensure_image(docker::Client& dc, const InferenceConfig& ic, bool* built, const Progress& progress,
                       const PlanOptions& options = {}) {
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
  rec["workspaceId"] = ws_id(ws);
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
  spec.labels = {{"amlc.managed", "true"}, {"amlc.service", d.service}, {"amlc.workspace", ws_id(ws)},
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
      net::Response r = ask_service("GET", url, std::chrono::milliseconds(2000));
      if (r.answered() && r.status == 200) break;
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

json rollout(const Workspace& ws, docker::Client& dc, const Desired& d, const json& previous, double timeout_seconds,
             const Progress& progress, RolloutStage& stage, const std::optional<std::string>& reuse_image = std::nullopt) {
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

// A deploy, update or reload claims its models before anything slow: under ws.lock(), the same lock `model delete`
// checks the service records under, it resolves the model ids and writes the service record as Transitioning with
// them (a new service lists them as its models; an existing one keeps its models, still served by its container,
// and lists the new ones as pendingModels), so a model being deployed cannot be deleted. If the command fails
// before its container exists, restore() puts back exactly what was there (the previous record and keys, or none).
// If amlc is killed meanwhile, the Transitioning record stays: `service show` reports it, `service delete` removes it.
struct Claim {
  std::string service;
  json previous;  // the record before (null: a new service)
  std::optional<ServiceKeys> previous_keys;
  std::vector<json> model_records;
};

Claim claim_service(const Workspace& ws, const std::string& service, const std::vector<std::string>& model_ids,
                    bool auth_enabled, const std::function<void(const json& previous)>& check_previous) {
  Claim c;
  c.service = service;
  FileLock guard = ws.lock();
  c.previous = read_service(ws, service).value_or(json(nullptr));
  if (check_previous) check_previous(c.previous);
  c.model_records = resolve_model_records(ws, model_ids);
  c.previous_keys = read_keys(ws, service);
  json models = json::array();
  for (const auto& m : c.model_records) models.push_back({{"name", m.at("name")}, {"version", m.at("version")}});
  const std::string now = now_iso8601();
  json rec;
  if (c.previous.is_object()) {
    rec = c.previous;
    rec["pendingModels"] = models;
  } else {
    rec = {{"name", service}, {"computeType", "local"}, {"scoringUri", ""}, {"swaggerUri", ""}, {"port", 0},
           {"portAssigned", ""}, {"models", models}, {"imageTag", ""}, {"imageHash", ""}, {"imageBuilt", false},
           {"containerName", container_name(ws, service)}, {"containerId", nullptr}, {"authEnabled", auth_enabled},
           {"createdTime", now}, {"workspaceId", ws_id(ws)}};
  }
  rec["state"] = "Transitioning";
  rec["error"] = nullptr;
  rec["updatedTime"] = now;
  write_service(ws, rec);
  return c;
}

// Removes `path` if it exists (and makes that durable); an error if it cannot.
void remove_file_or_fail(const fs::path& path) {
  std::error_code ec;
  if (fs::remove(path, ec)) fsync_path(path.parent_path());
  if (ec) fail(ErrorKind::General, "cannot remove " + path.string() + ": " + ec.message());
}

// Puts back what the claim replaced: the previous record (none for a new service), or `record` instead when given,
// and the previous keys.
void restore(const Workspace& ws, const Claim& c, const json* record = nullptr) {
  FileLock guard = ws.lock();
  if (record) {
    write_service(ws, *record);
  } else if (c.previous.is_object()) {
    write_service(ws, c.previous);
  } else {
    remove_file_or_fail(service_record_path(ws, c.service));
  }
  if (c.previous_keys) {
    auto now = read_keys(ws, c.service);
    if (!now || now->primary != c.previous_keys->primary || now->secondary != c.previous_keys->secondary)
      write_keys(ws, c.service, *c.previous_keys);
  } else {
    remove_file_or_fail(service_keys_path(ws, c.service));
  }
}

// The previous record once its container is gone: Failed with `error`, no container; its models and configuration
// stay (`service reload` starts that version again) and the models this command was deploying are released.
json failed_previous(const Claim& c, const std::string& error) {
  json rec = c.previous;
  rec["state"] = "Failed";
  rec["error"] = error;
  rec["containerId"] = nullptr;
  rec["updatedTime"] = now_iso8601();
  rec.erase("pendingModels");
  return rec;
}

// The text of the exception being handled (call from a catch block).
std::string current_error_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

// Rethrows the exception being handled (call from a catch block) with `more` added to its message and `hint` to
// its hint; its kind (hence the exit code) is kept.
[[noreturn]] void rethrow_with(const std::string& more, const std::string& hint) {
  auto join = [](const std::string& a, const std::string& b) { return a.empty() ? b : b.empty() ? a : a + "; " + b; };
  try {
    throw;
  } catch (const Error& e) {
    throw Error(e.kind(), e.what() + more, join(e.hint(), hint), e.detail());
  } catch (const std::exception& e) {
    throw Error(ErrorKind::General, e.what() + more, hint);
  } catch (...) {
    throw Error(ErrorKind::General, "unknown error" + more, hint);
  }
}

// Materializes the claimed models and rolls out. A failure before the new container exists puts back the claim;
// once the previous container was removed, the service is recorded as Failed with the error instead (the previous
// record would describe a container that no longer exists).
json rollout_claimed(const Workspace& ws, docker::Client& dc, const Claim& claim, InferenceConfig ic, DeployConfig dcfg,
                     double timeout_seconds, const Progress& progress,
                     const std::optional<std::string>& reuse_image = std::nullopt) {
  RolloutStage stage;
  try {
    Desired d{claim.service, materialize_models(ws, claim.model_records), std::move(ic), std::move(dcfg)};
    return rollout(ws, dc, d, claim.previous, timeout_seconds, progress, stage, reuse_image);
  } catch (...) {
    if (stage.created) throw;  // run_container recorded the outcome
    const bool gone = stage.old_removed && claim.previous.is_object();
    std::string restore_error;
    try {
      if (gone) {
        const json failed = failed_previous(claim, current_error_text());
        restore(ws, claim, &failed);
      } else {
        restore(ws, claim);
      }
    } catch (const std::exception& e) {
      restore_error = e.what();
    }
    // The record stays Transitioning: the error says why, after the original one.
    if (!restore_error.empty())
      rethrow_with("; the previous record of service '" + claim.service + "' could not be put back: " + restore_error,
                   "service '" + claim.service + "' stays Transitioning ('amlc service show -n " + claim.service +
                       "'): deploy it again with --overwrite, or 'amlc service delete -n " + claim.service + "'");
    if (gone)
      rethrow_with("", "service '" + claim.service + "' is now Failed: its previous container was already removed; 'amlc "
                       "service reload -n " + claim.service + "' starts the previous version again");
    throw;
  }
}

}  // namespace

std::string how_to_call(const json& rec) {
  const std::string name = rec.value("name", "");
  const std::string uri = rec.value("scoringUri", "");
  if (rec.value("authEnabled", false))
    return "service '" + name + "' requires a key: POST " + uri + " with 'Authorization: Bearer KEY' (the keys: 'amlc service get-keys -n " +
           name + "'); 'amlc service run -n " + name + " -d @request.json' sends it for you";
  return "service '" + name + "' answers anyone on this machine at " + uri +
         " without a key; deploy with --auth-enabled to require one";
}

namespace {

json public_view(json rec) {
  rec.erase("inferenceConfig");
  rec.erase("deploymentConfig");
  return rec;
}

std::vector<std::string> model_ids_of(const json& rec) {
  std::vector<std::string> ids;
  for (const auto& m : rec.value("models", json::array()))
    ids.push_back(m.value("name", "") + ":" + std::to_string(m.value("version", 0)));
  return ids;
}

}  // namespace

json deploy(const Workspace& ws, const DeployRequest& req, Notes& notes, const Progress& progress) {
  validate_service_name(req.service);
  // Parse and validate everything before touching anything.
  InferenceConfig ic;
  if (req.inference_config_file) ic = load_inference_config(*req.inference_config_file, notes);
  ic = apply_inference_flags(std::move(ic), req.inference_flags, req.cwd, req.inference_config_file.has_value());
  validate_inference_config(ic);
  DeployConfig dcfg;
  if (req.deploy_config_file) dcfg = load_deploy_config(*req.deploy_config_file, notes);
  dcfg = apply_deploy_flags(std::move(dcfg), req.deploy_flags);
  if (!(req.timeout_seconds > 0)) usage_error("--timeout: expected a positive number of seconds");

  // `locked`: we hold the service lock, so a Transitioning record is the trace of a deploy that was killed.
  auto check_conflict = [&](const json& previous, bool locked) {
    if (!previous.is_object() || req.overwrite) return;
    const std::string state = previous.value("state", "?");
    if (state == "Failed") return;
    if (state == "Transitioning" && !locked && service_busy(ws, req.service))
      conflict("service '" + req.service + "' is being deployed or updated by another amlc command",
               "wait for it to finish, then see 'amlc service show -n " + req.service + "'");
    conflict("service '" + req.service + "' already exists (state " + state + ")",
             state == "Transitioning"
                 ? "an earlier deploy did not finish: pass --overwrite to replace it, or 'amlc service delete -n " + req.service + "'"
                 : "pass --overwrite to replace it, or 'amlc service update -n " + req.service + "'");
  };
  // Fast checks before the engine is asked (unknown model: exit 3 even without Docker); nothing is written yet.
  check_conflict(read_service(ws, req.service).value_or(json(nullptr)), false);
  (void)resolve_model_records(ws, req.model_ids);
  docker::Client dc;
  dc.ping();
  FileLock slock = service_lock(ws, req.service);
  Claim claim = claim_service(ws, req.service, req.model_ids, dcfg.auth_enabled,
                              [&](const json& previous) { check_conflict(previous, true); });
  return public_view(rollout_claimed(ws, dc, claim, std::move(ic), std::move(dcfg), req.timeout_seconds, progress));
}

json update(const Workspace& ws, const UpdateRequest& req, Notes& notes, const Progress& progress) {
  validate_service_name(req.service);
  FileLock slock = service_lock(ws, req.service);
  json previous = require_service(ws, req.service);
  InferenceConfig ic = req.inference_config_file ? load_inference_config(*req.inference_config_file, notes)
                                                 : InferenceConfig::from_json(previous.value("inferenceConfig", json::object()));
  ic = apply_inference_flags(std::move(ic), req.inference_flags, req.cwd, true);
  validate_inference_config(ic);
  DeployConfig dcfg = req.deploy_config_file ? load_deploy_config(*req.deploy_config_file, notes)
                                             : DeployConfig::from_json(previous.value("deploymentConfig", json::object()));
  dcfg = apply_deploy_flags(std::move(dcfg), req.deploy_flags);
  if (!(req.timeout_seconds > 0)) usage_error("--timeout: expected a positive number of seconds");
  std::vector<std::string> ids = req.model_ids.empty() ? model_ids_of(previous) : req.model_ids;
  (void)resolve_model_records(ws, ids);
  docker::Client dc;
  dc.ping();
  Claim claim = claim_service(ws, req.service, ids, dcfg.auth_enabled, {});
  return public_view(rollout_claimed(ws, dc, claim, std::move(ic), std::move(dcfg), req.timeout_seconds, progress));
}

json reload(const Workspace& ws, const std::string& service, double timeout_seconds, const Progress& progress) {
  validate_service_name(service);
  FileLock slock = service_lock(ws, service);
  json previous = require_service(ws, service);
  InferenceConfig ic = InferenceConfig::from_json(previous.value("inferenceConfig", json::object()));
  DeployConfig dcfg = DeployConfig::from_json(previous.value("deploymentConfig", json::object()));
  docker::Client dc;
  dc.ping();
  Claim claim = claim_service(ws, service, model_ids_of(previous), dcfg.auth_enabled, {});
  return public_view(
      rollout_claimed(ws, dc, claim, std::move(ic), std::move(dcfg), timeout_seconds, progress, previous.value("imageTag", "")));
}

json remove(const Workspace& ws, const std::string& service, bool delete_image) {
  validate_service_name(service);
  FileLock slock = service_lock(ws, service);
  auto rec = read_service(ws, service);
  docker::Client dc;
  bool container_removed = false;
  bool image_removed = false;
  // Containers first (by name and by label), so nothing keeps running without a record.
  docker::RemoveOptions ro;
  ro.force = true;
  ro.missing_ok = true;
  for (const auto& c : dc.list_containers({{"amlc.service", service}, {"amlc.workspace", ws_id(ws)}}, true))
    container_removed = dc.remove_container(c.id, ro) || container_removed;
  if (rec) {
    std::string tag = rec->value("imageTag", "");
    {
      FileLock guard = ws.lock();
      remove_service_files(ws, service);
    }
    if (delete_image && !tag.empty()) {
      bool shared = false;
      for (const auto& other : list_service_records(ws))
        if (other.value("imageTag", "") == tag) shared = true;
      if (!shared) {
        docker::RemoveOptions io;
        io.missing_ok = true;
        io.force = true;
        image_removed = dc.remove_image(tag, io);
      }
    }
  }
  return {{"name", service}, {"deleted", rec.has_value() || container_removed},
          {"containerRemoved", container_removed}, {"imageRemoved", image_removed}};
}

namespace {

json reconcile(const Workspace& ws, json rec, docker::Client* dc, bool probe) {
  std::string recorded = rec.value("state", "Unknown");
  rec["recordedState"] = recorded;
  // Transitioning while no amlc command holds the service: that command was killed before it finished, or failed
  // and could not write the record back (it said so when it exited).
  const bool transitioning = recorded == "Transitioning";
  const bool in_progress = transitioning && service_busy(ws, rec.value("name", ""));
  if (transitioning && !in_progress && rec.value("error", json(nullptr)).is_null())
    rec["error"] = "the last deploy, update or reload of this service did not finish (amlc was stopped, or could not "
                   "put the previous record back); deploy it again with --overwrite, or delete it";
  if (!dc) {
    rec["state"] = "Unknown";
    return rec;
  }
  auto info = dc->find_container(rec.value("containerName", container_name(ws, rec.value("name", ""))));
  if (!info) {
    if (transitioning) rec["state"] = in_progress ? "Transitioning" : "Failed";
    else if (recorded != "Failed" && recorded != "Unhealthy") rec["state"] = "Missing";
    rec["containerState"] = nullptr;
    return rec;
  }
  rec["containerState"] = info->state.status;
  if (!info->state.running) {
    rec["state"] = info->state.exit_code == 0 ? "Stopped" : "Failed";
    return rec;
  }
  if (probe) {
    net::Response r = ask_service("GET", "http://127.0.0.1:" + std::to_string(rec.value("port", 0)) + "/",
                                  std::chrono::milliseconds(1000));
    if (r.answered() && r.status == 200) rec["state"] = "Healthy";
    else if (!in_progress) rec["state"] = "Unhealthy";
  }
  return rec;
}

}  // namespace

json show(const Workspace& ws, const std::string& service) {
  json rec = require_service(ws, service);
  docker::Client dc;
  json out = reconcile(ws, rec, &dc, true);
  out.erase("deploymentConfig");
  return out;
}

json list(const Workspace& ws, Notes& notes, const ServiceFilter& filter) {
  if (!filter.model_id.empty()) {
    auto colon = filter.model_id.rfind(':');
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < filter.model_id.size() &&
              filter.model_id.find_first_not_of("0123456789", colon + 1) == std::string::npos;
    if (!ok) usage_error("--model-id '" + filter.model_id + "': expected NAME:VERSION", "e.g. --model-id churn:3");
  }
  std::vector<json> recs = list_service_records(ws);
  std::erase_if(recs, [&](const json& r) {
    if (!filter.compute_type.empty() && to_lower(filter.compute_type) != to_lower(r.value("computeType", "local"))) return true;
    auto ids = model_ids_of(r);
    if (!filter.model_id.empty() && std::find(ids.begin(), ids.end(), filter.model_id) == ids.end()) return true;
    if (!filter.model_name.empty() &&
        std::none_of(ids.begin(), ids.end(), [&](const std::string& id) { return id.substr(0, id.rfind(':')) == filter.model_name; }))
      return true;
    return false;
  });
  json out = json::array();
  std::optional<docker::Client> dc;
  if (!recs.empty()) {
    dc.emplace();
    try {
      dc->ping();
    } catch (const Error& e) {
      notes.push_back(std::string("Docker engine unavailable; states are not reconciled: ") + e.what());
      dc.reset();
    }
  }
  for (auto& r : recs) {
    json v = public_view(reconcile(ws, r, dc ? &*dc : nullptr, true));
    if (!filter.state.empty() && to_lower(v.value("state", "")) != to_lower(filter.state)) continue;
    out.push_back(std::move(v));
  }
  return out;
}

void logs(const Workspace& ws, const std::string& service, std::optional<int> tail, bool follow,
          const std::function<void(std::string_view)>& sink) {
  json rec = require_service(ws, service);
  docker::Client dc;
  auto info = dc.find_container(rec.value("containerName", container_name(ws, service)));
  if (!info)
    not_found("service '" + service + "' has no container (state " + rec.value("state", "?") + ")",
              rec.value("error", json(nullptr)).is_string() ? "its last error is in 'amlc service show -n " + service + "'"
                                                              : "run 'amlc service reload -n " + service + "'");
  docker::LogOptions lo;
  lo.tail = tail;
  lo.follow = follow;
  dc.container_logs(info->id, lo, [&](docker::LogStream, std::string_view data) { sink(data); });
}

ScoreResult score(const Workspace& ws, const std::string& service, const std::string& body, double timeout_seconds) {
  json rec = require_service(ws, service);
  std::string state = rec.value("state", "");
  if (state == "Failed" || state == "Unhealthy")
    fail(ErrorKind::General, "service '" + service + "' is " + state + ": " + rec.value("error", json("")).get<std::string>(),
         "fix it and run 'amlc service update -n " + service + "'");
  net::Request req;
  req.method = "POST";
  req.url = rec.value("scoringUri", "");
  req.content_type = "application/json";
  req.has_body = true;
  req.body = body;
  req.timeout = std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
  req.connect_timeout = std::min(req.timeout, std::chrono::milliseconds(2000));
  req.max_body = kMaxAnswerBytes;
  if (rec.value("authEnabled", false)) {
    auto keys = read_keys(ws, service);
    if (!keys) fail(ErrorKind::Damaged, "service '" + service + "' has auth enabled but no keys file");
    req.headers.push_back("Authorization: Bearer " + keys->primary);
  }
  net::Response r = net::perform(req);
  const std::string hint = "see 'amlc service show -n " + service + "' and 'amlc service logs -n " + service + "'";
  if (r.outcome == net::Outcome::TooLarge)
    fail(ErrorKind::General, "the answer of service '" + service + "' is larger than " +
                                 std::to_string(kMaxAnswerBytes >> 20) + " MiB", hint);
  if (!r.answered())
    fail(ErrorKind::General, "no answer from service '" + service + "' at " + req.url + ": " + r.error, hint);
  return {r.status, r.body, r.content_type};
}

json get_keys(const Workspace& ws, const std::string& service) {
  json rec = require_service(ws, service);
  if (!rec.value("authEnabled", false))
    usage_error("service '" + service + "' does not use key auth",
                "redeploy with --auth-enabled (or authEnabled: true in the deployment config)");
  auto keys = read_keys(ws, service);
  if (!keys) fail(ErrorKind::Damaged, "service '" + service + "' has auth enabled but no keys file");
  return {{"primaryKey", keys->primary}, {"secondaryKey", keys->secondary}};
}

json regen_key(const Workspace& ws, const std::string& service, const std::string& which,
               const std::optional<std::string>& value, double timeout_seconds, const Progress& progress) {
  std::string w = to_lower(which);
  if (w != "primary" && w != "secondary") usage_error("--key: expected Primary or Secondary, got '" + which + "'");
  if (value && !is_valid_service_key(*value)) usage_error(std::string("--set-key: expected ") + kServiceKeyRule);
  FileLock slock = service_lock(ws, service);
  json rec = require_service(ws, service);
  if (!rec.value("authEnabled", false))
    usage_error("service '" + service + "' does not use key auth", "redeploy with --auth-enabled");
  // Everything that can fail comes before the keys file is written (a failed command changes nothing): the engine
  // must answer, to tell whether a running container has to switch to the new key.
  docker::Client dc;
  auto info = dc.find_container(rec.value("containerName", container_name(ws, service)));
  const std::optional<ServiceKeys> old = read_keys(ws, service);
  ServiceKeys keys = old ? *old : ServiceKeys{new_key(), new_key()};
  (w == "primary" ? keys.primary : keys.secondary) = value ? *value : new_key();
  {
    FileLock guard = ws.lock();
    write_keys(ws, service, keys);
  }
  if (!info || !info->state.running) return {{"primaryKey", keys.primary}, {"secondaryKey", keys.secondary}};
  // The keys file was rewritten in place; every server worker re-reads it at its first authenticated request
  // once 0.2 s have passed since its last read (app.py, Keys.RELOAD_SECONDS): past kKeysReloadWait after the
  // write, every worker uses the new keys. No restart. Then check that the service answers to the new key
  // (GET /swagger.json needs it); if it does not (or on Ctrl-C), the old keys are put back.
  try {
    std::this_thread::sleep_for(kKeysReloadWait);
    const std::string& key = w == "primary" ? keys.primary : keys.secondary;
    const std::string url = "http://127.0.0.1:" + std::to_string(rec.value("port", 0)) + "/swagger.json";
    const double deadline = monotonic_seconds() + timeout_seconds;
    for (;;) {
      throw_if_interrupted();
      net::Response r = ask_service("GET", url, std::chrono::milliseconds(1000), {"Authorization: Bearer " + key});
      if (r.answered() && r.status == 200) break;
      if (monotonic_seconds() > deadline)
        fail(ErrorKind::General, "service '" + service + "' does not accept the new key (" +
                                     (r.answered() ? "HTTP " + std::to_string(r.status) : std::string("no answer")) + ")",
             "the old keys are kept; see 'amlc service logs -n " + service + "', or restart the service with "
             "'amlc service reload -n " + service + "' and try again");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  } catch (...) {
    FileLock guard = ws.lock();
    if (old) {
      write_keys(ws, service, *old);
    } else {
      std::error_code ec;
      fs::remove(service_keys_path(ws, service), ec);
    }
    throw;
  }
  say(progress, "service " + service + " uses the new key");
  return {{"primaryKey", keys.primary}, {"secondaryKey", keys.secondary}};
}

json package(const Workspace& ws, const PackageRequest& req, Notes& notes, const Progress& progress) {
  InferenceConfig ic;
  if (req.inference_config_file) ic = load_inference_config(*req.inference_config_file, notes);
  ic = apply_inference_flags(std::move(ic), req.inference_flags, req.cwd, req.inference_config_file.has_value());
  validate_inference_config(ic);
  if (!req.image_name.empty()) {
    static const std::string allowed = "abcdefghijklmnopqrstuvwxyz0123456789._-/:";
    if (req.image_name.find_first_not_of(allowed) != std::string::npos || req.image_name.front() == '-')
      usage_error("--image-name '" + req.image_name + "' is not a valid image reference",
                  "use lowercase letters, digits, '.', '_', '-', '/' and an optional ':tag'");
  }
  std::vector<ResolvedModel> models = resolve_models(ws, req.model_ids);
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
