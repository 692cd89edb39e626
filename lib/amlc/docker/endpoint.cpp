// Where the engine is: DOCKER_HOST (unix:///path, tcp://host:port, host:port) parsed into an Endpoint.
#include <cstdlib>

#include "amlc/core/error.hpp"
#include "amlc/core/util.hpp"
#include "amlc/docker/client.hpp"

namespace amlc::docker {

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

}  // namespace amlc::docker
