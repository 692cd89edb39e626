// The Docker client against the real engine (CI starts it with scripts/docker-setup.sh). Uses the local image
// amlc/python:3-bookworm; nothing is pulled. Every test labels what it creates with a unique amlc.test value and
// removes it at the end, also on failure.
#include <archive.h>
#include <archive_entry.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <curl/curl.h>
#include <doctest/doctest.h>

#include "amlc/core/fs.hpp"
#include "amlc/core/util.hpp"
#include "amlc/docker/client.hpp"

using namespace amlc;
using namespace amlc::docker;

namespace {

const std::string kBase = "amlc/python:3-bookworm";

// A tar (in memory) holding `files` (path -> content), mode 0644, owned by root.
std::string make_tar(const std::map<std::string, std::string>& files) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* user, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(user)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& [path, content] : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, path.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// Lists the entry names and contents of a tar.
std::map<std::string, std::string> read_tar(const std::string& tar) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_format_all(a);
  REQUIRE(archive_read_open_memory(a, tar.data(), tar.size()) == ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string content;
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) content.append(buf, static_cast<size_t>(n));
    out[archive_entry_pathname(e)] = content;
  }
  archive_read_free(a);
  return out;
}

// The engine must be there: fail (not skip) with a clear reason.
Client& daemon_client() {
  static Client dc;
  try {
    dc.ping();
    REQUIRE_MESSAGE(dc.image_exists(kBase), "the base image " << kBase
                                                               << " is missing: run `bash scripts/docker-setup.sh`");
  } catch (const Error& e) {
    FAIL("these tests need a Docker engine (CI starts one with `bash scripts/docker-setup.sh`): " << std::string(e.what()) << " ("
                                                                                                  << e.hint() << ")");
  }
  return dc;
}

// Removes everything labelled amlc.test=<id> (containers) and the images it was told about.
struct Cleanup {
  Client& dc;
  std::string id = "dct-" + random_hex(6);
  std::vector<std::string> images;
  explicit Cleanup(Client& c) : dc(c) {}
  Labels labels() const { return {{"amlc.test", id}}; }
  ~Cleanup() {
    try {
      for (auto& c : dc.list_containers(labels(), true))
        dc.remove_container(c.id, {.force = true, .volumes = true, .missing_ok = true});
      for (auto& i : images) dc.remove_image(i, {.force = true, .volumes = false, .missing_ok = true});
    } catch (const std::exception& e) {
      MESSAGE("cleanup failed: " << e.what());
    }
  }
};

std::string http_get(int port, const std::string& path) {
  std::string body;
  CURL* h = curl_easy_init();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, +[](char* p, size_t s, size_t n, void* u) {
    static_cast<std::string*>(u)->append(p, s * n);
    return s * n;
  });
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(h);
  curl_easy_cleanup(h);
  return rc == CURLE_OK ? body : std::string{};
}

}  // namespace

TEST_CASE("docker client: negotiates the API version with the running engine") {
  Client& dc = daemon_client();
  VersionInfo v = dc.version();
  CHECK_FALSE(v.version.empty());
  CHECK(compare_api_versions(v.negotiated, kMinApiVersion) >= 0);
  CHECK(compare_api_versions(v.negotiated, kMaxApiVersion) <= 0);
  CHECK(compare_api_versions(v.negotiated, v.api_version) <= 0);
  CHECK(dc.api_version() == v.negotiated);
}

