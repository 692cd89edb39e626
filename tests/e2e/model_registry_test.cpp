// End-to-end tests of `amlc model ...` and `amlc workspace ...` against the real binary.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "support/harness.hpp"

using namespace amlc::test;

namespace {

fs::path make_model_folder(const fs::path& dir) {
  write_text(dir / "weights.bin", std::string(100000, 'w'));
  write_text(dir / "config" / "params.json", "{\"layers\": 3}\n");
  write_text(dir / "run.sh", "#!/bin/sh\necho hi\n");
  fs::permissions(dir / "run.sh", fs::perms::owner_exec, fs::perm_options::add);
  return dir;
}

}  // namespace

TEST_CASE("workspace create, show and check") {
  TempDir tmp;
  auto r = run_amlc({"workspace", "create", (tmp / "proj").string(), "--name", "proj"});
  REQUIRE(r.code == 0);
  auto j = r.json_out();
  CHECK(j["name"] == "proj");
  CHECK(j["formatVersion"] == 1);
  CHECK(fs::exists(tmp / "proj" / ".amlc" / "workspace.json"));
  // -w accepts the project folder or the .amlc folder itself.
  CHECK(run_amlc({"-w", (tmp / "proj").string(), "workspace", "show"}).json_out()["name"] == "proj");
  CHECK(run_amlc({"-w", (tmp / "proj" / ".amlc").string(), "workspace", "show"}).json_out()["name"] == "proj");
  // Discovery: the nearest .amlc upward from the current directory.
  fs::create_directories(tmp / "proj" / "src" / "deep");
  auto shown = run_amlc({"workspace", "show"}, {.env = {{"AMLC_WORKSPACE", "\x01unset"}}, .cwd = tmp / "proj" / "src" / "deep"});
  CHECK(shown.json_out()["root"] == (tmp / "proj" / ".amlc").string());
  // AMLC_WORKSPACE.
  CHECK(run_amlc({"workspace", "show"}, {.env = {{"AMLC_WORKSPACE", (tmp / "proj").string()}}}).json_out()["name"] == "proj");
  // Creating twice is a conflict.
  CHECK(run_amlc({"workspace", "create", (tmp / "proj").string()}).code == 4);
  // A -w that names no workspace: not found, nothing created.
  auto missing = run_amlc({"-w", (tmp / "nope").string(), "model", "list"});
  CHECK(missing.code == 3);
  CHECK(missing.err.find("amlc workspace create") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp / "nope"));
  auto check = run_amlc({"-w", (tmp / "proj").string(), "workspace", "check"});
  CHECK(check.code == 0);
  CHECK(check.json_out()["ok"] == true);
}

TEST_CASE("user default workspace under XDG_DATA_HOME is created on first use") {
  TempDir tmp;
  auto r = run_amlc({"model", "list"}, {.env = {{"AMLC_WORKSPACE", "\x01unset"}, {"XDG_DATA_HOME", (tmp / "xdg").string()}},
                                    .cwd = tmp.path()});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.json_out() == json::array());
  CHECK(fs::exists(tmp / "xdg" / "amlc" / "workspace" / "workspace.json"));
}

TEST_CASE("register a file: versions, tags, properties, metadata file, show by id and by name") {
  Workspace ws;
  write_text(ws.dir() / "model.pkl", "pickled bytes");
  auto m1 = ws.ok({"model", "register", "-n", "churn", "-p", (ws.dir() / "model.pkl").string(), "--tag", "stage=dev",
                   "--tag", "owner=ana", "--property", "data=v3", "-d", "first", "--model-framework", "ScikitLearn",
                   "--model-framework-version", "1.2", "-t", (ws.dir() / "meta.json").string()});
  CHECK(m1["id"] == "churn:1");
  CHECK(m1["version"] == 1);
  CHECK(m1["tags"] == json({{"stage", "dev"}, {"owner", "ana"}}));
  CHECK(m1["properties"] == json({{"data", "v3"}}));
  CHECK(m1["framework"] == "ScikitLearn");
  CHECK(m1["frameworkVersion"] == "1.2");
  CHECK(m1["description"] == "first");
  CHECK(m1["kind"] == "file");
  CHECK(m1["files"][0]["path"] == "model.pkl");
  auto meta = json::parse(read_text(ws.dir() / "meta.json"));
  CHECK(meta["modelId"] == "churn:1");
  CHECK(ws.ok({"model", "show", "-f", (ws.dir() / "meta.json").string()})["id"] == "churn:1");

  auto m2 = ws.ok({"model", "register", "-n", "churn", "-p", (ws.dir() / "model.pkl").string()});
  CHECK(m2["id"] == "churn:2");
  CHECK(m2["storedBytes"] == 0);  // identical content: nothing stored again
  CHECK(ws.ok({"model", "show", "-n", "churn"})["version"] == 2);
  CHECK(ws.ok({"model", "show", "-n", "churn", "--version", "1"})["description"] == "first");
  CHECK(ws.ok({"model", "show", "-i", "churn:latest"})["version"] == 2);
  CHECK(ws.ok({"model", "show", "-i", "churn"})["version"] == 2);
}

