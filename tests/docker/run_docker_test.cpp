// Runs on the docker target against the real engine (image amlc/python:3-bookworm; nothing is pulled).
#include <chrono>
#include <thread>

#include <doctest/doctest.h>

#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using json = nlohmann::json;

namespace {


fs::path run_path(const t::Workspace& ws, const std::string& id) { return fs::canonical(ws.root() / "runs" / id); }

// Containers still carrying the run's label (the run removes its container when it ends).
std::string containers_of(const std::string& run_id) {
  auto r = t::run_process("/usr/bin/curl", {"-s", "--unix-socket", "/var/run/docker.sock",
                                            "http://docker/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22amlc.run%3D" +
                                                run_id + "%22%5D%7D"});
  return r.out;
}

}  // namespace

TEST_CASE("docker: a run in a container: helpers / metrics / outputs / logs / exit codes / no container left") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/train.py", R"(import os, sys
from amlc import run
run.log("acc", 0.5)
print("loss=0.25")
print("in", os.getcwd(), os.environ["AMLC_RUN_ID"], sys.argv[1:])
os.makedirs("outputs", exist_ok=True)
open("outputs/model.txt", "w").write("container weights")
print("err line", file=sys.stderr)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0)
)");
  std::string src = (ws.dir() / "src").string();
  auto r = ws.run({"run", "submit-script", "--target", "docker", "--source-directory", src, "train.py", "--flag"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json rec = r.json_out();
  std::string id = rec["runId"];
  CHECK(rec["status"] == "Completed");
  CHECK(rec["target"] == "docker");
  CHECK(rec["runDefinition"]["environment"]["docker"]["baseImage"] == "amlc/python:3-bookworm");
  fs::path dir = run_path(ws, id);
  std::string out = t::read_text(dir / "logs/stdout.txt");
  CHECK(out.find("in /amlc/run/wd " + id + " ['--flag']") != std::string::npos);
  CHECK(t::read_text(dir / "logs/stderr.txt").find("err line") != std::string::npos);
  CHECK(t::read_text(dir / "outputs/model.txt") == "container weights");
  auto m = ws.ok({"run", "metrics", "-r", id});
  CHECK(m["acc"] == 0.5);
  CHECK(m["loss"] == 0.25);
  CHECK(!fs::exists(dir / "wd"));
  CHECK(containers_of(id) == "[]\n");

  auto f = ws.run({"run", "submit-script", "--target", "docker", "--source-directory", src, "train.py", "7"});
  CHECK(f.code == 1);
  CHECK(f.json_out()["exitCode"] == 7);
  CHECK(f.json_out()["status"] == "Failed");
}

TEST_CASE("docker: cancel stops the container (SIGTERM / then SIGKILL after the grace period)") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/wait.sh", "echo up\nsleep 60\n");
  t::write_text(ws.dir() / "src/rc.yml", "cancelGracePeriodSeconds: 1\nenvironment:\n  docker: {enabled: true}\n");
  std::string src = (ws.dir() / "src").string();
  auto r = ws.run({"run", "submit-script", "--async", "--source-directory", src, "-c", src + "/rc.yml", "wait.sh"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::string id = r.json_out()["runId"];
  CHECK(r.json_out()["target"] == "docker");
  fs::path dir = run_path(ws, id);
  REQUIRE(t::wait_until([&] { return t::read_text(dir / "logs/stdout.txt").find("up") != std::string::npos; }));
  auto c = ws.run({"run", "cancel", "-r", id});
  REQUIRE_MESSAGE(c.code == 0, c.err);
  CHECK(c.json_out()["status"] == "Canceled");
  CHECK(t::wait_until([&] { return containers_of(id) == "[]\n"; }, 15));
}
