// Local deployments against the real Docker engine (base image amlc/python:3-bookworm): deploy, score over
// HTTP, health states, auth, init() failure, port conflict, model-only redeploy without a build, delete,
// models claimed while a deploy is under way, who can reach a service (127.0.0.1:PORT; the bridge address refuses
// other containers), failed redeploys recorded as they are.
// Every test removes the containers of its workspace (by label) even when it fails.
#include <sys/stat.h>
#include <sys/wait.h>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "amlc/core/util.hpp"
#include "amlc/deploy/image_plan.hpp"
#include "amlc/docker/client.hpp"
#include "amlc/net/http.hpp"
#include "support/harness.hpp"

extern char** environ;

using namespace amlc::test;
namespace dk = amlc::docker;

namespace {

const char* kScore = R"(import json, os

def init():
    global scale
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")) as f:
        scale = json.load(f)["scale"]

def run(raw):
    data = json.loads(raw)["data"]
    return {"result": [x * scale for x in data]}
)";

struct Deployment {
  Workspace ws;
  std::string ws_id;
  Deployment() {
    ws_id = read_json(ws.root() / "workspace.json")["id"];
    write_text(ws.dir() / "app" / "score.py", kScore);
    register_scale(2);
  }
  ~Deployment() {
    try {
      dk::Client dc;
      dk::RemoveOptions ro;
      ro.force = true;
      ro.missing_ok = true;
      for (const auto& c : dc.list_containers({{"amlc.workspace", ws_id}}, true)) dc.remove_container(c.id, ro);
    } catch (...) {
    }
  }
  static json read_json(const fs::path& p) { return json::parse(read_text(p)); }
  json register_scale(int scale) {
    write_text(ws.dir() / "model" / "model.json", "{\"scale\": " + std::to_string(scale) + "}");
    return ws.ok({"model", "register", "-n", "scaler", "-p", (ws.dir() / "model" / "model.json").string()});
  }
  std::vector<std::string> deploy_args(const std::string& name, const std::string& model = "scaler:1") const {
    return {"model", "deploy", "-n", name, "-m", model, "--es", (ws.dir() / "app" / "score.py").string(), "--timeout", "60"};
  }
  size_t containers() const {
    dk::Client dc;
    return dc.list_containers({{"amlc.workspace", ws_id}}, true).size();
  }
};

// An image build that waits in a RUN step until the test releases it (or 5 minutes pass), so the test can act
// while amlc is busy building. The step's container is found by a marker unique to this test run (which also
// makes the image new, so it is really built).
struct HeldBuild {
  std::string marker = "amlc-hold-" + amlc::random_hex(8);
  fs::path steps;
  explicit HeldBuild(const fs::path& dir) : steps(dir / (marker + ".steps")) {
    write_text(steps, "RUN i=0; while [ ! -e /" + marker + " ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done\n");
  }
  // Removes the step's container and any image built through the step (the marker is in its history), with the
// containers that run it.
  ~HeldBuild() {
    try {
      dk::Client dc;
      dk::RemoveOptions ro;
      ro.force = true;
      ro.missing_ok = true;
      for (const auto& c : step_containers(dc)) dc.remove_container(c, ro);
      for (const auto& img : dc.list_images({{"amlc.managed", "true"}})) {
        json history = dc.call_json("GET", "/images/" + img.id + "/history");
        if (history.dump().find(marker) == std::string::npos) continue;
        for (const auto& c : dc.list_containers({}, true))
          if (c.raw.value("ImageID", "") == img.id) dc.remove_container(c.id, ro);
        dc.remove_image(img.id, ro);
      }
    } catch (...) {
    }
  }
  std::vector<std::string> step_containers(dk::Client& dc) const {
    std::vector<std::string> ids;
    for (const auto& c : dc.list_containers({}, true))
      if (c.raw.value("Command", "").find(marker) != std::string::npos) ids.push_back(c.id);
    return ids;
  }
  // The build is inside the held step.
  bool wait_held() const {
    return wait_until(
        [&] {
          dk::Client dc;
          for (const auto& c : dc.list_containers({}, false))
            if (c.raw.value("Command", "").find(marker) != std::string::npos) return true;
          return false;
        },
        120);
  }
  void release() const {
    amlc::deploy::ImagePlan plan;
    plan.files.push_back({marker, "", 0644});
    std::string tar = amlc::deploy::pack_context(plan);
    dk::Client dc;
    for (const auto& id : step_containers(dc)) {
      try {
        dc.put_archive(id, "/", tar);
      } catch (...) {
      }
    }
  }
};

