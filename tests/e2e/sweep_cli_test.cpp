// End-to-end tests of `amlc sweep ...` and `amlc run submit-hyperdrive` against the real binary.
// Trials are tiny python3 scripts written by the tests; values are deterministic functions of the parameters.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "support/harness.hpp"

using namespace amlc::test;

namespace {

// A sweep source folder with `script` as train.py.
fs::path make_source(const Workspace& ws, const std::string& script, const std::string& name = "src") {
  fs::path dir = ws.dir() / name;
  write_text(dir / "train.py", script);
  return dir;
}

std::vector<json> journal(const Workspace& ws, const std::string& id) {
  std::vector<json> out;
  std::istringstream in(read_text(ws.root() / "sweeps" / id / "journal.jsonl"));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// amlc started in the background (its own process, not a new group), output to files.
struct Background {
  pid_t pid = -1;
  fs::path out, err;
  Background(const Workspace& ws, std::vector<std::string> args, const fs::path& logdir) {
    out = logdir / "bg.out";
    err = logdir / "bg.err";
    args.insert(args.begin(), {AMLC_BIN, "-w", ws.root().string()});
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, 1);
      ::dup2(e, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(AMLC_BIN, argv.data());
      ::_exit(127);
    }
  }
  // Exit code, or -1 if it has not ended within `seconds`.
  int wait(double seconds) {
    int code = -1;
    wait_until([&] {
      int st = 0;
      pid_t r = ::waitpid(pid, &st, WNOHANG);
      if (r == pid) {
        code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        pid = -1;
        return true;
      }
      return false;
    }, seconds);
    return code;
  }
  ~Background() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

std::string sweep_id_from_journal_dir(const Workspace& ws) {
  std::string id;
  std::error_code ec;
  if (!fs::is_directory(ws.root() / "sweeps", ec)) return id;
  for (const auto& e : fs::directory_iterator(ws.root() / "sweeps")) id = e.path().filename().string();
  return id;
}

int count_running_trials(const Workspace& ws, const std::string& id) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ws.root() / "runs", ec)) {
    if (e.path().filename().string().rfind(id, 0) != 0) continue;
    try {
      json r = json::parse(read_text(e.path() / "run.json"));
      if (r["status"] == "Running") ++n;
    } catch (...) {
    }
  }
  return n;
}

const char* kQuadratic = R"(import argparse, sys
p = argparse.ArgumentParser()
p.add_argument('--x', type=float)
p.add_argument('--y', type=float)
a = p.parse_args()
print('accuracy=%r' % (1 - (a.x - 0.3) ** 2 - (a.y - 0.6) ** 2))
)";

}  // namespace

