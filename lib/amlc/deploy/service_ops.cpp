// The commands on a deployed service: delete, show and list (records reconciled with the engine and a probe), logs,
// score (service run), and its keys (get-keys, regen-key without a restart).
#include <algorithm>
#include <thread>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/deploy/internal.hpp"
#include "amlc/deploy/services.hpp"

namespace amlc::deploy {

namespace {

// Longer than the scoring server's keys reload interval (Keys.RELOAD_SECONDS = 0.2 s in amlc_scoring/app.py).
constexpr std::chrono::milliseconds kKeysReloadWait{250};

}  // namespace

json remove(const Workspace& ws, const std::string& service, bool delete_image) {
  validate_service_name(service);
  FileLock slock = service_lock(ws, service);
  auto rec = read_service(ws, service);
  docker::Client dc;
  bool image_removed = false;
  // Containers first (by label), so nothing keeps running without a record.
  const bool container_removed = remove_containers(dc, ws, service);
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
    if (answers_ok("http://127.0.0.1:" + std::to_string(rec.value("port", 0)) + "/", std::chrono::milliseconds(1000)))
      rec["state"] = "Healthy";
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
  net::Request req = service_request("POST", rec.value("scoringUri", ""),
                                     std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000)));
  req.content_type = "application/json";
  req.has_body = true;
  req.body = body;
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
    net::Request probe = service_request("GET", url, std::chrono::milliseconds(1000));
    probe.headers = {"Authorization: Bearer " + key};
    const double deadline = monotonic_seconds() + timeout_seconds;
    for (;;) {
      throw_if_interrupted();
      net::Response r = net::perform(probe);
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

}  // namespace amlc::deploy
