// Runs on the local target, end to end through the real binary.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <doctest/doctest.h>

#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using json = nlohmann::json;

extern char** environ;

namespace {

fs::path ws_dir(const t::Workspace& ws) { return ws.root(); }  // root() is the .amlc store

fs::path run_path(const t::Workspace& ws, const std::string& id) {
  fs::path link = ws_dir(ws) / "runs" / id;
  REQUIRE(fs::is_symlink(link));
  return fs::canonical(link);
}

json read_json(const fs::path& p) { return json::parse(t::read_text(p)); }

std::string status_of(const t::Workspace& ws, const std::string& id) {
  try {
    return read_json(run_path(ws, id) / "run.json").value("status", "");
  } catch (...) {
    return "";
  }
}

bool pid_alive(int pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

}  // namespace

TEST_CASE("run: a passing script keeps its record / logs / outputs and metrics - args pass through verbatim") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/train.py", R"(import json, os, sys, time
print("args", sys.argv[1:])
print("cwd_is_source", os.getcwd() == os.environ["SRC"])
for k in ["AMLC_RUN_ID", "AZUREML_RUN_ID", "AMLC_EXPERIMENT", "AMLC_OUTPUTS_DIR", "AMLC_METRICS_FILE"]:
    print(k, os.environ.get(k))
print("loss=0.5 acc=0.9")
print("epoch = 2, loss=0.25")
print("not a metric: x=abc")
with open(os.environ["AMLC_METRICS_FILE"], "a") as f:
    f.write(json.dumps({"name": "f1", "value": 0.7}) + "\n")
    f.write(json.dumps({"name": "f1", "value": 0.8, "kind": "scalar", "time": time.time()}) + "\n")
    f.write("garbage line\n")
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as f:
    f.write("weights")
os.makedirs("outputs/sub", exist_ok=True)
open("outputs/sub/b.txt", "w").write("b")
open("scratch.txt", "w").write("not kept")
print("to stderr", file=sys.stderr)
)");
  t::write_text(ws.dir() / "src/.amlignore", "data/\n");
  t::write_text(ws.dir() / "src/data/big.csv", "1,2,3\n");
  t::RunOptions ro;
  ro.env["SRC"] = (ws.dir() / "src").string();
  auto r = ws.run({"run", "submit-script", "-e", "exp1", "--source-directory", (ws.dir() / "src").string(), "--tag",
                   "team=a", "train.py", "--lr", "0.1", "-x", "--help", "-e", "inner"},
                  ro);
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json rec = r.json_out();
  std::string id = rec["runId"];
  CHECK(id.rfind("exp1_", 0) == 0);
  CHECK(rec["status"] == "Completed");
  CHECK(rec["exitCode"] == 0);
  CHECK(rec["experimentName"] == "exp1");
  CHECK(rec["tags"]["team"] == "a");
  CHECK(rec["runDefinition"]["arguments"] == json({"--lr", "0.1", "-x", "--help", "-e", "inner"}));
  CHECK(rec["snapshot"]["files"] == 2);     // train.py, .amlignore
  CHECK(rec["snapshot"]["excluded"] == 1);  // data/
  std::vector<std::string> states;
  for (const auto& h : rec["statusHistory"]) states.push_back(h["status"]);
  CHECK(states == std::vector<std::string>{"NotStarted", "Queued", "Preparing", "Running", "Completed"});
  CHECK(!rec["startTimeUtc"].is_null());
  CHECK(!rec["endTimeUtc"].is_null());
  // Streamed to the terminal on stderr, not stdout.
  CHECK(r.err.find("args ['--lr', '0.1', '-x', '--help', '-e', 'inner']") != std::string::npos);

