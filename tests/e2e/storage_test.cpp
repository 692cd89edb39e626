// End-to-end tests of what the workspace keeps and frees: shared blobs, version numbers, atomic deletes, leftovers
// of interrupted commands (kill -9), files that change while they are registered, concurrent amlc processes.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "support/harness.hpp"

using namespace amlc::test;

extern char** environ;

namespace {

// amlc started in the background, output discarded; the caller kills and/or reaps it.
pid_t spawn_amlc(const std::vector<std::string>& args) {
  std::vector<std::string> all{AMLC_BIN};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : all) argv.push_back(s.data());
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

int reap(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

std::vector<std::string> w(const Workspace& ws, std::vector<std::string> args) {
  args.insert(args.begin(), {"-w", ws.root().string()});
  return args;
}

// Files whose names say they are temp files, anywhere in the workspace.
std::vector<std::string> temp_files(const Workspace& ws) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(ws.root()); it != fs::recursive_directory_iterator(); ++it)
    if (it->path().filename().string().find(".tmp.") != std::string::npos) out.push_back(it->path().string());
  return out;
}

uint64_t temp_bytes(const Workspace& ws) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& f : temp_files(ws)) n += fs::is_regular_file(f, ec) ? fs::file_size(f, ec) : 0;
  return n;
}

size_t blob_count(const Workspace& ws) {
  size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(ws.root() / "blobs" / "sha256"); it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file() && it->path().filename().string().find(".tmp.") == std::string::npos) ++n;
  return n;
}

void write_big(const fs::path& p, size_t mib, char fill) {
  std::string chunk(1 << 20, fill);
  std::ofstream f(p, std::ios::binary);
  for (size_t i = 0; i < mib; ++i) f.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
}

}  // namespace

TEST_CASE("model delete keeps contents a run's snapshot also uses") {
  Workspace ws;
  write_text(ws.dir() / "src" / "train.py", "print('trained')\n");
  auto snap = ws.run({"snapshot", "create", (ws.dir() / "src").string(), "-f", (ws.dir() / "s.tgz").string()});
  REQUIRE_MESSAGE(snap.code == 0, snap.err);
  auto run = ws.ok({"run", "submit-script", "-e", "exp", "--source-directory", (ws.dir() / "src").string(), "train.py"});
  REQUIRE(run["status"] == "Completed");
  // The same bytes registered as a model: one blob, two records.
  auto m = ws.ok({"model", "register", "-n", "code", "-p", (ws.dir() / "s.tgz").string()});
  REQUIRE(m["files"][0]["sha256"] == run["snapshot"]["sha256"]);
  auto del = ws.ok({"model", "delete", "-i", "code:1"});
  CHECK(del["freedBytes"] == 0);
  auto check = ws.run({"workspace", "check"});
  CHECK_MESSAGE(check.code == 0, (check.out + check.err));
  // And once nothing uses the content, deleting frees it.
  write_text(ws.dir() / "only.bin", "only this model");
  ws.ok({"model", "register", "-n", "solo", "-p", (ws.dir() / "only.bin").string()});
  CHECK(ws.ok({"model", "delete", "-i", "solo:1"})["freedBytes"] == 15);
}

TEST_CASE("model delete keeps contents a sweep's snapshot uses") {
  Workspace ws;
  write_text(ws.dir() / "src" / "train.py", "print('metric=1')\n");
  write_text(ws.dir() / "sweep.yml",
             "sampling: {type: grid}\nparameters:\n  lr: choice(1, 2)\nprimary_metric_name: metric\n"
             "primary_metric_goal: maximize\nmax_total_runs: 2\nmax_concurrent_runs: 1\n");
  auto sw = ws.ok({"sweep", "submit", "-f", (ws.dir() / "sweep.yml").string(), "--source-directory",
                   (ws.dir() / "src").string(), "-e", "exp", "train.py"});
  std::string sha = sw["snapshot"]["sha256"];
  REQUIRE(ws.run({"snapshot", "create", (ws.dir() / "src").string(), "-f", (ws.dir() / "s.tgz").string()}).code == 0);
  auto m = ws.ok({"model", "register", "-n", "code", "-p", (ws.dir() / "s.tgz").string()});
  REQUIRE(m["files"][0]["sha256"] == sha);
  ws.ok({"model", "delete", "-i", "code:1"});
  CHECK(fs::exists(ws.root() / "blobs" / "sha256" / sha.substr(0, 2) / sha.substr(2)));
  CHECK(ws.run({"workspace", "check"}).code == 0);
}

