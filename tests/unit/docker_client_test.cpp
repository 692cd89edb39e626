// Unit tests of the Docker client: stream decoders, error mapping, and the HTTP layer against a fake engine
// on a Unix socket (edge cases a real daemon does not produce on demand).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <fstream>

#include <curl/curl.h>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "amlc/core/fs.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/docker/client.hpp"
#include "amlc/docker/errors.hpp"
#include "amlc/docker/stream.hpp"
#include "docker_fake_server.hpp"

using namespace amlc;
using namespace amlc::docker;
using amlc::test::FakeDockerServer;
using amlc::test::FakeRequest;
using amlc::test::FakeResponse;

namespace {

// A multiplexed-stream frame.
std::string frame(int type, std::string_view payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(type);
  uint32_t n = static_cast<uint32_t>(payload.size());
  f[4] = static_cast<char>((n >> 24) & 0xff);
  f[5] = static_cast<char>((n >> 16) & 0xff);
  f[6] = static_cast<char>((n >> 8) & 0xff);
  f[7] = static_cast<char>(n & 0xff);
  return f + std::string(payload);
}

// Splits `s` into pieces of `n` bytes.
std::vector<std::string> pieces(const std::string& s, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size(); i += n) out.push_back(s.substr(i, n));
  return out;
}

template <class F>
DockerError catch_docker(F&& f) {
  try {
    f();
  } catch (const DockerError& e) {
    return e;
  }
  FAIL("expected a DockerError");
  throw std::logic_error("unreachable");
}

struct EnvGuard {
  std::string name;
  std::optional<std::string> old;
  EnvGuard(std::string n, const char* value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    if (value) setenv(name.c_str(), value, 1);
    else unsetenv(name.c_str());
  }
  ~EnvGuard() {
    if (old) setenv(name.c_str(), old->c_str(), 1);
    else unsetenv(name.c_str());
  }
};

const std::string kBuildOutput =
    "{\"stream\":\"Step 1/3 : FROM amlc/python:3-bookworm\"}\r\n"
    "{\"stream\":\"\\n\"}\r\n"
    "{\"stream\":\" ---\\u003e 1a2b3c\\n\"}\r\n"
    "{\"stream\":\"Step 2/3 : RUN python3 -c 'boom'\\n\"}\r\n"
    "{\"stream\":\"\\u001b[91mTraceback (most recent call last):\\n  File \\\"\\u003cstring\\u003e\\\"\"}\r\n"
    "{\"stream\":\", line 1\\nNameError: name 'boom' is not defined\\n\\u001b[0m\"}\r\n"
    "{\"errorDetail\":{\"code\":1,\"message\":\"The command '/bin/sh -c python3 -c 'boom'' returned a non-zero code: 1\"},"
    "\"error\":\"The command '/bin/sh -c python3 -c 'boom'' returned a non-zero code: 1\"}\r\n";

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Pure decoders

TEST_CASE("docker stream: JSON-lines build progress split at every byte, errorDetail at the end") {
  for (size_t n : {size_t{1}, size_t{3}, size_t{7}, size_t{64}, kBuildOutput.size()}) {
    CAPTURE(n);
    std::vector<std::string> lines;
    BuildStreamParser p([&](std::string_view l) { lines.emplace_back(l); }, 3);
    for (auto& piece : pieces(kBuildOutput, n)) p.feed(piece);
    p.finish();
    REQUIRE(lines.size() == 6);
    CHECK(lines[0] == "Step 1/3 : FROM amlc/python:3-bookworm");
    CHECK(lines[1] == " ---> 1a2b3c");
    CHECK(lines[3] == "Traceback (most recent call last):");  // ANSI red removed
    CHECK(lines[4] == "  File \"<string>\", line 1");          // a line split across two JSON objects
    CHECK(lines[5] == "NameError: name 'boom' is not defined");
    CHECK(p.failed());
    CHECK(p.error() == "The command '/bin/sh -c python3 -c 'boom'' returned a non-zero code: 1");
    CHECK(p.tail() == std::vector<std::string>{lines[3], lines[4], lines[5]});
  }
}

TEST_CASE("docker stream: build success takes the last aux.ID, LF-only lines (Podman) work too") {
  std::string s =
      "{\"stream\":\"Step 1/1 : FROM x\\n\"}\n{\"aux\":{\"ID\":\"sha256:aaa\"}}\n{\"aux\":{\"ID\":\"sha256:bbb\"}}\n"
      "{\"stream\":\"Successfully built bbb\\n\"}\n{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1}}\n"
      "not json at all";
  std::vector<std::string> lines;
  BuildStreamParser p([&](std::string_view l) { lines.emplace_back(l); }, 10);
  for (char c : s) p.feed(std::string_view(&c, 1));
  p.finish();
  CHECK_FALSE(p.failed());
  CHECK(p.image_id() == "sha256:bbb");
  CHECK(lines == std::vector<std::string>{"Step 1/1 : FROM x", "Successfully built bbb", "not json at all"});
}