// Runs `run` on a thread; the destructor releases the held build (if still held) and joins.
struct Background {
  std::thread t;
  const HeldBuild& hold;
  Background(const HeldBuild& h, std::function<void()> run) : t(std::move(run)), hold(h) {}
  ~Background() {
    hold.release();
    t.join();
  }
};

// amlc started in the background (stdout/stderr to /dev/null), to be signalled.
pid_t spawn_amlc(const Workspace& ws, std::vector<std::string> args) {
  args.insert(args.begin(), {AMLC_BIN, "-w", ws.root().string()});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, AMLC_BIN, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? -WTERMSIG(status) : -1;
}

// Whether a TCP connection to ip:port is accepted (2 s at most).
bool tcp_open(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) {
    ::close(fd);
    return false;
  }
  bool open = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    open = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 2000) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      open = err == 0;
    }
  }
  ::close(fd);
  return open;
}

// The answer, or nullopt when none came.
std::optional<amlc::net::Response> request(const std::string& method, const std::string& url, const std::string& body,
                                           const std::string& key, int timeout_ms) {
  amlc::net::Request req;
  req.method = method;
  req.url = url;
  if (method == "POST") {
    req.content_type = "application/json";
    req.has_body = true;
    req.body = body;
  }
  if (!key.empty()) req.headers.push_back("Authorization: Bearer " + key);
  req.timeout = std::chrono::milliseconds(timeout_ms);
  req.connect_timeout = std::chrono::milliseconds(2000);
  amlc::net::Response r = amlc::net::perform(req);
  if (!r.answered()) return std::nullopt;
  return r;
}

std::optional<amlc::net::Response> post(const std::string& url, const std::string& body, const std::string& key = {}) {
  return request("POST", url, body, key, 10000);
}

}  // namespace

TEST_CASE("deploy a model, score it over HTTP, redeploy a new model version without a build, delete") {
  Deployment d;
  json svc = d.ws.ok(d.deploy_args("scaler-svc"));
  CHECK(svc["state"] == "Healthy");
  CHECK(svc["models"] == json::array({{{"name", "scaler"}, {"version", 1}}}));
  std::string uri = svc["scoringUri"];
  CHECK(uri.rfind("http://127.0.0.1:", 0) == 0);

  auto r = post(uri, R"({"data": [1, 2, 3]})");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(json::parse(r->body) == json({{"result", {2, 4, 6}}}));
  auto sw = request("GET", svc["swaggerUri"], "", "", 5000);
  REQUIRE(sw);
  CHECK(sw->status == 200);

  json out = d.ws.ok({"service", "run", "-n", "scaler-svc", "-d", R"({"data": [5]})"});
  CHECK(out == json({{"result", {10}}}));
  json listed = d.ws.ok({"service", "list"});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["state"] == "Healthy");
  json shown = d.ws.ok({"service", "show", "-n", "scaler-svc"});
  CHECK(shown["scoringUri"] == uri);
  CHECK(shown["imageTag"] == svc["imageTag"]);
  Result logs = d.ws.run({"service", "logs", "-n", "scaler-svc", "--tail", "20"});
  CHECK(logs.code == 0);
  CHECK(logs.out.find("init() succeeded") != std::string::npos);

  // Only the model version changes: same image, no build, new answers; the port is kept.
  d.register_scale(3);
  json upd = d.ws.ok({"service", "update", "-n", "scaler-svc", "-m", "scaler:2", "--timeout", "60"});
  CHECK(upd["imageBuilt"] == false);
  CHECK(upd["imageTag"] == svc["imageTag"]);
  CHECK(upd["port"] == svc["port"]);
  CHECK(d.ws.ok({"service", "run", "-n", "scaler-svc", "-d", R"({"data": [5]})"}) == json({{"result", {15}}}));
  json again = d.ws.ok([&] {
    auto a = d.deploy_args("scaler-svc", "scaler:1");
    a.push_back("--overwrite");
    return a;
  }());
  CHECK(again["imageBuilt"] == false);

  // Without --overwrite an existing service is a conflict.
  CHECK(d.ws.run(d.deploy_args("scaler-svc")).code == 4);

  // A container removed behind amlc's back shows as Missing; reload brings it back without a build.
  {
    dk::Client dc;
    dk::RemoveOptions ro;
    ro.force = true;
    dc.remove_container(again["containerId"], ro);
  }
  CHECK(d.ws.ok({"service", "show", "-n", "scaler-svc"})["state"] == "Missing");
  json rel = d.ws.ok({"service", "reload", "-n", "scaler-svc", "--timeout", "60"});
  CHECK(rel["state"] == "Healthy");
  CHECK(rel["imageBuilt"] == false);

  json del = d.ws.ok({"service", "delete", "-n", "scaler-svc"});
  CHECK(del["deleted"] == true);
  CHECK(d.containers() == 0);
  CHECK_FALSE(fs::exists(d.ws.root() / "services" / "scaler-svc.json"));
  CHECK_FALSE(post(uri, R"({"data": [1]})").has_value());
  json del2 = d.ws.ok({"service", "delete", "-n", "scaler-svc"});
  CHECK(del2["deleted"] == false);
  CHECK(d.ws.ok({"model", "delete", "-i", "scaler:1"}).is_object());  // no longer used
}