TEST_CASE("a version number, once given, is never given again") {
  Workspace ws;
  write_text(ws.dir() / "a.bin", "a");
  write_text(ws.dir() / "b.bin", "b");
  auto reg = [&](const char* f) { return ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / f).string()})["version"].get<int>(); };
  CHECK(reg("a.bin") == 1);
  CHECK(reg("b.bin") == 2);
  ws.ok({"model", "delete", "-i", "m:2"});
  CHECK(reg("a.bin") == 3);
  CHECK(ws.run({"model", "show", "-i", "m:2"}).code == 3);
  // Every version deleted: the name is gone from lists, its numbers are not.
  ws.ok({"model", "delete", "-i", "m:1"});
  ws.ok({"model", "delete", "-i", "m:3"});
  CHECK(ws.ok({"model", "list", "-n", "m"}) == json::array());
  CHECK(reg("b.bin") == 4);
  // A workspace from before the name record existed: deleting the latest version still keeps its number.
  fs::remove(ws.root() / "models" / "m" / "model.json");
  ws.ok({"model", "delete", "-i", "m:4"});
  CHECK(reg("a.bin") == 5);
  CHECK(ws.run({"workspace", "check"}).code == 0);
}

TEST_CASE("model delete racing model register of the same content never loses the new model") {
  TempDir tmp;
  write_text(tmp / "f.bin", std::string(300000, 'f'));
  // The stat cache trusts a file unchanged for 2 s: then the register finds its content already stored without
  // reading it, the case where a concurrent delete freed it under the register's feet.
  struct stat st {};
  REQUIRE(::stat((tmp / "f.bin").c_str(), &st) == 0);
  REQUIRE(wait_until([&] { return ::time(nullptr) > st.st_ctim.tv_sec + 3; }, 10));
  std::mt19937 rng(3);
  for (int i = 0; i < 30; ++i) {
    CAPTURE(i);
    Workspace ws;
    ws.ok({"model", "register", "-n", "a", "-p", (tmp / "f.bin").string()});
    // The delete starts first, the register 0-5 ms later, so that across rounds the delete frees the content at
    // every point of the register's work.
    pid_t del = spawn_amlc(w(ws, {"model", "delete", "-i", "a:1"}));
    ::usleep(static_cast<useconds_t>(std::uniform_int_distribution<int>(0, 5000)(rng)));
    pid_t reg = spawn_amlc(w(ws, {"model", "register", "-n", "b", "-p", (tmp / "f.bin").string()}));
    REQUIRE(reap(reg) == 0);
    REQUIRE(reap(del) == 0);
    auto check = ws.run({"workspace", "check"});
    REQUIRE_MESSAGE(check.code == 0, check.out);
    REQUIRE(ws.run({"model", "download", "-i", "b:1", "-t", (ws.dir() / "dl").string()}).code == 0);
    CHECK(read_text(ws.dir() / "dl" / "f.bin").size() == 300000);
  }
}

TEST_CASE("an alias left by a delete interrupted after the version went is ignored, and gc removes it") {
  Workspace ws;
  write_text(ws.dir() / "a.bin", "a");
  ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "a.bin").string()});
  ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "a.bin").string()});
  ws.ok({"model", "alias", "set", "m", "prod", "2"});
  // The state a kill -9 between the delete's two steps leaves: the version is gone, its alias file not yet updated.
  fs::remove(ws.root() / "models" / "m" / "2.json");
  auto shown = ws.run({"model", "show", "-i", "m@prod"});
  CHECK(shown.code == 3);
  CHECK(shown.err.find("has no alias 'prod'") != std::string::npos);
  CHECK(ws.ok({"model", "show", "-i", "m:1"})["aliases"] == json::array());
  auto check = ws.run({"workspace", "check"});
  REQUIRE_MESSAGE(check.code == 0, (check.out + check.err));
  auto items = check.json_out()["leftovers"]["items"];
  bool alias_listed = false;
  for (const auto& it : items) alias_listed |= it["kind"] == "alias" && it["what"] == "m@prod";
  CHECK(alias_listed);
  CHECK(check.err.find("amlc workspace gc") != std::string::npos);
  auto gc = ws.ok({"workspace", "gc"});
  CHECK(gc["count"].get<int>() >= 1);
  CHECK_FALSE(fs::exists(ws.root() / "models" / "m" / "aliases.json"));
  CHECK(ws.ok({"workspace", "check"})["leftovers"]["count"] == 0);
  // The alias name is free again, for an existing version.
  ws.ok({"model", "alias", "set", "m", "prod", "1"});
  CHECK(ws.ok({"model", "show", "-i", "m@prod"})["version"] == 1);
}

