// docker::Client's container calls: create (the ContainerSpec as the engine's ContainerConfig and HostConfig),
// start, inspect, logs (demultiplexed), stop, kill, remove, wait, list, and copying tar archives in and out.
#include <algorithm>
#include <cmath>

#include "amlc/core/util.hpp"
#include "amlc/docker/client_impl.hpp"
#include "amlc/docker/errors.hpp"
#include "amlc/docker/stream.hpp"

namespace amlc::docker {

using namespace detail;

namespace {

int64_t nanos(std::chrono::milliseconds ms) { return static_cast<int64_t>(ms.count()) * 1000000; }

const char* condition_name(WaitCondition c) {
  switch (c) {
    case WaitCondition::NotRunning: return "not-running";
    case WaitCondition::NextExit: return "next-exit";
    case WaitCondition::Removed: return "removed";
  }
  return "not-running";
}

int64_t wait_result(const std::string& id, const std::string& body) {
  json j = parse_body(body, "wait for container");
  if (auto e = j.find("Error"); e != j.end() && e->is_object()) {
    std::string msg = str(*e, "Message");
    if (!msg.empty())
      throw DockerError(ErrorKind::General, DockerErrc::Daemon, "waiting for container " + id + " failed: " + msg);
  }
  auto sc = j.find("StatusCode");
  if (sc == j.end() || !sc->is_number())
    throw DockerError(ErrorKind::General, DockerErrc::Protocol,
                      "waiting for container " + id + ": the answer has no StatusCode", {}, body.substr(0, 500));
  return sc->get<int64_t>();
}

ContainerInfo container_from_inspect(const json& j) {
  ContainerInfo c;
  c.id = str(j, "Id");
  c.name = strip_slash(str(j, "Name"));
  c.image = str(j, "Image");
  if (auto cfg = j.find("Config"); cfg != j.end() && cfg->is_object()) {
    c.image_ref = str(*cfg, "Image");
    c.labels = labels_of(cfg->value("Labels", json()));
    c.tty = cfg->value("Tty", false);
  }
  if (auto st = j.find("State"); st != j.end() && st->is_object()) {
    c.state.status = str(*st, "Status");
    c.state.running = st->value("Running", false);
    c.state.oom_killed = st->value("OOMKilled", false);
    c.state.exit_code = st->value("ExitCode", 0);
    c.state.pid = st->value("Pid", 0);
    c.state.error = str(*st, "Error");
    c.state.started_at = str(*st, "StartedAt");
    c.state.finished_at = str(*st, "FinishedAt");
    if (auto h = st->find("Health"); h != st->end() && h->is_object()) {
      c.state.health = str(*h, "Status");
      if (auto log = h->find("Log"); log != h->end() && log->is_array() && !log->empty())
        c.state.health_log = str(log->back(), "Output");
    }
  }
  if (auto ns = j.find("NetworkSettings"); ns != j.end() && ns->is_object()) {
    if (auto ports = ns->find("Ports"); ports != ns->end() && ports->is_object()) {
      for (auto it = ports->begin(); it != ports->end(); ++it) {
        auto slash = it.key().find('/');
        int cport = std::atoi(it.key().substr(0, slash).c_str());
        std::string proto = slash == std::string::npos ? "tcp" : it.key().substr(slash + 1);
        if (!it->is_array()) continue;
        for (const auto& b : *it) {
          PublishedPort p;
          p.container_port = cport;
          p.protocol = proto;
          p.host_ip = str(b, "HostIp");
          p.host_port = std::atoi(str(b, "HostPort").c_str());
          c.ports.push_back(p);
        }
      }
    }
  }
  c.raw = j;
  return c;
}

}  // namespace

std::optional<int> ContainerInfo::host_port(int container_port, std::string_view protocol) const {
  std::optional<int> any;
  for (const auto& p : ports) {
    if (p.container_port != container_port || p.protocol != protocol || p.host_port == 0) continue;
    if (p.host_ip.find(':') == std::string::npos) return p.host_port;  // IPv4 first
    if (!any) any = p.host_port;
  }
  return any;
}


CreateResult Client::create_container(const ContainerSpec& s) {
  if (s.image.empty()) usage_error("a container needs an image");
  json cfg = json::object();
  cfg["Image"] = s.image;
  if (!s.cmd.empty()) cfg["Cmd"] = s.cmd;
  if (s.entrypoint) cfg["Entrypoint"] = s.entrypoint->empty() ? std::vector<std::string>{""} : *s.entrypoint;
  if (!s.env.empty()) {
    json env = json::array();
    for (const auto& [k, v] : s.env) env.push_back(k + "=" + v);
    cfg["Env"] = env;
  }
  cfg["Labels"] = s.labels;
  if (!s.working_dir.empty()) cfg["WorkingDir"] = s.working_dir;
  if (!s.user.empty()) cfg["User"] = s.user;
  cfg["Tty"] = s.tty;
  cfg["AttachStdin"] = false;
  cfg["OpenStdin"] = false;
  if (!s.stop_signal.empty()) cfg["StopSignal"] = s.stop_signal;
  if (s.stop_timeout) cfg["StopTimeout"] = *s.stop_timeout;
  if (s.healthcheck) {
    json hc = json::object();
    hc["Test"] = s.healthcheck->test;
    hc["Interval"] = nanos(s.healthcheck->interval);
    hc["Timeout"] = nanos(s.healthcheck->timeout);
    hc["StartPeriod"] = nanos(s.healthcheck->start_period);
    hc["Retries"] = s.healthcheck->retries;
    cfg["Healthcheck"] = hc;
  }
  json host = json::object();
  if (!s.ports.empty()) {
    json exposed = json::object();
    json bindings = json::object();
    for (const auto& p : s.ports) {
      std::string key = std::to_string(p.container_port) + "/" + (p.protocol.empty() ? "tcp" : p.protocol);
      exposed[key] = json::object();
      json b = json::object();
      b["HostIp"] = p.host_ip;
      b["HostPort"] = p.host_port > 0 ? std::to_string(p.host_port) : std::string{};
      bindings[key].push_back(b);
    }
    cfg["ExposedPorts"] = exposed;
    host["PortBindings"] = bindings;
  }
  if (!s.mounts.empty()) {
    json mounts = json::array();
    for (const auto& m : s.mounts) {
      json mj = json::object();
      mj["Type"] = m.type.empty() ? "bind" : m.type;
      if (m.type != "tmpfs") mj["Source"] = m.source;
      mj["Target"] = m.target;
      mj["ReadOnly"] = m.read_only;
      mounts.push_back(mj);
    }
    host["Mounts"] = mounts;
  }
  if (s.cpus > 0) host["NanoCpus"] = static_cast<int64_t>(std::llround(s.cpus * 1e9));
  if (s.memory_bytes > 0) host["Memory"] = s.memory_bytes;
  if (!s.network_mode.empty()) host["NetworkMode"] = s.network_mode;
  host["AutoRemove"] = s.auto_remove;
  cfg["HostConfig"] = host;

  std::string q = "/containers/create";
  if (!s.name.empty()) q += "?name=" + url_encode(s.name);
  http::Request req = impl_->plain("POST", impl_->path(q));
  std::string body = cfg.dump();
  req.content_type = "application/json";
  req.has_body = true;
  req.body = body;
  std::string what = "cannot create container" + (s.name.empty() ? std::string{} : " " + s.name);
  http::Response r = impl_->send(req, what, {404});
  if (r.status == 404) {
    DockerError e = api_error(404, r.body, what);
    if (e.code() == DockerErrc::ImageNotFound || to_lower(e.daemon_message()).find("image") != std::string::npos)
      throw DockerError(ErrorKind::NotFound, DockerErrc::ImageNotFound,
                        what + ": image " + s.image + " does not exist locally", missing_image_hint(),
                        e.daemon_message(), 404, e.daemon_message());
    throw e;
  }
  json j = parse_body(r.body, "create container");
  CreateResult out;
  out.id = str(j, "Id");
  out.warnings = strings_of(j.value("Warnings", json()));
  return out;
}

void Client::start_container(const std::string& id) {
  http::Request req = impl_->plain("POST", impl_->path("/containers/" + url_encode(id) + "/start"));
  impl_->send(req, "cannot start container " + id, {304});
}

ContainerInfo Client::inspect_container(const std::string& id) {
  http::Request req = impl_->plain("GET", impl_->path("/containers/" + url_encode(id) + "/json"));
  http::Response r = impl_->send(req, "cannot inspect container " + id);
  return container_from_inspect(parse_body(r.body, "inspect container"));
}

std::optional<ContainerInfo> Client::find_container(const std::string& id_or_name) {
  http::Request req = impl_->plain("GET", impl_->path("/containers/" + url_encode(id_or_name) + "/json"));
  http::Response r = impl_->send(req, "cannot inspect container " + id_or_name, {404});
  if (r.status == 404) return std::nullopt;
  return container_from_inspect(parse_body(r.body, "inspect container"));
}

void Client::container_logs(const std::string& id, const LogOptions& o, const LogCallback& on_data) {
  bool tty = inspect_container(id).tty;
  std::string q = "/containers/" + url_encode(id) + "/logs?stdout=" + (o.stdout_ ? "1" : "0") +
                  "&stderr=" + (o.stderr_ ? "1" : "0");
  if (o.follow) q += "&follow=1";
  if (o.timestamps) q += "&timestamps=1";
  if (o.tail) q += "&tail=" + std::to_string(*o.tail);
  if (o.since) q += "&since=" + std::to_string(*o.since);
  LogDemuxer demux(on_data, tty);
  http::Request req = impl_->plain("GET", impl_->path(q));
  if (o.follow) {
    req.timeout = std::chrono::milliseconds(0);
    req.interruptible = true;
  }
  req.should_stop = o.should_stop;
  req.sink = [&demux](std::string_view d) { demux.feed(d); };
  impl_->send(req, "cannot read the logs of container " + id);
  if (!demux.system_error().empty())
    throw DockerError(ErrorKind::General, DockerErrc::Daemon,
                      "reading the logs of container " + id + " failed: " + trim(demux.system_error()));
}

Logs Client::container_logs(const std::string& id, const LogOptions& options) {
  Logs logs;
  LogOptions o = options;
  o.follow = false;
  container_logs(id, o, [&logs](LogStream s, std::string_view d) {
    (s == LogStream::Stderr ? logs.err : logs.out).append(d);
  });
  return logs;
}

void Client::stop_container(const std::string& id, int timeout_seconds) {
  http::Request req =
      impl_->plain("POST", impl_->path("/containers/" + url_encode(id) + "/stop?t=" + std::to_string(timeout_seconds)));
  req.timeout = impl_->options.request_timeout + std::chrono::seconds(std::max(0, timeout_seconds));
  impl_->send(req, "cannot stop container " + id, {304});
}

void Client::kill_container(const std::string& id, const std::string& signal) {
  http::Request req =
      impl_->plain("POST", impl_->path("/containers/" + url_encode(id) + "/kill?signal=" + url_encode(signal)));
  impl_->send(req, "cannot kill container " + id);
}

bool Client::remove_container(const std::string& id, const RemoveOptions& options) {
  http::Request req = impl_->plain("DELETE", impl_->path("/containers/" + url_encode(id) + "?force=" +
                                                         (options.force ? "1" : "0") + "&v=" +
                                                         (options.volumes ? "1" : "0")));
  std::string what = "cannot remove container " + id;
  http::Response r = impl_->send(req, what, {404});
  if (r.status == 404) {
    if (options.missing_ok) return false;
    throw api_error(404, r.body, what);
  }
  return true;
}

int64_t Client::wait_container(const std::string& id, WaitCondition condition, const StopPredicate& should_stop) {
  http::Request req = impl_->plain(
      "POST", impl_->path("/containers/" + url_encode(id) + "/wait?condition=" + condition_name(condition)));
  req.timeout = std::chrono::milliseconds(0);
  req.should_stop = should_stop;
  req.interruptible = true;
  http::Response r = impl_->send(req, "cannot wait for container " + id);
  return wait_result(id, r.body);
}

std::optional<int64_t> Client::wait_container_for(const std::string& id, std::chrono::milliseconds timeout,
                                                  WaitCondition condition) {
  http::Request req = impl_->plain(
      "POST", impl_->path("/containers/" + url_encode(id) + "/wait?condition=" + condition_name(condition)));
  req.timeout = std::max(timeout, std::chrono::milliseconds(1));
  http::Response r = impl_->send(req, "cannot wait for container " + id, {}, /*allow_timeout=*/true);
  if (r.timed_out()) return std::nullopt;
  return wait_result(id, r.body);
}

std::vector<ContainerSummary> Client::list_containers(const Labels& label_filter, bool all) {
  std::string q = std::string("/containers/json?all=") + (all ? "1" : "0");
  if (!label_filter.empty()) q += "&filters=" + url_encode(label_filters(label_filter));
  http::Request req = impl_->plain("GET", impl_->path(q));
  json arr = parse_body(impl_->send(req, "cannot list containers").body, "list containers");
  std::vector<ContainerSummary> out;
  if (!arr.is_array()) return out;
  for (const auto& j : arr) {
    ContainerSummary c;
    c.id = str(j, "Id");
    for (auto& n : strings_of(j.value("Names", json()))) c.names.push_back(strip_slash(n));
    c.image = str(j, "Image");
    c.state = str(j, "State");
    c.status = str(j, "Status");
    if (auto cr = j.find("Created"); cr != j.end() && cr->is_number()) c.created = cr->get<int64_t>();
    c.labels = labels_of(j.value("Labels", json()));
    c.raw = j;
    out.push_back(std::move(c));
  }
  return out;
}

void Client::Impl::put_archive(const std::string& id, const std::string& path, std::string_view tar,
                               const fs::path* tar_file) {
  http::Request req = plain("PUT", this->path("/containers/" + url_encode(id) + "/archive?path=" + url_encode(path)));
  req.timeout = std::chrono::milliseconds(0);
  req.interruptible = true;
  req.content_type = "application/x-tar";
  req.has_body = true;
  if (tar_file) req.body_file = *tar_file;
  else req.body = tar;
  send(req, "cannot copy files into container " + id + " at " + path);
}

void Client::put_archive(const std::string& id, const std::string& path, std::string_view tar) {
  impl_->put_archive(id, path, tar, nullptr);
}

void Client::put_archive_file(const std::string& id, const std::string& path, const fs::path& tar_file) {
  impl_->put_archive(id, path, {}, &tar_file);
}

std::string Client::get_archive(const std::string& id, const std::string& path) {
  std::string out;
  http::Request req = impl_->plain(
      "GET", impl_->path("/containers/" + url_encode(id) + "/archive?path=" + url_encode(path)));
  req.timeout = std::chrono::milliseconds(0);
  req.interruptible = true;
  req.sink = [&out](std::string_view d) { out.append(d); };
  impl_->send(req, "cannot copy " + path + " out of container " + id);
  return out;
}

}  // namespace amlc::docker