TEST_CASE("auth: 401 without a key, 200 with either key - regen-key replaces the primary key") {
  Deployment d;
  auto args = d.deploy_args("auth-svc");
  args.insert(args.end(), {"--ae", "true", "--cc", "0.5", "--gb", "0.25", "--wc", "2", "--tm", "5000"});
  json svc = d.ws.ok(args);
  CHECK(svc["authEnabled"] == true);
  {
    dk::Client dc;
    dk::ContainerInfo info = dc.inspect_container(svc["containerId"]);
    CHECK(info.raw["HostConfig"]["NanoCpus"] == 500000000LL);
    CHECK(info.raw["HostConfig"]["Memory"] == 268435456LL);
    CHECK(info.labels.at("amlc.service") == "auth-svc");
    std::string env = info.raw["Config"]["Env"].dump();
    CHECK(env.find("WORKER_COUNT=2") != std::string::npos);
    CHECK(env.find("SCORING_TIMEOUT_MS=5000") != std::string::npos);
    CHECK(env.find("AZUREML_MODEL_DIR=/var/azureml-app/azureml-models/scaler/1") != std::string::npos);
  }
  std::string uri = svc["scoringUri"];
  json keys = d.ws.ok({"service", "get-keys", "-n", "auth-svc"});
  std::string primary = keys["primaryKey"], secondary = keys["secondaryKey"];
  CHECK(primary.size() >= 16);
  CHECK(primary != secondary);

  auto r = post(uri, R"({"data": [1]})");
  REQUIRE(r);
  CHECK(r->status == 401);
  CHECK(post(uri, R"({"data": [1]})", primary)->status == 200);
  CHECK(post(uri, R"({"data": [1]})", secondary)->status == 200);
  CHECK(d.ws.ok({"service", "run", "-n", "auth-svc", "-d", R"({"data": [1]})"}) == json({{"result", {2}}}));

  // regen-key: no restart (same container, same start time); every worker (2) uses the new key at once.
  std::string started;
  {
    dk::Client dc;
    started = dc.inspect_container(svc["containerId"]).raw["State"]["StartedAt"];
  }
  auto keys_inode = [&] {
    struct stat st {};
    REQUIRE(::stat((d.ws.root() / "services" / "auth-svc.keys.json").c_str(), &st) == 0);
    return st.st_ino;
  };
  auto ino = keys_inode();
  json regen = d.ws.ok({"service", "regen-key", "-n", "auth-svc", "--key", "Primary", "--set-key", "new-primary-key-1"});
  CHECK(regen["primaryKey"] == "new-primary-key-1");
  CHECK(regen["secondaryKey"] == secondary);
  for (int i = 0; i < 6; ++i) {  // new connections: spread over both workers
    CHECK(post(uri, R"({"data": [1]})", primary)->status == 401);
    CHECK(post(uri, R"({"data": [1]})", "new-primary-key-1")->status == 200);
    CHECK(post(uri, R"({"data": [1]})", secondary)->status == 200);
  }
  // A shorter key: the file is rewritten in place (blank-padded), still read right by both sides.
  regen = d.ws.ok({"service", "regen-key", "-n", "auth-svc", "-k", "Primary", "-s", "short-k1"});
  CHECK(regen["primaryKey"] == "short-k1");
  for (int i = 0; i < 6; ++i) {
    CHECK(post(uri, R"({"data": [1]})", "new-primary-key-1")->status == 401);
    CHECK(post(uri, R"({"data": [1]})", "short-k1")->status == 200);
  }
  CHECK(d.ws.ok({"service", "get-keys", "-n", "auth-svc"})["primaryKey"] == "short-k1");
  CHECK(keys_inode() == ino);
  {
    dk::Client dc;
    dk::ContainerInfo after = dc.inspect_container(svc["containerId"]);
    CHECK(after.raw["State"]["StartedAt"] == started);
    CHECK(after.state.running);
  }
  CHECK(d.ws.ok({"workspace", "check"})["ok"] == true);
}

