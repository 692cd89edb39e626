// A tiny fake Docker Engine for unit tests: an HTTP/1.1 server on a Unix socket in a temp dir, run in a
// thread, one request per connection (Connection: close). A handler maps each request to a scripted answer;
// every request is recorded (method, target, headers, body) so tests can assert what the client sent.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "amlc/core/util.hpp"
#include "amlc/docker/client.hpp"

namespace amlc::test {

struct FakeRequest {
  std::string method;
  std::string target;                          // "/v1.41/containers/json?all=1"
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool has(const std::string& h) const { return headers.count(h) != 0; }
  std::string header(const std::string& h) const {
    auto it = headers.find(h);
    return it == headers.end() ? std::string{} : it->second;
  }
  // The path without the query.
  std::string path() const { return target.substr(0, target.find('?')); }
};

struct FakeResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> chunks;  // body pieces; with `chunked`, each is one HTTP chunk written separately
  bool chunked = false;
  bool hang = false;  // send nothing; keep the connection open until the client goes away or the server stops

  static FakeResponse json(int status, const std::string& body) {
    FakeResponse r;
    r.status = status;
    r.headers.push_back({"Content-Type", "application/json"});
    r.chunks.push_back(body);
    return r;
  }
  static FakeResponse error(int status, const std::string& message) {
    std::string escaped;
    for (char c : message) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    return json(status, "{\"message\":\"" + escaped + "\"}\n");
  }
};

class FakeDockerServer {
 public:
  using Handler = std::function<std::optional<FakeResponse>(const FakeRequest&)>;

  // `handler` answers everything except /_ping and /version (unless it returns a value for them);
  // those get `api_version` / `min_api_version`.
  explicit FakeDockerServer(Handler handler, std::string api_version = "1.41", std::string min_api_version = "1.12")
      : handler_(std::move(handler)), api_(std::move(api_version)), min_api_(std::move(min_api_version)) {
    char tmpl[] = "/tmp/amlc-fakedocker-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    socket_path_ = dir_ + "/docker.sock";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, 16) != 0)
      throw std::runtime_error("cannot listen on " + socket_path_ + ": " + std::strerror(errno));
    if (::pipe(stop_pipe_) != 0) throw std::runtime_error("pipe failed");
    thread_ = std::thread([this] { loop(); });
  }

  ~FakeDockerServer() {
    char c = 'x';
    (void)!::write(stop_pipe_[1], &c, 1);
    thread_.join();
    ::close(listen_fd_);
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  FakeDockerServer(const FakeDockerServer&) = delete;
  FakeDockerServer& operator=(const FakeDockerServer&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  docker::Endpoint endpoint() const {
    docker::Endpoint ep;
    ep.scheme = docker::Endpoint::Scheme::Unix;
    ep.socket_path = socket_path_;
    return ep;
  }
  std::vector<FakeRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // The recorded requests other than the negotiation (/_ping, /version).
  std::vector<FakeRequest> api_requests() const {
    std::vector<FakeRequest> out;
    for (auto& r : requests())
      if (r.path() != "/_ping" && r.path().find("/version") == std::string::npos) out.push_back(r);
    return out;
  }

 private:
  void loop() {
    while (true) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      if (fds[0].revents & POLLIN) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        serve(fd);
        ::close(fd);
      }
    }
  }

  // Reads until `buf` holds at least `n` bytes; false on EOF/error.
  static bool read_more(int fd, std::string& buf) {
    char tmp[65536];
    ssize_t got = ::read(fd, tmp, sizeof(tmp));
    if (got <= 0) return false;
    buf.append(tmp, static_cast<size_t>(got));
    return true;
  }

  static void write_all(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  void serve(int fd) {
    std::string buf;
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
      if (!read_more(fd, buf)) return;
    FakeRequest req;
    std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);
    auto lines = split(head, '\n');
    for (auto& l : lines)
      if (!l.empty() && l.back() == '\r') l.pop_back();
    auto parts = split(lines[0], ' ');
    req.method = parts.size() > 0 ? parts[0] : "";
    req.target = parts.size() > 1 ? parts[1] : "";
    for (size_t i = 1; i < lines.size(); ++i) {
      auto colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      req.headers[to_lower(lines[i].substr(0, colon))] = trim(lines[i].substr(colon + 1));
    }
    if (req.has("content-length")) {
      size_t len = std::stoul(req.header("content-length"));
      while (buf.size() < len)
        if (!read_more(fd, buf)) break;
      req.body = buf.substr(0, len);
    } else if (to_lower(req.header("transfer-encoding")) == "chunked") {
      while (true) {
        size_t nl;
        while ((nl = buf.find("\r\n")) == std::string::npos)
          if (!read_more(fd, buf)) return;
        size_t size = std::stoul(buf.substr(0, nl), nullptr, 16);
        while (buf.size() < nl + 2 + size + 2)
          if (!read_more(fd, buf)) return;
        req.body.append(buf, nl + 2, size);
        buf.erase(0, nl + 2 + size + 2);
        if (size == 0) break;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
    }
    std::optional<FakeResponse> resp = handler_ ? handler_(req) : std::nullopt;
    if (!resp) resp = builtin(req);
    if (resp->hang) {
      pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      while (::poll(fds, 2, -1) > 0) {
        if (fds[1].revents) return;
        char tmp[256];
        if (::read(fd, tmp, sizeof(tmp)) <= 0) return;
      }
      return;
    }
    std::string out = "HTTP/1.1 " + std::to_string(resp->status) + " X\r\n";
    for (auto& [k, v] : resp->headers) out += k + ": " + v + "\r\n";
    out += "Connection: close\r\n";
    if (resp->chunked) {
      out += "Transfer-Encoding: chunked\r\n\r\n";
      write_all(fd, out);
      for (auto& c : resp->chunks) {
        if (c.empty()) continue;
        char size[32];
        std::snprintf(size, sizeof(size), "%zx\r\n", c.size());
        write_all(fd, std::string(size) + c + "\r\n");
      }
      write_all(fd, "0\r\n\r\n");
    } else {
      std::string body;
      for (auto& c : resp->chunks) body += c;
      out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
      write_all(fd, out + body);
    }
  }

  FakeResponse builtin(const FakeRequest& req) {
    if (req.path() == "/_ping") {
      FakeResponse r;
      if (!api_.empty()) r.headers.push_back({"Api-Version", api_});
      r.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
      r.chunks.push_back("OK");
      return r;
    }
    if (req.path().size() >= 8 && req.path().substr(req.path().size() - 8) == "/version") {
      return FakeResponse::json(200, "{\"Version\":\"99.0.0-fake\",\"ApiVersion\":\"" + (api_.empty() ? "1.41" : api_) +
                                         "\",\"MinAPIVersion\":\"" + min_api_ +
                                         "\",\"Os\":\"linux\",\"Arch\":\"amd64\",\"KernelVersion\":\"6.1\"}");
    }
    return FakeResponse::error(404, "page not found");
  }

  Handler handler_;
  std::string api_;
  std::string min_api_;
  std::string dir_;
  std::string socket_path_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<FakeRequest> requests_;
};

}  // namespace amlc::test
