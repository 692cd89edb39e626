// model deploy / service commands through the real binary, without needing a Docker engine:
// config errors (file:line:col, exit 2, workspace untouched), conflicts, not-found, daemon unavailable (exit 5),
// model delete refused while a service uses the model.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <doctest/doctest.h>

#include "amlc/core/fs.hpp"
#include "support/harness.hpp"

using namespace amlc::test;

namespace {

struct Fixture {
  Workspace ws;
  Fixture() {
    write_text(ws.dir() / "app" / "score.py", "def init():\n    pass\n\ndef run(d):\n    return d\n");
    write_text(ws.dir() / "app" / "model.json", "{\"w\": 1}\n");
    ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "app" / "model.json").string()});
  }
  fs::path app(const std::string& rel) const { return ws.dir() / "app" / rel; }
  RunOptions no_docker() const {
    RunOptions o;
    o.env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock";
    return o;
  }
};

}  // namespace

TEST_CASE("deploy: a bad inference config fails with file:line:col, exit 2, and changes nothing") {
  Fixture f;
  write_text(f.app("ic.json"), "{\n  \"entryScript\": \"score.py\",\n  \"extraDockerfileStep\": \"x\"\n}\n");
  auto before = snapshot_tree(f.ws.root());
  Result r = f.ws.run({"model", "deploy", "-n", "svc-one", "-m", "m:1", "--ic", f.app("ic.json").string()}, f.no_docker());
  CHECK(r.code == 2);
  CHECK(r.err.find("ic.json:3:3") != std::string::npos);
  CHECK(r.err.find("extraDockerfileSteps") != std::string::npos);  // did you mean
  CHECK(snapshot_tree(f.ws.root()) == before);
}

TEST_CASE("deploy: bad deployment config and bad flags are usage errors") {
  Fixture f;
  write_text(f.app("ic.yml"), "entryScript: score.py\n");
  write_text(f.app("dc.yml"), "computeType: MIR\n");
  Result r = f.ws.run({"model", "deploy", "-n", "svc-one", "-m", "m:1", "--ic", f.app("ic.yml").string(), "--dc",
                       f.app("dc.yml").string()}, f.no_docker());
  CHECK(r.code == 2);
  CHECK(r.err.find("dc.yml:1:") != std::string::npos);
  CHECK(r.err.find("not supported locally") != std::string::npos);

  // A huge number is named as such, with file:line:col, the key and what was expected (not "a number null").
  write_text(f.app("dc.yml"), "computeType: local\nport: " + std::string(2000, '9') + "\n");
  r = f.ws.run({"model", "deploy", "-n", "svc-one", "-m", "m:1", "--ic", f.app("ic.yml").string(), "--dc",
                f.app("dc.yml").string()}, f.no_docker());
  CHECK(r.code == 2);
  CHECK(r.err.find("dc.yml:2:7: key 'port': expected an integer port from 1 to 65535") != std::string::npos);
  CHECK(r.err.find("null") == std::string::npos);

  r = f.ws.run({"model", "deploy", "-n", "Bad_Name", "-m", "m:1", "--ic", f.app("ic.yml").string()}, f.no_docker());
  CHECK(r.code == 2);
  CHECK(r.err.find("invalid service name") != std::string::npos);

  r = f.ws.run({"model", "deploy", "-n", "svc-one", "-m", "m:1", "--es", f.app("score.py").string(), "--po", "0"},
               f.no_docker());
  CHECK(r.code == 2);
  r = f.ws.run({"model", "deploy", "-n", "svc-one", "-m", "m:1"}, f.no_docker());
  CHECK(r.code == 2);
  CHECK(r.err.find("entry script") != std::string::npos);
}

TEST_CASE("deploy: unknown model -> exit 3 - no Docker engine -> exit 5 - nothing recorded") {
  Fixture f;
  Result r = f.ws.run({"model", "deploy", "-n", "svc-one", "-m", "nope:1", "--es", f.app("score.py").string()},
                      f.no_docker());
  CHECK(r.code == 3);
  r = f.ws.run({"model", "deploy", "-n", "svc-one", "-m", "m:1", "--es", f.app("score.py").string()}, f.no_docker());
  CHECK(r.code == 5);
  CHECK_FALSE(fs::exists(f.ws.root() / "services" / "svc-one.json"));
  r = f.ws.run({"service", "show", "-n", "svc-one"});
  CHECK(r.code == 3);
  CHECK(r.err.find("no service named 'svc-one'") != std::string::npos);
  r = f.ws.run({"service", "list"}, f.no_docker());
  CHECK(r.code == 0);
  CHECK(r.json_out() == json::array());
}