TEST_CASE("init() failure: Failed with the traceback in the error, no container left behind") {
  Deployment d;
  write_text(d.ws.dir() / "bad" / "score.py", "def init():\n    raise ValueError('model file is corrupt: boom')\n\ndef run(d):\n    return d\n");
  Result r = d.ws.run({"model", "deploy", "-n", "bad-svc", "-m", "scaler:1", "--es",
                       (d.ws.dir() / "bad" / "score.py").string(), "--timeout", "60"});
  CHECK(r.code == 1);
  CHECK(r.err.find("ValueError: model file is corrupt: boom") != std::string::npos);
  CHECK(r.err.find("init()") != std::string::npos);
  CHECK(d.containers() == 0);
  json shown = d.ws.ok({"service", "show", "-n", "bad-svc"});
  CHECK(shown["state"] == "Failed");
  CHECK(shown["error"].get<std::string>().find("boom") != std::string::npos);
  // A Failed service can be replaced without --overwrite.
  json ok = d.ws.ok(d.deploy_args("bad-svc"));
  CHECK(ok["state"] == "Healthy");
}

TEST_CASE("port conflict: a port already listening on 127.0.0.1 -> exit 4, nothing recorded, no container") {
  Deployment d;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  auto before = snapshot_tree(d.ws.root() / "services");
  auto args = d.deploy_args("port-svc");
  args.insert(args.end(), {"--po", std::to_string(port)});
  Result r = d.ws.run(args);
  ::close(fd);
  CHECK(r.code == 4);
  CHECK(r.err.find(std::to_string(port)) != std::string::npos);
  CHECK(snapshot_tree(d.ws.root() / "services") == before);
  CHECK(d.containers() == 0);
}

TEST_CASE("model package builds a self-contained image with the model baked in") {
  Deployment d;
  json pkg = d.ws.ok({"model", "package", "-m", "scaler:1", "--es", (d.ws.dir() / "app" / "score.py").string(),
                      "--image-name", "amlc-test-pkg:scaler"});
  CHECK(pkg["imageName"] == "amlc-test-pkg:scaler");
  // The suggested command runs it as amlc runs its services: published on 127.0.0.1 only, other peers refused.
  CHECK(pkg["runCommand"] == "docker run --rm -p 127.0.0.1:8890:5001 -e AMLC_ALLOWED_PEERS=gateway amlc-test-pkg:scaler");
  dk::Client dc;
  CHECK(dc.image_exists("amlc-test-pkg:scaler"));
  // The image runs standalone: the model is inside.
  dk::ContainerSpec spec;
  spec.image = "amlc-test-pkg:scaler";
  spec.labels = {{"amlc.workspace", d.ws_id}};
  spec.cmd = {"python3", "-c", "import json,os; print(json.load(open(os.environ['AZUREML_MODEL_DIR'] + '/model.json')))"};
  std::string id = dc.create_container(spec).id;
  dc.start_container(id);
  CHECK(dc.wait_container(id) == 0);
  CHECK(dc.container_logs(id).out.find("'scale': 2") != std::string::npos);
  dk::RemoveOptions ro;
  ro.force = true;
  dc.remove_container(id, ro);
  dc.remove_image("amlc-test-pkg:scaler", ro);
}