TEST_CASE("docker stream: multiplexed log frames split across reads, several frames per read") {
  std::string stream = frame(1, "hello\n") + frame(2, "err\n") + frame(1, std::string(70000, 'x')) +
                       frame(0, "in") + frame(2, "") + frame(1, "tail");
  for (size_t n : {size_t{1}, size_t{5}, size_t{8}, size_t{9}, size_t{4096}, stream.size()}) {
    CAPTURE(n);
    std::string out, err;
    size_t calls = 0;
    LogDemuxer d([&](LogStream s, std::string_view data) {
      ++calls;
      CHECK_FALSE(data.empty());
      (s == LogStream::Stderr ? err : out).append(data);
    });
    for (auto& piece : pieces(stream, n)) d.feed(piece);
    CHECK_FALSE(d.incomplete());
    CHECK(out == "hello\n" + std::string(70000, 'x') + "intail");
    CHECK(err == "err\n");
    CHECK(d.system_error().empty());
  }
  // Truncated in the middle of a header.
  LogDemuxer d([](LogStream, std::string_view) {});
  d.feed(frame(1, "abc").substr(0, 5));
  CHECK(d.incomplete());
}

TEST_CASE("docker stream: TTY (raw) logs pass through, stream type 3 is a daemon error") {
  std::string out;
  LogDemuxer raw([&](LogStream s, std::string_view d) {
    CHECK(s == LogStream::Stdout);
    out.append(d);
  }, true);
  const std::string text("\x01\x00\x00\x00plain tty text", 18);
  raw.feed(text);
  CHECK(out == text);

  LogDemuxer mux([](LogStream, std::string_view) {});
  mux.feed(frame(3, "error from daemon: log driver broke"));
  CHECK(mux.system_error() == "error from daemon: log driver broke");
}

TEST_CASE("docker stream: strip_ansi") {
  CHECK(strip_ansi("\x1b[91mred\x1b[0m plain \x1b[1;32mgreen") == "red plain green");
  CHECK(strip_ansi("no codes") == "no codes");
}

// ---------------------------------------------------------------------------------------------------------------
// Error mapping

TEST_CASE("docker errors: connect failures map to DockerUnavailable with actionable hints") {
  Endpoint ep;  // unix:///var/run/docker.sock
  DockerError missing = connect_error(ep, CURLE_COULDNT_CONNECT, ENOENT, "");
  CHECK(missing.kind() == ErrorKind::DockerUnavailable);
  CHECK(missing.code() == DockerErrc::Unavailable);
  CHECK(std::string(missing.what()) == "no Docker engine answers at unix:///var/run/docker.sock");
  CHECK(missing.hint() ==
        "start it (e.g. `dockerd --iptables=false &` or `bash scripts/docker-setup.sh`) or set DOCKER_HOST");
  CHECK(missing.detail().find("does not exist") != std::string::npos);
  CHECK(exit_code(missing.kind()) == 5);

  DockerError refused = connect_error(ep, CURLE_COULDNT_CONNECT, ECONNREFUSED, "");
  CHECK(refused.code() == DockerErrc::Unavailable);
  CHECK(refused.detail().find("stale socket") != std::string::npos);

  DockerError denied = connect_error(ep, CURLE_COULDNT_CONNECT, EACCES, "Permission denied");
  CHECK(denied.kind() == ErrorKind::DockerUnavailable);
  CHECK(denied.code() == DockerErrc::PermissionDenied);
  CHECK(std::string(denied.what()).find("permission denied") != std::string::npos);
  CHECK(denied.hint().find("docker` group") != std::string::npos);
  CHECK(denied.hint().find("root") != std::string::npos);

  Endpoint tcp = parse_endpoint("tcp://127.0.0.1:1");
  CHECK(std::string(connect_error(tcp, CURLE_COULDNT_CONNECT, ECONNREFUSED, "").what()) ==
        "no Docker engine answers at tcp://127.0.0.1:1");
}

