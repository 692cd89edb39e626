// The runs library as the sweep scheduler uses it, plus metrics parsing/tailing and run config errors.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "amlc/archive/snapshot.hpp"
#include "amlc/config/document.hpp"
#include "amlc/core/error.hpp"
#include "amlc/core/util.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/runs/executor.hpp"
#include "amlc/runs/metrics.hpp"
#include "amlc/runs/runconfig.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/storage/storage.hpp"
#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using json = nlohmann::json;
using namespace amlc::runs;

TEST_CASE("runs: the default stdout pattern finds Katib-style name=value tokens") {
  MetricPattern p;
  using V = std::vector<std::pair<std::string, std::string>>;
  CHECK(p.find_all("loss=0.3") == V{{"loss", "0.3"}});
  CHECK(p.find_all("  epoch = 3 ") == V{{"epoch", "3"}});
  CHECK(p.find_all("loss=0.3 acc=0.9, val/loss=-1e-3") == V{{"loss", "0.3"}, {"acc", "0.9"}, {"val/loss", "-1e-3"}});
  CHECK(p.find_all("score=nan best=inf worst=-inf") == V{{"score", "nan"}, {"best", "inf"}, {"worst", "-inf"}});
  CHECK(p.find_all("Namespace(lr=0.1, epochs=3)").empty());
  CHECK(p.find_all("python train.py --lr=0.1").empty());
  CHECK(p.find_all("x=abc").empty());
  CHECK(p.find_all("version=1.2.3").empty());
  CHECK(p.find_all("no metrics here").empty());

  CHECK(parse_metric_number("3") == json(3));
  CHECK(parse_metric_number("0.5") == json(0.5));
  CHECK(parse_metric_number("nan") == json("NaN"));
  CHECK(parse_metric_number("-inf") == json("-Infinity"));
  CHECK(!parse_metric_number("abc"));

  MetricPattern named(R"(^(?P<value>[0-9.]+) is (?<name>\w+)$)");
  CHECK(named.find_all("0.5 is acc") == V{{"acc", "0.5"}});
  CHECK_THROWS_AS(MetricPattern("(only one group)"), amlc::Error);
  CHECK_THROWS_AS(MetricPattern("(?<name>x)(y)"), amlc::Error);
  CHECK_THROWS_AS(MetricPattern("(unclosed"), amlc::Error);
}

TEST_CASE("runs: MetricsWriter counts steps per name - MetricsTail returns only new complete records") {
  t::TempDir tmp;
  fs::path file = tmp / "metrics.jsonl";
  MetricsWriter w(file);
  MetricsTail tail(file);
  CHECK(tail.poll().empty());
  w.add("loss", 0.5, "scalar", "stdout");
  w.add("acc", 0.1, "scalar", "stdout");
  w.add("loss", 0.4, "scalar", "stdout");
  auto first = tail.poll();
  REQUIRE(first.size() == 3);
  CHECK(first[0].step == 1);
  CHECK(first[2].name == "loss");
  CHECK(first[2].step == 2);
  CHECK(tail.poll().empty());
  CHECK(w.add_raw_line(R"({"name":"f1","value":0.9})"));
  CHECK(w.add_raw_line(R"({"name":"n","value":NaN,"kind":"scalar"})"));  // Python's bare NaN
  CHECK(!w.add_raw_line("not json"));
  CHECK(!w.add_raw_line(R"({"value":1})"));
  auto second = tail.poll();
  REQUIRE(second.size() == 2);
  CHECK(second[0].name == "f1");
  CHECK(second[1].value == "NaN");
  CHECK(std::isnan(*second[1].number()));
  // A partial line is held back until it is complete.
  {
    std::ofstream f(file, std::ios::app);
    f << R"({"name":"x","value":1,"step":1,"time":1.0,"kind":"scalar","source":"file"})";
  }
  CHECK(tail.poll().empty());
  {
    std::ofstream f(file, std::ios::app);
    f << "\n";
  }
  auto third = tail.poll();
  REQUIRE(third.size() == 1);
  CHECK(third[0].name == "x");
  CHECK(tail.offset() == fs::file_size(file));
}