  fs::path dir = run_path(ws, id);
  CHECK(dir.parent_path().filename() == "runs");
  CHECK(dir.parent_path().parent_path().filename() == "exp1");
  std::string out = t::read_text(dir / "logs/stdout.txt");
  CHECK(out.find("cwd_is_source False") != std::string::npos);
  CHECK(out.find("AMLC_RUN_ID " + id) != std::string::npos);
  CHECK(out.find("AZUREML_RUN_ID " + id) != std::string::npos);
  CHECK(out.find("AMLC_EXPERIMENT exp1") != std::string::npos);
  CHECK(out.find("AMLC_OUTPUTS_DIR " + (dir / "outputs").string()) != std::string::npos);
  CHECK(t::read_text(dir / "logs/stderr.txt") == "to stderr\n");
  CHECK(t::read_text(dir / "outputs/model.txt") == "weights");
  CHECK(!fs::exists(dir / "wd"));  // the working copy is gone, outputs stay
  CHECK(!fs::exists(ws.dir() / "src/scratch.txt"));

  // Metrics: stdout (name=value) and the metrics file, with steps per name.
  auto m = ws.ok({"run", "metrics", "-r", id});
  CHECK(m["loss"] == json({0.5, 0.25}));
  CHECK(m["acc"] == 0.9);
  CHECK(m["epoch"] == 2);
  CHECK(m["f1"] == json({0.7, 0.8}));
  CHECK(!m.contains("x"));
  auto recs = ws.ok({"run", "metrics", "-r", id, "--records", "-n", "loss"});
  REQUIRE(recs.size() == 2);
  CHECK(recs[0]["step"] == 1);
  CHECK(recs[1]["step"] == 2);
  CHECK(recs[0]["source"] == "stdout");
  auto f1 = ws.ok({"run", "metrics", "-r", id, "--records", "-n", "f1"});
  CHECK(f1[0]["source"] == "file");

  // show / list / logs / download / experiment list
  CHECK(ws.ok({"run", "show", "-r", id})["status"] == "Completed");
  auto list = ws.ok({"run", "list", "-e", "exp1"});
  REQUIRE(list.size() == 1);
  CHECK(list[0]["runId"] == id);
  auto logs = ws.run({"run", "logs", "-r", id});
  CHECK(logs.code == 0);
  CHECK(logs.out.find("loss=0.5 acc=0.9") != std::string::npos);
  CHECK(logs.out.find("to stderr") != std::string::npos);
  auto dl = ws.ok({"run", "download", "-r", id, "-d", (ws.dir() / "dl").string()});
  CHECK(dl["files"].size() == 2);
  CHECK(t::read_text(ws.dir() / "dl/model.txt") == "weights");
  CHECK(t::read_text(ws.dir() / "dl/sub/b.txt") == "b");
  CHECK(ws.run({"run", "download", "-r", id, "-d", (ws.dir() / "dl").string()}).code == 4);  // exists
  auto exps = ws.ok({"experiment", "list"});
  REQUIRE(exps.size() == 1);
  CHECK(exps[0]["name"] == "exp1");
  CHECK(exps[0]["runCount"] == 1);
  // The workspace check knows runs.
  auto check = ws.ok({"workspace", "check"});
  CHECK(check["stats"]["runs"] == 1);
}

TEST_CASE("run: a failing script is Failed with its exit code - a non-Python command runs too") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/fail.sh", "echo about to fail\nexit 3\n");
  auto r = ws.run({"run", "submit-script", "--source-directory", (ws.dir() / "src").string(), "fail.sh"});
  CHECK(r.code == 1);
  json rec = r.json_out();
  CHECK(rec["status"] == "Failed");
  CHECK(rec["exitCode"] == 3);
  CHECK(rec["error"]["message"] == "the script exited with code 3");
  CHECK(r.err.find("failed: the script exited with code 3") != std::string::npos);

  // A run config with a command list (any executable) and a custom metrics regex with named groups.
  t::write_text(ws.dir() / "src/rc.yml",
                "command: [/bin/sh, -c, 'echo \"metric acc -> 0.75\"; echo \"metric acc -> 0.5\"; echo loss=1']\n"
                "metrics:\n  regex: 'metric (?<name>\\w+) -> (?<value>[0-9.]+)'\n"
                "environment:\n  environmentVariables: {GREETING: hello}\n");
  auto r2 = ws.run({"run", "submit-script", "--source-directory", (ws.dir() / "src").string(), "-c",
                    (ws.dir() / "src/rc.yml").string(), "-e", "cmd"});
  REQUIRE_MESSAGE(r2.code == 0, r2.err);
  std::string id = r2.json_out()["runId"];
  auto m = ws.ok({"run", "metrics", "-r", id});
  CHECK(m["acc"] == json({0.75, 0.5}));
  CHECK(!m.contains("loss"));  // only the configured pattern applies
}