TEST_CASE("docker errors: HTTP statuses map to kinds and messages") {
  DockerError img = api_error(404, R"({"message":"No such image: nope:latest"})", "cannot create container x");
  CHECK(img.kind() == ErrorKind::NotFound);
  CHECK(img.code() == DockerErrc::ImageNotFound);
  CHECK(std::string(img.what()) == "cannot create container x: No such image: nope:latest");
  CHECK(img.hint().find("nothing can be pulled") != std::string::npos);
  CHECK(img.hint().find("bash scripts/docker-setup.sh") != std::string::npos);
  CHECK(img.http_status() == 404);

  DockerError ctr = api_error(404, R"({"message":"No such container: abc"})", "");
  CHECK(ctr.kind() == ErrorKind::NotFound);
  CHECK(ctr.code() == DockerErrc::NotFound);
  CHECK(ctr.daemon_message() == "No such container: abc");

  DockerError name = api_error(
      409,
      R"({"message":"Conflict. The container name \"/web\" is already in use by container \"123\". You have to remove (or rename) that container to be able to reuse that name."})",
      "cannot create container web");
  CHECK(name.kind() == ErrorKind::Conflict);
  CHECK(name.code() == DockerErrc::Conflict);
  CHECK(name.hint().find("choose another name") != std::string::npos);

  DockerError port = api_error(
      500,
      R"({"message":"driver failed programming external connectivity on endpoint web (abc): Bind for 127.0.0.1:5001 failed: port is already allocated"})",
      "cannot start container web");
  CHECK(port.kind() == ErrorKind::Conflict);
  CHECK(port.code() == DockerErrc::PortInUse);
  CHECK(std::string(port.what()) == "port 5001 is already in use");
  CHECK(port.hint().find("--port") != std::string::npos);

  DockerError addr = api_error(
      500, R"({"message":"Error starting userland proxy: listen tcp4 127.0.0.1:18080: bind: address already in use"})",
      "");
  CHECK(addr.code() == DockerErrc::PortInUse);
  CHECK(std::string(addr.what()) == "port 18080 is already in use");

  DockerError other = api_error(500, R"({"message":"something broke"})", "cannot start container web");
  CHECK(other.kind() == ErrorKind::General);
  CHECK(std::string(other.what()) == "cannot start container web: something broke");

  DockerError text = api_error(502, "<html>bad gateway</html>", "x");
  CHECK(std::string(text.what()) == "x: <html>bad gateway</html>");
  DockerError empty = api_error(500, "{}", "x");
  CHECK(std::string(empty.what()).find("without an error message") != std::string::npos);

  CHECK(port_in_message("Bind for 0.0.0.0:80 failed: port is already allocated") == 80);
  CHECK(port_in_message("nothing here") == 0);
}

TEST_CASE("docker endpoint: DOCKER_HOST parsing") {
  CHECK(parse_endpoint("unix:///run/x.sock").socket_path == "/run/x.sock");
  Endpoint t = parse_endpoint("tcp://10.0.0.1:2376");
  CHECK(t.scheme == Endpoint::Scheme::Tcp);
  CHECK(t.host == "10.0.0.1");
  CHECK(t.port == 2376);
  CHECK(parse_endpoint("tcp://dockerhost").port == 2375);
  CHECK(parse_endpoint("localhost:1234").text() == "tcp://localhost:1234");
  for (const char* bad : {"ssh://me@host", "npipe:////./pipe/docker_engine", "unix://relative", "tcp://h:99999",
                          "tcp://h:abc"}) {
    CAPTURE(bad);
    try {
      parse_endpoint(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Usage);
      CHECK(std::string(e.what()).find("DOCKER_HOST") != std::string::npos);
    }
  }
  {
    EnvGuard g("DOCKER_HOST", nullptr);
    CHECK(endpoint_from_env().text() == "unix:///var/run/docker.sock");
  }
  {
    EnvGuard g("DOCKER_HOST", "unix:///tmp/other.sock");
    CHECK(endpoint_from_env().socket_path == "/tmp/other.sock");
  }
}

TEST_CASE("docker helpers: version compare, encoding, filters") {
  CHECK(compare_api_versions("1.41", "1.9") > 0);
  CHECK(compare_api_versions("1.40", "1.40") == 0);
  CHECK(compare_api_versions("1.24", "1.47") < 0);
  CHECK(encode_ref("amlc/python:3-bookworm") == "amlc/python:3-bookworm");
  CHECK(url_encode("a b/c") == "a%20b%2Fc");
  CHECK(label_filters({{"amlc.managed", "true"}, {"present", ""}}) ==
        R"({"label":["amlc.managed=true","present"]})");
}

// ---------------------------------------------------------------------------------------------------------------
// Against the fake engine

