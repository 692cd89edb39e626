// The Docker Engine over amlc's HTTP transport (net/http.hpp): a request names a path on the engine's endpoint
// (Unix socket or tcp://), and a transport failure becomes a DockerError (no engine, timeout, interrupted, a broken
// answer). Internal to lib/amlc/docker.
#pragma once

#include <chrono>
#include <string>

#include "amlc/docker/client.hpp"
#include "amlc/net/http.hpp"

namespace amlc::docker::http {

struct Request : net::Request {
  std::string target;  // path + query, already versioned ("/v1.41/containers/json?all=1")
};
using Response = net::Response;

// Performs the request. Throws DockerUnavailable (no connection), Interrupted (SIGINT/SIGTERM when interruptible,
// or should_stop), or General (transport error, answer too large). With allow_timeout, an expired Request::timeout
// returns a Response with timed_out() instead of throwing.
Response perform(const Endpoint& endpoint, std::chrono::milliseconds connect_timeout, const Request& request,
                 bool allow_timeout = false);

}  // namespace amlc::docker::http