TEST_CASE("sweep: random sweep end to end, concurrency honoured, best correct, best registered as a model") {
  Workspace ws;
  fs::path marks = ws.dir() / "marks.txt";
  std::string script = std::string(R"(import argparse, os, time, sys
p = argparse.ArgumentParser()
p.add_argument('--x', type=float)
p.add_argument('--y', type=float)
p.add_argument('--tag')
a = p.parse_args()
def mark(what):
    with open(')") + marks.string() + R"(', 'a') as f:
        f.write('%s %.6f %s\n' % (what, time.time(), os.environ['AMLC_RUN_ID']))
mark('start')
# The first two trials meet, however slow the machine: each waits (at most 10 minutes) until two have started.
end = time.time() + 600
while sum(1 for l in open(')" + marks.string() + R"(') if l.startswith('start')) < 2 and time.time() < end:
    time.sleep(0.02)
time.sleep(0.3)  # and overlap a little: more than 2 at once would show
v = 1 - (a.x - 0.3) ** 2 - (a.y - 0.6) ** 2
os.makedirs('outputs', exist_ok=True)
open('outputs/model.pkl', 'w').write('%r %r %s' % (a.x, a.y, a.tag))
print('accuracy=%r' % v)
mark('end')
)";
  fs::path src = make_source(ws, script);
  write_text(ws.dir() / "sweep.yml", R"(sampling:
  type: random
  parameter_space:
  - name: --x
    expression: uniform
    values: [0, 1]
  - name: y
    expression: uniform
    values: [0, 1]
policy:
  type: NoTerminationPolicy
primary_metric_name: accuracy
primary_metric_goal: maximize
max_total_runs: 8
max_concurrent_runs: 2
seed: 11
)");
  auto r = ws.run({"sweep", "submit", "-f", (ws.dir() / "sweep.yml").string(), "--source-directory", src.string(), "-e", "tune",
                   "train.py", "--tag", "hello"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json s = r.json_out();
  CHECK(s["status"] == "Completed");
  CHECK(s["experimentName"] == "tune");
  CHECK(s["primaryMetric"]["name"] == "accuracy");
  CHECK(s["primaryMetric"]["goal"] == "Maximize");
  CHECK(s["trials"]["total"] == 8);
  CHECK(s["trials"]["completed"] == 8);
  CHECK(s["trials"]["failed"] == 0);
  std::string id = s["sweepId"];

  // Each child: parameters as arguments (after the script's own) and in its record; its value is f(params).
  json runs = ws.ok({"run", "list", "--parent-run-id", id, "--last", "0"});
  REQUIRE(runs.size() == 8);
  double best = -1e9;
  std::string best_id;
  std::set<std::string> ids;
  for (const auto& run : runs) {
    CHECK(run["status"] == "Completed");
    ids.insert(run["runId"].get<std::string>());
    json hp = json::parse(run["tags"]["hyperparameters"].get<std::string>());
    CHECK(run["properties"]["hyperparameters"] == hp);
    auto args = run["runDefinition"]["arguments"].get<std::vector<std::string>>();
    REQUIRE(args.size() == 6);
    CHECK(args[0] == "--tag");
    CHECK(args[1] == "hello");
    CHECK(args[2] == "--x");
    CHECK(args[4] == "--y");
    double x = hp["--x"].get<double>(), y = hp["y"].get<double>();
    double v = 1 - (x - 0.3) * (x - 0.3) - (y - 0.6) * (y - 0.6);
    if (v > best) {
      best = v;
      best_id = run["runId"];
    }
  }
  for (int i = 0; i < 8; ++i) CHECK(ids.count(id + "_" + std::to_string(i)) == 1);
  CHECK(s["bestRunId"] == best_id);
  CHECK(s["bestMetric"].get<double>() == doctest::Approx(best));

  // Never more than 2 at once: replay the start/end marks.
  std::istringstream in(read_text(marks));
  std::vector<std::pair<double, int>> ev;
  std::string what, run;
  double t;
  while (in >> what >> t >> run) ev.push_back({t, what == "start" ? 1 : -1});
  CHECK(ev.size() == 16);
  std::sort(ev.begin(), ev.end());
  int cur = 0, peak = 0;
  for (auto& e : ev) peak = std::max(peak, cur += e.second);
  CHECK(peak <= 2);
  CHECK(peak == 2);

  // show: sorted best first; best: the same run; register its file.
  json shown = ws.ok({"sweep", "show", id});
  REQUIRE(shown["trialRuns"].size() == 8);
  CHECK(shown["trialRuns"][0]["runId"] == best_id);
  for (size_t i = 1; i < 8; ++i)
    CHECK(shown["trialRuns"][i - 1]["bestMetric"].get<double>() >= shown["trialRuns"][i]["bestMetric"].get<double>());
  auto escape = ws.run({"sweep", "best", id, "--register-model", "m", "--asset-path", "../../x"});
  CHECK(escape.code == 2);
  json b = ws.ok({"sweep", "best", id, "--register-model", "tuned", "--asset-path", "outputs/model.pkl"});
  CHECK(b["runId"] == best_id);
  CHECK(b["metric"]["value"].get<double>() == doctest::Approx(best));
  CHECK(b["model"]["name"] == "tuned");
  json models = ws.ok({"model", "list", "--run-id", best_id});
  REQUIRE(models.size() == 1);
  CHECK(models[0]["name"] == "tuned");
  json listed = ws.ok({"sweep", "list"});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["sweepId"] == id);
  CHECK(ws.run({"workspace", "check"}).code == 0);
}

TEST_CASE("sweep: grid enumerates exactly the product - the az spelling run submit-hyperdrive works") {
  Workspace ws;
  fs::path src = make_source(ws, R"(import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print('loss=%s' % (float(args['--a']) * (2 if args['--b'] == 'x' else 3)))
)");
  write_text(src / "hd.yml", R"(sampling:
  type: GRID
  parameter_space:
  - name: --a
    expression: choice
    values: [1, 2, 3]
  - name: --b
    expression: choice
    values: [x, y]
policy:
  type: NoTerminationPolicy
primary_metric_name: loss
primary_metric_goal: Minimize
max_concurrent_runs: 3
)");
  write_text(src / "local.runconfig", "script: train.py\ntarget: local\n");
  // az: -c is required.
  auto no_c = ws.run({"run", "submit-hyperdrive", "--hyperdrive-configuration-name", (src / "hd.yml").string(), "train.py"});
  CHECK(no_c.code == 2);
  auto r = ws.run({"run", "submit-hyperdrive", "--hyperdrive-configuration-name", (src / "hd.yml").string(), "-c",
                   (src / "local.runconfig").string(), "--source-directory", src.string(), "-e", "grid", "train.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json s = r.json_out();
  CHECK(s["trials"]["total"] == 6);
  CHECK(s["trials"]["completed"] == 6);
  CHECK(s["bestMetric"].get<double>() == doctest::Approx(2.0));
  CHECK(s["bestParameters"] == json{{"--a", 1}, {"--b", "x"}});
  json shown = ws.ok({"sweep", "show", s["sweepId"]});
  std::set<std::string> points;
  for (const auto& t : shown["trialRuns"]) points.insert(t["parameters"].dump());
  CHECK(points.size() == 6);
  for (int a : {1, 2, 3})
    for (const char* b : {"x", "y"}) CHECK(points.count(json{{"--a", a}, {"--b", b}}.dump()) == 1);
  CHECK(shown["trialRuns"].back()["bestMetric"].get<double>() == doctest::Approx(9.0));
}

TEST_CASE("sweep: bayesian sweep runs to the end") {
  Workspace ws;
  fs::path src = make_source(ws, kQuadratic);
  write_text(ws.dir() / "b.yml", R"(sampling:
  type: bayesian
  parameter_space:
  - {name: x, expression: uniform, values: [0, 1]}
  - {name: y, expression: quniform, values: [0, 1, 0.1]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 13
max_concurrent_runs: 2
seed: 3
)");
  auto r = ws.run({"sweep", "submit", "-f", (ws.dir() / "b.yml").string(), "--source-directory", src.string(), "train.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json s = r.json_out();
  CHECK(s["status"] == "Completed");
  CHECK(s["trials"]["completed"] == 13);
  CHECK(s["bestMetric"].get<double>() > 0.5);
  CHECK(s["seed"] == 3);
}

TEST_CASE("sweep: bandit policy cancels a clearly bad trial and records the numbers") {
  Workspace ws;
  fs::path src = make_source(ws, R"(import sys, time
q = float(sys.argv[sys.argv.index('--q') + 1])
for k in range(1, 40):
    print('accuracy=%r' % q, flush=True)
    time.sleep(0.02 if q > 0.5 else 0.1)
)");
  write_text(ws.dir() / "bandit.yml", R"(sampling:
  type: grid
  parameter_space:
  - {name: q, expression: choice, values: [0.9, 0.2]}
policy:
  type: BanditPolicy
  evaluation_interval: 1
  slack_factor: 0.1
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_concurrent_runs: 1
)");
  auto r = ws.run({"sweep", "submit", "-f", (ws.dir() / "bandit.yml").string(), "--source-directory", src.string(), "train.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json s = r.json_out();
  CHECK(s["status"] == "Completed");
  CHECK(s["trials"]["completed"] == 1);
  CHECK(s["trials"]["canceled"] == 1);
  std::string id = s["sweepId"];
  json dec;
  for (const auto& rec : journal(ws, id))
    if (rec["event"] == "trial_canceled") dec = rec["decision"];
  REQUIRE(dec.is_object());
  CHECK(dec["rule"] == "bandit_slack_factor");
  CHECK(dec["run"] == 1);
  CHECK(dec["numbers"]["value"].get<double>() == doctest::Approx(0.2));
  CHECK(dec["numbers"]["best"].get<double>() == doctest::Approx(0.9));
  CHECK(dec["numbers"]["cutoff"].get<double>() == doctest::Approx(0.9 / 1.1));
  json shown = ws.ok({"sweep", "show", id});
  CHECK(shown["trialRuns"][1]["status"] == "Canceled");
  CHECK(shown["trialRuns"][1]["canceledReason"].get<std::string>().find("0.2") != std::string::npos);
  json run = ws.ok({"run", "show", "-r", id + "_1"});
  CHECK(run["status"] == "Canceled");
  CHECK(run["properties"]["earlyTermination"]["rule"] == "bandit_slack_factor");
  CHECK(run["cancelRequested"]["reason"].get<std::string>().find("early termination") != std::string::npos);
}

TEST_CASE("sweep: max_duration_minutes stops the sweep and cancels running trials") {
  Workspace ws;
  fs::path src = make_source(ws, "import time\nprint('accuracy=0.5', flush=True)\ntime.sleep(900)\n");
  write_text(ws.dir() / "d.yml", R"(sampling: {type: random, parameter_space: [{name: x, expression: uniform, values: [0, 1]}]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 6
max_concurrent_runs: 2
max_duration_minutes: 0.05
)");
  auto t0 = std::chrono::steady_clock::now();
  auto r = ws.run({"sweep", "submit", "-f", (ws.dir() / "d.yml").string(), "--source-directory", src.string(), "train.py"});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(took < 120 * time_scale());  // the trials would take 900 s
  json s = r.json_out();
  CHECK(s["status"] == "Completed");
  CHECK(s["stopReason"].get<std::string>().find("max_duration_minutes") != std::string::npos);
  CHECK(s["trials"]["canceled"] == 2);
  CHECK(s["trials"]["total"] == 2);
  json run = ws.ok({"run", "show", "-r", s["sweepId"].get<std::string>() + "_0"});
  CHECK(run["status"] == "Canceled");
  CHECK(run["cancelRequested"]["reason"] == "max_duration_minutes reached");
}

TEST_CASE("sweep: failed trials are recorded and the sweep continues - max_failures stops it with the log tail") {
  Workspace ws;
  fs::path src = make_source(ws, R"(import sys
a = int(sys.argv[sys.argv.index('--a') + 1])
if a in (2, 4):
    sys.stderr.write('boom: bad value %d\n' % a)
    sys.exit(3)
print('accuracy=%d' % a)
)");
  write_text(ws.dir() / "g.yml", R"(sampling: {type: grid, parameter_space: [{name: a, expression: choice, values: [1, 2, 3, 4, 5]}]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_concurrent_runs: 1
max_failures: 3
)");
  auto r = ws.run({"sweep", "submit", "-f", (ws.dir() / "g.yml").string(), "--source-directory", src.string(), "train.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json s = r.json_out();
  CHECK(s["trials"]["completed"] == 3);
  CHECK(s["trials"]["failed"] == 2);
  CHECK(s["bestMetric"] == 5);

  write_text(ws.dir() / "g2.yml", R"(sampling: {type: grid, parameter_space: [{name: a, expression: choice, values: [2, 4, 2.5, 4.5, 6, 7]}]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_concurrent_runs: 1
max_failures: 2
)");
  fs::path src2 = make_source(ws, "import sys\nsys.stderr.write('boom: trial failed on purpose\\n')\nsys.exit(2)\n", "src2");
  auto f = ws.run({"sweep", "submit", "-f", (ws.dir() / "g2.yml").string(), "--source-directory", src2.string(), "train.py"});
  CHECK(f.code == 1);
  json fs2 = f.json_out();
  CHECK(fs2["status"] == "Failed");
  CHECK(fs2["trials"]["failed"] == 2);
  CHECK(fs2["trials"]["total"] == 2);
  CHECK(f.err.find("max_failures") != std::string::npos);
  CHECK(f.err.find("boom: trial failed on purpose") != std::string::npos);
}

TEST_CASE("sweep: a primary metric no trial logged fails the sweep naming the logged metrics") {
  Workspace ws;
  fs::path src = make_source(ws, "print('acc=0.5 loss=0.1')\n");
  write_text(ws.dir() / "m.yml", R"(sampling: {type: random, parameter_space: [{name: x, expression: uniform, values: [0, 1]}]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 2
max_concurrent_runs: 2
)");
  auto r = ws.run({"sweep", "submit", "-f", (ws.dir() / "m.yml").string(), "--source-directory", src.string(), "train.py"});
  CHECK(r.code == 1);
  json s = r.json_out();
  CHECK(s["status"] == "Failed");
  CHECK(s["error"]["expectedMetric"] == "accuracy");
  CHECK(s["error"]["loggedMetrics"] == json{"acc", "loss"});
  CHECK(r.err.find("'accuracy'") != std::string::npos);
  CHECK(r.err.find("acc, loss") != std::string::npos);
}

TEST_CASE("sweep: bad input is rejected up front and leaves the workspace unchanged") {
  Workspace ws;
  fs::path src = make_source(ws, kQuadratic);
  write_text(ws.dir() / "typo.yml", R"(sampling:
  type: random
  parameter_space:
  - {name: x, expression: uniform, values: [0, 1]}
primary_metric_name: accuracy
max_totl_runs: 3
)");
  write_text(ws.dir() / "ok.yml", R"(sampling: {type: random, parameter_space: [{name: x, expression: uniform, values: [0, 1]}]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 2
)");
  write_text(ws.dir() / "bayes.yml", R"(sampling: {type: bayesian, parameter_space: [{name: x, expression: uniform, values: [0, 1]}]}
policy: {type: BanditPolicy, slack_factor: 0.1}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 2
)");
  write_text(ws.dir() / "bad.runconfig", "script: train.py\ntarget: lcoal\nnot_a_key: 1\n");
  auto before = snapshot_tree(ws.root());
  auto typo = ws.run({"sweep", "submit", "-f", (ws.dir() / "typo.yml").string(), "--source-directory", src.string(), "train.py"});
  CHECK(typo.code == 2);
  CHECK(typo.err.find("typo.yml:6:") != std::string::npos);
  CHECK(typo.err.find("max_total_runs") != std::string::npos);  // did you mean
  auto bayes = ws.run({"sweep", "submit", "-f", (ws.dir() / "bayes.yml").string(), "--source-directory", src.string(), "train.py"});
  CHECK(bayes.code == 2);
  CHECK(bayes.err.find("Bayesian") != std::string::npos);
  auto missing = ws.run({"sweep", "submit", "-f", (ws.dir() / "ok.yml").string(), "--source-directory", src.string(), "nope.py"});
  CHECK(missing.code == 3);
  CHECK(missing.err.find("nope.py") != std::string::npos);
  auto rc = ws.run({"sweep", "submit", "-f", (ws.dir() / "ok.yml").string(), "-c", (ws.dir() / "bad.runconfig").string(),
                    "--source-directory", src.string(), "train.py"});
  CHECK(rc.code == 2);
  CHECK(rc.err.find("bad.runconfig") != std::string::npos);
  auto nofile = ws.run({"sweep", "submit", "-f", (ws.dir() / "absent.yml").string(), "train.py"});
  CHECK(nofile.code == 3);
  auto noscript = ws.run({"sweep", "submit", "-f", (ws.dir() / "ok.yml").string(), "--source-directory", src.string()});
  CHECK(noscript.code == 2);
  CHECK(snapshot_tree(ws.root()) == before);
  CHECK(ws.run({"sweep", "show", "nope"}).code == 3);
}

TEST_CASE("sweep: a script a run would refuse is refused at submit, before any trial, with nothing written") {
  Workspace ws;
  fs::path src = make_source(ws, kQuadratic);
  write_text(ws.dir() / "outside.py", kQuadratic);
  write_text(src / "tool.pl", "print 1;\n");  // neither .py/.sh/.R nor executable
  write_text(ws.dir() / "one.yml", "parameters:\n  x: uniform(0, 1)\n  y: uniform(0, 1)\n"
                                   "primary_metric: {name: accuracy, goal: maximize}\nmax_total_runs: 1\n");
  auto before = snapshot_tree(ws.root());
  auto submit = [&](const std::string& script) {
    return ws.run({"sweep", "submit", "-f", (ws.dir() / "one.yml").string(), "--source-directory", src.string(), script});
  };
  for (const std::string& script : {(ws.dir() / "outside.py").string(), std::string("../outside.py")}) {
    CAPTURE(script);
    auto r = submit(script);
    CHECK(r.code == 2);
    CHECK(r.err.find("is not inside the source directory") != std::string::npos);
  }
  auto pl = submit("tool.pl");
  CHECK(pl.code == 2);
  CHECK(pl.err.find("neither a .py/.sh/.R file nor executable") != std::string::npos);
  CHECK(snapshot_tree(ws.root()) == before);
}

TEST_CASE("sweep: configurations that passed and then failed or crashed are refused at submit with nothing written") {
  Workspace ws;
  fs::path src = make_source(ws, kQuadratic);
  auto native = [&](const std::string& name, const std::string& expr) {
    fs::path f = ws.dir() / name;
    write_text(f, "parameters:\n  x: \"" + expr + "\"\n  y: uniform(0, 1)\nprimary_metric: {name: accuracy, goal: maximize}\nmax_total_runs: 2\n");
    return f;
  };
  auto nested = [](size_t depth) { return "choice(" + std::string(depth, '[') + "1" + std::string(depth, ']') + ")"; };
  struct Case {
    fs::path file;
    std::string message;
  };
  std::vector<Case> cases = {
      {native("n0.yml", "normal(0, 0)"), "normal needs sigma > 0, got sigma=0"},
      {native("qn.yml", "qlognormal(0, -1, 1)"), "qlognormal needs sigma > 0, got sigma=-1"},
      {native("r300.yml", "randint(1e300)"), "randint(upper) needs upper <= 9007199254740992 (2^53), got 1e+300"},
      {native("r63.yml", "randint(9223372036854775807)"), "randint(upper) needs upper <= 9007199254740992 (2^53), got 9223372036854775807"},
      {native("q.yml", "quniform(0, 1e300, 1e-300)"), "q=1e-300 is too small"},
      {native("u.yml", "uniform(-1e308, 1e308)"), "hi - lo must be a finite number"},
      {native("d600.yml", nested(600)), "the expression is nested deeper than 32 levels"},
      {native("d20k.yml", nested(20000)), "the expression is nested deeper than 32 levels"},  // was SIGSEGV
  };
  auto before = snapshot_tree(ws.root());
  for (const auto& c : cases) {
    CAPTURE(c.file);
    auto r = ws.run({"sweep", "submit", "-f", c.file.string(), "--source-directory", src.string(), "train.py"});
    CHECK(r.code == 2);
    CHECK(r.err.find(c.file.string() + ":2:6: key 'parameters.x': ") != std::string::npos);
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK(r.err.size() < 1000);
  }
  CHECK(snapshot_tree(ws.root()) == before);
}

namespace {

// A sweep as an amlc killed between creating the sweep's folder and writing its journal left it (before the
// journal's first record was written into the folder before it appeared): sweep.json says Running, supervised by a
// process that is gone; the journal is absent, empty or torn. Made from the record of a real sweep of `yml`.
std::string orphan_sweep(const Workspace& ws, const fs::path& src, const fs::path& yml, const std::string& tag,
                         const std::optional<std::string>& journal_text) {
  auto r = ws.run({"sweep", "submit", "-f", yml.string(), "--source-directory", src.string(), "-e", "orphans", "train.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::string model = r.json_out()["sweepId"];
  json rec = json::parse(read_text(ws.root() / "sweeps" / model / "sweep.json"));
  CHECK_FALSE(rec.contains("config"));  // stored once, in the journal's sweep_started
  rec["config"] = journal(ws, model).front()["config"];  // as sweep records written by older amlc held it too
  CHECK(ws.ok({"sweep", "show", model})["config"] == rec["config"]);  // shown as before
  std::string id = model.substr(0, model.rfind('_') + 1) + tag;
  rec["sweepId"] = id;
  rec["status"] = "Running";
  rec["startTimeUtc"] = nullptr;
  rec["endTimeUtc"] = nullptr;
  rec["error"] = nullptr;
  rec["stopReason"] = nullptr;
  rec.erase("startUnix");
  rec["supervisor"] = {{"pid", 999999999}, {"startTicks", 1}, {"host", rec["supervisor"].value("host", "")}};
  write_text(ws.root() / "sweeps" / id / "sweep.json", rec.dump(2));
  if (journal_text) write_text(ws.root() / "sweeps" / id / "journal.jsonl", *journal_text);
  return id;
}

}  // namespace

TEST_CASE("sweep: a sweep whose journal never got its first record can be resumed and canceled") {
  Workspace ws;
  fs::path src = make_source(ws, kQuadratic);
  fs::path yml = ws.dir() / "o.yml";
  write_text(yml, "parameters:\n  x: uniform(0, 1)\n  y: uniform(0, 1)\nprimary_metric: {name: accuracy, goal: maximize}\nmax_total_runs: 2\nseed: 4\n");
  const std::string torn = R"({"event":"sweep_started","config":{"sampl)";
  std::string none = orphan_sweep(ws, src, yml, "0000000a", std::nullopt);
  std::string empty = orphan_sweep(ws, src, yml, "0000000b", std::string());
  std::string torn_id = orphan_sweep(ws, src, yml, "0000000c", torn);
  for (const auto& id : {none, empty, torn_id}) CHECK(ws.ok({"sweep", "show", id})["status"] == "NotResponding");
  CHECK(ws.run({"workspace", "check"}).code == 0);  // each can be resumed or canceled

  for (const auto& id : {none, torn_id}) {
    CAPTURE(id);
    auto r = ws.run({"sweep", "resume", id});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    json s = r.json_out();
    CHECK(s["status"] == "Completed");
    CHECK(s["trials"]["completed"] == 2);
    CHECK(s["seed"] == 4);
    auto recs = journal(ws, id);
    REQUIRE(!recs.empty());
    CHECK(recs.front()["event"] == "sweep_started");
    CHECK(recs.front()["seed"] == 4);
    CHECK(recs.back()["event"] == "sweep_finished");
  }
  auto c = ws.run({"sweep", "cancel", empty, "--reason", "never started"});
  REQUIRE_MESSAGE(c.code == 0, c.err);
  CHECK(c.json_out()["status"] == "Canceled");
  CHECK(c.json_out()["trials"]["total"] == 0);
  CHECK(ws.run({"sweep", "resume", empty}).code == 4);  // finished
  CHECK(ws.run({"workspace", "check"}).code == 0);
}

TEST_CASE("sweep: a sweep whose recorded configuration is unusable is reported by workspace check and can be canceled") {
  Workspace ws;
  fs::path src = make_source(ws, kQuadratic);
  fs::path yml = ws.dir() / "o.yml";
  write_text(yml, "parameters:\n  x: uniform(0, 1)\n  y: uniform(0, 1)\nprimary_metric: {name: accuracy, goal: maximize}\nmax_total_runs: 2\n");
  std::string id = orphan_sweep(ws, src, yml, "0000000d", std::nullopt);
  // As an older amlc recorded it: normal(0, 0), accepted then, refused now.
  fs::path rec_path = ws.root() / "sweeps" / id / "sweep.json";
  json rec = json::parse(read_text(rec_path));
  rec["config"]["sampling"]["parameter_space"][0] = {{"name", "x"}, {"expression", "normal"}, {"values", {0, 0}}};
  write_text(rec_path, rec.dump(2));

  auto check = ws.run({"workspace", "check"});
  CHECK(check.code == 6);
  CHECK(check.out.find("sweep " + id + " cannot be resumed") != std::string::npos);
  CHECK(check.out.find("normal needs sigma > 0") != std::string::npos);
  auto resume = ws.run({"sweep", "resume", id});
  CHECK(resume.code == 6);
  CHECK(resume.err.find("cannot be resumed") != std::string::npos);
  CHECK(resume.err.find("amlc sweep cancel " + id) != std::string::npos);
  auto c = ws.run({"sweep", "cancel", id});
  REQUIRE_MESSAGE(c.code == 0, c.err);
  CHECK(c.json_out()["status"] == "Canceled");
  CHECK(ws.ok({"sweep", "show", id})["status"] == "Canceled");
  CHECK(ws.run({"workspace", "check"}).code == 0);
}

TEST_CASE("sweep: a sweep recorded with the older flat run definition still resumes with it") {
  Workspace ws;
  fs::path src = make_source(ws, "import argparse\np = argparse.ArgumentParser()\np.add_argument('--x', type=float)\n"
                                 "p.add_argument('--tag')\na = p.parse_args()\nimport os\n"
                                 "print(('score: %r' if os.environ.get('OLD_SHAPE') else 'score=%r') % (a.x,))\n");
  fs::path yml = ws.dir() / "o.yml";
  write_text(yml, "parameters:\n  x: uniform(0, 1)\nprimary_metric: {name: score, goal: maximize}\nmax_total_runs: 2\nseed: 4\n");
  std::string id = orphan_sweep(ws, src, yml, "0000000e", std::nullopt);
  // The runDefinition as sweep records had it before it had the run record's form.
  fs::path rec_path = ws.root() / "sweeps" / id / "sweep.json";
  json rec = json::parse(read_text(rec_path));
  rec["runDefinition"] = {{"script", "train.py"}, {"arguments", {"--tag", "old"}}, {"command", json::array()},
                          {"interpreter", "python3"}, {"target", "local"}, {"image", "amlc/python:3-bookworm"},
                          {"environmentVariables", {{"OLD_SHAPE", "1"}}}, {"metricsRegex", "(?P<name>\\w+): (?P<value>\\S+)"},
                          {"metricsRegexWhere", ""}, {"metricsFromStdout", true}, {"cancelGracePeriodSeconds", 10.0},
                          {"maxRunDurationSeconds", 0.0}, {"sourceDirectory", src.string()}};
  write_text(rec_path, rec.dump(2));
  CHECK(ws.run({"workspace", "check"}).code == 0);
  auto r = ws.run({"sweep", "resume", id});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.json_out()["status"] == "Completed");
  CHECK(r.json_out()["trials"]["completed"] == 2);
  CHECK(r.json_out()["bestMetric"].is_number());  // the environment and the metrics pattern were used
  json runs = ws.ok({"run", "list", "--parent-run-id", id, "--last", "0"});
  REQUIRE(runs.size() == 2);
  for (const auto& run : runs) {
    auto args = run["runDefinition"]["arguments"].get<std::vector<std::string>>();
    REQUIRE(args.size() == 4);
    CHECK(args[0] == "--tag");
    CHECK(args[1] == "old");
    CHECK(args[2] == "--x");
    CHECK(run["runDefinition"]["environment"]["environmentVariables"]["OLD_SHAPE"] == "1");
  }
}

TEST_CASE("sweep: resume after SIGKILL of amlc completes the sweep with no Running run left") {
  Workspace ws;
  // The trials wait for the file `gate`: the first two are still running when amlc is killed, however slow the machine.
  fs::path gate = ws.dir() / "gate";
  fs::path src = make_source(ws, "import os, time\nend = time.time() + 900\nwhile not os.path.exists(" + json(gate.string()).dump() +
                                     ") and time.time() < end:\n    time.sleep(0.05)\nprint('accuracy=1')\n");
  write_text(ws.dir() / "r.yml", R"(sampling: {type: random, parameter_space: [{name: x, expression: uniform, values: [0, 1]}]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 4
max_concurrent_runs: 2
seed: 5
)");
  std::string id;
  {
    Background bg(ws, {"sweep", "submit", "-f", (ws.dir() / "r.yml").string(), "--source-directory", src.string(), "train.py"},
                  ws.dir());
    REQUIRE(wait_until([&] {
      id = sweep_id_from_journal_dir(ws);
      return !id.empty() && count_running_trials(ws, id) == 2;
    }, 120));
    ::kill(bg.pid, SIGKILL);  // only amlc: the trials live on in their own process groups
    CHECK(bg.wait(60) == 128 + SIGKILL);
  }
  write_text(gate, "open\n");
  json shown = ws.ok({"sweep", "show", id});
  CHECK(shown["status"] == "NotResponding");
  auto r = ws.run({"sweep", "resume", id});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json s = r.json_out();
  CHECK(s["status"] == "Completed");
  CHECK(s["trials"]["total"] == 4);
  CHECK(s["trials"]["completed"] == 4);
  json running = ws.ok({"run", "list", "--status", "Running", "--last", "0"});
  CHECK(running.size() == 0);
  json runs = ws.ok({"run", "list", "--parent-run-id", id, "--last", "0"});
  // 4 completed trials (2 of them second attempts "_r1") + the 2 interrupted first attempts, which ended
  // Failed or Canceled (reconciled: 'sweep show' above reconciled them as Failed before resume could cancel them).
  int completed = 0, interrupted = 0;
  for (const auto& run : runs) {
    if (run["status"] == "Completed") {
      ++completed;
      continue;
    }
    ++interrupted;
    CHECK((run["status"] == "Canceled" || run["status"] == "Failed"));
    CHECK(run["runId"].get<std::string>().find("_r") == std::string::npos);
  }
  CHECK(completed == 4);
  CHECK(interrupted == 2);
  json again = ws.ok({"sweep", "show", id});
  int reattempted = 0;
  for (const auto& t : again["trialRuns"])
    if (t["attempts"] == 2) {
      ++reattempted;
      CHECK(t["runId"].get<std::string>().find("_r1") != std::string::npos);
    }
  CHECK(reattempted == 2);
  CHECK(ws.run({"workspace", "check"}).code == 0);
  CHECK(ws.run({"sweep", "resume", id}).code == 4);  // finished
}

TEST_CASE("sweep: cancel from another process - Ctrl+C cancels a foreground sweep with exit 130") {
  Workspace ws;
  fs::path src = make_source(ws, "import time\nprint('accuracy=0.5', flush=True)\ntime.sleep(900)\n");
  write_text(ws.dir() / "c.yml", R"(sampling: {type: random, parameter_space: [{name: x, expression: uniform, values: [0, 1]}]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 4
max_concurrent_runs: 2
)");
  std::vector<std::string> submit = {"sweep", "submit", "-f", (ws.dir() / "c.yml").string(), "--source-directory", src.string(), "train.py"};
  std::string id;
  {
    Background bg(ws, submit, ws.dir());
    REQUIRE(wait_until([&] {
      id = sweep_id_from_journal_dir(ws);
      return !id.empty() && count_running_trials(ws, id) == 2;
    }, 120));
    json c = ws.ok({"sweep", "cancel", id, "--reason", "enough", "--wait", std::to_string(100 * time_scale())});
    CHECK(c["status"] == "Canceled");
    CHECK(c["trials"]["canceled"] == 2);
    CHECK(bg.wait(120) == 1);  // the submitting process noticed and ended
    CHECK(read_text(bg.err).find("enough") != std::string::npos);
  }
  CHECK(ws.ok({"run", "list", "--status", "Running", "--last", "0"}).size() == 0);
  CHECK(ws.run({"sweep", "cancel", id}).code == 0);  // canceled already: no error

  fs::remove_all(ws.root() / "sweeps" / id);  // only one sweep dir for the helper below
  Background bg(ws, submit, ws.dir());
  std::string id2;
  REQUIRE(wait_until([&] {
    id2 = sweep_id_from_journal_dir(ws);
    return !id2.empty() && count_running_trials(ws, id2) == 2;
  }, 120));
  ::kill(bg.pid, SIGINT);
  CHECK(bg.wait(120) == 130);
  json s = ws.ok({"sweep", "show", id2});
  CHECK(s["status"] == "Canceled");
  CHECK(ws.ok({"run", "list", "--status", "Running", "--last", "0"}).size() == 0);
}

TEST_CASE("sweep: --async detaches a supervisor and returns at once") {
  Workspace ws;
  fs::path src = make_source(ws, kQuadratic);
  write_text(ws.dir() / "a.yml", R"(sampling: {type: random, parameter_space: [{name: x, expression: uniform, values: [0, 1]}, {name: y, expression: choice, values: [0.5]}]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 3
)");
  json s = ws.ok({"sweep", "submit", "--async", "-f", (ws.dir() / "a.yml").string(), "--source-directory", src.string(), "train.py"});
  std::string id = s["sweepId"];
  CHECK(s["status"] == "Running");
  json done;
  REQUIRE(wait_until([&] {
    done = ws.ok({"sweep", "show", id});
    return done["status"] == "Completed";
  }, 120));
  CHECK(done["trials"]["completed"] == 3);
}

namespace {

// A live process whose environment holds `entry` ("NAME=value"), or -1.
pid_t process_with_env(const std::string& entry) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "environ");
    std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (("\0" + env).find(std::string(1, '\0') + entry + std::string(1, '\0')) != std::string::npos)
      return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// Whether `pid` is a live process (not gone, not a zombie).
bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

// A run's record as it is on disk ({} if it has no readable one).
json run_record(const Workspace& ws, const std::string& run_id) {
  try {
    json r = json::parse(read_text(ws.root() / "experiments/default/runs" / run_id / "run.json"));
    return r.is_object() ? r : json::object();
  } catch (...) {
    return json::object();
  }
}

// Grid over x = 1..6: trial 0 (x=1) ends at once; the others wait until the file `gate` exists, so nothing but the
// test can end them. Once a trial has been short (under 2 s), the scheduler prepares the next trial while both slots
// are busy: after trial 0 ends, trials 1 and 2 run and trial 3 is prepared (its run exists, Queued, with no
// process). The trials are bash scripts: a python trial's start-up alone takes a second or two on a loaded 2-core
// machine, which made trial 0 "long" and the state below never came. The wait is for exactly that state, which
// lasts until the test acts.
std::string start_with_prepared_trial(Workspace& ws, std::unique_ptr<Background>& bg, const fs::path& gate) {
  fs::path src = ws.dir() / "src";
  write_text(src / "train.sh", "echo \"$AMLC_RUN_ID\" >> '" + (ws.dir() / "marks.txt").string() + "'\nx=''\nwhile [ $# -gt 0 ]; do [ \"$1\" = --x ] && x=$2; shift; done\n"
                               "i=0\nwhile [ \"$x\" != 1 ] && [ ! -e '" + gate.string() + "' ] && [ $i -lt 18000 ]; do sleep 0.05; i=$((i+1)); done\n"
                               "echo \"accuracy=$x\"\n");
  write_text(ws.dir() / "g.yml", R"(sampling: {type: grid, parameter_space: [{name: x, expression: choice, values: [1, 2, 3, 4, 5, 6]}]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 6
max_concurrent_runs: 2
)");
  bg = std::make_unique<Background>(
      ws, std::vector<std::string>{"sweep", "submit", "-f", (ws.dir() / "g.yml").string(), "--source-directory", src.string(), "train.sh"},
      ws.dir());
  std::string id;
  std::string seen;  // what the last look found, for the failure message
  bool prepared = wait_until([&] {
    id = sweep_id_from_journal_dir(ws);
    if (id.empty()) return false;
    int started = 0;
    for (const auto& r : journal(ws, id))
      if (r.value("event", "") == "trial_started") ++started;
    json r1 = run_record(ws, id + "_1"), r2 = run_record(ws, id + "_2"), r3 = run_record(ws, id + "_3");
    seen = "trial_started x" + std::to_string(started) + ", run 1: " + r1.value("status", std::string("-")) +
           ", run 2: " + r2.value("status", std::string("-")) + ", run 3: " + r3.value("status", std::string("-"));
    // The journal's trial_started comes before the run is created: wait for the prepared run itself. Queued with
    // no process is also what a run is between its creation and Execution::prepare, which takes the run folder's
    // lock (a test that takes that lock then would stall the sweep): its working folder, made after that lock is
    // released, says the preparation is done.
    bool has_wd = fs::is_directory(ws.root() / "experiments/default/runs" / (id + "_3") / "wd");
    return started == 4 && r1.value("status", "") == "Running" && r2.value("status", "") == "Running" &&
           r3.value("status", "") == "Queued" && r3.value("process", json()).is_null() && has_wd;
  }, 120);
  REQUIRE_MESSAGE(prepared, "no prepared trial: " << seen << "\n" << read_text(ws.root() / "sweeps" / id / "journal.jsonl"));
  return id;
}

}  // namespace

TEST_CASE("sweep: a trial prepared ahead of a free slot is Canceled unstarted when the sweep is canceled") {
  Workspace ws;
  std::unique_ptr<Background> bg;
  std::string id = start_with_prepared_trial(ws, bg, ws.dir() / "gate");
  json shown = ws.ok({"sweep", "show", id});
  std::map<int, std::string> status;
  for (const auto& t : shown["trialRuns"]) status[t["index"].get<int>()] = t["status"];
  CHECK(status[0] == "Completed");
  CHECK(status[1] == "Running");
  CHECK(status[2] == "Running");
  CHECK(status[3] == "Queued");  // prepared: the journal has it started, its run is waiting
  CHECK(shown["trials"]["running"] == 2);
  CHECK(shown["trials"]["queued"] == 1);
  json run3 = ws.ok({"run", "show", "-r", id + "_3"});
  CHECK(run3["status"] == "Queued");

  ws.ok({"sweep", "cancel", id, "--reason", "enough", "--wait", std::to_string(100 * time_scale())});
  CHECK(bg->wait(120) == 1);  // a canceled sweep is not a success
  json s = ws.ok({"sweep", "show", id});
  CHECK(s["status"] == "Canceled");
  CHECK(s["trials"]["total"] == 4);
  CHECK(s["trials"]["completed"] == 1);
  CHECK(s["trials"]["canceled"] == 3);
  run3 = ws.ok({"run", "show", "-r", id + "_3"});
  CHECK(run3["status"] == "Canceled");
  CHECK(run3["cancelRequested"]["reason"].get<std::string>().find("before the trial started") != std::string::npos);
  CHECK(run3.value("process", json()).is_null());  // never had a process
  for (const auto& h : run3["statusHistory"]) CHECK(h["status"] != "Running");
  // No working folder is left behind by the hand-over between trials.
  for (int i = 0; i < 4; ++i) CHECK_FALSE(fs::exists(ws.root() / "experiments/default/runs" / (id + "_" + std::to_string(i)) / "wd"));
  CHECK(ws.ok({"run", "list", "--status", "Running", "--last", "0"}).size() == 0);
  CHECK(ws.run({"workspace", "check"}).code == 0);
}

TEST_CASE("sweep: resume after SIGKILL with a prepared trial re-runs it and leaves nothing Queued or Running") {
  Workspace ws;
  std::unique_ptr<Background> bg;
  fs::path gate = ws.dir() / "gate";
  std::string id = start_with_prepared_trial(ws, bg, gate);
  ::kill(bg->pid, SIGKILL);
  CHECK(bg->wait(60) == 128 + SIGKILL);
  write_text(gate, "open\n");  // from here on every trial ends at once
  // As if amlc had died between trial 0's end and the hand-over of its working folder.
  fs::path kept = ws.root() / "experiments/default/runs" / (id + "_0") / "wd";
  REQUIRE_FALSE(fs::exists(kept));
  write_text(kept / "left-by-trial-0.txt", "x\n");
  auto r = ws.run({"sweep", "resume", id});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json s = r.json_out();
  CHECK(s["status"] == "Completed");
  CHECK(s["trials"]["total"] == 6);
  CHECK(s["trials"]["completed"] == 6);
  CHECK(s["bestRunId"] == id + "_5");
  CHECK(s["bestMetric"] == 6);
  // The prepared trial's first run never ran: it ended Canceled or Failed, and the trial ran again as _r1.
  json first = ws.ok({"run", "show", "-r", id + "_3"});
  CHECK((first["status"] == "Canceled" || first["status"] == "Failed"));
  CHECK(first.value("process", json()).is_null());
  for (const auto& h : first["statusHistory"]) CHECK(h["status"] != "Running");
  CHECK(ws.ok({"run", "show", "-r", id + "_3_r1"})["status"] == "Completed");
  CHECK(ws.ok({"run", "list", "--status", "Running", "--last", "0"}).size() == 0);
  CHECK(ws.ok({"run", "list", "--status", "Queued", "--last", "0"}).size() == 0);
  // Working folders kept for hand-over when amlc was killed were taken over or removed by the resume.
  for (const auto& e : fs::directory_iterator(ws.root() / "experiments/default/runs")) CHECK_FALSE(fs::exists(e.path() / "wd"));
  CHECK(ws.run({"workspace", "check"}).code == 0);
}

TEST_CASE("sweep: a trial process started just before amlc is killed, before its pid is on record, never runs") {
  Workspace ws;
  std::unique_ptr<Background> bg;
  fs::path gate = ws.dir() / "gate";
  std::string id = start_with_prepared_trial(ws, bg, gate);
  // Hold the prepared run's record lock: when a slot frees, amlc starts trial 3's process and then blocks before
  // it can write the process into the run record. Killed there, it leaves a process nothing knows about: resume
  // could neither stop it nor tell it from a trial that never started.
  fs::path run3 = ws.root() / "experiments/default/runs" / (id + "_3");
  int lock = ::open(run3.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(lock >= 0);
  REQUIRE(::flock(lock, LOCK_EX) == 0);
  auto marked = [&](const std::string& run) {
    std::istringstream in(read_text(ws.dir() / "marks.txt"));
    std::string line;
    while (std::getline(in, line))
      if (line == run) return true;
    return false;
  };
  write_text(gate, "open\n");  // trials 1 and 2 end
  pid_t trial3 = -1;
  bool spawned = wait_until([&] {
    trial3 = process_with_env("AMLC_RUN_ID=" + id + "_3");  // the process amlc started for run _3
    return trial3 > 0 || marked(id + "_3");                 // (or, already gone, the script it ran)
  }, 120);
  ::kill(bg->pid, SIGKILL);
  int code = bg->wait(120);
  ::close(lock);
  REQUIRE_MESSAGE(spawned, "amlc did not start trial 3: " << read_text(ws.root() / "sweeps" / id / "journal.jsonl"));
  CHECK(code == 128 + SIGKILL);
  if (trial3 > 0) CHECK(wait_until([&] { return !alive(trial3); }, 120));
  // Trial 3's first run never got to run its script...
  CHECK_FALSE(marked(id + "_3"));
  CHECK(run_record(ws, id + "_3").value("process", json()).is_null());
  // ... and resume runs it again as _3_r1.
  auto r = ws.run({"sweep", "resume", id});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  json s = r.json_out();
  CHECK(s["status"] == "Completed");
  CHECK(s["trials"]["completed"] == 6);
  CHECK(marked(id + "_3_r1"));
  CHECK_FALSE(marked(id + "_3"));
  CHECK(ws.ok({"run", "list", "--status", "Running", "--last", "0"}).size() == 0);
  CHECK(ws.run({"workspace", "check"}).code == 0);
}