TEST_CASE("docker fake: version negotiation uses min(client max, server) in every request path") {
  EnvGuard g("DOCKER_API_VERSION", nullptr);
  SUBCASE("old server") {
    FakeDockerServer srv([](const FakeRequest& r) -> std::optional<FakeResponse> {
      if (r.path() == "/v1.40/containers/json") return FakeResponse::json(200, "[]");
      return std::nullopt;
    }, "1.40", "1.12");
    Client dc(srv.endpoint());
    CHECK(dc.api_version() == "1.40");
    CHECK(dc.list_containers({{"a", "b"}}).empty());
    auto reqs = srv.requests();
    REQUIRE(reqs.size() == 3);
    CHECK(reqs[0].target == "/_ping");
    CHECK(reqs[1].target == "/v1.40/version");
    CHECK(starts_with(reqs[2].target, "/v1.40/containers/json?all=1&filters="));
    CHECK(dc.version().version == "99.0.0-fake");
    CHECK(dc.version().negotiated == "1.40");
    CHECK(srv.requests().size() == 3);  // negotiated once
  }
  SUBCASE("newer server is capped at kMaxApiVersion") {
    FakeDockerServer srv({}, "1.99", "1.24");
    Client dc(srv.endpoint());
    CHECK(dc.api_version() == std::string(kMaxApiVersion));
    CHECK(srv.requests().at(1).target == "/v" + std::string(kMaxApiVersion) + "/version");
    CHECK(dc.version().api_version == "1.99");
  }
  SUBCASE("ping without Api-Version falls back to /version's ApiVersion") {
    FakeDockerServer srv({}, "", "1.12");
    Client dc(srv.endpoint());
    CHECK(dc.api_version() == "1.41");
    CHECK(srv.requests().at(1).target == "/version");
  }
  SUBCASE("too old server") {
    FakeDockerServer srv({}, "1.30", "1.12");
    Client dc(srv.endpoint());
    DockerError e = catch_docker([&] { dc.api_version(); });
    CHECK(e.kind() == ErrorKind::DockerUnavailable);
    CHECK(e.code() == DockerErrc::TooOld);
    CHECK(std::string(e.what()).find("1.30") != std::string::npos);
  }
  SUBCASE("server whose minimum is above our maximum") {
    FakeDockerServer srv({}, "1.60", "1.50");
    Client dc(srv.endpoint());
    DockerError e = catch_docker([&] { dc.api_version(); });
    CHECK(e.code() == DockerErrc::TooOld);
    CHECK(std::string(e.what()).find("requires API 1.50") != std::string::npos);
  }
  SUBCASE("DOCKER_API_VERSION pins the version without negotiating") {
    EnvGuard pin("DOCKER_API_VERSION", "1.43");
    FakeDockerServer srv([](const FakeRequest&) { return FakeResponse::json(200, "[]"); });
    Client dc(srv.endpoint());
    dc.list_images();
    REQUIRE(srv.requests().size() == 1);
    CHECK(srv.requests()[0].target == "/v1.43/images/json");
  }
}

TEST_CASE("docker fake: chunked build stream with errorDetail -> BuildFailed with the last log lines, no Expect") {
  std::string context(3 << 20, 'c');  // 3 MiB: curl would add Expect: 100-continue above 1 MiB
  FakeDockerServer srv([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() != "/v1.41/build") return std::nullopt;
    FakeResponse resp;
    resp.chunked = true;
    resp.headers.push_back({"Content-Type", "application/json"});
    resp.chunks = pieces(kBuildOutput, 5);  // JSON objects straddle chunk boundaries
    return resp;
  });
  Client dc(srv.endpoint());
  std::vector<std::string> seen;
  BuildOptions o;
  o.tag = "amlc-test/x:1";
  o.labels = {{"amlc.managed", "true"}};
  o.dockerfile = "sub/Dockerfile";
  o.keep_log_lines = 2;
  o.on_line = [&](std::string_view l) { seen.emplace_back(l); };
  try {
    dc.build_image_from_memory(context, o);
    FAIL("no BuildFailed");
  } catch (const BuildFailed& e) {
    CHECK(e.kind() == ErrorKind::General);
    CHECK(e.code() == DockerErrc::BuildFailed);
    CHECK(std::string(e.what()) ==
          "building image amlc-test/x:1 failed: The command '/bin/sh -c python3 -c 'boom'' returned a non-zero code: 1");
    CHECK(e.log_tail() ==
          std::vector<std::string>{"  File \"<string>\", line 1", "NameError: name 'boom' is not defined"});
    CHECK(e.detail().find("NameError") != std::string::npos);
  }
  CHECK(seen.size() == 6);
  auto reqs = srv.api_requests();
  REQUIRE(reqs.size() == 1);
  const FakeRequest& b = reqs[0];
  CHECK(b.method == "POST");
  CHECK_FALSE(b.has("expect"));
  CHECK(b.header("content-type") == "application/x-tar");
  CHECK(b.header("content-length") == std::to_string(context.size()));
  CHECK(b.body == context);
  CHECK(b.target.find("t=amlc-test%2Fx%3A1") != std::string::npos);
  CHECK(b.target.find("dockerfile=sub%2FDockerfile") != std::string::npos);
  CHECK(b.target.find("rm=1&forcerm=1&pull=0") != std::string::npos);
  CHECK(b.target.find("labels=%7B%22amlc.managed%22%3A%22true%22%7D") != std::string::npos);
}