TEST_CASE("list filters: name, tag, property, latest, run id - output formats") {
  Workspace ws;
  write_text(ws.dir() / "a.bin", "a");
  write_text(ws.dir() / "b.bin", "b");
  ws.ok({"model", "register", "-n", "alpha", "-p", (ws.dir() / "a.bin").string(), "--tag", "stage=dev"});
  ws.ok({"model", "register", "-n", "alpha", "-p", (ws.dir() / "b.bin").string(), "--tag", "stage=prod", "--property", "x=1"});
  ws.ok({"model", "register", "-n", "beta", "-p", (ws.dir() / "b.bin").string()});
  CHECK(ws.ok({"model", "list"}).size() == 3);
  CHECK(ws.ok({"model", "list", "-n", "alpha"}).size() == 2);
  CHECK(ws.ok({"model", "list", "--tag", "stage"}).size() == 2);
  auto prod = ws.ok({"model", "list", "--tag", "stage=prod"});
  REQUIRE(prod.size() == 1);
  CHECK(prod[0]["id"] == "alpha:2");
  CHECK(ws.ok({"model", "list", "--property", "x=1"}).size() == 1);
  CHECK(ws.ok({"model", "list", "--property", "x=2"}).empty());
  auto latest = ws.ok({"model", "list", "--latest"});
  REQUIRE(latest.size() == 2);
  CHECK(latest[0]["id"] == "alpha:2");
  CHECK(latest[1]["id"] == "beta:1");
  CHECK(ws.ok({"model", "list", "--run-id", "nope"}).empty());

  auto table = ws.run({"model", "list", "-o", "table"});
  CHECK(table.code == 0);
  CHECK(table.out.find("Name") == 0);
  CHECK(table.out.find("alpha") != std::string::npos);
  auto tsv = ws.run({"model", "list", "-n", "beta", "-o", "tsv"});
  CHECK(tsv.out.substr(0, 7) == "beta\t1\t");
  auto yaml = ws.run({"model", "show", "-i", "beta:1", "-o", "yaml"});
  CHECK(yaml.out.find("name: beta") != std::string::npos);
  CHECK(ws.run({"model", "list", "-o", "none"}).out.empty());
  auto env_fmt = ws.run({"model", "list", "-n", "beta"}, {.env = {{"AMLC_OUTPUT", "tsv"}}});
  CHECK(env_fmt.out.substr(0, 5) == "beta\t");
}

TEST_CASE("folder model: download is byte-identical with modes - overwrite rules") {
  Workspace ws;
  fs::path src = make_model_folder(ws.dir() / "model_dir");
  auto m = ws.ok({"model", "register", "-n", "net", "-p", src.string()});
  CHECK(m["kind"] == "folder");
  CHECK(m["fileCount"] == 3);
  fs::path out = ws.dir() / "out";
  ws.ok({"model", "download", "-i", "net:1", "-t", out.string()});
  CHECK(read_text(out / "model_dir" / "weights.bin") == read_text(src / "weights.bin"));
  CHECK(read_text(out / "model_dir" / "config" / "params.json") == read_text(src / "config" / "params.json"));
  CHECK((fs::status(out / "model_dir" / "run.sh").permissions() & fs::perms::owner_exec) != fs::perms::none);
  // Second download without --overwrite: conflict, nothing changed.
  write_text(out / "model_dir" / "weights.bin", "changed");
  auto again = ws.run({"model", "download", "-i", "net:1", "-t", out.string()});
  CHECK(again.code == 4);
  CHECK(again.err.find("--overwrite") != std::string::npos);
  CHECK(read_text(out / "model_dir" / "weights.bin") == "changed");
  ws.ok({"model", "download", "-i", "net:1", "-t", out.string(), "--overwrite"});
  CHECK(read_text(out / "model_dir" / "weights.bin") == read_text(src / "weights.bin"));
}