TEST_CASE("kill -9 at any instant of model delete: the version and its alias go together, or neither") {
  Workspace ws;
  write_text(ws.dir() / "a.bin", std::string(50000, 'a'));
  std::mt19937 rng(7);
  int killed_mid = 0;
  for (int i = 0; i < 60; ++i) {
    CAPTURE(i);
    auto m = ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "a.bin").string()});
    int v = m["version"];
    ws.ok({"model", "alias", "set", "m", "prod", std::to_string(v)});
    pid_t pid = spawn_amlc(w(ws, {"model", "delete", "-i", "m:" + std::to_string(v)}));
    ::usleep(static_cast<useconds_t>(std::uniform_int_distribution<int>(0, 40000)(rng)));
    ::kill(pid, SIGKILL);
    int code = reap(pid);
    bool exists = ws.run({"model", "show", "-i", "m:" + std::to_string(v)}).code == 0;
    auto alias = ws.run({"model", "show", "-i", "m@prod"});
    if (exists) {
      REQUIRE_MESSAGE(alias.code == 0, "the version exists but its alias is gone");
      CHECK(alias.json_out()["version"] == v);
      ws.ok({"model", "delete", "-i", "m:" + std::to_string(v)});
    } else {
      REQUIRE(alias.code == 3);
      if (code == -SIGKILL) ++killed_mid;
    }
    REQUIRE(ws.run({"workspace", "check"}).code == 0);
  }
  MESSAGE("deletes killed after the version went: " << killed_mid);
  ws.ok({"workspace", "gc"});
  auto check = ws.ok({"workspace", "check"});
  CHECK(check["leftovers"]["count"] == 0);
  CHECK(blob_count(ws) == 0);
}

TEST_CASE("kill -9 during model register leaves temp files that check lists and gc removes") {
  Workspace ws;
  write_big(ws.dir() / "big.bin", 64, 'b');
  int with_temps = 0;
  for (int i = 0; i < 6 && with_temps < 2; ++i) {
    pid_t pid = spawn_amlc(w(ws, {"model", "register", "-n", "big", "-p", (ws.dir() / "big.bin").string()}));
    // Wait until its temp file in the blob store holds some bytes, then kill it mid-write.
    bool seen = wait_until([&] { return temp_bytes(ws) > 0; }, 30);
    ::kill(pid, SIGKILL);
    reap(pid);
    if (seen) ++with_temps;
    auto b = ws.run({"workspace", "check"});
    REQUIRE(b.code == 0);
  }
  REQUIRE(with_temps >= 1);
  auto temps = temp_files(ws);
  REQUIRE_FALSE(temps.empty());
  auto check = ws.ok({"workspace", "check"});
  CHECK(check["leftovers"]["count"].get<size_t>() >= temps.size());
  CHECK(check["leftovers"]["bytes"].get<uint64_t>() > 0);
  // A dry run lists and removes nothing.
  auto dry = ws.ok({"workspace", "gc", "--dry-run"});
  CHECK(dry["count"] == check["leftovers"]["count"]);
  CHECK(temp_files(ws).size() == temps.size());
  auto gc = ws.ok({"workspace", "gc"});
  CHECK(gc["count"] == check["leftovers"]["count"]);
  CHECK(temp_files(ws).empty());
  CHECK(ws.ok({"workspace", "check"})["leftovers"]["count"] == 0);
  // check --repair does both.
  pid_t pid = spawn_amlc(w(ws, {"model", "register", "-n", "big", "-p", (ws.dir() / "big.bin").string()}));
  wait_until([&] { return !temp_files(ws).empty(); }, 30);
  ::kill(pid, SIGKILL);
  reap(pid);
  auto repaired = ws.ok({"workspace", "check", "--repair"});
  CHECK(repaired["leftovers"]["count"] == 0);
  CHECK(temp_files(ws).empty());
}