TEST_CASE("run: cancel from another process - SIGKILL after the grace period when SIGTERM is ignored") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/stubborn.py",
                "import signal, time, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
                "time.sleep(60)\n");
  t::write_text(ws.dir() / "src/rc.json", "{\"cancelGracePeriodSeconds\": 1}");
  auto r = ws.run({"run", "submit-script", "--async", "--source-directory", (ws.dir() / "src").string(), "-c",
                   (ws.dir() / "src/rc.json").string(), "stubborn.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::string id = r.json_out()["runId"];
  fs::path dir = run_path(ws, id);
  REQUIRE(t::wait_until([&] { return t::read_text(dir / "logs/stdout.txt").find("ready") != std::string::npos; }));
  CHECK(status_of(ws, id) == "Running");
  int child = read_json(dir / "run.json")["process"]["pid"];
  CHECK(pid_alive(child));
  auto t0 = std::chrono::steady_clock::now();
  auto c = ws.run({"run", "cancel", "-r", id, "--reason", "test says stop"});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE_MESSAGE(c.code == 0, c.err);
  json rec = c.json_out();
  CHECK(rec["status"] == "Canceled");
  CHECK(rec["cancelRequested"]["reason"] == "test says stop");
  CHECK(rec["signal"] == "SIGKILL");
  CHECK(took < 10);
  CHECK(t::wait_until([&] { return !pid_alive(child); }, 5));
  // Canceling again is fine; a Completed run cannot be canceled.
  CHECK(ws.run({"run", "cancel", "-r", id}).code == 0);
  CHECK(ws.ok({"run", "list", "--status", "Canceled"}).size() == 1);
}

TEST_CASE("run: Ctrl+C on a foreground run cancels it: exit 130 / status Canceled") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/sleepy.sh", "echo started\nsleep 60\n");
  std::vector<std::string> args = {AMLC_BIN, "-w", ws.root().string(), "run", "submit-script", "--source-directory",
                                   (ws.dir() / "src").string(), "sleepy.sh"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, AMLC_BIN, &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  std::string id;
  bool running = t::wait_until([&] {
    std::error_code ec;
    if (!fs::is_directory(ws_dir(ws) / "runs", ec)) return false;
    for (const auto& e : fs::directory_iterator(ws_dir(ws) / "runs", ec)) {
      id = e.path().filename().string();
      fs::path dir = run_path(ws, id);
      return status_of(ws, id) == "Running" &&
             t::read_text(dir / "logs/stdout.txt").find("started") != std::string::npos;
    }
    return false;
  });
  REQUIRE(running);
  int child = read_json(run_path(ws, id) / "run.json")["process"]["pid"];
  ::kill(pid, SIGINT);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  json rec = read_json(run_path(ws, id) / "run.json");
  CHECK(rec["status"] == "Canceled");
  CHECK(rec["signal"] == "SIGTERM");
  CHECK(std::string(rec["cancelRequested"]["reason"]).find("SIGINT") != std::string::npos);
  CHECK(t::wait_until([&] { return !pid_alive(child); }, 5));
}

TEST_CASE("run: a run whose supervisor died is reconciled to Failed / never a zombie Running") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/long.sh", "echo up\nsleep 60\n");
  auto r = ws.run({"run", "submit-script", "--async", "--source-directory", (ws.dir() / "src").string(), "long.sh"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::string id = r.json_out()["runId"];
  fs::path dir = run_path(ws, id);
  REQUIRE(t::wait_until([&] { return status_of(ws, id) == "Running"; }));
  json rec = read_json(dir / "run.json");
  int sup = rec["supervisor"]["pid"];
  int child = rec["process"]["pid"];
  REQUIRE(pid_alive(sup));
  ::kill(sup, SIGKILL);
  REQUIRE(t::wait_until([&] {
    // The supervisor is not our child: it is gone once /proc says so (or it is a zombie of init).
    return !fs::exists("/proc/" + std::to_string(sup)) ||
           t::read_text("/proc/" + std::to_string(sup) + "/stat").find(") Z") != std::string::npos;
  }));
  auto shown = ws.ok({"run", "show", "-r", id});
  CHECK(shown["status"] == "Failed");
  CHECK(std::string(shown["error"]["message"]).find("supervising amlc process") != std::string::npos);
  CHECK(t::wait_until([&] { return !pid_alive(child); }, 5));
}

TEST_CASE("run: bad input is a precise error and leaves the workspace as it was") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/ok.py", "print('x')\n");
  t::write_text(ws.dir() / "src/bad.yml", "script: ok.py\nenvironment:\n  environmentVariables: [1, 2]\n");
  t::write_text(ws.dir() / "src/typo.yml", "scirpt: ok.py\n");
  std::string src = (ws.dir() / "src").string();
  auto before = t::snapshot_tree(ws.root());

  auto missing = ws.run({"run", "submit-script", "--source-directory", src, "nope.py"});
  CHECK(missing.code == 3);
  CHECK(missing.err.find("script 'nope.py' not found in source directory") != std::string::npos);

  auto target = ws.run({"run", "submit-script", "--source-directory", src, "--target", "dokcer", "ok.py"});
  CHECK(target.code == 2);
  CHECK(target.err.find("unknown target 'dokcer'") != std::string::npos);
  CHECK(target.err.find("did you mean 'docker'") != std::string::npos);

  auto bad = ws.run({"run", "submit-script", "--source-directory", src, "-c", src + "/bad.yml"});
  CHECK(bad.code == 2);
  CHECK(bad.err.find("bad.yml:3:") != std::string::npos);
  CHECK(bad.err.find("environment.environmentVariables") != std::string::npos);

  auto typo = ws.run({"run", "submit-script", "--source-directory", src, "-c", src + "/typo.yml"});
  CHECK(typo.code == 2);
  CHECK(typo.err.find("typo.yml:1:1") != std::string::npos);
  CHECK(typo.err.find("script") != std::string::npos);

  auto no_rc = ws.run({"run", "submit-script", "--source-directory", src, "-c", "missing", "ok.py"});
  CHECK(no_rc.code == 3);

  auto no_docker = ws.run({"run", "submit-script", "--source-directory", src, "--target", "docker", "ok.py"},
                          {.env = {{"DOCKER_HOST", "unix://" + (ws.dir() / "no.sock").string()}}});
  CHECK(no_docker.code == 5);

  t::RunOptions limits;
  limits.env["AMLC_SNAPSHOT_MAX_FILES"] = "2";
  auto too_many = ws.run({"run", "submit-script", "--source-directory", src, "ok.py"}, limits);
  CHECK(too_many.code == 2);
  CHECK(too_many.err.find("3 files (limit 2)") != std::string::npos);

  for (const char* verb : {"show", "logs", "cancel", "metrics"}) {
    auto nf = ws.run({"run", verb, "-r", "no_such_run"});
    CHECK_MESSAGE(nf.code == 3, verb);
    CHECK(nf.err.find("run 'no_such_run' not found") != std::string::npos);
  }
  CHECK(t::snapshot_tree(ws.root()) == before);
}

TEST_CASE("run: list filters by experiment / status / tag and --last") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/ok.sh", "true\n");
  t::write_text(ws.dir() / "src/no.sh", "false\n");
  std::string src = (ws.dir() / "src").string();
  for (int i = 0; i < 3; ++i) {
    auto r = ws.run({"run", "submit-script", "-e", i < 2 ? "a" : "b", "--source-directory", src, "--tag",
                     "i=" + std::to_string(i), i == 1 ? "no.sh" : "ok.sh"});
    CHECK(r.code == (i == 1 ? 1 : 0));
  }
  CHECK(ws.ok({"run", "list"}).size() == 3);
  CHECK(ws.ok({"run", "list", "-e", "a"}).size() == 2);
  CHECK(ws.ok({"run", "list", "--status", "Failed"}).size() == 1);
  CHECK(ws.ok({"run", "list", "--tag", "i=2"})[0]["experimentName"] == "b");
  CHECK(ws.ok({"run", "list", "--last", "1"}).size() == 1);
  CHECK(ws.run({"run", "list", "--status", "Bogus"}).code == 2);
  auto table = ws.run({"run", "list", "-o", "table"});
  CHECK(table.out.find("RunId") != std::string::npos);
}