TEST_CASE("update: tags, immutable properties, description") {
  Workspace ws;
  write_text(ws.dir() / "m", "m");
  ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "m").string(), "--tag", "a=1", "--property", "p=1"});
  auto u = ws.ok({"model", "update", "-i", "m:1", "--add-tag", "b=2", "--remove-tag", "a", "--add-property", "q=9",
                  "--description", "new"});
  CHECK(u["tags"] == json({{"b", "2"}}));
  CHECK(u["properties"] == json({{"p", "1"}, {"q", "9"}}));
  CHECK(u["description"] == "new");
  auto before = snapshot_tree(ws.root());
  auto r = ws.run({"model", "update", "-i", "m:1", "--add-property", "p=2"});
  CHECK(r.code == 4);
  CHECK(r.err.find("cannot be changed") != std::string::npos);
  CHECK(ws.run({"model", "update", "-i", "m:1", "--remove-tag", "zzz"}).code == 3);
  CHECK(ws.run({"model", "update", "-i", "m:1"}).code == 2);
  CHECK(snapshot_tree(ws.root()) == before);
}

TEST_CASE("aliases: set, resolve, move, delete - NAME@ALIAS wherever a model id is") {
  Workspace ws;
  write_text(ws.dir() / "m", "m");
  ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "m").string()});
  ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "m").string()});
  ws.ok({"model", "alias", "set", "m", "prod", "1"});
  CHECK(ws.ok({"model", "show", "-i", "m@prod"})["version"] == 1);
  CHECK(ws.ok({"model", "show", "-i", "m:1"})["aliases"] == json::array({"prod"}));
  auto moved = ws.ok({"model", "alias", "set", "m", "prod", "2"});
  CHECK(moved["previousVersion"] == 1);
  CHECK(ws.ok({"model", "show", "-i", "m@prod"})["version"] == 2);
  ws.ok({"model", "download", "-i", "m@prod", "-t", (ws.dir() / "dl").string()});
  CHECK(fs::exists(ws.dir() / "dl" / "m"));
  CHECK(ws.run({"model", "alias", "set", "m", "prod", "7"}).code == 3);
  CHECK(ws.run({"model", "alias", "set", "m", "latest", "1"}).code == 2);
  CHECK(ws.run({"model", "alias", "set", "m", "12", "1"}).code == 2);
  ws.ok({"model", "alias", "delete", "m", "prod"});
  auto gone = ws.run({"model", "show", "-i", "m@prod"});
  CHECK(gone.code == 3);
  CHECK(ws.run({"model", "alias", "delete", "m", "prod"}).code == 3);
}

TEST_CASE("delete: version goes, aliases on it go, unreferenced blobs are freed, shared ones kept") {
  Workspace ws;
  write_text(ws.dir() / "shared", "shared content");
  write_text(ws.dir() / "own", "own content");
  ws.ok({"model", "register", "-n", "a", "-p", (ws.dir() / "shared").string()});
  ws.ok({"model", "register", "-n", "b", "-p", (ws.dir() / "shared").string()});
  ws.ok({"model", "register", "-n", "a", "-p", (ws.dir() / "own").string()});
  ws.ok({"model", "alias", "set", "a", "old", "1"});
  auto d = ws.ok({"model", "delete", "-i", "a:1"});
  CHECK(d["removedAliases"] == json::array({"old"}));
  CHECK(d["freedBytes"] == 0);  // b:1 still uses it
  CHECK(ws.run({"model", "show", "-i", "a:1"}).code == 3);
  auto d2 = ws.ok({"model", "delete", "-i", "a:2"});
  CHECK(d2["freedBytes"] == 11);
  CHECK(ws.ok({"model", "list"}).size() == 1);
  CHECK(ws.ok({"workspace", "check"})["ok"] == true);
  CHECK(ws.run({"model", "delete", "-i", "a:2"}).code == 3);
}