TEST_CASE("deploy: an existing service is a conflict (exit 4) without --overwrite - model delete is refused") {
  Fixture f;
  json rec = {{"name", "svc-one"}, {"state", "Healthy"}, {"port", 1}, {"imageTag", "amlc-img:x"},
              {"createdTime", "2026-01-01T00:00:00.000Z"}, {"models", json::array({{{"name", "m"}, {"version", 1}}})},
              {"containerName", "amlc-svc-one"}, {"authEnabled", false}};
  write_text(f.ws.root() / "services" / "svc-one.json", rec.dump(2));
  auto before = snapshot_tree(f.ws.root() / "services");
  Result r = f.ws.run({"model", "deploy", "-n", "svc-one", "-m", "m:1", "--es", f.app("score.py").string()});
  CHECK(r.code == 4);
  CHECK(r.err.find("--overwrite") != std::string::npos);
  CHECK(snapshot_tree(f.ws.root() / "services") == before);
  // The input is checked before the state: an unknown model is named first.
  r = f.ws.run({"model", "deploy", "-n", "svc-one", "-m", "nope:1", "--es", f.app("score.py").string()});
  CHECK(r.code == 3);
  CHECK(snapshot_tree(f.ws.root() / "services") == before);

  r = f.ws.run({"model", "delete", "-i", "m:1"});
  CHECK(r.code == 4);
  CHECK(r.err.find("svc-one") != std::string::npos);

  Result keys = f.ws.run({"service", "get-keys", "-n", "svc-one"});
  CHECK(keys.code == 2);  // auth is off
  CHECK(f.ws.ok({"workspace", "check"})["ok"] == true);
}

TEST_CASE("model package --output-path writes a Dockerfile and context with the models baked in") {
  Fixture f;
  fs::path out = f.ws.dir() / "pkg";
  json j = f.ws.ok({"model", "package", "-m", "m:1", "--es", f.app("score.py").string(), "--output-path", out.string()},
                   f.no_docker());
  CHECK(j["outputPath"] == out.string());
  std::string dockerfile = read_text(out / "Dockerfile");
  CHECK(dockerfile.find("COPY azureml-models/ /var/azureml-app/azureml-models/") != std::string::npos);
  CHECK(dockerfile.find("AZUREML_MODEL_DIR=\"/var/azureml-app/azureml-models/m/1\"") != std::string::npos);
  CHECK(read_text(out / "azureml-models" / "m" / "1" / "model.json") == "{\"w\": 1}\n");
  CHECK(fs::exists(out / "app" / "score.py"));
  CHECK(fs::exists(out / "amlc-python" / "amlc_scoring" / "server.py"));
  Result again = f.ws.run({"model", "package", "-m", "m:1", "--es", f.app("score.py").string(), "--output-path", out.string()});
  CHECK(again.code == 4);
}

TEST_CASE("deploy and service commands have --help with examples") {
  for (std::vector<std::string> cmd : {std::vector<std::string>{"model", "deploy"}, {"model", "package"}, {"service", "run"},
                                       {"service", "update"}, {"service", "delete"}, {"service", "regen-key"}}) {
    cmd.push_back("--help");
    Result r = run_amlc(cmd);
    CHECK(r.code == 0);
    CHECK(r.out.find("Examples:") != std::string::npos);
  }
}

TEST_CASE("service list: --model-name, --model-id, --compute-type and --state filter the records") {
  Fixture f;
  auto rec = [](const std::string& name, const std::string& state, json models) {
    return json{{"name", name}, {"state", state}, {"port", 1}, {"imageTag", "amlc-img:x"}, {"computeType", "local"},
                {"createdTime", "2026-01-01T00:00:00.000Z"}, {"models", models}, {"containerName", "amlc-" + name},
                {"authEnabled", false}};
  };
  write_text(f.ws.root() / "services" / "svc-a.json",
             rec("svc-a", "Healthy", json::array({{{"name", "m"}, {"version", 1}}})).dump(2));
  write_text(f.ws.root() / "services" / "svc-b.json",
             rec("svc-b", "Failed", json::array({{{"name", "m"}, {"version", 2}}, {{"name", "other"}, {"version", 1}}})).dump(2));
  auto names = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"service", "list"});
    Result r = f.ws.run(args, f.no_docker());  // no engine: the recorded states are listed as they are
    REQUIRE_MESSAGE(r.code == 0, r.err);
    std::vector<std::string> out;
    for (const auto& s : r.json_out()) out.push_back(s["name"]);
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(names({}) == V{"svc-a", "svc-b"});
  CHECK(names({"--model-name", "m"}) == V{"svc-a", "svc-b"});
  CHECK(names({"--model-name", "other"}) == V{"svc-b"});
  CHECK(names({"--model-name", "nope"}).empty());
  CHECK(names({"--model-id", "m:2"}) == V{"svc-b"});
  CHECK(names({"--model-id", "m:3"}).empty());
  CHECK(names({"--compute-type", "LOCAL"}) == V{"svc-a", "svc-b"});
  CHECK(names({"--compute-type", "aci"}).empty());
  // Without an engine every state is Unknown (the record's own is in recordedState): nothing is Healthy.
  CHECK(names({"--state", "Healthy"}).empty());
  CHECK(names({"--model-name", "other", "--state", "unknown"}) == V{"svc-b"});
  Result bad = f.ws.run({"service", "list", "--model-id", "m"}, f.no_docker());
  CHECK(bad.code == 2);
  CHECK(bad.err.find("NAME:VERSION") != std::string::npos);
}

