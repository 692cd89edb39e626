// What the files behind docker::Client share (client.cpp, images.cpp, containers.cpp): the client's state and
// transport (Client::Impl: sending, API version negotiation, the build, archive uploads) and the readers
// of the engine's JSON. Not for use outside lib/amlc/docker.
#pragma once

#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/docker/client.hpp"
#include "amlc/docker/http.hpp"

namespace amlc::docker {

using nlohmann::json;

struct Client::Impl {
  Endpoint endpoint;
  ClientOptions options;
  std::mutex mu;
  std::string negotiated;  // guarded by mu
  std::optional<VersionInfo> info;

  // Performs `req`; a status other than 2xx and `also_ok` throws (api_error, with `what`).
  http::Response send(http::Request& req, std::string_view what, std::initializer_list<long> also_ok = {},
                      bool allow_timeout = false);
  // A request with the client's default timeout.
  http::Request plain(std::string method, std::string target);
  // The negotiated API version (negotiating on first use), and a path under it ("/v1.41" + p).
  std::string ver();
  std::string path(const std::string& p);
  void negotiate_locked();

  // images.cpp: POST /build with the context from a file or from memory; the stream parsed; BuildFailed on error.
  BuildResult build(bool from_file, const fs::path& file, std::string_view mem, const BuildOptions& o);
  // containers.cpp: PUT /containers/ID/archive with the tar from memory, or from `tar_file` when given.
  void put_archive(const std::string& id, const std::string& path, std::string_view tar, const fs::path* tar_file);
};

namespace detail {

bool is_ok(long status);
// The engine's answer as JSON (null for an empty body); Protocol error naming `what` if it is not JSON.
json parse_body(const std::string& body, std::string_view what);
// Lenient readers: a missing or mistyped member gives an empty value.
std::string str(const json& j, const char* key);
Labels labels_of(const json& j);
std::vector<std::string> strings_of(const json& j);
std::string strip_slash(std::string s);  // "/name" -> "name"

}  // namespace detail

}  // namespace amlc::docker