TEST_CASE("docker client: build an image from a tar, inspect, list by label, remove (idempotently)") {
  Client& dc = daemon_client();
  Cleanup cleanup(dc);
  std::string tag = "amlc-test/" + cleanup.id + ":1";
  cleanup.images.push_back(tag);
  std::string tar = make_tar({{"Dockerfile", "FROM " + kBase + "\nCOPY hello.txt /opt/hello.txt\nRUN echo built-ok\n"},
                              {"hello.txt", "hi from the context\n"}});
  std::vector<std::string> lines;
  BuildOptions o;
  o.tag = tag;
  o.labels = {{"amlc.test", cleanup.id}, {"amlc.managed", "true"}};
  o.on_line = [&](std::string_view l) { lines.emplace_back(l); };
  BuildResult r = dc.build_image_from_memory(tar, o);
  CHECK(starts_with(r.image_id, "sha256:"));
  CHECK(std::find(lines.begin(), lines.end(), "built-ok") != lines.end());
  CAPTURE(join(lines, "|"));
  CHECK(std::any_of(lines.begin(), lines.end(), [](auto& l) { return starts_with(l, "Step 1/") && l.find(": FROM " + kBase) != std::string::npos; }));

  auto info = dc.inspect_image(tag);
  REQUIRE(info.has_value());
  CHECK(info->id == r.image_id);
  CHECK(info->labels.at("amlc.test") == cleanup.id);
  CHECK(info->size > 0);
  CHECK(std::find(info->repo_tags.begin(), info->repo_tags.end(), tag) != info->repo_tags.end());

  auto listed = dc.list_images({{"amlc.test", cleanup.id}});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].id == r.image_id);

  // The same build from a file.
  amlc::TempDir tmp;
  auto tar_file = tmp.path() / "ctx.tar";
  write_file_atomic(tar_file, tar);
  BuildResult again = dc.build_image_from_file(tar_file, o);
  CHECK(again.image_id == r.image_id);  // cached, identical

  CHECK(dc.remove_image(tag, {.force = true, .volumes = false, .missing_ok = false}));
  CHECK_FALSE(dc.image_exists(tag));
  CHECK_FALSE(dc.remove_image(tag, {.force = true, .volumes = false, .missing_ok = true}));
  try {
    dc.remove_image(tag);
    FAIL("removing a missing image without missing_ok succeeded");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::NotFound);
  }
}

TEST_CASE("docker client: a failing build step throws BuildFailed with the step's output") {
  Client& dc = daemon_client();
  Cleanup cleanup(dc);
  std::string tag = "amlc-test/" + cleanup.id + ":broken";
  cleanup.images.push_back(tag);
  std::string tar = make_tar(
      {{"Dockerfile", "FROM " + kBase + "\nRUN python3 -c \"print('boom-out'); import sys; sys.exit(3)\"\n"}});
  BuildOptions o;
  o.tag = tag;
  try {
    dc.build_image_from_memory(tar, o);
    FAIL("the build succeeded");
  } catch (const BuildFailed& e) {
    CHECK(e.kind() == ErrorKind::General);
    CHECK(std::string(e.what()).find("returned a non-zero code: 3") != std::string::npos);
    CHECK(std::find(e.log_tail().begin(), e.log_tail().end(), "boom-out") != e.log_tail().end());
  }
  CHECK_FALSE(dc.image_exists(tag));
}

TEST_CASE("docker client: a build FROM a missing base image fails fast with the no-pull hint") {
  Client& dc = daemon_client();
  Cleanup cleanup(dc);
  std::string tag = "amlc-test/" + cleanup.id + ":nobase";
  cleanup.images.push_back(tag);
  std::string missing = "amlc-test/" + cleanup.id + "-base:1";
  BuildOptions o;
  o.tag = tag;
  try {
    dc.build_image_from_memory(make_tar({{"Dockerfile", "FROM " + missing + "\nRUN true\n"}}), o);
    FAIL("the build succeeded");
  } catch (const BuildFailed& e) {
    CHECK(std::string(e.what()).find("the base image " + missing + " does not exist locally") != std::string::npos);
    CHECK(e.hint().find("bash scripts/docker-setup.sh") != std::string::npos);
  }
}