TEST_CASE("docker fake: build from a file succeeds with aux ID, a missing base image gets the no-pull hint") {
  amlc::TempDir tmp;
  auto tar = tmp.path() / "ctx.tar";
  {
    std::ofstream f(tar, std::ios::binary);
    f << std::string(2 << 20, 't');
  }
  bool fail_pull = false;
  FakeDockerServer srv([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() != "/v1.41/build") return std::nullopt;
    FakeResponse resp;
    resp.chunked = true;
    if (fail_pull) {
      resp.chunks = {"{\"stream\":\"Step 1/1 : FROM nope\\n\"}\r\n",
                     "{\"errorDetail\":{\"message\":\"pull access denied for nope, repository does not exist or may "
                     "require 'docker login'\"},\"error\":\"pull access denied\"}\r\n"};
    } else {
      resp.chunks = {"{\"stream\":\"Step 1/1 : FROM x\\n\"}\r\n{\"aux\":{\"ID\":\"sha256:", "feed\"}}\r\n",
                     "{\"stream\":\"Successfully built feed\\n\"}\r\n"};
    }
    return resp;
  });
  Client dc(srv.endpoint());
  BuildOptions o;
  o.tag = "t:1";
  BuildResult r = dc.build_image_from_file(tar, o);
  CHECK(r.image_id == "sha256:feed");
  CHECK(r.log_tail.back() == "Successfully built feed");
  auto reqs = srv.api_requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].body.size() == (2u << 20));
  CHECK_FALSE(reqs[0].has("expect"));

  fail_pull = true;
  try {
    dc.build_image_from_file(tar, o);
    FAIL("no BuildFailed");
  } catch (const BuildFailed& e) {
    CHECK(e.hint().find("bash scripts/docker-setup.sh") != std::string::npos);
  }
}

TEST_CASE("docker fake: logs are demultiplexed across chunk boundaries, TTY containers are raw") {
  bool tty = false;
  std::string mux = frame(1, "hello\n") + frame(2, "err\n") + frame(1, "bye\n");
  FakeDockerServer srv([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() == "/v1.41/containers/c1/json")
      return FakeResponse::json(200, std::string("{\"Id\":\"c1\",\"Config\":{\"Tty\":") + (tty ? "true" : "false") + "}}");
    if (r.path() == "/v1.41/containers/c1/logs") {
      FakeResponse resp;
      resp.chunked = true;
      resp.chunks = tty ? std::vector<std::string>{"raw ", "tty\n"} : pieces(mux, 3);
      return resp;
    }
    return std::nullopt;
  });
  Client dc(srv.endpoint());
  LogOptions o;
  o.tail = 10;
  o.since = 1700000000;
  Logs l = dc.container_logs("c1", o);
  CHECK(l.out == "hello\nbye\n");
  CHECK(l.err == "err\n");
  auto reqs = srv.api_requests();
  CHECK(reqs.back().target == "/v1.41/containers/c1/logs?stdout=1&stderr=1&tail=10&since=1700000000");

  tty = true;
  Logs raw = dc.container_logs("c1");
  CHECK(raw.out == "raw tty\n");
  CHECK(raw.err.empty());
}