TEST_CASE("runs: run config errors carry file:line:col and the key path") {
  auto err = [](const std::string& text) -> std::string {
    try {
      parse_run_config(amlc::config::parse(text, "rc.yml"));
    } catch (const amlc::Error& e) {
      return std::string(e.what()) + " | " + e.hint();
    }
    return "";
  };
  CHECK(err("script: a.py\narguments: [--lr, 0.1, 3]\ntarget: local\n") == "");
  auto rc = parse_run_config(amlc::config::parse("script: a.py\narguments: [--lr, 0.1, 3]\ncommand: echo hi\n", "rc.yml"));
  CHECK(*rc.arguments == std::vector<std::string>{"--lr", "0.1", "3"});
  CHECK(*rc.command == std::vector<std::string>{"/bin/sh", "-c", "echo hi"});
  CHECK(err("target: cloud\n").find("rc.yml:1:9") != std::string::npos);
  CHECK(err("environment:\n  pyhton: {}\n").find("did you mean 'python'") != std::string::npos);
  CHECK(err("metrics:\n  regex: '(a'\n").find("rc.yml:2:10") != std::string::npos);
  CHECK(err("snapshot:\n  maxFiles: -1\n").find("snapshot.maxFiles") != std::string::npos);
  CHECK(err("command: []\n").find("empty") != std::string::npos);
  auto docker = parse_run_config(amlc::config::parse("environment:\n  docker: {enabled: true, baseImage: img:1}\n", "rc.yml"));
  CHECK(*docker.target == "docker");
  CHECK(*docker.base_image == "img:1");
}

TEST_CASE("runs: sweep-style use: one snapshot / given ids / a parent / many runs supervised from one process") {
  t::TempDir tmp;
  auto ws = amlc::Workspace::create(tmp / "ws", "t");
  t::write_text(tmp / "src/trial.sh", "echo \"lr=$2\"\nif [ \"$2\" = 0.3 ]; then exec sleep 30; fi\n");
  SnapshotRef snap = store_snapshot(ws, tmp / "src", {});
  CHECK(snap.files == 1);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    RunRequest req;
    req.experiment = "sweep";
    req.run_id = "HD_abc_" + std::to_string(i);
    req.parent_run_id = "HD_abc";
    req.run_type = "hyperdrive-child";
    req.snapshot = snap;
    req.script = "trial.sh";
    req.arguments = {"--lr", "0." + std::to_string(i)};
    req.grace_seconds = 0.5;
    json rec = create_run(ws, req);
    CHECK(rec["status"] == "Queued");
    CHECK(rec["parentRunId"] == "HD_abc");
    ids.push_back(rec["runId"]);
  }
  // Same id twice: Conflict, nothing changed.
  {
    RunRequest dup;
    dup.experiment = "sweep";
    dup.run_id = ids[0];
    dup.snapshot = snap;
    dup.script = "trial.sh";
    CHECK_THROWS_AS(create_run(ws, dup), amlc::Error);
  }
  // Concurrency 2: start as slots free up, cancel the slow one with a reason.
  std::vector<std::unique_ptr<Execution>> live;
  size_t next = 0, done = 0;
  std::set<std::string> finished;
  double t0 = amlc::monotonic_seconds();
  while (done < ids.size()) {
    while (live.size() < 2 && next < ids.size()) {
      live.push_back(Execution::start(ws, ids[next++], {.echo = false, .reuse_extracted = true}));
    }
    std::vector<Execution*> ptrs;
    for (auto& e : live) ptrs.push_back(e.get());
    for (auto& e : live) {
      if (!e->finished() && e->run_id() == ids[3]) {
        auto out = t::read_text(e->dir() / "logs/stdout.txt");
        if (out.find("lr=0.3") != std::string::npos) e->cancel("bandit policy: below the cutoff");
      }
    }
    wait_any(ptrs, 50);
    for (auto it = live.begin(); it != live.end();) {
      if ((*it)->finished()) {
        finished.insert((*it)->run_id());
        ++done;
        it = live.erase(it);
      } else {
        ++it;
      }
    }
    REQUIRE(amlc::monotonic_seconds() - t0 < 30);
  }
  CHECK(finished.size() == 6);
  for (int i = 0; i < 6; ++i) {
    json rec = load_run(ws, ids[i]);
    if (i == 3) {
      CHECK(rec["status"] == "Canceled");
      CHECK(rec["cancelRequested"]["reason"] == "bandit policy: below the cutoff");
    } else {
      CHECK(rec["status"] == "Completed");
    }
    auto metrics = read_metrics(run_dir(ws, ids[i]) / "metrics.jsonl");
    REQUIRE(!metrics.empty());
    CHECK(metrics[0].name == "lr");
    CHECK(*metrics[0].number() == doctest::Approx(i / 10.0));
  }
  CHECK(fs::is_directory(ws.root() / "cache/snapshots" / snap.sha256));  // extracted once
  ListFilter f;
  f.parent_run_id = "HD_abc";
  CHECK(list_runs(ws, f).size() == 6);
  CHECK(outputs_dir(ws, ids[0]) == run_dir(ws, ids[0]) / "outputs");
  CHECK_THROWS_AS(load_run(ws, "HD_abc_99"), amlc::Error);
  auto report = amlc::storage::check_workspace(ws).report;
  CHECK_MESSAGE(report.ok(), report.to_json().dump());
}