TEST_CASE("docker client: run a container, wait for its exit code, demultiplexed logs, list by label") {
  Client& dc = daemon_client();
  Cleanup cleanup(dc);
  ContainerSpec s;
  s.name = cleanup.id + "-hello";
  s.image = kBase;
  s.cmd = {"python3", "-c", "print('hello'); import sys; sys.stderr.write('err\\n'); sys.exit(7)"};
  s.labels = cleanup.labels();
  s.env = {{"AMLC_X", "y"}};
  s.working_dir = "/tmp";
  s.memory_bytes = 256 << 20;
  s.cpus = 1;
  s.network_mode = "none";
  CreateResult cr = dc.create_container(s);
  REQUIRE_FALSE(cr.id.empty());
  CHECK(dc.inspect_container(cr.id).state.status == "created");

  dc.start_container(cr.id);
  CHECK(dc.wait_container(cr.id) == 7);
  ContainerInfo info = dc.inspect_container(cr.id);
  CHECK(info.name == s.name);
  CHECK(info.state.status == "exited");
  CHECK_FALSE(info.state.running);
  CHECK(info.state.exit_code == 7);
  CHECK(info.state.health.empty());
  CHECK(info.labels.at("amlc.test") == cleanup.id);
  // Both times are set; not their order: Docker may record FinishedAt before StartedAt for a container that exits at
  // once (moby/moby#45445).
  CHECK(info.state.started_at.rfind("20", 0) == 0);
  CHECK(info.state.finished_at.rfind("20", 0) == 0);

  Logs logs = dc.container_logs(cr.id);
  CHECK(logs.out == "hello\n");
  CHECK(logs.err == "err\n");
  LogOptions only_err;
  only_err.stdout_ = false;
  CHECK(dc.container_logs(cr.id, only_err).out.empty());

  auto listed = dc.list_containers(cleanup.labels());
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].id == cr.id);
  CHECK(listed[0].state == "exited");
  CHECK(listed[0].names == std::vector<std::string>{s.name});
  CHECK(dc.list_containers(cleanup.labels(), /*all=*/false).empty());

  // Same name again -> Conflict.
  try {
    dc.create_container(s);
    FAIL("duplicate name accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Conflict);
  }

  CHECK(dc.remove_container(cr.id));
  CHECK_FALSE(dc.remove_container(cr.id, {.force = true, .volumes = false, .missing_ok = true}));
  CHECK_FALSE(dc.find_container(cr.id).has_value());
}

TEST_CASE("docker client: follow logs of a running container, stop, kill") {
  Client& dc = daemon_client();
  Cleanup cleanup(dc);
  ContainerSpec s;
  s.image = kBase;
  s.cmd = {"python3", "-u", "-c",
           "import time\nfor i in range(3):\n print('tick', i, flush=True)\n time.sleep(0.2)\n"};
  s.labels = cleanup.labels();
  s.network_mode = "none";
  std::string id = dc.create_container(s).id;
  dc.start_container(id);
  std::string followed;
  LogOptions f;
  f.follow = true;
  dc.container_logs(id, f, [&](LogStream st, std::string_view d) {
    if (st == LogStream::Stdout) followed.append(d);
  });  // returns when the container exits
  CHECK(followed == "tick 0\ntick 1\ntick 2\n");
  CHECK(dc.wait_container(id) == 0);

  // A long sleeper: stop with a short timeout (SIGTERM ends it: python's default handler).
  s.cmd = {"python3", "-c", "import time; time.sleep(300)"};
  std::string sleeper = dc.create_container(s).id;
  dc.start_container(sleeper);
  CHECK(dc.inspect_container(sleeper).state.running);
  CHECK_FALSE(dc.wait_container_for(sleeper, std::chrono::milliseconds(300)).has_value());
  dc.stop_container(sleeper, 5);
  CHECK_FALSE(dc.inspect_container(sleeper).state.running);
  dc.stop_container(sleeper, 5);  // 304: already stopped is fine
  dc.start_container(sleeper);
  dc.kill_container(sleeper, "SIGKILL");
  CHECK(dc.wait_container(sleeper) == 137);
}

