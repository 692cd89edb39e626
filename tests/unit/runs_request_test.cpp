// The run request's one JSON form (run records and sweep records) and the older flat form of sweep records.
#include <doctest/doctest.h>

#include "amlc/core/error.hpp"
#include "amlc/runs/request.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/workspace/workspace.hpp"
#include "support/harness.hpp"

using namespace amlc;
using namespace amlc::runs;
using json = nlohmann::json;

namespace {

void check_same(const RunRequest& a, const RunRequest& b) {
  CHECK(resolve_command(a) == resolve_command(b));
  CHECK(a.script == b.script);
  CHECK(a.arguments == b.arguments);
  CHECK((a.command == b.command || a.command.empty() || b.command.empty()));  // empty: the default program
  CHECK(a.interpreter == b.interpreter);
  CHECK(a.target == b.target);
  CHECK(a.environment == b.environment);
  CHECK(a.metrics_regex == b.metrics_regex);
  CHECK(a.metrics_from_stdout == b.metrics_from_stdout);
  CHECK(a.grace_seconds == b.grace_seconds);
  CHECK(a.max_duration_seconds == b.max_duration_seconds);
  CHECK(fs::absolute(a.source_dir).lexically_normal() == fs::absolute(b.source_dir).lexically_normal());
}

}  // namespace

TEST_CASE("runs request: what request_to_json writes reads back to a request that runs the same program") {
  std::vector<RunRequest> cases;
  RunRequest py;
  py.script = "train.py";
  py.arguments = {"--lr", "0.1", "train.py"};
  py.environment = {{"A", "1"}, {"B", "two"}};
  py.metrics_regex = "(?P<name>\\w+): (?P<value>\\S+)";
  py.metrics_from_stdout = false;
  py.grace_seconds = 2.5;
  py.max_duration_seconds = 60;
  py.source_dir = "/tmp/src";
  cases.push_back(py);
  RunRequest interp = py;
  interp.interpreter = "/usr/bin/python3.11";
  cases.push_back(interp);
  RunRequest perl;
  perl.script = "x.pl";
  perl.command = {"perl", "-w"};
  perl.arguments = {"a"};
  cases.push_back(perl);
  RunRequest same_as_default;  // an explicit program equal to the default one: the same argv either way
  same_as_default.script = "run.sh";
  same_as_default.command = {"bash"};
  cases.push_back(same_as_default);
  RunRequest program;  // no script: the command alone
  program.command = {"echo", "hi"};
  program.arguments = {"there"};
  cases.push_back(program);
  RunRequest plain;  // an executable script without extension runs as ./script
  plain.script = "tool";
  plain.arguments = {"tool"};
  cases.push_back(plain);
  RunRequest self;  // the program names the script itself
  self.script = "tool";
  self.command = {"./tool"};
  cases.push_back(self);
  RunRequest docker = py;
  docker.target = "docker";
  docker.image = "my/image:1";
  cases.push_back(docker);

  for (const auto& r : cases) {
    CAPTURE(resolve_command(r));
    json j = request_to_json(r);
    CHECK(j["command"] == json(resolve_command(r)));
    CHECK(j["environment"]["docker"]["enabled"] == (r.target == "docker"));
    RunRequest back = request_from_json(j, "exp");
    CHECK(back.experiment == "exp");
    check_same(back, r);
    if (r.target == "docker") CHECK(back.image == r.image);
    // Appending arguments (as a sweep does per trial) gives the same program either way.
    RunRequest a = r, b = back;
    a.arguments.push_back("--x");
    b.arguments.push_back("--x");
    CHECK(resolve_command(a) == resolve_command(b));
    CHECK(request_to_json(back) == j);
  }
  CHECK(request_from_json(request_to_json(same_as_default), "e").command.empty());
  CHECK(request_from_json(request_to_json(perl), "e").command == std::vector<std::string>{"perl", "-w"});
  CHECK(request_from_json(request_to_json(self), "e").command == std::vector<std::string>{"./tool"});
  RunRequest with_snapshot = py;
  with_snapshot.snapshot = SnapshotRef{};
  CHECK(request_to_json(with_snapshot)["sourceDirectory"].is_null());
}

TEST_CASE("runs request: the flat runDefinition of older sweep records still reads") {
  // As sweep.json recorded it before the run definition had one form.
  json old = json::parse(R"J({
    "script": "train.py", "arguments": ["--epochs", "3"], "command": [], "interpreter": "python3.11",
    "target": "docker", "image": "amlc/python:3-bookworm", "environmentVariables": {"SEED": "1"},
    "metricsRegex": "(?P<name>\\w+)=(?P<value>\\S+)", "metricsRegexWhere": "rc.yml:3:10: key 'metrics.regex'",
    "metricsFromStdout": true, "cancelGracePeriodSeconds": 1.5, "maxRunDurationSeconds": 0.0,
    "sourceDirectory": "/tmp/src"})J");
  RunRequest r = request_from_json(old, "tune");
  CHECK(r.experiment == "tune");
  CHECK(r.script == "train.py");
  CHECK(r.arguments == std::vector<std::string>{"--epochs", "3"});
  CHECK(r.command.empty());
  CHECK(r.interpreter == "python3.11");
  CHECK(r.target == "docker");
  CHECK(r.image == "amlc/python:3-bookworm");
  CHECK(r.environment == std::map<std::string, std::string>{{"SEED", "1"}});
  CHECK(r.metrics_regex == "(?P<name>\\w+)=(?P<value>\\S+)");
  CHECK(r.metrics_regex_where == "rc.yml:3:10: key 'metrics.regex'");
  CHECK(r.grace_seconds == 1.5);
  CHECK(r.max_duration_seconds == 0);
  CHECK(r.source_dir == "/tmp/src");
  CHECK(resolve_command(r) == std::vector<std::string>{"python3.11", "train.py", "--epochs", "3"});
  json cmd = old;
  cmd["command"] = {"perl"};
  CHECK(request_from_json(cmd, "e").command == std::vector<std::string>{"perl"});
}