TEST_CASE("docker fake: 404/409/500 answers map to NotFound/Conflict/General") {
  FakeDockerServer srv([](const FakeRequest& r) -> std::optional<FakeResponse> {
    std::string p = r.path();
    if (p == "/v1.41/containers/create") {
      if (r.target.find("name=taken") != std::string::npos)
        return FakeResponse::error(409, "Conflict. The container name \"/taken\" is already in use by container \"abc\".");
      return FakeResponse::error(404, "No such image: ghost:1");
    }
    if (p == "/v1.41/containers/busy/start")
      return FakeResponse::error(500, "driver failed programming external connectivity on endpoint busy (x): Bind for "
                                      "127.0.0.1:5001 failed: port is already allocated");
    if (p == "/v1.41/containers/boom/start") return FakeResponse::error(500, "OCI runtime create failed: bad things");
    if (p == "/v1.41/containers/up/start") return FakeResponse{304, {}, {}, false, false};
    if (p == "/v1.41/containers/gone" || p == "/v1.41/containers/gone/json" || p == "/v1.41/images/ghost:1/json" ||
        p == "/v1.41/images/ghost:1")
      return FakeResponse::error(404, p.find("images") != std::string::npos ? "No such image: ghost:1"
                                                                              : "No such container: gone");
    return std::nullopt;
  });
  Client dc(srv.endpoint());
  ContainerSpec spec;
  spec.image = "ghost:1";
  DockerError e1 = catch_docker([&] { dc.create_container(spec); });
  CHECK(e1.kind() == ErrorKind::NotFound);
  CHECK(e1.code() == DockerErrc::ImageNotFound);
  CHECK(std::string(e1.what()) == "cannot create container: image ghost:1 does not exist locally");
  CHECK(e1.hint().find("nothing can be pulled") != std::string::npos);

  spec.name = "taken";
  DockerError e2 = catch_docker([&] { dc.create_container(spec); });
  CHECK(e2.kind() == ErrorKind::Conflict);
  CHECK(std::string(e2.what()).find("cannot create container taken: Conflict.") == 0);

  DockerError e3 = catch_docker([&] { dc.start_container("busy"); });
  CHECK(e3.kind() == ErrorKind::Conflict);
  CHECK(e3.code() == DockerErrc::PortInUse);
  CHECK(std::string(e3.what()) == "port 5001 is already in use");

  DockerError e4 = catch_docker([&] { dc.start_container("boom"); });
  CHECK(e4.kind() == ErrorKind::General);
  CHECK(std::string(e4.what()) == "cannot start container boom: OCI runtime create failed: bad things");

  dc.start_container("up");  // 304 is fine

  CHECK_FALSE(dc.remove_container("gone", {.force = true, .volumes = false, .missing_ok = true}));
  DockerError e5 = catch_docker([&] { dc.remove_container("gone"); });
  CHECK(e5.kind() == ErrorKind::NotFound);
  CHECK_FALSE(dc.find_container("gone").has_value());
  DockerError e6 = catch_docker([&] { dc.inspect_container("gone"); });
  CHECK(e6.kind() == ErrorKind::NotFound);
  CHECK_FALSE(dc.inspect_image("ghost:1").has_value());
  DockerError e7 = catch_docker([&] { dc.require_image("ghost:1"); });
  CHECK(e7.kind() == ErrorKind::NotFound);
  CHECK(e7.hint().find("bash scripts/docker-setup.sh") != std::string::npos);
  CHECK_FALSE(dc.remove_image("ghost:1", {.force = true, .volumes = false, .missing_ok = true}));
}

