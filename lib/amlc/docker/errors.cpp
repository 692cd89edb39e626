#include "amlc/docker/errors.hpp"

#include <cerrno>
#include <cstring>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "amlc/core/json.hpp"
#include "amlc/core/util.hpp"

namespace amlc::docker {

namespace {
bool contains_ci(std::string_view hay, std::string_view needle) {
  return to_lower(hay).find(to_lower(needle)) != std::string::npos;
}
}  // namespace

std::string missing_image_hint() {
  return "nothing can be pulled here (no registry access): build the base image with `bash scripts/docker-setup.sh` "
         "(or load one with `docker import`/`docker load`), then build the image again";
}

DockerError connect_error(const Endpoint& endpoint, int curl_code, long os_errno, std::string_view curl_message) {
  std::string where = endpoint.text();
  std::string detail = "curl: " + std::string(curl_easy_strerror(static_cast<CURLcode>(curl_code)));
  if (!curl_message.empty()) detail += " (" + std::string(curl_message) + ")";
  if (os_errno != 0) detail += "; errno " + std::to_string(os_errno) + ": " + std::strerror(static_cast<int>(os_errno));
  if (os_errno == EACCES || os_errno == EPERM) {
    return DockerError(ErrorKind::DockerUnavailable, DockerErrc::PermissionDenied,
                       "permission denied while connecting to the Docker engine at " + where,
                       "run as root or add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log "
                       "in again), or set DOCKER_HOST to an engine you may use",
                       detail);
  }
  std::string hint = "start it (e.g. `dockerd --iptables=false &` or `bash scripts/docker-setup.sh`) or set DOCKER_HOST";
  if (endpoint.scheme == Endpoint::Scheme::Unix) {
    if (os_errno == ENOENT) detail += "; the socket " + endpoint.socket_path + " does not exist";
    if (os_errno == ECONNREFUSED) detail += "; the socket exists but nothing listens (stale socket?)";
  }
  return DockerError(ErrorKind::DockerUnavailable, DockerErrc::Unavailable, "no Docker engine answers at " + where,
                     hint, detail);
}

std::string daemon_message(int status, std::string_view body) {
  std::string text = trim(body);
  if (!text.empty() && text.front() == '{') {
    auto j = try_parse_json(text);
    if (!j.is_discarded() && j.is_object()) {
      if (auto it = j.find("message"); it != j.end() && it->is_string() && !it->get_ref<const std::string&>().empty())
        return trim(it->get<std::string>());
      return "the daemon answered HTTP " + std::to_string(status) + " without an error message";
    }
  }
  if (text.empty()) return "the daemon answered HTTP " + std::to_string(status) + " without an error message";
  if (text.size() > 2000) text = text.substr(0, 2000) + "...";
  return text;
}

int port_in_message(std::string_view message) {
  // "... Bind for 127.0.0.1:5001 failed: port is already allocated"
  // "... listen tcp4 127.0.0.1:5001: bind: address already in use"
  size_t pos = message.find("port is already allocated");
  if (pos == std::string_view::npos) pos = message.find("address already in use");
  if (pos == std::string_view::npos) pos = message.size();
  std::string_view head = message.substr(0, pos);
  // Last ":<digits>" before the phrase.
  for (size_t i = head.size(); i-- > 0;) {
    if (head[i] != ':') continue;
    size_t j = i + 1;
    int value = 0;
    size_t digits = 0;
    while (j < head.size() && head[j] >= '0' && head[j] <= '9' && digits < 6) {
      value = value * 10 + (head[j] - '0');
      ++j;
      ++digits;
    }
    if (digits > 0 && value > 0 && value < 65536) return value;
  }
  return 0;
}

DockerError api_error(int status, std::string_view body, std::string_view what) {
  std::string msg = daemon_message(status, body);
  std::string full = what.empty() ? msg : std::string(what) + ": " + msg;
  if (status == 404) {
    if (contains_ci(msg, "no such image") || contains_ci(msg, "pull access denied") ||
        contains_ci(msg, "repository does not exist")) {
      return DockerError(ErrorKind::NotFound, DockerErrc::ImageNotFound, full, missing_image_hint(), {}, status, msg);
    }
    return DockerError(ErrorKind::NotFound, DockerErrc::NotFound, full, {}, {}, status, msg);
  }
  if (contains_ci(msg, "port is already allocated") || contains_ci(msg, "address already in use")) {
    int port = port_in_message(msg);
    std::string m = port ? "port " + std::to_string(port) + " is already in use" : "a requested host port is already in use";
    return DockerError(ErrorKind::Conflict, DockerErrc::PortInUse, m,
                       "choose another port with --port, or omit --port to let Docker pick a free one", full, status,
                       msg);
  }
  if (status == 409) {
    std::string hint;
    if (contains_ci(msg, "is already in use")) hint = "remove the existing container or choose another name";
    else if (contains_ci(msg, "running container")) hint = "stop it first, or remove it with force";
    else if (contains_ci(msg, "image is being used") || contains_ci(msg, "is using its referenced image"))
      hint = "remove the containers that use the image first, or remove it with force";
    return DockerError(ErrorKind::Conflict, DockerErrc::Conflict, full, hint, {}, status, msg);
  }
  if (status == 400) {
    return DockerError(ErrorKind::General, DockerErrc::BadRequest, full, {}, {}, status, msg);
  }
  return DockerError(ErrorKind::General, DockerErrc::Daemon, full, {}, {}, status, msg);
}

}  // namespace amlc::docker
