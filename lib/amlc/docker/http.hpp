// Minimal HTTP/1.1 over libcurl for the Docker client: RAII handles, bodies from memory or a file,
// streaming sinks, interruption. Internal to lib/amlc/docker.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <curl/curl.h>

#include "amlc/docker/client.hpp"

namespace amlc::docker::http {

// Owns a CURL easy handle.
class Easy {
 public:
  Easy();
  ~Easy();
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;
  Easy(Easy&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  Easy& operator=(Easy&&) = delete;
  CURL* get() const { return h_; }

 private:
  CURL* h_;
};

// Owns a curl_slist.
class Slist {
 public:
  Slist() = default;
  ~Slist();
  Slist(const Slist&) = delete;
  Slist& operator=(const Slist&) = delete;
  void append(const std::string& line);
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

struct Request {
  std::string method = "GET";
  std::string target;  // path + query, already versioned ("/v1.41/containers/json?all=1")
  std::string content_type;
  // Body: either memory (body_set) or a file (body_file non-empty).
  bool has_body = false;
  std::string_view body;
  std::filesystem::path body_file;
  // 0 = no total timeout (streaming / blocking calls).
  std::chrono::milliseconds timeout{0};
  // If set, a 2xx body is streamed here instead of being collected.
  std::function<void(std::string_view)> sink;
  StopPredicate should_stop;
  // Long/unbounded calls abort on amlc::interrupted(); short bounded calls do not, so that cleanup after
  // Ctrl-C (stop, remove, inspect) still works.
  bool interruptible = false;
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // collected body (always for non-2xx answers)
  bool timed_out = false;                      // only when Request::timeout > 0 and allow_timeout
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

// Performs the request. Throws DockerUnavailable (no connection), Interrupted, or General (transport error).
// With allow_timeout, an expired Request::timeout returns a Response with timed_out=true instead of throwing.
Response perform(const Endpoint& endpoint, std::chrono::milliseconds connect_timeout, const Request& request,
                 bool allow_timeout = false);

}  // namespace amlc::docker::http