TEST_CASE("docker fake: create sends the documented ContainerConfig/HostConfig, inspect parses state and ports") {
  nlohmann::json sent;
  FakeDockerServer srv([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() == "/v1.41/containers/create") {
      sent = nlohmann::json::parse(r.body);
      return FakeResponse::json(201, R"({"Id":"abc123","Warnings":null})");
    }
    if (r.path() == "/v1.41/containers/abc123/json")
      return FakeResponse::json(200, R"({"Id":"abc123","Name":"/svc","Image":"sha256:1","Config":{"Image":"img:1",
        "Labels":{"amlc.service":"svc"},"Tty":false},
        "State":{"Status":"running","Running":true,"ExitCode":0,"Pid":42,"StartedAt":"2026-11-21T22:00:00Z",
          "FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"healthy","Log":[{"ExitCode":0,"Output":"ok"}]}},
        "NetworkSettings":{"Ports":{"5001/tcp":[{"HostIp":"::1","HostPort":"49999"},{"HostIp":"127.0.0.1","HostPort":"49153"}],
          "9/udp":null}}})");
    return std::nullopt;
  });
  Client dc(srv.endpoint());
  ContainerSpec s;
  s.name = "svc";
  s.image = "img:1";
  s.cmd = {"python3", "-m", "server"};
  s.entrypoint = std::vector<std::string>{};
  s.env = {{"A", "1"}};
  s.labels = {{"amlc.service", "svc"}};
  s.working_dir = "/app";
  s.user = "1000:1000";
  s.mounts = {{.source = "/models", .target = "/var/azureml-app/models", .read_only = true, .type = "bind"}};
  s.ports = {{.container_port = 5001, .protocol = "tcp", .host_ip = "127.0.0.1", .host_port = 0}};
  s.cpus = 1.5;
  s.memory_bytes = 512 << 20;
  s.network_mode = "bridge";
  s.healthcheck = HealthCheck{{"CMD", "true"}, std::chrono::milliseconds(500), std::chrono::milliseconds(2000), {}, 3};
  CreateResult cr = dc.create_container(s);
  CHECK(cr.id == "abc123");
  CHECK(cr.warnings.empty());
  CHECK(srv.api_requests().at(0).target == "/v1.41/containers/create?name=svc");
  CHECK(sent["Image"] == "img:1");
  CHECK(sent["Cmd"] == nlohmann::json({"python3", "-m", "server"}));
  CHECK(sent["Entrypoint"] == nlohmann::json({""}));
  CHECK(sent["Env"] == nlohmann::json({"A=1"}));
  CHECK(sent["WorkingDir"] == "/app");
  CHECK(sent["User"] == "1000:1000");
  CHECK(sent["Tty"] == false);
  CHECK(sent["ExposedPorts"] == nlohmann::json::parse(R"({"5001/tcp":{}})"));
  CHECK(sent["Healthcheck"]["Interval"] == 500000000);
  CHECK(sent["Healthcheck"]["Retries"] == 3);
  auto& hc = sent["HostConfig"];
  CHECK(hc["PortBindings"] == nlohmann::json::parse(R"({"5001/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]})"));
  CHECK(hc["Mounts"][0]["ReadOnly"] == true);
  CHECK(hc["Mounts"][0]["Source"] == "/models");
  CHECK(hc["NanoCpus"] == 1500000000);
  CHECK(hc["Memory"] == 512 << 20);
  CHECK(hc["NetworkMode"] == "bridge");
  CHECK(hc["AutoRemove"] == false);

  ContainerInfo info = dc.inspect_container("abc123");
  CHECK(info.name == "svc");
  CHECK(info.image_ref == "img:1");
  CHECK(info.state.running);
  CHECK(info.state.status == "running");
  CHECK(info.state.pid == 42);
  CHECK(info.state.health == "healthy");
  CHECK(info.state.health_log == "ok");
  CHECK(info.host_port(5001) == 49153);  // IPv4 binding preferred
  CHECK_FALSE(info.host_port(9, "udp").has_value());
  CHECK(info.labels.at("amlc.service") == "svc");
}

TEST_CASE("docker fake: wait returns the exit code, a wait error throws, a timeout returns nullopt") {
  FakeDockerServer srv([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() == "/v1.41/containers/ok/wait") return FakeResponse::json(200, R"({"StatusCode":3,"Error":null})");
    if (r.path() == "/v1.41/containers/bad/wait")
      return FakeResponse::json(200, R"({"StatusCode":-1,"Error":{"Message":"container vanished"}})");
    if (r.path() == "/v1.41/containers/slow/wait") {
      FakeResponse resp;
      resp.hang = true;
      return resp;
    }
    return std::nullopt;
  });
  Client dc(srv.endpoint());
  CHECK(dc.wait_container("ok", WaitCondition::NextExit) == 3);
  CHECK(srv.api_requests().back().target == "/v1.41/containers/ok/wait?condition=next-exit");
  DockerError e = catch_docker([&] { dc.wait_container("bad"); });
  CHECK(std::string(e.what()) == "waiting for container bad failed: container vanished");

  auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(dc.wait_container_for("slow", std::chrono::milliseconds(200)).has_value());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));

  // A blocking wait is interruptible (should_stop is polled from curl's progress callback).
  DockerError stopped = catch_docker([&] { dc.wait_container("slow", WaitCondition::NotRunning, [] { return true; }); });
  CHECK(stopped.kind() == ErrorKind::Interrupted);
}

TEST_CASE("docker fake: put_archive and put_archive_file upload the tar with PUT, Content-Length and no Expect header") {
  FakeDockerServer srv([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() == "/v1.41/containers/c1/archive" && r.method == "PUT") return FakeResponse{200, {}, {}, false, false};
    if (r.path() == "/v1.41/containers/c1/archive" && r.method == "GET") {
      FakeResponse resp;
      resp.headers.push_back({"Content-Type", "application/x-tar"});
      resp.chunks = {"tarbytes"};
      return resp;
    }
    return std::nullopt;
  });
  Client dc(srv.endpoint());
  std::string tar(1500000, 'z');
  dc.put_archive("c1", "/tmp/in", tar);
  auto r = srv.api_requests().at(0);
  CHECK(r.method == "PUT");
  CHECK(r.target == "/v1.41/containers/c1/archive?path=%2Ftmp%2Fin");
  CHECK_FALSE(r.has("expect"));
  CHECK(r.header("content-length") == "1500000");
  CHECK(r.body == tar);
  CHECK(dc.get_archive("c1", "/tmp/in") == "tarbytes");

  // The same upload from a file: its content whole, with its size.
  amlc::TempDir tmp;
  std::ofstream(tmp.path() / "in.tar", std::ios::binary) << std::string(70000, 'f');
  dc.put_archive_file("c1", "/srv", tmp.path() / "in.tar");
  auto f = srv.api_requests().back();
  CHECK(f.method == "PUT");
  CHECK(f.target == "/v1.41/containers/c1/archive?path=%2Fsrv");
  CHECK(f.header("content-type") == "application/x-tar");
  CHECK(f.header("content-length") == "70000");
  CHECK(f.body == std::string(70000, 'f'));
}

