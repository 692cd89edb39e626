// A small libcurl HTTP client for talking to local scoring services (127.0.0.1 only).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace amlc::deploy {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
};

// Sends one request. Returns nullopt when no HTTP answer came (refused, reset, timeout); `error` gets why.
std::optional<HttpResponse> http_request(const std::string& method, const std::string& url, const std::string& body,
                                         const std::vector<std::string>& headers, long timeout_ms,
                                         std::string* error = nullptr);

// Is a TCP port on 127.0.0.1 free to listen on? And a free port chosen by the kernel.
bool local_port_free(int port);
int pick_free_port();

}  // namespace amlc::deploy