TEST_CASE("runs request: a damaged definition is Damaged, naming what it came from") {
  RunRequest py;
  py.script = "train.py";
  py.arguments = {"--a"};
  json good = request_to_json(py);
  std::vector<json> bad{json(nullptr), json::array(), json{{"environmentVariables", {{"A", 1}}}}};
  json no_command = good;
  no_command.erase("command");
  bad.push_back(no_command);
  json wrong_args = good;
  wrong_args["arguments"] = {"--b"};  // the command does not end with them
  bad.push_back(wrong_args);
  json other_script = good;
  other_script["script"] = "other.py";
  other_script["command"] = {"python3", "train.py", "--a"};
  bad.push_back(other_script);
  json env_not_map = good;
  env_not_map["environment"]["environmentVariables"] = "A=1";
  bad.push_back(env_not_map);
  for (const auto& j : bad) {
    CAPTURE(j.dump());
    try {
      (void)request_from_json(j, "e", "the sweep record's runDefinition");
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Damaged);
      CHECK(std::string(e.what()).find("the sweep record's runDefinition is damaged") != std::string::npos);
    }
  }
}

TEST_CASE("runs request: a request checked once (a sweep's) creates its runs without the request checks") {
  amlc::test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path() / "ws", "t");
  amlc::test::write_text(tmp / "src/train.py", "print('acc=1')\n");
  RunRequest r;
  r.experiment = "e";
  r.script = "train.py";
  r.snapshot = store_snapshot(ws, tmp / "src", {});
  check_request(r);  // a good request passes
  RunRequest bad = r;
  bad.metrics_regex = "(unclosed";
  CHECK(amlc::test::error_kind_of([&] { check_request(bad); }) == ErrorKind::Usage);
  bad.run_id = "e_1";
  CHECK(amlc::test::error_kind_of([&] { create_run(ws, bad); }) == ErrorKind::Usage);  // unchecked: refused, nothing written
  CHECK_FALSE(find_run_dir(ws, "e_1"));
  // Checked by the caller: create_run does not check the request again (the pattern is not even compiled).
  bad.checked = true;
  json rec = create_run(ws, bad);
  CHECK(rec["runId"] == "e_1");
  CHECK(find_run_dir(ws, "e_1"));
  // The run's own ids are still checked, and an existing run is still a conflict.
  CHECK(amlc::test::error_kind_of([&] { create_run(ws, bad); }) == ErrorKind::Conflict);
  RunRequest bad_id = r;
  bad_id.checked = true;
  bad_id.run_id = "../x";
  CHECK(amlc::test::error_kind_of([&] { create_run(ws, bad_id); }) == ErrorKind::Usage);
}

TEST_CASE("runs request: the script is a path inside the source directory - a name such as '..a.py' is a name") {
  amlc::test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path() / "ws", "t");
  fs::path src = tmp / "src";
  amlc::test::write_text(src / "..a.py", "print('a')\n");
  amlc::test::write_text(src / "sub/b.py", "print('b')\n");
  amlc::test::write_text(tmp / "out.py", "print('out')\n");
  RunRequest r;
  r.experiment = "e";
  r.source_dir = src;
  using Case = std::pair<std::string, std::string>;  // as given, as recorded
  for (const auto& [given, recorded] : {Case{"..a.py", "..a.py"}, Case{"./..a.py", "..a.py"},
                                        Case{(src / "..a.py").string(), "..a.py"}, Case{"sub/../sub/b.py", "sub/b.py"},
                                        Case{(src / "sub/./b.py").string(), "sub/b.py"}}) {
    CAPTURE(given);
    r.script = given;
    CHECK_NOTHROW(check_request(r));
    CHECK(create_run(ws, r)["runDefinition"]["script"] == recorded);
  }
  for (const std::string& outside : std::vector<std::string>{"../out.py", (tmp / "out.py").string(), "sub/../../out.py", ".", src.string()}) {
    CAPTURE(outside);
    r.script = outside;
    std::string message;
    CHECK(amlc::test::error_kind_of([&] {
            try {
              check_request(r);
            } catch (const Error& e) {
              message = e.what();
              throw;
            }
          }) == ErrorKind::Usage);
    CHECK(message.find("is not inside the source directory") != std::string::npos);
  }
}