TEST_CASE("docker fake: socket missing or refusing -> DockerUnavailable") {
  amlc::TempDir tmp;
  Endpoint ep;
  ep.socket_path = (tmp.path() / "missing.sock").string();
  Client missing(ep);
  DockerError e = catch_docker([&] { missing.ping(); });
  CHECK(e.kind() == ErrorKind::DockerUnavailable);
  CHECK(e.code() == DockerErrc::Unavailable);
  CHECK(std::string(e.what()) == "no Docker engine answers at unix://" + ep.socket_path);
  CHECK(e.hint().find("bash scripts/docker-setup.sh") != std::string::npos);
  DockerError e2 = catch_docker([&] { missing.list_containers(); });  // negotiation fails the same way
  CHECK(e2.kind() == ErrorKind::DockerUnavailable);

  // A socket file nobody listens on (stale): connect() gives ECONNREFUSED.
  std::string stale = (tmp.path() / "stale.sock").string();
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, stale.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  ::close(fd);
  ep.socket_path = stale;
  Client refused(ep);
  DockerError e3 = catch_docker([&] { refused.ping(); });
  CHECK(e3.kind() == ErrorKind::DockerUnavailable);
  CHECK(e3.detail().find("stale socket") != std::string::npos);
}

TEST_CASE("docker fake: SIGINT during a blocking wait aborts it with Interrupted (exit 130)") {
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, nullptr, &old_int);
  sigaction(SIGTERM, nullptr, &old_term);
  amlc::install_interrupt_handlers();
  amlc::reset_interrupted();
  FakeDockerServer srv([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() != "/v1.41/containers/c1/wait") return std::nullopt;
    ::raise(SIGINT);  // "Ctrl-C" while the daemon keeps the wait open
    FakeResponse resp;
    resp.hang = true;
    return resp;
  });
  Client dc(srv.endpoint());
  auto t0 = std::chrono::steady_clock::now();
  DockerError e = catch_docker([&] { dc.wait_container("c1"); });
  CHECK(e.kind() == ErrorKind::Interrupted);
  CHECK(exit_code(e.kind()) == 130);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  // Short cleanup calls still work while the interrupt flag is set.
  REQUIRE(amlc::interrupted());
  CHECK_FALSE(dc.remove_container("c1", {.force = true, .volumes = false, .missing_ok = true}));
  CHECK(srv.api_requests().back().method == "DELETE");
  amlc::reset_interrupted();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
}

TEST_CASE("docker fake: an answer nested 100,000 levels deep is a protocol error, not a crash") {
  // nlohmann parses it, but copying the nested value (here the labels) recursed once per level.
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  FakeDockerServer srv([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (r.path() == "/v1.41/containers/abc/json")
      return FakeResponse::json(200, R"({"Id":"abc","Name":"/x","Config":{"Image":"i","Labels":)" + deep +
                                         R"(},"State":{"Status":"running","Running":true}})");
    return std::nullopt;
  });
  Client dc(srv.endpoint());
  DockerError e = catch_docker([&] { dc.inspect_container("abc"); });
  CHECK(e.code() == DockerErrc::Protocol);
  CHECK(std::string(e.what()).find("not JSON amlc can read") != std::string::npos);
  CHECK(e.detail().find("nested deeper than") != std::string::npos);

  // A daemon error message and a build progress line this deep are kept as text.
  DockerError err = api_error(500, R"({"message":)" + deep + "}", "cannot start container x");
  CHECK(std::string(err.what()).find("[[[[") != std::string::npos);
  std::vector<std::string> lines;
  BuildStreamParser p([&](std::string_view l) { lines.emplace_back(l); }, 3);
  p.feed(R"({"stream":"a\n","aux":)" + deep + "}\n");
  p.finish();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].size() > 200000);
  CHECK_FALSE(p.failed());
}