TEST_CASE("bad input exits non-zero with a precise message and changes nothing on disk") {
  Workspace ws;
  write_text(ws.dir() / "m", "m");
  ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "m").string()});
  // A Unix socket as the model path.
  fs::path sock = ws.dir() / "s.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  fs::create_directories(ws.dir() / "withsock");
  write_text(ws.dir() / "withsock" / "ok.txt", "ok");
  fs::path sock2 = ws.dir() / "withsock" / "s2";
  int fd2 = ::socket(AF_UNIX, SOCK_STREAM, 0);
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock2.c_str());
  REQUIRE(::bind(fd2, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  fs::create_directories(ws.dir() / "empty");
  write_text(ws.dir() / "unreadable", "secret");
  fs::permissions(ws.dir() / "unreadable", fs::perms::none);

  struct Case {
    std::vector<std::string> args;
    int code;
    std::string needle;
  };
  std::vector<Case> cases = {
      {{"model", "register", "-n", "m", "-p", (ws.dir() / "missing.pkl").string()}, 3, "does not exist"},
      {{"model", "register", "-n", "-bad", "-p", (ws.dir() / "m").string()}, 2, ""},
      {{"model", "register", "-n", "bad name", "-p", (ws.dir() / "m").string()}, 2, "invalid model name"},
      {{"model", "register", "-n", std::string(256, 'a'), "-p", (ws.dir() / "m").string()}, 2, "invalid model name"},
      {{"model", "register", "-n", "m", "-p", (ws.dir() / "m").string(), "--tag", "novalue"}, 2, "key=value"},
      {{"model", "register", "-n", "m", "-p", (ws.dir() / "m").string(), "--tag", "=v"}, 2, "empty key"},
      {{"model", "register", "-n", "m", "-p", sock.string()}, 2, "socket"},
      {{"model", "register", "-n", "m", "-p", (ws.dir() / "withsock").string()}, 2, "socket"},
      {{"model", "register", "-n", "m", "-p", (ws.dir() / "empty").string()}, 2, "no files"},
      {{"model", "register", "-n", "m"}, 2, "model path"},
      {{"model", "register", "-p", (ws.dir() / "m").string()}, 2, "--name"},
      {{"model", "show", "-i", "nope:1"}, 3, "not found"},
      {{"model", "show", "-i", "m:0"}, 2, "invalid version"},
      {{"model", "show", "-i", "m:x"}, 2, "invalid version"},
      {{"model", "show", "-i", "m@"}, 2, "empty alias"},
      {{"model", "show", "-i", "m:1", "-n", "m"}, 2, "not both"},
      {{"model", "show", "-f", (ws.dir() / "m").string()}, 2, "not valid JSON"},
      {{"model", "delete", "-i", "m:5"}, 3, "versions of 'm': 1..1"},
      {{"model", "download", "-i", "m:1", "-t", (ws.dir() / "m").string()}, 2, "not a folder"},
      {{"model", "list", "-o", "xml"}, 2, ""},
      {{"model", "frobnicate"}, 2, ""},
      {{"model", "list", "--bogus"}, 2, "--bogus"},
  };
  if (::geteuid() != 0) cases.push_back({{"model", "register", "-n", "m", "-p", (ws.dir() / "unreadable").string()}, 1, "cannot read"});
  auto before = snapshot_tree(ws.root());
  for (const auto& c : cases) {
    CAPTURE(c.args);
    auto r = ws.run(c.args);
    CHECK(r.code == c.code);
    CHECK(r.err.find("amlc: error:") != std::string::npos);
    if (!c.needle.empty()) CHECK(r.err.find(c.needle) != std::string::npos);
    CHECK(r.out.empty());
  }
  CHECK(snapshot_tree(ws.root()) == before);
  ::close(fd);
  ::close(fd2);
}

TEST_CASE("help and version: every command documents an example - exit codes of the parser do not leak") {
  auto v = run_amlc({"--version"});
  CHECK(v.code == 0);
  CHECK(v.out.find("amlc ") == 0);
  auto h = run_amlc({"model", "register", "--help"});
  CHECK(h.code == 0);
  CHECK(h.out.find("Examples:") != std::string::npos);
  CHECK(run_amlc({}).code == 2);
  CHECK(run_amlc({"nosuchcommand"}).code == 2);
}

TEST_CASE("workspace check detects a damaged blob, a broken record and a missing blob") {
  Workspace ws;
  write_text(ws.dir() / "m", "model bytes");
  auto m = ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "m").string()});
  std::string sha = m["files"][0]["sha256"];
  fs::path blob = ws.root() / "blobs" / "sha256" / sha.substr(0, 2) / sha.substr(2);
  REQUIRE(fs::exists(blob));
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  write_text(blob, "tampered!!!");
  auto r = ws.run({"workspace", "check"});
  CHECK(r.code == 6);
  auto j = json::parse(r.out);
  CHECK(j["ok"] == false);
  CHECK(j["problems"][0].get<std::string>().find("does not match") != std::string::npos);
  fs::remove(blob);
  r = ws.run({"workspace", "check"});
  CHECK(r.code == 6);
  CHECK(r.out.find("missing from the blob store") != std::string::npos);
  write_text(ws.root() / "models" / "m" / "1.json", "{ torn");
  r = ws.run({"workspace", "check"});
  CHECK(r.code == 6);
  CHECK(r.out.find("not a valid model record") != std::string::npos);
}