TEST_CASE("health states: Unhealthy after the timeout (slow init), Stopped when the container stops, run() errors exit 1") {
  Deployment d;
  write_text(d.ws.dir() / "slow" / "score.py",
             "import time\n\ndef init():\n    print('loading a very slow model', flush=True)\n    time.sleep(30)\n\n"
             "def run(d):\n    return d\n");
  Result r = d.ws.run({"model", "deploy", "-n", "slow-svc", "-m", "scaler:1", "--es",
                       (d.ws.dir() / "slow" / "score.py").string(), "--timeout", "2"});
  CHECK(r.code == 1);
  CHECK(r.err.find("unhealthy") != std::string::npos);
  CHECK(r.err.find("loading a very slow model") != std::string::npos);
  CHECK(d.containers() == 0);
  CHECK(d.ws.ok({"service", "show", "-n", "slow-svc"})["state"] == "Unhealthy");
  CHECK(d.ws.ok({"service", "delete", "-n", "slow-svc"})["deleted"] == true);

  json svc = d.ws.ok(d.deploy_args("stop-svc"));
  // run() raising: the server answers 500, `service run` exits 1 with the message.
  Result bad = d.ws.run({"service", "run", "-n", "stop-svc", "-d", "not json"});
  CHECK(bad.code == 1);
  CHECK(bad.err.find("HTTP 500") != std::string::npos);
  {
    dk::Client dc;
    dc.stop_container(svc["containerId"], 5);
  }
  json listed = d.ws.ok({"service", "list"});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["state"] == "Stopped");
  CHECK(d.ws.ok({"service", "reload", "-n", "stop-svc", "--timeout", "60"})["state"] == "Healthy");
}

TEST_CASE("a deploy or update claims its models before building: model delete meanwhile exits 4 and the model stays") {
  Deployment d;
  // Both builds are held; their images are removed with them, at the end.
  HeldBuild first(d.ws.dir()), second(d.ws.dir());
  {
    // A new service: the record (Transitioning, with the model) exists while the image builds.
    const HeldBuild& hold = first;
    auto args = d.deploy_args("claim-svc");
    args.insert(args.end(), {"--ds", hold.steps.string()});
    Result deployed;
    {
      Background bg(hold, [&] { deployed = d.ws.run(args); });
      REQUIRE(hold.wait_held());
      Result shown = d.ws.run({"service", "show", "-n", "claim-svc"});
      CHECK(shown.code == 0);
      if (shown.code == 0) CHECK(shown.json_out()["state"] == "Transitioning");
      Result del = d.ws.run({"model", "delete", "-i", "scaler:1"});
      CHECK(del.code == 4);
      CHECK(del.err.find("claim-svc") != std::string::npos);
    }
    REQUIRE_MESSAGE(deployed.code == 0, deployed.err);
    CHECK(deployed.json_out()["state"] == "Healthy");
    CHECK(d.ws.run({"model", "show", "-i", "scaler:1"}).code == 0);
    CHECK(d.ws.ok({"service", "run", "-n", "claim-svc", "-d", R"({"data": [1]})"}) == json({{"result", {2}}}));
  }
  {
    // An update to a new model version: both the version being served and the one being deployed are claimed.
    d.register_scale(5);
    const HeldBuild& hold = second;
    Result updated;
    {
      Background bg(hold, [&] {
        updated = d.ws.run({"service", "update", "-n", "claim-svc", "-m", "scaler:2", "--ds", hold.steps.string(),
                            "--timeout", "60"});
      });
      REQUIRE(hold.wait_held());
      Result del2 = d.ws.run({"model", "delete", "-i", "scaler:2"});
      CHECK(del2.code == 4);
      Result del1 = d.ws.run({"model", "delete", "-i", "scaler:1"});
      CHECK(del1.code == 4);
      // The old version still answers meanwhile.
      CHECK(d.ws.ok({"service", "run", "-n", "claim-svc", "-d", R"({"data": [1]})"}) == json({{"result", {2}}}));
    }
    REQUIRE_MESSAGE(updated.code == 0, updated.err);
    CHECK(d.ws.ok({"service", "run", "-n", "claim-svc", "-d", R"({"data": [1]})"}) == json({{"result", {5}}}));
    CHECK(d.ws.run({"model", "show", "-i", "scaler:2"}).code == 0);
    CHECK(d.ws.ok({"model", "delete", "-i", "scaler:1"}).is_object());  // no longer used
  }
  CHECK(d.ws.ok({"service", "delete", "-n", "claim-svc", "--delete-image"})["deleted"] == true);
  CHECK(d.ws.ok({"workspace", "check"})["ok"] == true);
}