TEST_CASE("runs: a finished run's kept working folder is handed to the next run and relinked to the snapshot") {
  t::TempDir tmp;
  auto ws = amlc::Workspace::create(tmp / "ws", "t");
  t::write_text(tmp / "src/trial.sh",
                "find . | LC_ALL=C sort > outputs/seen.txt\n"
                "echo scratch > scratch.txt; mkdir -p cache/deep; echo x > cache/deep/f\n"
                "rm -f data/a.txt; rm -rf data/sub\n");
  t::write_text(tmp / "src/data/a.txt", "a\n");
  t::write_text(tmp / "src/data/sub/b.txt", "b\n");
  fs::create_symlink("data/a.txt", tmp / "src/link");
  SnapshotRef snap = store_snapshot(ws, tmp / "src", {});
  fs::path spare;
  std::vector<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    RunRequest req;
    req.experiment = "sweep";
    req.run_id = "HD_wd_" + std::to_string(i);
    req.snapshot = snap;
    req.script = "trial.sh";
    create_run(ws, req);
    auto ex = Execution::start(ws, req.run_id, {.reuse_extracted = true, .adopt_workdir = spare, .keep_workdir = true});
    while (!ex->poll(1000)) {
    }
    CHECK(ex->record()["status"] == "Completed");
    if (!spare.empty()) CHECK_FALSE(fs::exists(spare));  // moved, not copied
    spare = ex->dir() / "wd";
    REQUIRE(fs::is_directory(spare));  // kept for the next run
    seen.push_back(t::read_text(ex->dir() / "outputs/seen.txt"));
  }
  // Every run saw exactly the snapshot, although each one changed its folder.
  CHECK(seen[0] == ".\n./data\n./data/a.txt\n./data/sub\n./data/sub/b.txt\n./link\n./outputs\n./trial.sh\n");
  CHECK(seen[1] == seen[0]);
  CHECK(seen[2] == seen[0]);
  // Files are still hard links to the snapshot cache, not copies.
  fs::path cache = ws.root() / "cache/snapshots" / snap.sha256;
  CHECK(fs::hard_link_count(cache / "trial.sh") == 2);
  CHECK(fs::equivalent(cache / "trial.sh", spare / "trial.sh"));
  CHECK_FALSE(fs::exists(spare / "data/sub"));  // as the last run left it
  // Without keep_workdir the folder goes at the end, as for any run.
  RunRequest req;
  req.experiment = "sweep";
  req.run_id = "HD_wd_last";
  req.snapshot = snap;
  req.script = "trial.sh";
  create_run(ws, req);
  auto ex = Execution::start(ws, req.run_id, {.reuse_extracted = true, .adopt_workdir = spare});
  while (!ex->poll(1000)) {
  }
  CHECK(t::read_text(ex->dir() / "outputs/seen.txt") == seen[0]);
  CHECK_FALSE(fs::exists(ex->dir() / "wd"));
  CHECK_FALSE(fs::exists(spare));
}

