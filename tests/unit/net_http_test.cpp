// Unit tests of amlc's HTTP transport (net/http.hpp) and port probes (net/ports.hpp): against the fake engine's
// Unix-socket HTTP server and plain TCP sockets on 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <fstream>

#include <doctest/doctest.h>

#include "amlc/core/fs.hpp"
#include "amlc/docker/client.hpp"
#include "amlc/net/http.hpp"
#include "amlc/net/ports.hpp"
#include "docker_fake_server.hpp"

using namespace amlc;
using amlc::test::FakeDockerServer;
using amlc::test::FakeRequest;
using amlc::test::FakeResponse;

namespace {

net::Request unix_request(const FakeDockerServer& srv, const std::string& target) {
  net::Request r;
  r.url = "http://localhost" + target;
  r.unix_socket = srv.socket_path();
  r.timeout = std::chrono::seconds(60);
  return r;
}

FakeResponse text(int status, std::string body) {
  FakeResponse r;
  r.status = status;
  r.headers.push_back({"Content-Type", "text/plain"});
  r.chunks.push_back(std::move(body));
  return r;
}

// A TCP socket listening on 127.0.0.1 (a free port) that never accepts nor answers.
struct SilentListener {
  Fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  int port = 0;
  SilentListener() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd.get(), 8) == 0);
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
};

}  // namespace

TEST_CASE("net http: method, headers, body and content type go out - status, headers and body come back") {
  FakeDockerServer srv([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() == "/score") return text(201, "echo:" + r.body);
    return std::nullopt;
  });
  net::Request req = unix_request(srv, "/score?x=1");
  req.method = "POST";
  req.content_type = "application/json";
  req.headers = {"Authorization: Bearer k1"};
  req.has_body = true;
  req.body = R"({"data": [1]})";
  net::Response r = net::perform(req);
  REQUIRE(r.answered());
  CHECK(r.status == 201);
  CHECK(r.body == R"(echo:{"data": [1]})");
  CHECK(r.content_type == "text/plain");
  CHECK(r.header("content-type") == "text/plain");
  FakeRequest sent = srv.requests().at(0);
  CHECK(sent.method == "POST");
  CHECK(sent.target == "/score?x=1");
  CHECK(sent.header("authorization") == "Bearer k1");
  CHECK(sent.header("content-type") == "application/json");
  CHECK(sent.header("content-length") == "13");
  CHECK(sent.header("user-agent").rfind("amlc/", 0) == 0);
  CHECK_FALSE(sent.has("expect"));
}

TEST_CASE("net http: a body file is sent whole with its size - a 2xx body goes to the sink, an error body is collected") {
  FakeDockerServer srv([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() == "/upload") return text(200, "got " + std::to_string(r.body.size()));
    if (r.path() == "/missing") return text(404, "no such thing");
    return std::nullopt;
  });
  TempDir tmp;
  const std::string content(300000, 'q');
  std::ofstream(tmp.path() / "body.bin", std::ios::binary) << content;
  net::Request req = unix_request(srv, "/upload");
  req.method = "PUT";
  req.has_body = true;
  req.body_file = tmp.path() / "body.bin";
  std::string streamed;
  req.sink = [&](std::string_view d) { streamed.append(d); };
  net::Response r = net::perform(req);
  REQUIRE(r.answered());
  CHECK(streamed == "got 300000");
  CHECK(r.body.empty());
  CHECK(srv.requests().at(0).body == content);

  net::Request miss = unix_request(srv, "/missing");
  miss.sink = [&](std::string_view) { FAIL("an error body must not reach the sink"); };
  net::Response m = net::perform(miss);
  CHECK(m.status == 404);
  CHECK(m.body == "no such thing");

  req.body_file = tmp.path() / "absent.bin";
  CHECK_THROWS_AS(net::perform(req), Error);
}

TEST_CASE("net http: a collected body over max_body ends the transfer as TooLarge instead of being cut") {
  FakeDockerServer srv([](const FakeRequest&) -> std::optional<FakeResponse> { return text(500, std::string(5000, 'x')); });
  net::Request req = unix_request(srv, "/big");
  req.max_body = 4096;
  net::Response r = net::perform(req);
  CHECK(r.outcome == net::Outcome::TooLarge);
  CHECK_FALSE(r.answered());
  req.max_body = 5000;
  r = net::perform(req);
  CHECK(r.answered());
  CHECK(r.body.size() == 5000);
}

TEST_CASE("net http: the Docker client refuses an answer over 64 MiB with its size instead of reading a cut one") {
  FakeDockerServer srv([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() == "/v1.41/containers/json") return FakeResponse::json(200, "[" + std::string(65u << 20, ' ') + "]");
    return std::nullopt;
  });
  docker::Client dc(srv.endpoint());
  try {
    dc.list_containers();
    FAIL("expected an error");
  } catch (const docker::DockerError& e) {
    CHECK(e.code() == docker::DockerErrc::Protocol);
    CHECK(std::string(e.what()).find("sent more than 64 MiB in answer to GET /v1.41/containers/json") !=
          std::string::npos);
  }
}

TEST_CASE("net http: no listener is NoConnection with the errno - a silent one is TimedOut - should_stop is Stopped") {
  TempDir tmp;
  net::Request req;
  req.url = "http://localhost/x";
  req.unix_socket = (tmp.path() / "missing.sock").string();
  net::Response r = net::perform(req);
  CHECK(r.outcome == net::Outcome::NoConnection);
  CHECK(r.os_errno == ENOENT);
  CHECK_FALSE(r.error.empty());

  SilentListener silent;
  net::Request slow;
  slow.url = "http://127.0.0.1:" + std::to_string(silent.port) + "/";
  slow.timeout = std::chrono::milliseconds(300);
  r = net::perform(slow);
  CHECK(r.outcome == net::Outcome::TimedOut);
  CHECK(r.timed_out());

  FakeDockerServer srv([](const FakeRequest&) -> std::optional<FakeResponse> {
    FakeResponse h;
    h.hang = true;
    return h;
  });
  net::Request stop = unix_request(srv, "/hang");
  int polls = 0;
  stop.should_stop = [&] { return ++polls >= 2; };
  r = net::perform(stop);
  CHECK(r.outcome == net::Outcome::Stopped);
}

TEST_CASE("net ports: a picked port is free until something listens on it") {
  int port = net::pick_free_port();
  CHECK(port > 0);
  CHECK(net::local_port_free(port));
  SilentListener taken;
  CHECK_FALSE(net::local_port_free(taken.port));
  net::Request req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  req.timeout = std::chrono::seconds(30);
  CHECK(net::perform(req).outcome == net::Outcome::NoConnection);
}
