#include "amlc/docker/client.hpp"

#include <cmath>
#include <cstdlib>
#include <mutex>

#include "amlc/core/json.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/docker/errors.hpp"
#include "amlc/docker/http.hpp"
#include "amlc/docker/stream.hpp"

namespace amlc::docker {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

std::string BuildFailed::join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

std::string Endpoint::text() const {
  if (scheme == Scheme::Unix) return "unix://" + socket_path;
  return "tcp://" + host + ":" + std::to_string(port);
}

Endpoint parse_endpoint(std::string_view docker_host) {
  std::string text = trim(docker_host);
  const std::string hint = "set DOCKER_HOST=unix:///var/run/docker.sock (or tcp://host:port), or unset it";
  Endpoint ep;
  if (starts_with(text, "unix://")) {
    ep.scheme = Endpoint::Scheme::Unix;
    ep.socket_path = text.substr(7);
    if (ep.socket_path.empty() || ep.socket_path.front() != '/')
      usage_error("DOCKER_HOST=" + text + ": the socket path must be absolute (unix:///path/to/docker.sock)", hint);
    if (ep.socket_path.size() > 107)
      usage_error("DOCKER_HOST=" + text + ": socket paths are limited to 107 bytes on Linux", hint);
    return ep;
  }
  std::string rest;
  if (starts_with(text, "tcp://")) rest = text.substr(6);
  else if (starts_with(text, "http://")) rest = text.substr(7);
  else if (text.find("://") == std::string::npos && !text.empty()) rest = text;
  else usage_error("DOCKER_HOST=" + text + " is not supported (only unix:// and tcp:// without TLS are)", hint);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  ep.scheme = Endpoint::Scheme::Tcp;
  ep.port = 2375;
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
    std::string port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
      usage_error("DOCKER_HOST=" + text + ": '" + port + "' is not a port number", hint);
    ep.port = std::stoi(port);
  }
  if (rest.empty() || rest.find('/') != std::string::npos)
    usage_error("DOCKER_HOST=" + text + ": expected tcp://host:port", hint);
  ep.host = rest;
  return ep;
}

Endpoint endpoint_from_env() {
  const char* v = std::getenv("DOCKER_HOST");
  if (v && *v) return parse_endpoint(v);
  return Endpoint{};
}