TEST_CASE("runs: a non-durable record is rewritten in place and readers never see half of it") {
  t::TempDir tmp;
  auto ws = amlc::Workspace::create(tmp / "ws", "t");
  t::write_text(tmp / "src/s.sh", "true\n");
  RunRequest req;
  req.experiment = "e";
  req.run_id = "inplace_1";
  req.source_dir = tmp / "src";
  req.script = "s.sh";
  req.durable = false;
  create_run(ws, req);
  fs::path dir = run_dir(ws, "inplace_1");
  auto inode = [&] {
    struct stat st {};
    REQUIRE(::stat((dir / "run.json").c_str(), &st) == 0);
    return st.st_ino;
  };
  auto ino = inode();
  // Grow, then shrink: the shorter record is padded with blanks and still parses; the inode stays.
  update_run(dir, [](json& r) {
    r["tags"]["big"] = std::string(5000, 'x');
    return false;
  });
  auto big = fs::file_size(dir / "run.json");
  update_run(dir, [](json& r) {
    r["tags"].erase("big");
    return false;
  });
  CHECK(fs::file_size(dir / "run.json") == big);
  CHECK(read_run_record(dir)["tags"].is_object());
  CHECK_FALSE(read_run_record(dir)["tags"].contains("big"));
  CHECK(inode() == ino);
  // A durable write still replaces the file (new inode, fsynced, renamed).
  update_run(dir, [](json&) { return true; });
  CHECK(inode() != ino);
  // Readers race a writer that alternates long and short records: every read parses.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 400; ++i) {
      update_run(dir, [&](json& r) {
        r["tags"]["pad"] = std::string(i % 2 ? 9000 : 10, 'p');
        return false;
      });
    }
    stop = true;
  });
  int reads = 0, bad = 0;
  while (!stop) {
    try {
      json r = read_run_record(dir);
      if (r["runId"] != "inplace_1") ++bad;
    } catch (const amlc::Error&) {
      ++bad;
    }
    ++reads;
  }
  writer.join();
  CHECK(reads > 0);
  CHECK(bad == 0);
}

TEST_CASE("runs: a snapshot blob swapped for a bigger archive is refused when the run extracts it") {
  t::TempDir tmp;
  auto ws = amlc::Workspace::create(tmp / "ws", "t");
  t::write_text(tmp / "src/a.py", "print('a')\n");
  SnapshotRef snap = store_snapshot(ws, tmp / "src", {});
  CHECK(snap.bytes == 11);
  // Another archive, 1 MB more content, put in the blob store under the snapshot's name.
  t::write_text(tmp / "big/a.py", "print('a')\n");
  t::write_text(tmp / "big/fill.bin", std::string(1 << 20, 'x'));
  amlc::archive::create_snapshot(tmp / "big", tmp / "big.tar.gz", {});
  fs::path blob = amlc::BlobStore(ws.blobs_dir()).path_of(snap.sha256);
  fs::remove(blob);
  fs::copy_file(tmp / "big.tar.gz", blob);
  for (bool reuse : {false, true}) {
    CAPTURE(reuse);
    RunRequest req;
    req.experiment = "x";
    req.snapshot = snap;
    req.script = "a.py";
    json rec = create_run(ws, req);
    auto ex = Execution::start(ws, rec["runId"], {.echo = false, .reuse_extracted = reuse});
    REQUIRE(ex->finished());
    json done = ex->record();
    CHECK(done["status"] == "Failed");
    std::string error = done["error"].dump();
    CHECK(error.find("fill.bin") != std::string::npos);
    CHECK(error.find("over the limit of 11 B") != std::string::npos);
    CHECK_FALSE(fs::exists(ex->dir() / "wd" / "fill.bin"));
  }
  CHECK_FALSE(fs::exists(snapshot_cache_dir(ws, snap.sha256)));
}