TEST_CASE("a deploy that fails or is stopped before its container exists changes nothing - kill -9 leaves a visible record") {
  Deployment d;
  d.register_scale(3);  // scaler:2
  json svc = d.ws.ok(d.deploy_args("keep-svc"));
  auto keep_args = [&](const std::string& steps) {
    auto a = d.deploy_args("keep-svc", "scaler:2");
    a.insert(a.end(), {"--overwrite", "--ds", steps});
    return a;
  };
  const auto before = snapshot_tree(d.ws.root() / "services");

  // A build error: exit 1, nothing changed for an existing service, nothing recorded for a new one.
  write_text(d.ws.dir() / "fail.steps", "RUN echo build-step-fails-" + amlc::random_hex(4) + " && exit 3\n");
  Result r = d.ws.run(keep_args((d.ws.dir() / "fail.steps").string()));
  CHECK(r.code == 1);
  CHECK(snapshot_tree(d.ws.root() / "services") == before);
  auto fresh = d.deploy_args("fresh-svc", "scaler:2");
  fresh.insert(fresh.end(), {"--ae", "true", "--ds", (d.ws.dir() / "fail.steps").string()});
  r = d.ws.run(fresh);
  CHECK(r.code == 1);
  CHECK(snapshot_tree(d.ws.root() / "services") == before);

  // SIGTERM during the build: exit 130, the previous record is back, the old version still answers, and the
  // version that was being deployed is free again.
  {
    HeldBuild hold(d.ws.dir());
    pid_t pid = spawn_amlc(d.ws, keep_args(hold.steps.string()));
    bool held = hold.wait_held();
    if (held) CHECK(d.ws.run({"model", "delete", "-i", "scaler:2"}).code == 4);
    ::kill(pid, SIGTERM);
    CHECK(wait_exit(pid) == 130);
    REQUIRE(held);
  }
  CHECK(snapshot_tree(d.ws.root() / "services") == before);
  CHECK(d.ws.ok({"service", "run", "-n", "keep-svc", "-d", R"({"data": [1]})"}) == json({{"result", {2}}}));

  // kill -9 during the build of a new service: its Transitioning record stays, shows as Failed with an
  // explanation, keeps its model, and `service delete` removes it.
  {
    HeldBuild hold(d.ws.dir());
    auto args = d.deploy_args("killed-svc", "scaler:2");
    args.insert(args.end(), {"--ds", hold.steps.string()});
    pid_t pid = spawn_amlc(d.ws, args);
    bool held = hold.wait_held();
    ::kill(pid, SIGKILL);
    wait_exit(pid);
    REQUIRE(held);
  }
  Result shown = d.ws.run({"service", "show", "-n", "killed-svc"});
  REQUIRE_MESSAGE(shown.code == 0, shown.err);
  json killed = shown.json_out();
  CHECK(killed["recordedState"] == "Transitioning");
  CHECK(killed["state"] == "Failed");
  CHECK(killed["error"].get<std::string>().find("did not finish") != std::string::npos);
  json listed = d.ws.ok({"service", "list", "--state", "Failed"});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["name"] == "killed-svc");
  CHECK(d.ws.run({"model", "delete", "-i", "scaler:2"}).code == 4);
  Result again = d.ws.run(d.deploy_args("killed-svc", "scaler:2"));
  CHECK(again.code == 4);
  CHECK(again.err.find("--overwrite") != std::string::npos);
  CHECK(d.ws.ok({"service", "delete", "-n", "killed-svc"})["deleted"] == true);
  CHECK(d.ws.ok({"model", "delete", "-i", "scaler:2"}).is_object());
  CHECK(d.ws.ok({"workspace", "check"})["ok"] == true);
}