int compare_api_versions(std::string_view a, std::string_view b) {
  auto pa = split(a, '.');
  auto pb = split(b, '.');
  size_t n = std::max(pa.size(), pb.size());
  for (size_t i = 0; i < n; ++i) {
    long x = i < pa.size() ? std::strtol(pa[i].c_str(), nullptr, 10) : 0;
    long y = i < pb.size() ? std::strtol(pb[i].c_str(), nullptr, 10) : 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

namespace {
std::string encode(std::string_view s, std::string_view keep) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~' || keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

bool valid_api_version(std::string_view v) {
  auto parts = split(v, '.');
  if (parts.size() != 2) return false;
  for (const auto& p : parts)
    if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos) return false;
  return true;
}

json parse_body(const std::string& body, std::string_view what) {
  if (trim(body).empty()) return nullptr;
  try {
    return parse_json(body, kMaxJsonDepth, "the Docker engine's answer");
  } catch (const json::exception& e) {
    throw DockerError(ErrorKind::General, DockerErrc::Protocol,
                      std::string(what) + ": the Docker engine sent an answer that is not JSON amlc can read", {},
                      std::string(e.what()) + "\nbody: " + body.substr(0, 500));
  }
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

Labels labels_of(const json& j) {
  Labels out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it->is_string()) out[it.key()] = it->get<std::string>();
  return out;
}

std::vector<std::string> strings_of(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

std::string strip_slash(std::string s) {
  if (!s.empty() && s.front() == '/') s.erase(0, 1);
  return s;
}

bool is_ok(long status) { return status >= 200 && status < 300; }

ImageInfo image_from_inspect(const json& j) {
  ImageInfo info;
  info.id = str(j, "Id");
  info.repo_tags = strings_of(j.value("RepoTags", json()));
  if (auto c = j.find("Config"); c != j.end() && c->is_object()) info.labels = labels_of(c->value("Labels", json()));
  if (auto s = j.find("Size"); s != j.end() && s->is_number()) info.size = s->get<int64_t>();
  info.created = str(j, "Created");
  info.raw = j;
  return info;
}

ImageInfo image_from_summary(const json& j) {
  ImageInfo info;
  info.id = str(j, "Id");
  info.repo_tags = strings_of(j.value("RepoTags", json()));
  info.labels = labels_of(j.value("Labels", json()));
  if (auto s = j.find("Size"); s != j.end() && s->is_number()) info.size = s->get<int64_t>();
  if (auto c = j.find("Created"); c != j.end() && c->is_number()) info.created = std::to_string(c->get<int64_t>());
  info.raw = j;
  return info;
}

int64_t nanos(std::chrono::milliseconds ms) { return static_cast<int64_t>(ms.count()) * 1000000; }

const char* condition_name(WaitCondition c) {
  switch (c) {
    case WaitCondition::NotRunning: return "not-running";
    case WaitCondition::NextExit: return "next-exit";
    case WaitCondition::Removed: return "removed";
  }
  return "not-running";
}

std::string build_hint(const std::string& error) {
  std::string e = to_lower(error);
  for (const char* needle : {"pull access denied", "repository does not exist", "manifest unknown", "no such host",
                             "dial tcp", "lookup ", "not found: manifest", "no such image", "failed to resolve",
                             "connection refused", "i/o timeout", "server misbehaving"}) {
    if (e.find(needle) != std::string::npos) return missing_image_hint();
  }
  return "fix the step shown in the build log (the last lines are in the error detail; --debug shows them)";
}
}  // namespace

std::string url_encode(std::string_view s) { return encode(s, ""); }
std::string encode_ref(std::string_view ref) { return encode(ref, "/:@"); }

std::string label_filters(const Labels& labels) {
  json arr = json::array();
  for (const auto& [k, v] : labels) arr.push_back(v.empty() ? k : k + "=" + v);
  json f = json::object();
  f["label"] = arr;
  return f.dump();
}

std::optional<int> ContainerInfo::host_port(int container_port, std::string_view protocol) const {
  std::optional<int> any;
  for (const auto& p : ports) {
    if (p.container_port != container_port || p.protocol != protocol || p.host_port == 0) continue;
    if (p.host_ip.find(':') == std::string::npos) return p.host_port;  // IPv4 first
    if (!any) any = p.host_port;
  }
  return any;
}

// ---------------------------------------------------------------------------------------------------------------
// Client

struct Client::Impl {
  Endpoint endpoint;
  ClientOptions options;
  std::mutex mu;
  std::string negotiated;  // guarded by mu
  std::optional<VersionInfo> info;

  http::Response send(http::Request& req, std::string_view what, std::initializer_list<long> also_ok = {},
                      bool allow_timeout = false) {
    http::Response r = http::perform(endpoint, options.connect_timeout, req, allow_timeout);
    if (r.timed_out()) return r;
    if (is_ok(r.status)) return r;
    for (long s : also_ok)
      if (r.status == s) return r;
    throw api_error(static_cast<int>(r.status), r.body, what);
  }

  http::Request plain(std::string method, std::string target) {
    http::Request req;
    req.method = std::move(method);
    req.target = std::move(target);
    req.timeout = options.request_timeout;
    return req;
  }

  std::string ver() {
    std::lock_guard<std::mutex> lock(mu);
    if (negotiated.empty()) negotiate_locked();
    return negotiated;
  }

  std::string path(const std::string& p) { return "/v" + ver() + p; }

  void negotiate_locked() {
    std::string pinned = options.api_version;
    if (pinned.empty()) {
      const char* env = std::getenv("DOCKER_API_VERSION");
      if (env && *env) pinned = env;
    }
    if (!pinned.empty()) {
      if (!valid_api_version(pinned))
        usage_error("Docker API version '" + pinned + "' is not of the form 1.41",
                    "fix or unset DOCKER_API_VERSION");
      negotiated = pinned;
      return;
    }
    // 1. GET /_ping, unversioned: the Api-Version header is the daemon's maximum.
    http::Request ping = plain("GET", "/_ping");
    ping.timeout = std::min(options.request_timeout, std::chrono::milliseconds(30000));
    http::Response pr = http::perform(endpoint, options.connect_timeout, ping);
    if (!is_ok(pr.status)) throw api_error(static_cast<int>(pr.status), pr.body, "the Docker engine at " + endpoint.text() + " is not healthy");
    std::string server_max = pr.header("api-version");
    // 2. /version: ApiVersion (if the ping did not say) and MinAPIVersion.
    std::string candidate;
    if (valid_api_version(server_max))
      candidate = compare_api_versions(server_max, kMaxApiVersion) < 0 ? server_max : std::string(kMaxApiVersion);
    http::Request vr = plain("GET", candidate.empty() ? "/version" : "/v" + candidate + "/version");
    http::Response vresp = http::perform(endpoint, options.connect_timeout, vr);
    json v;
    if (is_ok(vresp.status)) v = parse_body(vresp.body, "GET /version");
    if (!v.is_object()) v = json::object();
    if (!valid_api_version(server_max)) server_max = str(v, "ApiVersion");
    if (!valid_api_version(server_max)) server_max = std::string(kMaxApiVersion);  // as the Go client does
    std::string server_min = str(v, "MinAPIVersion");
    std::string use = compare_api_versions(server_max, kMaxApiVersion) < 0 ? server_max : std::string(kMaxApiVersion);
    if (compare_api_versions(use, kMinApiVersion) < 0) {
      throw DockerError(ErrorKind::DockerUnavailable, DockerErrc::TooOld,
                        "the Docker engine at " + endpoint.text() + " speaks API " + server_max + ", amlc needs at least " +
                            std::string(kMinApiVersion),
                        "upgrade Docker (Engine 19.03 or newer)");
    }
    if (valid_api_version(server_min) && compare_api_versions(use, server_min) < 0) {
      throw DockerError(ErrorKind::DockerUnavailable, DockerErrc::TooOld,
                        "the Docker engine at " + endpoint.text() + " requires API " + server_min +
                            " or newer, amlc speaks up to " + std::string(kMaxApiVersion),
                        "start the engine with DOCKER_MIN_API_VERSION=" + std::string(kMinApiVersion) +
                            ", or pin a version with DOCKER_API_VERSION");
    }
    negotiated = use;
    VersionInfo vi;
    vi.version = str(v, "Version");
    vi.api_version = server_max;
    vi.min_api_version = server_min;
    vi.negotiated = use;
    vi.os = str(v, "Os");
    vi.arch = str(v, "Arch");
    vi.kernel_version = str(v, "KernelVersion");
    vi.raw = v;
    info = vi;
  }

  BuildResult build(bool from_file, const fs::path& file, std::string_view mem, const BuildOptions& o) {
    if (o.tag.empty()) usage_error("an image build needs a tag");
    std::string q = "/build?t=" + url_encode(o.tag);
    for (const auto& t : o.extra_tags) q += "&t=" + url_encode(t);
    q += "&dockerfile=" + url_encode(o.dockerfile.empty() ? "Dockerfile" : o.dockerfile);
    q += "&rm=1&forcerm=1&pull=0";
    if (o.no_cache) q += "&nocache=1";
    if (!o.labels.empty()) q += "&labels=" + url_encode(json(o.labels).dump());
    if (!o.build_args.empty()) q += "&buildargs=" + url_encode(json(o.build_args).dump());
    if (!o.network_mode.empty()) q += "&networkmode=" + url_encode(o.network_mode);

    BuildStreamParser parser(o.on_line, o.keep_log_lines);
    http::Request req = plain("POST", path(q));
    req.timeout = std::chrono::milliseconds(0);
    req.content_type = "application/x-tar";
    req.has_body = true;
    if (from_file) req.body_file = file;
    else req.body = mem;
    req.sink = [&parser](std::string_view d) { parser.feed(d); };
    req.should_stop = o.should_stop;
    req.interruptible = true;
    send(req, "cannot build image " + o.tag);
    parser.finish();
    if (parser.failed()) {
      std::string hint = build_hint(parser.error());
      std::string message = "building image " + o.tag + " failed: " + trim(parser.error());
      auto tail = parser.tail();
      if (hint == missing_image_hint()) {
        // "Step 1/2 : FROM base:tag" as the last step: the base image is missing and cannot be pulled.
        for (auto it = tail.rbegin(); it != tail.rend(); ++it) {
          if (!starts_with(*it, "Step ")) continue;
          auto pos = it->find(" : FROM ");
          if (pos != std::string::npos) {
            std::string base = trim(it->substr(pos + 8));
            base = base.substr(0, base.find(' '));
            message = "building image " + o.tag + " failed: the base image " + base +
                      " does not exist locally and cannot be pulled (" + trim(parser.error()) + ")";
          }
          break;
        }
      }
      throw BuildFailed(message, hint, std::move(tail));
    }
    BuildResult result;
    result.image_id = parser.image_id();
    result.log_tail = parser.tail();
    if (result.image_id.empty()) {
      http::Request ir = plain("GET", path("/images/" + encode_ref(o.tag) + "/json"));
      http::Response r = send(ir, "building image " + o.tag + " produced no image");
      result.image_id = str(parse_body(r.body, "inspect image"), "Id");
    }
    return result;
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
};

Client::Client() : Client(endpoint_from_env()) {}
Client::Client(Endpoint endpoint, ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->endpoint = std::move(endpoint);
  impl_->options = std::move(options);
}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
const Endpoint& Client::endpoint() const { return impl_->endpoint; }

void Client::ping() {
  http::Request req = impl_->plain("GET", "/_ping");
  req.timeout = std::min(impl_->options.request_timeout, std::chrono::milliseconds(30000));
  impl_->send(req, "the Docker engine at " + impl_->endpoint.text() + " is not healthy");
}

std::string Client::api_version() { return impl_->ver(); }

VersionInfo Client::version() {
  impl_->ver();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->info) return *impl_->info;
  }
  // Pinned version: fetch /version with it.
  http::Request req = impl_->plain("GET", impl_->path("/version"));
  json v = parse_body(impl_->send(req, "GET /version").body, "GET /version");
  VersionInfo vi;
  vi.version = str(v, "Version");
  vi.api_version = str(v, "ApiVersion");
  vi.min_api_version = str(v, "MinAPIVersion");
  vi.negotiated = impl_->ver();
  vi.os = str(v, "Os");
  vi.arch = str(v, "Arch");
  vi.kernel_version = str(v, "KernelVersion");
  vi.raw = v;
  return vi;
}

// --- images

BuildResult Client::build_image_from_file(const fs::path& context_tar, const BuildOptions& options) {
  return impl_->build(true, context_tar, {}, options);
}

BuildResult Client::build_image_from_memory(std::string_view context_tar, const BuildOptions& options) {
  return impl_->build(false, {}, context_tar, options);
}

std::optional<ImageInfo> Client::inspect_image(const std::string& ref) {
  http::Request req = impl_->plain("GET", impl_->path("/images/" + encode_ref(ref) + "/json"));
  http::Response r = impl_->send(req, "cannot inspect image " + ref, {404});
  if (r.status == 404) return std::nullopt;
  return image_from_inspect(parse_body(r.body, "inspect image"));
}

bool Client::image_exists(const std::string& ref) { return inspect_image(ref).has_value(); }

ImageInfo Client::require_image(const std::string& ref) {
  auto info = inspect_image(ref);
  if (!info)
    throw DockerError(ErrorKind::NotFound, DockerErrc::ImageNotFound,
                      "image " + ref + " does not exist in the Docker engine at " + impl_->endpoint.text(),
                      missing_image_hint(), {}, 404);
  return *info;
}

bool Client::remove_image(const std::string& ref, const RemoveOptions& options) {
  http::Request req = impl_->plain(
      "DELETE", impl_->path("/images/" + encode_ref(ref) + "?force=" + (options.force ? "1" : "0") + "&noprune=0"));
  http::Response r = impl_->send(req, "cannot remove image " + ref, {404});
  if (r.status == 404) {
    if (options.missing_ok) return false;
    throw api_error(404, r.body, "cannot remove image " + ref);
  }
  return true;
}

std::vector<ImageInfo> Client::list_images(const Labels& label_filter) {
  std::string q = "/images/json";
  if (!label_filter.empty()) q += "?filters=" + url_encode(label_filters(label_filter));
  http::Request req = impl_->plain("GET", impl_->path(q));
  json arr = parse_body(impl_->send(req, "cannot list images").body, "list images");
  std::vector<ImageInfo> out;
  if (arr.is_array())
    for (const auto& j : arr) out.push_back(image_from_summary(j));
  return out;
}

// --- containers

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
  return impl_->container_from_inspect(parse_body(r.body, "inspect container"));
}