TEST_CASE("run: update changes tags (also of a running run), download-logs copies the logs, monitor-logs follows") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/talk.sh", "echo one; echo two >&2; echo three\n");
  std::string src = (ws.dir() / "src").string();
  json done = json::parse(ws.run({"run", "submit-script", "--source-directory", src, "--tag", "draft=1", "talk.sh"}).out);
  std::string id = done["runId"];

  json upd = ws.ok({"run", "update", "-r", id, "--add-tag", "quality=good", "--add-tag", "owner=me", "--remove-tag", "draft"});
  CHECK(upd["tags"]["quality"] == "good");
  CHECK(upd["tags"]["owner"] == "me");
  CHECK_FALSE(upd["tags"].contains("draft"));
  CHECK(ws.ok({"run", "list", "--tag", "quality=good"}).size() == 1);
  // Bad input changes nothing: a tag that is not there, no change at all, an unknown run.
  auto before = t::snapshot_tree(ws.root());
  auto missing = ws.run({"run", "update", "-r", id, "--add-tag", "x=1", "--remove-tag", "nope"});
  CHECK(missing.code == 3);
  CHECK(missing.err.find("no tag 'nope'") != std::string::npos);
  CHECK(ws.run({"run", "update", "-r", id}).code == 2);
  CHECK(ws.run({"run", "update", "-r", id, "--add-tag", "=v"}).code == 2);
  CHECK(ws.run({"run", "update", "-r", "no_such_run", "--add-tag", "a=b"}).code == 3);
  CHECK(t::snapshot_tree(ws.root()) == before);

  json dl = ws.ok({"run", "download-logs", "-r", id, "-d", (ws.dir() / "logs-copy").string()});
  CHECK(dl["files"].size() == 3);
  CHECK(t::read_text(ws.dir() / "logs-copy/stdout.txt") == "one\nthree\n");
  CHECK(t::read_text(ws.dir() / "logs-copy/stderr.txt") == "two\n");
  CHECK(t::read_text(ws.dir() / "logs-copy/run.log").find("one\n") != std::string::npos);
  auto again = ws.run({"run", "download-logs", "-r", id, "-d", (ws.dir() / "logs-copy").string()});
  CHECK(again.code == 4);  // files exist
  CHECK(ws.run({"run", "download-logs", "-r", id, "-d", (ws.dir() / "logs-copy").string(), "--overwrite"}).code == 0);

  // A running run: tags change under the supervisor's feet and survive its final write; monitor-logs follows
  // it to the end.
  t::write_text(ws.dir() / "src/slow.sh", "echo start; while [ ! -e \"$GO\" ]; do sleep 0.02; done; echo end\n");
  fs::path go = ws.dir() / "go";
  t::RunOptions env;
  env.env["GO"] = go.string();
  auto submitted = ws.run({"run", "submit-script", "--async", "--source-directory", src, "slow.sh"}, env);
  REQUIRE_MESSAGE(submitted.code == 0, submitted.err);
  std::string rid = json::parse(submitted.out)["runId"];
  REQUIRE(t::wait_until([&] { return ws.ok({"run", "show", "-r", rid})["status"] == "Running"; }));
  ws.ok({"run", "update", "-r", rid, "--add-tag", "watched=yes"});
  t::write_text(go, "");
  auto mon = ws.run({"run", "monitor-logs", "-r", rid});
  CHECK(mon.code == 0);
  CHECK(mon.out == "start\nend\n");
  json fin = ws.ok({"run", "show", "-r", rid});
  CHECK(fin["status"] == "Completed");
  CHECK(fin["tags"]["watched"] == "yes");
}