TEST_CASE("workspace gc while other amlc processes register and delete loses nothing") {
  Workspace ws;
  for (int i = 0; i < 8; ++i) write_text(ws.dir() / ("m" + std::to_string(i) + ".bin"), std::string(200000 + i, 'x'));
  std::atomic<bool> done{false};
  std::vector<Result> gcs;
  std::thread gc([&] {
    while (!done) gcs.push_back(ws.run({"workspace", "gc"}));
  });
  std::vector<std::string> kept;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 8; ++i) {
      auto r = ws.run({"model", "register", "-n", "m" + std::to_string(i), "-p", (ws.dir() / ("m" + std::to_string(i) + ".bin")).string()});
      REQUIRE_MESSAGE(r.code == 0, r.err);
      std::string id = r.json_out()["id"];
      if (round == 1) {
        REQUIRE(ws.run({"model", "delete", "-i", id}).code == 0);
      } else {
        kept.push_back(id);
      }
    }
  }
  done = true;
  gc.join();
  for (const auto& r : gcs) CHECK_MESSAGE(r.code == 0, r.err);
  CHECK(gcs.size() >= 1);
  auto check = ws.run({"workspace", "check"});
  CHECK_MESSAGE(check.code == 0, check.out);
  for (const auto& id : kept) {
    CAPTURE(id);
    CHECK(ws.run({"model", "download", "-i", id, "-t", (ws.dir() / "dl" / id).string()}).code == 0);
  }
}

TEST_CASE("a file truncated while it is registered is refused cleanly, never a crash") {
  Workspace ws;
  int refused = 0, stored = 0;
  for (int i = 0; i < 8; ++i) {
    CAPTURE(i);
    fs::path f = ws.dir() / ("t" + std::to_string(i) + ".bin");
    write_big(f, 96, static_cast<char>('a' + i));
    pid_t pid = spawn_amlc(w(ws, {"model", "register", "-n", "t", "-p", f.string()}));
    wait_until([&] { return !temp_files(ws).empty(); }, 30);
    ::truncate(f.c_str(), 1000);
    int code = reap(pid);
    REQUIRE_MESSAGE((code == 0 || code == 4), "exit " << code);  // SIGBUS was -7
    (code == 4 ? refused : stored)++;
    REQUIRE(ws.run({"workspace", "check"}).code == 0);
  }
  MESSAGE("refused " << refused << ", stored " << stored);
  CHECK(refused >= 1);
  CHECK(temp_files(ws).empty());  // a refused register removes its temp file
}

TEST_CASE("model list while versions are deleted lists what is left, never an error") {
  Workspace ws;
  write_text(ws.dir() / "a.bin", "a");
  for (int i = 0; i < 30; ++i) ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "a.bin").string()});
  std::atomic<bool> done{false};
  std::thread deleter([&] {
    for (int v = 1; v <= 30; ++v) ws.run({"model", "delete", "-i", "m:" + std::to_string(v)});
    done = true;
  });
  int lists = 0;
  while (!done) {
    auto r = ws.run({"model", "list"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    ++lists;
  }
  deleter.join();
  CHECK(lists >= 1);
}

TEST_CASE("workspace check works on a read-only workspace") {
  Workspace ws;
  write_text(ws.dir() / "a.bin", "a");
  ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "a.bin").string()});
  fs::remove(ws.root() / ".lock");  // as a workspace copied from elsewhere: no lock file yet
  std::string root = ws.root().string();
  auto r = run_process("/usr/bin/unshare",
                       {"-m", "sh", "-c", "mount --bind -o ro \"$1\" \"$1\" && exec \"$2\" -w \"$1\" workspace check", "sh",
                        root, AMLC_BIN});
  CHECK_MESSAGE(r.code == 0, (r.out + r.err));
  CHECK(r.json_out()["ok"] == true);
}

TEST_CASE("workspace create names the workspace after its folder even when the folder's name is not a valid name") {
  TempDir tmp;
  auto r = run_amlc({"workspace", "create", (tmp / "dir" / "my ws").string()});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.json_out()["name"] == "my-ws");
  auto r2 = run_amlc({"workspace", "create", (tmp / "_x y!").string()});
  REQUIRE_MESSAGE(r2.code == 0, r2.err);
  CHECK(r2.json_out()["name"] == "x-y-");
  // An explicit --name is taken as given, and must be valid.
  CHECK(run_amlc({"workspace", "create", (tmp / "z").string(), "--name", "bad name"}).code == 2);
}

TEST_CASE("an unknown AMLC_OUTPUT is refused before the command does anything") {
  TempDir tmp;
  auto r = run_amlc({"workspace", "create", (tmp / "w").string()}, {.env = {{"AMLC_OUTPUT", "bogus"}}});
  CHECK(r.code == 2);
  CHECK(r.err.find("unknown output format 'bogus'") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp / "w"));
  // A valid one is taken, and -o on the command line still wins over it.
  auto ok = run_amlc({"workspace", "create", (tmp / "w").string(), "-o", "json"}, {.env = {{"AMLC_OUTPUT", "bogus"}}});
  CHECK_MESSAGE(ok.code == 0, ok.err);
  CHECK(fs::exists(tmp / "w"));
}