TEST_CASE("docker client: publish port 5001 on 127.0.0.1 with a daemon-chosen host port, a busy port -> Conflict") {
  Client& dc = daemon_client();
  Cleanup cleanup(dc);
  ContainerSpec s;
  s.name = cleanup.id + "-web";
  s.image = kBase;
  s.cmd = {"python3", "-m", "http.server", "5001", "--bind", "0.0.0.0", "--directory", "/etc"};
  s.labels = cleanup.labels();
  s.ports = {{.container_port = 5001, .protocol = "tcp", .host_ip = "127.0.0.1", .host_port = 0}};
  std::string id = dc.create_container(s).id;
  dc.start_container(id);
  ContainerInfo info = dc.inspect_container(id);
  REQUIRE(info.host_port(5001).has_value());
  int port = *info.host_port(5001);
  CHECK(port > 0);
  CHECK(port != 5001);
  // The server answers through the published port (poll until it is up).
  std::string body;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (body.empty() && std::chrono::steady_clock::now() < deadline) {
    body = http_get(port, "/hostname");
    if (body.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK_FALSE(body.empty());

  // A second container asking for the same host port.
  ContainerSpec s2 = s;
  s2.name = cleanup.id + "-web2";
  s2.ports[0].host_port = port;
  std::string id2 = dc.create_container(s2).id;
  try {
    dc.start_container(id2);
    FAIL("a busy port was accepted");
  } catch (const DockerError& e) {
    CHECK(e.kind() == ErrorKind::Conflict);
    CHECK(e.code() == DockerErrc::PortInUse);
    CHECK(std::string(e.what()) == "port " + std::to_string(port) + " is already in use");
    CHECK(e.hint().find("--port") != std::string::npos);
  }
}

TEST_CASE("docker client: put_archive into a created container, then read it back (logs and get_archive)") {
  Client& dc = daemon_client();
  Cleanup cleanup(dc);
  ContainerSpec s;
  s.image = kBase;
  s.cmd = {"python3", "-c", "print(open('/tmp/in/sub/data.txt').read(), end='')"};
  s.labels = cleanup.labels();
  s.network_mode = "none";
  std::string id = dc.create_container(s).id;
  std::string big(3 << 20, 'b');  // > 1 MiB: must not stall on Expect: 100-continue
  auto t0 = std::chrono::steady_clock::now();
  dc.put_archive(id, "/tmp", make_tar({{"in/sub/data.txt", "payload-42\n"}, {"in/big.bin", big}}));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(900));
  dc.start_container(id);
  CHECK(dc.wait_container(id) == 0);
  CHECK(dc.container_logs(id).out == "payload-42\n");
  auto files = read_tar(dc.get_archive(id, "/tmp/in/sub/data.txt"));
  REQUIRE(files.count("data.txt") == 1);
  CHECK(files["data.txt"] == "payload-42\n");
  try {
    dc.put_archive(id, "/does/not/exist", make_tar({{"x", "y"}}));
    FAIL("upload to a missing path succeeded");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::NotFound);
  }
}

TEST_CASE("docker client: an image that does not exist cannot be used: NotFound with the no-pull hint") {
  Client& dc = daemon_client();
  Cleanup cleanup(dc);
  ContainerSpec s;
  s.image = "amlc-test/" + cleanup.id + ":missing";
  s.labels = cleanup.labels();
  try {
    dc.create_container(s);
    FAIL("created a container from a missing image");
  } catch (const DockerError& e) {
    CHECK(e.kind() == ErrorKind::NotFound);
    CHECK(e.code() == DockerErrc::ImageNotFound);
    CHECK(e.hint().find("bash scripts/docker-setup.sh") != std::string::npos);
  }
}

TEST_CASE("docker client: DOCKER_HOST pointing at a dead socket -> DockerUnavailable") {
  amlc::TempDir tmp;
  std::string path = (tmp.path() / "dead.sock").string();
  const char* old = std::getenv("DOCKER_HOST");
  std::string saved = old ? old : "";
  setenv("DOCKER_HOST", ("unix://" + path).c_str(), 1);
  try {
    Client dead;
    dead.ping();
    FAIL("a dead socket answered");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::DockerUnavailable);
    CHECK(std::string(e.what()) == "no Docker engine answers at unix://" + path);
    CHECK(e.hint().find("DOCKER_HOST") != std::string::npos);
  }
  if (old) setenv("DOCKER_HOST", saved.c_str(), 1);
  else unsetenv("DOCKER_HOST");
}