TEST_CASE("the service answers on 127.0.0.1:PORT - its bridge address closes other containers' connections - key auth") {
  Deployment d;
  auto args = d.deploy_args("net-svc");
  args.push_back("--ae");  // the flag alone turns key auth on
  Result r = d.ws.run(args);
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json svc = r.json_out();
  CHECK(r.err.find("Authorization: Bearer") != std::string::npos);
  CHECK(r.err.find("amlc service get-keys -n net-svc") != std::string::npos);
  const int port = svc["port"];
  const std::string uri = svc["scoringUri"];
  CHECK(uri == "http://127.0.0.1:" + std::to_string(port) + "/score");

  // Auth: no key -> 401, a key -> 200; `service run` sends the key itself.
  std::string key = d.ws.ok({"service", "get-keys", "-n", "net-svc"})["primaryKey"];
  auto anon = post(uri, R"({"data": [1]})");
  REQUIRE(anon);
  CHECK(anon->status == 401);
  auto keyed = post(uri, R"({"data": [1]})", key);
  REQUIRE(keyed);
  CHECK(keyed->status == 200);
  CHECK(d.ws.ok({"service", "run", "-n", "net-svc", "-d", R"({"data": [4]})"}) == json({{"result", {8}}}));
  CHECK(tcp_open("127.0.0.1", port));

  // The container is on Docker's default bridge (not the host's network), port 5001 published on 127.0.0.1 only,
  // and the scoring server accepts loopback and the bridge's gateway only (the host side: Docker's port proxy and
  // the host itself).
  dk::Client dc;
  dk::ContainerInfo info = dc.inspect_container(svc["containerId"]);
  const std::string mode = info.raw["HostConfig"].value("NetworkMode", "");
  CHECK((mode == "default" || mode == "bridge"));
  const json published = info.raw["HostConfig"]["PortBindings"];
  const json bindings = published.is_object() ? published.value("5001/tcp", json::array()) : json::array();
  REQUIRE(bindings.size() == 1);
  CHECK(bindings[0]["HostIp"] == "127.0.0.1");
  CHECK(bindings[0]["HostPort"] == std::to_string(port));
  CHECK(info.raw["Config"]["Env"].dump().find("\"AMLC_ALLOWED_PEERS=gateway\"") != std::string::npos);
  const std::string bridge_ip =
      info.raw["NetworkSettings"]["Networks"].value("bridge", json::object()).value("IPAddress", "");
  REQUIRE(!bridge_ip.empty());

  // From the host: the port is not published on the host's other addresses. The bridge address answers the host
  // itself (it connects from the gateway), which reaches 127.0.0.1:PORT anyway: with the key required, as there.
  ifaddrs* ifs = nullptr;
  REQUIRE(::getifaddrs(&ifs) == 0);
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    if (std::string(buf).rfind("127.", 0) == 0) continue;
    INFO("from the host: " << buf << ":" << port);
    CHECK_FALSE(tcp_open(buf, port));
  }
  ::freeifaddrs(ifs);
  auto direct = post("http://" + bridge_ip + ":5001/score", R"({"data": [1]})");
  REQUIRE(direct);
  CHECK(direct->status == 401);

  // From another container on the default bridge: the service's bridge address resets the connection as soon as
  // it is accepted, without an HTTP answer; the gateway (the host) does not serve the port at all.
  std::string probe =
      "import socket, struct, sys\n"
      "gw = next(socket.inet_ntoa(struct.pack('<L', int(f[2], 16))) for f in\n"
      "          (l.split() for l in open('/proc/net/route').read().splitlines()[1:]) if f[1] == '00000000')\n"
      "print('GATEWAY', gw)\n"
      "for t in sys.argv[1:]:\n"
      "    ip, port = t.rsplit(':', 1)\n"
      "    try:\n"
      "        s = socket.create_connection((gw if ip == 'GATEWAY' else ip, int(port)), timeout=10)\n"
      "    except ConnectionRefusedError as e:\n"
      "        print('REFUSED', t, e); continue\n"
      "    except socket.timeout:\n"
      "        print('SILENT', t); continue\n"
      "    except OSError as e:\n"
      "        print('CLOSED', t, e); continue\n"  // reset as soon as accepted (before connect() returned)
      "    try:\n"
      "        s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
      "        data = s.recv(100)\n"
      "        print('ANSWERED' if data else 'CLOSED', t, data[:40])\n"
      "    except socket.timeout:\n"
      "        print('SILENT', t)\n"
      "    except OSError as e:\n"
      "        print('CLOSED', t, e)\n"
      "    s.close()\n";
  dk::ContainerSpec spec;
  spec.image = "amlc/python:3-bookworm";
  spec.labels = {{"amlc.workspace", d.ws_id}};
  spec.cmd = {"python3", "-c", probe, "GATEWAY:" + std::to_string(port), bridge_ip + ":5001"};
  std::string id = dc.create_container(spec).id;
  dc.start_container(id);
  CHECK(dc.wait_container(id) == 0);
  std::string out = dc.container_logs(id).out;
  INFO("probe: " << out);
  CHECK(out.find("GATEWAY 172.") != std::string::npos);
  CHECK(out.find("REFUSED GATEWAY:" + std::to_string(port)) != std::string::npos);
  CHECK(out.find("CLOSED " + bridge_ip + ":5001") != std::string::npos);
  CHECK(out.find("ANSWERED") == std::string::npos);
  // The service still answers on 127.0.0.1 afterwards.
  CHECK(post(uri, R"({"data": [1]})", key)->status == 200);
}