TEST_CASE("8 concurrent registrations of the same name, 25 each, give versions 1..200 exactly once") {
  Workspace ws;
  write_text(ws.dir() / "model.bin", std::string(4096, 'x'));
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int p = 0; p < 8; ++p) {
    threads.emplace_back([&, p] {
      // Each worker is a shell loop of 25 amlc processes: 8 processes register at any moment.
      std::string script = "for i in $(seq 1 25); do \"$AMLC\" -w \"$WS\" model register -n same -p \"$P\" -o none || exit 1; done";
      auto r = run_process("/bin/sh", {"-c", script},
                           {.env = {{"AMLC", AMLC_BIN}, {"WS", ws.root().string()}, {"P", (ws.dir() / "model.bin").string()}},
                            .timeout_seconds = 300});
      failures[p] = r.code;
    });
  }
  for (auto& t : threads) t.join();
  for (int f : failures) CHECK(f == 0);
  auto all = ws.ok({"model", "list", "-n", "same"});
  std::set<int> versions;
  for (const auto& m : all) versions.insert(m["version"].get<int>());
  CHECK(all.size() == 200);
  CHECK(versions.size() == 200);
  CHECK(*versions.begin() == 1);
  CHECK(*versions.rbegin() == 200);
  CHECK(ws.ok({"workspace", "check"})["ok"] == true);
}

TEST_CASE("register from a run's outputs records the run - model list --run-id finds it") {
  Workspace ws;
  write_text(ws.dir() / "src" / "train.py",
             "import os\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/model.pkl', 'w').write('weights')\n");
  auto run = ws.ok({"run", "submit-script", "-e", "exp1", "--source-directory", (ws.dir() / "src").string(), "train.py"});
  std::string run_id = run["runId"];
  auto m = ws.ok({"model", "register", "-n", "fromrun", "--run-id", run_id, "--asset-path", "outputs/model.pkl"});
  CHECK(m["runId"] == run_id);
  CHECK(m["experimentName"] == "exp1");
  CHECK(m["assetPath"] == "outputs/model.pkl");
  CHECK(m["files"][0]["path"] == "model.pkl");
  auto listed = ws.ok({"model", "list", "--run-id", run_id});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["id"] == "fromrun:1");
  auto before = snapshot_tree(ws.root());
  CHECK(ws.run({"model", "register", "-n", "x", "--run-id", run_id, "--asset-path", "../../etc/passwd"}).code == 2);
  CHECK(ws.run({"model", "register", "-n", "x", "--run-id", run_id, "--asset-path", "outputs/none.pkl"}).code == 3);
  CHECK(ws.run({"model", "register", "-n", "x", "--run-id", "no_such_run", "--asset-path", "outputs/model.pkl"}).code == 3);
  CHECK(ws.run({"model", "register", "-n", "x", "--run-id", run_id}).code == 2);
  CHECK(ws.run({"model", "register", "-n", "x", "--run-id", run_id, "--asset-path", "outputs/model.pkl", "--experiment-name", "other"}).code == 2);
  CHECK(snapshot_tree(ws.root()) == before);
}

TEST_CASE("register from a run refuses a file whose symlink leads out of the run's folder") {
  Workspace ws;
  write_text(ws.dir() / "secret.txt", "not the run's");
  write_text(ws.dir() / "src" / "train.py",
             "import os\nos.makedirs('outputs/dir', exist_ok=True)\n"
             "os.symlink(" + json((ws.dir() / "secret.txt").string()).dump() + ", 'outputs/model.pkl')\n"
             "os.symlink('..', 'outputs/dir/up')\n"
             "open('outputs/real.pkl', 'w').write('weights')\n"
             "os.symlink('real.pkl', 'outputs/inside.pkl')\n");
  auto run = ws.ok({"run", "submit-script", "--source-directory", (ws.dir() / "src").string(), "train.py"});
  std::string run_id = run["runId"];
  auto before = snapshot_tree(ws.root());
  auto out = ws.run({"model", "register", "-n", "x", "--run-id", run_id, "--asset-path", "outputs/model.pkl"});
  CHECK(out.code == 2);
  CHECK(out.err.find("leaves the run's folder") != std::string::npos);
  CHECK(ws.run({"model", "register", "-n", "x", "--run-id", run_id, "--asset-path", "outputs/dir/up/../../../secret.txt"}).code == 2);
  CHECK(snapshot_tree(ws.root()) == before);
  // A symlink that stays inside the run is followed.
  auto inside = ws.ok({"model", "register", "-n", "x", "--run-id", run_id, "--asset-path", "outputs/inside.pkl"});
  CHECK(inside["assetPath"] == "outputs/inside.pkl");
}