TEST_CASE("workspace create removes what a killed create left beside the workspace, and nothing a live one writes") {
  TempDir tmp;
  fs::create_directories(tmp / "w");
  // A staging folder of a create killed before its rename (its writer, a reaped child, is gone) ...
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  fs::path orphan = tmp / "w" / (".amlc.tmp." + std::to_string(child) + ".0.0a1b2c3d");
  write_text(orphan / "workspace.json", "{}");
  // ... and one whose writer still runs (this test process), which must be left alone.
  fs::path live = tmp / "w" / (".amlc.tmp." + std::to_string(::getpid()) + ".0.0a1b2c3e");
  fs::create_directories(live);
  auto r = run_amlc({"workspace", "create", (tmp / "w").string()});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK_FALSE(fs::exists(orphan));
  CHECK(fs::exists(live));
  CHECK(fs::exists(tmp / "w" / ".amlc" / "workspace.json"));
}

TEST_CASE("a symlink loop in a model folder is a clear error") {
  Workspace ws;
  write_text(ws.dir() / "m" / "sub" / "w.bin", "w");
  fs::create_directory_symlink("..", ws.dir() / "m" / "sub" / "up");
  auto r = ws.run({"model", "register", "-n", "m", "-p", (ws.dir() / "m").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("symlink loop") != std::string::npos);
  CHECK(r.err.find("bug") == std::string::npos);
  // A link to itself, and a dangling link.
  fs::remove(ws.dir() / "m" / "sub" / "up");
  fs::create_symlink("self", ws.dir() / "m" / "self");
  auto r2 = ws.run({"model", "register", "-n", "m", "-p", (ws.dir() / "m").string()});
  CHECK(r2.code == 2);
  CHECK(r2.err.find("symlink loop") != std::string::npos);
  fs::remove(ws.dir() / "m" / "self");
  fs::create_symlink("nowhere", ws.dir() / "m" / "dangling");
  auto r3 = ws.run({"model", "register", "-n", "m", "-p", (ws.dir() / "m").string()});
  CHECK(r3.code == 2);
  CHECK(r3.err.find("symlink to nothing") != std::string::npos);
  CHECK(ws.ok({"model", "list"}) == json::array());
  CHECK(blob_count(ws) == 0);
}

TEST_CASE("tag and property keys with control characters are refused") {
  Workspace ws;
  write_text(ws.dir() / "a.bin", "a");
  for (const char* bad : {"a\nb=1", "k\tx=1", "\x01=v"}) {
    CAPTURE(bad);
    auto r = ws.run({"model", "register", "-n", "m", "-p", (ws.dir() / "a.bin").string(), "--tag", bad});
    CHECK(r.code == 2);
    auto p = ws.run({"model", "register", "-n", "m", "-p", (ws.dir() / "a.bin").string(), "--property", bad});
    CHECK(p.code == 2);
  }
  CHECK(ws.ok({"model", "list"}) == json::array());
}

TEST_CASE("a run whose index entry a crash left out is found anyway, listed as a leftover, and re-indexed by gc") {
  Workspace ws;
  write_text(ws.dir() / "src" / "train.py", "print('ok')\n");
  auto run = ws.ok({"run", "submit-script", "-e", "exp", "--source-directory", (ws.dir() / "src").string(), "train.py"});
  std::string id = run["runId"];
  // The state a kill -9 between the run folder's rename and its index link leaves.
  fs::remove(ws.root() / "runs" / id);
  CHECK(ws.ok({"run", "show", "-r", id})["status"] == "Completed");
  auto check = ws.run({"workspace", "check"});
  REQUIRE_MESSAGE(check.code == 0, check.out);
  auto items = check.json_out()["leftovers"]["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["kind"] == "index");
  ws.ok({"workspace", "gc"});
  CHECK(fs::is_symlink(ws.root() / "runs" / id));
  CHECK(ws.ok({"workspace", "check"})["leftovers"]["count"] == 0);
}

TEST_CASE("model show -f refuses a fifo or a device instead of waiting on it") {
  Workspace ws;
  REQUIRE(::mkfifo((ws.dir() / "meta.json").c_str(), 0600) == 0);
  auto r = ws.run({"model", "show", "-f", (ws.dir() / "meta.json").string()}, {.timeout_seconds = 30});
  CHECK(r.code == 2);
  CHECK(r.err.find("is a fifo, not a regular file") != std::string::npos);
  CHECK(ws.run({"model", "show", "-f", "/dev/zero"}, {.timeout_seconds = 30}).code == 2);
}
