// Mapping of transport failures and daemon answers to typed amlc errors (public so tests can hit every branch).
#pragma once

#include <string>
#include <string_view>

#include "amlc/docker/client.hpp"

namespace amlc::docker {

// A request never got an HTTP answer. curl_code is a CURLcode, os_errno is CURLINFO_OS_ERRNO (0 if unknown).
// ENOENT/ECONNREFUSED/timeouts -> DockerUnavailable ("no Docker engine answers at <endpoint>");
// EACCES/EPERM -> DockerUnavailable with a docker-group/root hint.
DockerError connect_error(const Endpoint& endpoint, int curl_code, long os_errno, std::string_view curl_message);

// The daemon's error text from an error body: {"message": "..."} or the plain text.
std::string daemon_message(int status, std::string_view body);

// A non-2xx answer. `what` describes the operation ("cannot start container web").
DockerError api_error(int status, std::string_view body, std::string_view what);

// The port number in a "port is already allocated" / "address already in use" message (0 if none found).
int port_in_message(std::string_view message);

// The hint given whenever an image is missing: nothing can be pulled here.
std::string missing_image_hint();

}  // namespace amlc::docker