TEST_CASE("a redeploy that fails once the old container is gone records Failed - not a Healthy record of a dead container") {
  Deployment d;
  json svc = d.ws.ok(d.deploy_args("gone-svc"));
  d.register_scale(3);  // scaler:2
  // The engine refuses the new container (more CPUs than this machine has) after the old one was removed.
  Result r = d.ws.run({"service", "update", "-n", "gone-svc", "-m", "scaler:2", "--cc", "1024", "--timeout", "60"});
  CHECK(r.code == 1);
  CHECK(r.err.find("CPUs") != std::string::npos);
  CHECK(r.err.find("amlc service reload -n gone-svc") != std::string::npos);
  CHECK(d.containers() == 0);
  json shown = d.ws.ok({"service", "show", "-n", "gone-svc"});
  CHECK(shown["recordedState"] == "Failed");
  CHECK(shown["state"] == "Failed");
  CHECK(shown["containerId"].is_null());
  REQUIRE(shown["error"].is_string());
  CHECK(shown["error"].get<std::string>().find("CPUs") != std::string::npos);
  CHECK_FALSE(shown.contains("pendingModels"));
  CHECK(shown["models"] == json::array({{{"name", "scaler"}, {"version", 1}}}));
  // The version that was being deployed is free again; reload brings the previous one back.
  CHECK(d.ws.ok({"model", "delete", "-i", "scaler:2"}).is_object());
  json rel = d.ws.ok({"service", "reload", "-n", "gone-svc", "--timeout", "60"});
  CHECK(rel["state"] == "Healthy");
  CHECK(d.ws.ok({"service", "run", "-n", "gone-svc", "-d", R"({"data": [1]})"}) == json({{"result", {2}}}));
  CHECK(d.ws.ok({"workspace", "check"})["ok"] == true);
}

TEST_CASE("a failed deploy whose previous record cannot be put back says so, with what to do") {
  Deployment d;
  d.ws.ok(d.deploy_args("stuck-svc"));
  HeldBuild hold(d.ws.dir());
  write_text(hold.steps, read_text(hold.steps) + "RUN exit 3\n");  // once released, the build fails
  auto args = d.deploy_args("stuck-svc");
  args.insert(args.end(), {"--overwrite", "--ds", hold.steps.string()});
  const fs::path record = d.ws.root() / "services" / "stuck-svc.json";
  Result r;
  {
    Background bg(hold, [&] { r = d.ws.run(args); });
    REQUIRE(hold.wait_held());
    // The record can no longer be written: its path is now a folder that is not empty.
    fs::remove(record);
    fs::create_directories(record / "blocker");
  }
  INFO("amlc said: " << r.err);
  CHECK(r.code == 1);
  CHECK(r.err.find("build") != std::string::npos);  // the original error comes first
  CHECK(r.err.find("could not be put back") != std::string::npos);
  CHECK(r.err.find("amlc service delete -n stuck-svc") != std::string::npos);
  fs::remove_all(record);
}
