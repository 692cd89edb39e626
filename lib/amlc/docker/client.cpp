// docker::Client's core: sending a request (api_error for a failed status), API version negotiation, the daemon
// calls (ping, version) and the generic call_json; the JSON readers shared by images.cpp and containers.cpp.
// Images are in images.cpp, containers in containers.cpp, DOCKER_HOST in endpoint.cpp.
#include <cstdlib>

#include "amlc/core/json.hpp"
#include "amlc/core/util.hpp"
#include "amlc/docker/client_impl.hpp"
#include "amlc/docker/errors.hpp"

namespace amlc::docker {

using namespace detail;

std::string BuildFailed::join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
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

// The VersionInfo of a /version answer.
VersionInfo version_info(const json& v, std::string api_version, std::string min_api_version, std::string negotiated) {
  VersionInfo vi;
  vi.version = str(v, "Version");
  vi.api_version = std::move(api_version);
  vi.min_api_version = std::move(min_api_version);
  vi.negotiated = std::move(negotiated);
  vi.os = str(v, "Os");
  vi.arch = str(v, "Arch");
  vi.kernel_version = str(v, "KernelVersion");
  vi.raw = v;
  return vi;
}

}  // namespace

namespace detail {

bool is_ok(long status) { return status >= 200 && status < 300; }

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

}  // namespace detail

std::string url_encode(std::string_view s) { return encode(s, ""); }
std::string encode_ref(std::string_view ref) { return encode(ref, "/:@"); }

std::string label_filters(const Labels& labels) {
  json arr = json::array();
  for (const auto& [k, v] : labels) arr.push_back(v.empty() ? k : k + "=" + v);
  json f = json::object();
  f["label"] = arr;
  return f.dump();
}

http::Response Client::Impl::send(http::Request& req, std::string_view what, std::initializer_list<long> also_ok,
                                          bool allow_timeout) {
  http::Response r = http::perform(endpoint, options.connect_timeout, req, allow_timeout);
  if (r.timed_out()) return r;
  if (is_ok(r.status)) return r;
  for (long s : also_ok)
    if (r.status == s) return r;
  throw api_error(static_cast<int>(r.status), r.body, what);
}

http::Request Client::Impl::plain(std::string method, std::string target) {
  http::Request req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.timeout = options.request_timeout;
  return req;
}

std::string Client::Impl::ver() {
  std::lock_guard<std::mutex> lock(mu);
  if (negotiated.empty()) negotiate_locked();
  return negotiated;
}

std::string Client::Impl::path(const std::string& p) { return "/v" + ver() + p; }

void Client::Impl::negotiate_locked() {
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
  info = version_info(v, server_max, server_min, use);
}


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
  return version_info(v, str(v, "ApiVersion"), str(v, "MinAPIVersion"), impl_->ver());
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