std::optional<ContainerInfo> Client::find_container(const std::string& id_or_name) {
  http::Request req = impl_->plain("GET", impl_->path("/containers/" + url_encode(id_or_name) + "/json"));
  http::Response r = impl_->send(req, "cannot inspect container " + id_or_name, {404});
  if (r.status == 404) return std::nullopt;
  return impl_->container_from_inspect(parse_body(r.body, "inspect container"));
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

namespace {
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
}  // namespace

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

void Client::put_archive(const std::string& id, const std::string& path, std::string_view tar) {
  http::Request req = impl_->plain(
      "PUT", impl_->path("/containers/" + url_encode(id) + "/archive?path=" + url_encode(path)));
  req.timeout = std::chrono::milliseconds(0);
  req.interruptible = true;
  req.content_type = "application/x-tar";
  req.has_body = true;
  req.body = tar;
  impl_->send(req, "cannot copy files into container " + id + " at " + path);
}

void Client::put_archive_file(const std::string& id, const std::string& path, const fs::path& tar_file) {
  http::Request req = impl_->plain(
      "PUT", impl_->path("/containers/" + url_encode(id) + "/archive?path=" + url_encode(path)));
  req.timeout = std::chrono::milliseconds(0);
  req.interruptible = true;
  req.content_type = "application/x-tar";
  req.has_body = true;
  req.body_file = tar_file;
  impl_->send(req, "cannot copy files into container " + id + " at " + path);
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

json Client::call_json(const std::string& method, const std::string& path_and_query, const json& body) {
  http::Request req = impl_->plain(method, impl_->path(path_and_query));
  std::string text;
  if (!body.is_null()) {
    text = body.dump();
    req.content_type = "application/json";
    req.has_body = true;
    req.body = text;
  }
  http::Response r = impl_->send(req, method + " " + path_and_query + " failed");
  return parse_body(r.body, method + " " + path_and_query);
}

}  // namespace amlc::docker
