// Starting and stopping runs: a launch that fails (no such program, a Docker engine that refuses the container)
// leaves no file descriptor behind; a run that a cancel from another process killed is Canceled; a damaged run
// definition fails the run, and does not stop a cancel.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <optional>

#include <doctest/doctest.h>

#include "amlc/runs/executor.hpp"
#include "amlc/runs/store.hpp"
#include "docker_fake_server.hpp"
#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using json = nlohmann::json;
using namespace amlc::runs;

namespace {

// The pipes this process holds (entries of /proc/self/fd that are pipes).
int open_pipes() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (fs::read_symlink(e.path(), ec).string().rfind("pipe:", 0) == 0) ++n;
  }
  return n;
}

struct EnvGuard {
  std::string name;
  std::optional<std::string> old;
  EnvGuard(std::string n, const char* value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    ::setenv(name.c_str(), value, 1);
  }
  ~EnvGuard() {
    if (old) ::setenv(name.c_str(), old->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
};

// A Queued run of `command` from a snapshot of one file.
std::string queued_run(const amlc::Workspace& ws, const fs::path& src, std::vector<std::string> command) {
  t::write_text(src / "a.py", "print('a')\n");
  return create_run(ws, {.experiment = "x", .snapshot = store_snapshot(ws, src, {}), .command = std::move(command)})["runId"];
}

void damage_definition(const amlc::Workspace& ws, const std::string& run_id) {
  update_run(run_dir(ws, run_id), [](json& r) {
    r["runDefinition"]["cancelGracePeriodSeconds"] = "soon";
    return true;
  });
}

}  // namespace

TEST_CASE("runs: a docker launch the engine refuses closes its pipes - so does a local one with no program") {
  t::TempDir tmp;
  auto ws = amlc::Workspace::create(tmp / "ws", "t");
  t::write_text(tmp / "src/a.py", "print('a')\n");
  SnapshotRef snap = store_snapshot(ws, tmp / "src", {});
  t::FakeDockerServer engine([](const t::FakeRequest& r) -> std::optional<t::FakeResponse> {
    if (r.method == "POST" && r.path().find("/containers/create") != std::string::npos)
      return t::FakeResponse::error(500, "no space left for the container");
    return std::nullopt;
  });
  EnvGuard host("DOCKER_HOST", ("unix://" + engine.socket_path()).c_str());
  int before = open_pipes();
  for (std::string target : {"docker", "local"}) {
    CAPTURE(target);
    // checked: the engine is fake, create_run does not ask it for the image.
    json rec = create_run(ws, {.experiment = "x",
                               .snapshot = snap,
                               .script = "a.py",
                               .command = target == "local" ? std::vector<std::string>{"no-such-program-amlc"}
                                                            : std::vector<std::string>{},
                               .target = target,
                               .checked = true});
    {
      auto ex = Execution::start(ws, rec["runId"], {.echo = false, .reuse_extracted = false});
      REQUIRE(ex->finished());
      json done = ex->record();
      CHECK(done["status"] == "Failed");
      std::string error = done["error"].dump();
      CAPTURE(error);
      CHECK(error.find(target == "docker" ? "no space left for the container" : "no-such-program-amlc") !=
            std::string::npos);
    }
    CHECK(open_pipes() == before);
  }
}

TEST_CASE("runs: a run that a cancel from another process killed is Canceled - also when it dies at once") {
  t::TempDir tmp;
  auto ws = amlc::Workspace::create(tmp / "ws", "t");
  // What cancel_run does from another process: the cancel marker, then SIGTERM to the run's process group. The
  // program dies of it before this process's next look at the marker (it looks at most every 0.1 s).
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    auto ex = Execution::start(ws, queued_run(ws, tmp / "src", {"sleep", "60"}));
    REQUIRE(ex->record()["status"] == "Running");
    pid_t pgid = ex->record()["process"]["pgid"];
    ex->poll(0);
    amlc::write_file_atomic(ex->dir() / "cancel", "stop\n");
    REQUIRE(::kill(-pgid, SIGTERM) == 0);
    siginfo_t info{};
    REQUIRE(t::wait_until([&] {
      return ::waitid(P_PID, static_cast<id_t>(pgid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pgid;
    }, 60));
    REQUIRE(t::wait_until([&] { return ex->poll(0); }, 60));
    json done = ex->record();
    CHECK(done["status"] == "Canceled");
    CHECK(done["cancelRequested"]["reason"] == "stop");
  }
}

TEST_CASE("runs: a run whose definition is damaged fails to start, saying so - the record is not left Preparing") {
  t::TempDir tmp;
  auto ws = amlc::Workspace::create(tmp / "ws", "t");
  std::string id = queued_run(ws, tmp / "src", {"true"});
  damage_definition(ws, id);
  std::unique_ptr<Execution> ex;
  REQUIRE_NOTHROW(ex = Execution::start(ws, id));
  REQUIRE(ex->finished());
  json rec = load_run(ws, id);
  CHECK(rec["status"] == "Failed");
  std::string error = rec["error"].dump();
  CAPTURE(error);
  CHECK(error.find("the runDefinition of run " + id + " is damaged") != std::string::npos);
}

TEST_CASE("runs: a running run whose definition was damaged can still be canceled") {
  t::TempDir tmp;
  auto ws = amlc::Workspace::create(tmp / "ws", "t");
  std::string id = queued_run(ws, tmp / "src", {"sleep", "60"});
  auto ex = Execution::start(ws, id);
  REQUIRE(load_run(ws, id)["status"] == "Running");
  damage_definition(ws, id);
  auto canceled = std::async(std::launch::async, [&] { return cancel_run(ws, id, "enough", 60 * t::time_scale()); });
  CHECK(t::wait_until([&] { return ex->poll(50); }, 60));
  json rec = canceled.get();  // rethrows what cancel_run threw
  CHECK(rec["status"] == "Canceled");
  CHECK(rec["cancelRequested"]["reason"] == "enough");
}
