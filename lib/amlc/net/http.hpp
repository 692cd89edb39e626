// amlc's one HTTP/1.1 client (libcurl), for the two peers it talks to, both on this machine: the Docker Engine
// (over its Unix socket, or plain tcp://; docker/http.* adds the engine's paths and error mapping) and the local
// scoring services on 127.0.0.1 (deploy/). No proxies, no redirects, no signals (CURLOPT_NOSIGNAL).
//
//   net::Request req;
//   req.url = "http://127.0.0.1:5001/score";              // or unix_socket = "/var/run/docker.sock"
//   req.method = "POST"; req.content_type = "application/json"; req.has_body = true; req.body = text;
//   req.timeout = std::chrono::seconds(60);
//   net::Response r = net::perform(req);                  // r.answered() ? r.status, r.body : r.error
//
// A transport failure (no connection, timeout, a cut answer) is not thrown: it is the Response's outcome, for the
// caller to map (docker/ to DockerError, deploy/ to "no answer"). What is thrown: an exception raised by the
// request's own sink or should_stop, and a General error when the body file cannot be opened.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace amlc::net {

struct Request {
  std::string method = "GET";
  std::string url;          // "http://127.0.0.1:5001/"; with unix_socket, the host is a placeholder ("localhost")
  std::string unix_socket;  // non-empty: connect to this Unix socket instead of the URL's host and port
  std::string content_type;
  std::vector<std::string> headers;  // more "Name: value" lines
  // Body: either memory (has_body, body) or a file (has_body, body_file non-empty), sent with a Content-Length.
  bool has_body = false;
  std::string_view body;
  std::filesystem::path body_file;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{0};  // the whole transfer; 0 = none (streaming / blocking calls)
  // A collected body (every non-2xx answer, and 2xx answers without a sink) longer than this ends the transfer:
  // Outcome::TooLarge.
  size_t max_body = size_t{64} << 20;
  // If set, a 2xx body is streamed here instead of being collected.
  std::function<void(std::string_view)> sink;
  // Polled from the transfer callbacks (about once a second when idle): true aborts (Outcome::Stopped).
  std::function<bool()> should_stop;
  // Also abort on amlc::interrupted() (SIGINT/SIGTERM): for long or unbounded calls. Short bounded calls leave it
  // off, so that cleanup after Ctrl-C still works.
  bool interruptible = false;
};

enum class Outcome {
  Answered,      // a whole HTTP answer came (any status)
  NoConnection,  // never connected: refused, no such socket, host not found, connect timeout
  TimedOut,      // connected, but Request::timeout expired first
  Stopped,       // should_stop or an interrupt ended it
  TooLarge,      // the collected body passed Request::max_body
  Failed,        // connected, then the transfer broke (reset, malformed answer, ...)
};

struct Response {
  Outcome outcome = Outcome::Answered;
  long status = 0;                             // 0 when no status line came
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // collected body (always for non-2xx answers)
  std::string content_type;
  // Transport failures: libcurl's code and text, its error buffer, and the OS errno of a failed connect (0 if
  // unknown).
  int curl_code = 0;
  std::string error;
  std::string detail;
  long os_errno = 0;

  bool answered() const { return outcome == Outcome::Answered; }
  bool timed_out() const { return outcome == Outcome::TimedOut; }
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

Response perform(const Request& request);

}  // namespace amlc::net