TEST_CASE("model deploy / package -f: the model named by 'model register -t' metadata files") {
  Fixture f;
  fs::path meta = f.ws.dir() / "m2.json";
  f.ws.ok({"model", "register", "-n", "m2", "-p", f.app("model.json").string(), "-t", meta.string()});
  CHECK(json::parse(read_text(meta))["modelId"] == "m2:1");
  // package: -m and -f together, in that order.
  fs::path out = f.ws.dir() / "pkg";
  json j = f.ws.ok({"model", "package", "-m", "m:1", "-f", meta.string(), "--es", f.app("score.py").string(),
                    "--output-path", out.string()},
                   f.no_docker());
  CHECK(fs::exists(out / "azureml-models" / "m" / "1" / "model.json"));
  CHECK(fs::exists(out / "azureml-models" / "m2" / "1" / "model.json"));
  // deploy: the model resolves (then the missing engine is the error); bad files are precise errors and nothing
  // is recorded.
  auto before = snapshot_tree(f.ws.root());
  Result r = f.ws.run({"model", "deploy", "-n", "svc-f", "-f", meta.string(), "--es", f.app("score.py").string()}, f.no_docker());
  CHECK(r.code == 5);
  write_text(f.ws.dir() / "bad.json", "{not json");
  write_text(f.ws.dir() / "other.json", "{\"name\": \"m\"}");
  write_text(f.ws.dir() / "gone.json", "{\"modelId\": \"gone:1\"}");
  r = f.ws.run({"model", "deploy", "-n", "svc-f", "-f", (f.ws.dir() / "bad.json").string(), "--es", f.app("score.py").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("bad.json is not valid JSON") != std::string::npos);
  r = f.ws.run({"model", "deploy", "-n", "svc-f", "-f", (f.ws.dir() / "other.json").string(), "--es", f.app("score.py").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("no \"modelId\"") != std::string::npos);
  r = f.ws.run({"model", "deploy", "-n", "svc-f", "-f", (f.ws.dir() / "absent.json").string(), "--es", f.app("score.py").string()});
  CHECK(r.code == 3);
  r = f.ws.run({"model", "deploy", "-n", "svc-f", "-f", (f.ws.dir() / "gone.json").string(), "--es", f.app("score.py").string()},
               f.no_docker());
  CHECK(r.code == 3);
  CHECK(r.err.find("gone") != std::string::npos);
  CHECK(snapshot_tree(f.ws.root()) == before);
}

TEST_CASE("regen-key with no Docker engine exits 5 and leaves the keys as they were") {
  Fixture f;
  json rec = {{"name", "svc-key"}, {"state", "Healthy"}, {"port", 1}, {"imageTag", "amlc-img:x"},
              {"createdTime", "2026-01-01T00:00:00.000Z"}, {"models", json::array({{{"name", "m"}, {"version", 1}}})},
              {"containerName", "amlc-svc-key"}, {"authEnabled", true}};
  write_text(f.ws.root() / "services" / "svc-key.json", rec.dump(2));
  write_text(f.ws.root() / "services" / "svc-key.keys.json", R"({"primaryKey": "old-primary-1", "secondaryKey": "old-secondary-1"})");
  fs::permissions(f.ws.root() / "services" / "svc-key.keys.json", fs::perms::owner_read | fs::perms::owner_write);
  auto before = snapshot_tree(f.ws.root() / "services");
  for (std::vector<std::string> args : {std::vector<std::string>{"service", "regen-key", "-n", "svc-key", "--key", "Primary"},
                                        {"service", "regen-key", "-n", "svc-key", "-k", "Secondary", "-s", "new-secondary-1"}}) {
    Result r = f.ws.run(args, f.no_docker());
    CHECK(r.code == 5);
  }
  CHECK(snapshot_tree(f.ws.root() / "services") == before);
  json keys = f.ws.ok({"service", "get-keys", "-n", "svc-key"});
  CHECK(keys["primaryKey"] == "old-primary-1");
  CHECK(keys["secondaryKey"] == "old-secondary-1");
  // A key given by hand must be a usable one.
  Result bad = f.ws.run({"service", "regen-key", "-n", "svc-key", "-k", "Primary", "-s", "has space"}, f.no_docker());
  CHECK(bad.code == 2);
}

TEST_CASE("service run -d @FILE refuses a fifo or a device (exit 2) instead of hanging") {
  Fixture f;
  fs::path fifo = f.ws.dir() / "body.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  RunOptions quick = f.no_docker();
  quick.timeout_seconds = 20;
  for (const std::string& file : {std::string("/dev/zero"), fifo.string()}) {
    Result r = f.ws.run({"service", "run", "-n", "svc-one", "-d", "@" + file}, quick);
    INFO(file << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find("not a regular file") != std::string::npos);
  }
}

TEST_CASE("model package: an oversized entry script, steps file or source folder is refused (exit 2)") {
  Fixture f;
  const std::string big(5u << 20, '#');  // over the 4 MB cap for scripts and configs
  write_text(f.app("big_score.py"), "def init():\n    pass\n\ndef run(d):\n    return d\n" + big + "\n");
  write_text(f.app("big.steps"), big + "\n");
  fs::path out = f.ws.dir() / "pkg";
  Result r = f.ws.run({"model", "package", "-m", "m:1", "--es", f.app("big_score.py").string(), "--output-path", out.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("entry script") != std::string::npos);
  r = f.ws.run({"model", "package", "-m", "m:1", "--es", f.app("score.py").string(), "--ds", f.app("big.steps").string(),
                "--output-path", out.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("extra Dockerfile steps file") != std::string::npos);
  // The source folder obeys the snapshot limits, as a run's does.
  write_text(f.ws.dir() / "src" / "score.py", "def init():\n    pass\n\ndef run(d):\n    return d\n");
  write_text(f.ws.dir() / "src" / "data.bin", std::string(2u << 20, 'x'));
  RunOptions small;
  small.env["AMLC_SNAPSHOT_MAX_MB"] = "1";
  r = f.ws.run({"model", "package", "-m", "m:1", "--sd", (f.ws.dir() / "src").string(), "--es", "score.py",
                "--output-path", out.string()}, small);
  CHECK(r.code == 2);
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("a deploy left unfinished is told apart from one at work - concurrent readers do not count as a deploy") {
  Fixture f;
  // The trace of a deploy killed before it finished: its record, Transitioning, and no amlc holding the service.
  json rec = {{"name", "svc-left"}, {"state", "Transitioning"}, {"port", 0}, {"imageTag", ""},
              {"createdTime", "2026-01-01T00:00:00.000Z"}, {"models", json::array({{{"name", "m"}, {"version", 1}}})},
              {"containerName", "amlc-svc-left"}, {"containerId", nullptr}, {"authEnabled", false}, {"error", nullptr}};
  write_text(f.ws.root() / "services" / "svc-left.json", rec.dump(2));
  const fs::path lock_file = f.ws.root() / "cache" / "locks" / "service-svc-left.lock";
  fs::create_directories(lock_file.parent_path());
  write_text(lock_file, "");
  const auto before = snapshot_tree(f.ws.root() / "services");
  auto listed_error = [&] {
    Result r = f.ws.run({"service", "list"}, f.no_docker());
    REQUIRE_MESSAGE(r.code == 0, r.err);
    json l = r.json_out();
    REQUIRE(l.size() == 1);
    return l[0]["error"].is_string() ? l[0]["error"].get<std::string>() : std::string();
  };
  auto deploy_again = [&] {
    return f.ws.run({"model", "deploy", "-n", "svc-left", "-m", "m:1", "--es", f.app("score.py").string()}, f.no_docker());
  };
  {
    // Another reader (service list/show, a deploy's pre-check) probing the lock at the same moment: held shared.
    amlc::Fd probe(::open(lock_file.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(probe.get() >= 0);
    REQUIRE(::flock(probe.get(), LOCK_SH | LOCK_NB) == 0);
    CHECK(listed_error().find("did not finish") != std::string::npos);
    Result r = deploy_again();
    CHECK(r.code == 4);
    CHECK(r.err.find("--overwrite") != std::string::npos);
    CHECK(r.err.find("another amlc command") == std::string::npos);
  }
  {
    // A command at work on the service (deploy, update, reload, regen-key, delete) holds it exclusively.
    amlc::Fd holder(::open(lock_file.c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(holder.get() >= 0);
    REQUIRE(::flock(holder.get(), LOCK_EX | LOCK_NB) == 0);
    CHECK(listed_error().empty());
    Result r = deploy_again();
    CHECK(r.code == 4);
    CHECK(r.err.find("being deployed or updated by another amlc command") != std::string::npos);
  }
  CHECK(snapshot_tree(f.ws.root() / "services") == before);
}
