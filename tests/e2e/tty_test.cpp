// End-to-end tests of what amlc does on a terminal: the redrawn sweep progress line, coloured errors, live run
// output. The real binary runs under a pseudo-terminal (forkpty) with a fixed window size, TERM=xterm and no
// NO_COLOR; stdout and/or stderr may instead be pipes, so JSON on stdout can be parsed apart from the terminal.
// Note: the terminal's default output processing (ONLCR) shows every "\n" written by amlc as "\r\n".
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "support/harness.hpp"

extern char** environ;

using namespace amlc::test;

namespace {

using Clock = std::chrono::steady_clock;

struct PtyOptions {
  bool stdout_on_pty = true;                 // else a pipe, captured in PtyResult::out
  bool stderr_on_pty = true;                 // else a pipe, captured in PtyResult::err
  unsigned short cols = 120, rows = 40;      // the window size the program sees (TIOCGWINSZ)
  std::map<std::string, std::string> env;    // added to the environment; the value "\x01unset" removes
  double timeout_seconds = 30;               // then the program is killed and timed_out set
  std::function<void(const std::string&)> on_output;  // called with all terminal output so far, after each read
};

struct PtyResult {
  int code = -1;           // exit code, or -signal
  bool timed_out = false;
  std::string tty;         // every byte the terminal received
  std::string out, err;    // the pipes, for streams not on the terminal

  json json_out() const {
    try {
      return json::parse(out);
    } catch (const std::exception& e) {
      FAIL("stdout is not JSON (exit " << code << "): " << e.what() << "\nstdout: " << out << "\ntty: " << tty);
    }
    return {};
  }
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Runs amlc with `args` with stdin (always), stdout and stderr (per `opts`) on a new pseudo-terminal, which is also
// the program's controlling terminal. Reads everything until the terminal's last holder closes it (EIO) and the
// pipes reach EOF, then reaps the program. Deadline-driven: no sleeps.
PtyResult run_amlc_pty(const std::vector<std::string>& args, const PtyOptions& opts = {}) {
  std::map<std::string, std::string> changes{{"NO_COLOR", "\x01unset"}, {"TERM", "xterm"}};
  for (const auto& [k, v] : opts.env) changes[k] = v;
  // Everything the child needs is built before fork: after it, only exec.
  std::vector<std::string> env_strings = child_environment(changes);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings{AMLC_BIN};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  if (!opts.stdout_on_pty) REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
  if (!opts.stderr_on_pty) REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
  winsize ws{};
  ws.ws_row = opts.rows;
  ws.ws_col = opts.cols;
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
  if (pid == 0) {
    if (out_pipe[1] >= 0) ::dup2(out_pipe[1], STDOUT_FILENO);  // dup2 clears close-on-exec on the copy
    if (err_pipe[1] >= 0) ::dup2(err_pipe[1], STDERR_FILENO);
    ::execve(AMLC_BIN, argv.data(), envp.data());
    ::_exit(127);
  }
  close_fd(out_pipe[1]);
  close_fd(err_pipe[1]);
  if (pid < 0) {
    close_fd(out_pipe[0]);
    close_fd(err_pipe[0]);
    FAIL("forkpty failed: " << std::strerror(errno));
  }
  ::fcntl(master, F_SETFD, FD_CLOEXEC);

  PtyResult r;
  struct Stream {
    int fd;
    std::string* dst;
    bool tty;
  };
  std::vector<Stream> open{{master, &r.tty, true}};
  if (out_pipe[0] >= 0) open.push_back({out_pipe[0], &r.out, false});
  if (err_pipe[0] >= 0) open.push_back({err_pipe[0], &r.err, false});
  for (auto& s : open) ::fcntl(s.fd, F_SETFL, O_NONBLOCK);

  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opts.timeout_seconds));
  auto kill_it = [&] {
    if (r.timed_out) return;
    r.timed_out = true;
    ::kill(-pid, SIGKILL);  // forkpty's child leads its own session and process group
    ::kill(pid, SIGKILL);
    deadline = Clock::now() + std::chrono::seconds(5);  // to read what is left
  };
  char buf[65536];
  while (!open.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      if (r.timed_out) break;  // killed and still held open by someone else: give up on the rest
      kill_it();
      continue;
    }
    std::vector<pollfd> fds;
    for (const auto& s : open) fds.push_back({s.fd, POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left, 1000)));
    if (n <= 0) continue;
    std::vector<Stream> still;
    for (size_t i = 0; i < open.size(); ++i) {
      Stream s = open[i];
      if (fds[i].revents) {
        ssize_t got = ::read(s.fd, buf, sizeof buf);
        if (got > 0) {
          s.dst->append(buf, static_cast<size_t>(got));
          if (s.tty && opts.on_output) opts.on_output(r.tty);
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          // EOF on a pipe; EIO on the master once every holder of the terminal has closed it (Linux first
          // hands out what is still buffered).
          ::close(s.fd);
          continue;
        }
      }
      still.push_back(s);
    }
    open.swap(still);
  }
  for (auto& s : open) ::close(s.fd);

  // Reap it, waiting on a pidfd with the deadline.
  // (the raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C", so pidfd_open() does not link from C++)
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 && !r.timed_out) kill_it();
    if (pfd < 0 || r.timed_out) {
      ::waitpid(pid, &status, 0);
      break;
    }
    pollfd p{pfd, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::max<long long>(1, std::min<long long>(left, 1000))));
  }
  if (pfd >= 0) ::close(pfd);
  if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) r.code = -WTERMSIG(status);
  return r;
}

std::vector<std::string> with_ws(const Workspace& ws, std::vector<std::string> args) {
  args.insert(args.begin(), {"-w", ws.root().string()});
  return args;
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

size_t count_of(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// amlc's %.6g rendering of metric values in messages.
std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

const std::string kRedraw = "\r\033[K";

// Each redrawn progress line: what follows a "\r\033[K" up to the next "\r" (the next redraw, or the final
// newline, which the terminal shows as "\r\n").
std::vector<std::string> progress_lines(const std::string& tty) {
  std::vector<std::string> out;
  for (size_t p = tty.find(kRedraw); p != std::string::npos; p = tty.find(kRedraw, p)) {
    p += kRedraw.size();
    size_t end = tty.find('\r', p);
    out.push_back(tty.substr(p, end == std::string::npos ? std::string::npos : end - p));
  }
  return out;
}

// A 4-trial random sweep, 2 at a time; each trial logs accuracy = its --x.
std::vector<std::string> small_sweep(const Workspace& ws) {
  fs::path src = ws.dir() / "src";
  write_text(src / "train.py", R"(import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print('accuracy=%r' % float(args['--x']))
)");
  write_text(ws.dir() / "sweep.yml", R"(sampling:
  type: random
  parameter_space:
  - {name: --x, expression: uniform, values: [0, 1]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: maximize
max_total_runs: 4
max_concurrent_runs: 2
seed: 5
)");
  return {"sweep", "submit", "-f", (ws.dir() / "sweep.yml").string(), "--source-directory", src.string(), "train.py"};
}

}  // namespace

TEST_CASE("tty: sweep submit redraws one progress line on a terminal and ends it with a newline - none without a terminal") {
  Workspace ws;
  PtyOptions po;
  po.stdout_on_pty = false;  // JSON apart
  auto r = run_amlc_pty(with_ws(ws, small_sweep(ws)), po);
  REQUIRE_MESSAGE(r.code == 0, "tty: " << r.tty << "\nstdout: " << r.out);
  CHECK_FALSE(r.timed_out);
  json s = r.json_out();
  CHECK(s["status"] == "Completed");
  CHECK(s["trials"]["total"] == 4);
  CHECK(s["trials"]["completed"] == 4);
  std::string id = s["sweepId"];
  std::string best_run = s["bestRunId"];
  double best = s["bestMetric"].get<double>();

  // The announcement, then redraws; the JSON is not on the terminal.
  std::string announce = "amlc: sweep " + id + " (4 trials, 2 at a time)\r\n";
  REQUIRE(contains(r.tty, announce));
  CHECK(r.tty.find(announce) < r.tty.find(kRedraw));
  CHECK(contains(r.tty, kRedraw));
  CHECK(contains(r.tty, "4/4 done (4 completed, 0 failed, 0 canceled), 0 running, best "));
  CHECK_FALSE(contains(r.tty, "\"sweepId\""));
  CHECK_FALSE(contains(r.tty, "amlc: trial "));

  auto lines = progress_lines(r.tty);
  REQUIRE(!lines.empty());
  std::regex shape("sweep " + id + R"(: (\d)/4 done \((\d) completed, (\d) failed, (\d) canceled\), (\d) running(, best .*)?)");
  int last_done = 0;
  for (const auto& l : lines) {
    std::smatch m;
    REQUIRE_MESSAGE(std::regex_match(l, m, shape), "progress line: " << l);
    int done = std::stoi(m[1]);
    CHECK(done >= last_done);  // never goes back
    CHECK(done == std::stoi(m[2]) + std::stoi(m[3]) + std::stoi(m[4]));
    CHECK(std::stoi(m[5]) <= 2);  // concurrency
    last_done = done;
  }
  // The last one: everything done with the sweep's best (a prefix of it, should the line be cut to the width).
  std::string full = "sweep " + id + ": 4/4 done (4 completed, 0 failed, 0 canceled), 0 running, best " + num(best) + " (" + best_run + ")";
  const std::string& last = lines.back();
  CHECK_MESSAGE(full.rfind(last, 0) == 0, "last progress line: " << last << "\nexpected: " << full);
  CHECK(last.size() >= full.find(", best ") + 7);
  // ... ended by the newline, the last thing written before the exit.
  CHECK(r.tty.size() == r.tty.rfind(kRedraw) + kRedraw.size() + last.size() + 2);
  CHECK(r.tty.substr(r.tty.size() - 2) == "\r\n");

  // Without a terminal: no carriage returns, no escapes, no progress line; the same summary.
  auto plain = ws.run(small_sweep(ws));
  REQUIRE_MESSAGE(plain.code == 0, plain.err);
  CHECK(plain.json_out()["status"] == "Completed");
  CHECK(plain.err.find('\r') == std::string::npos);
  CHECK_FALSE(contains(plain.err, "\033["));
  CHECK_FALSE(contains(plain.err, " done ("));
  CHECK(contains(plain.err, "amlc: sweep " + plain.json_out()["sweepId"].get<std::string>() + " (4 trials, 2 at a time)\n"));
}

TEST_CASE("tty: sweep --verbose prints a line per trial without a terminal - on a terminal the progress line replaces them") {
  Workspace ws;
  std::vector<std::string> args = small_sweep(ws);
  args.insert(args.begin(), "--verbose");
  auto r = ws.run(args);
  REQUIRE_MESSAGE(r.code == 0, r.err);
  std::string id = r.json_out()["sweepId"];
  std::set<std::string> seen;
  std::regex trial("amlc: trial (" + id + R"(_\d) Completed \{"--x":[0-9.e-]+\} best=[0-9.e-]+)");
  int n = 0;
  for (const auto& l : lines_of(r.err)) {
    if (l.rfind("amlc: trial ", 0) != 0) continue;
    ++n;
    std::smatch m;
    CHECK_MESSAGE(std::regex_match(l, m, trial), "line: " << l);
    if (m.size() > 1) seen.insert(m[1]);
  }
  CHECK(n == 4);
  CHECK(seen == std::set<std::string>{id + "_0", id + "_1", id + "_2", id + "_3"});
  CHECK(r.err.find('\r') == std::string::npos);

  PtyOptions po;
  po.stdout_on_pty = false;
  auto t = run_amlc_pty(with_ws(ws, args), po);
  REQUIRE_MESSAGE(t.code == 0, "tty: " << t.tty);
  CHECK_FALSE(t.timed_out);
  CHECK(t.json_out()["status"] == "Completed");
  CHECK_FALSE(contains(t.tty, "amlc: trial "));
  CHECK(contains(t.tty, kRedraw));
  CHECK(contains(t.tty, "4/4 done (4 completed, 0 failed, 0 canceled), 0 running, best "));
}

TEST_CASE("tty: a progress line never wraps, so each redraw really replaces the last (80-column terminal)") {
  // "\r\033[K" only clears the cursor's row: a line wider than the terminal leaves its first rows behind.
  Workspace ws;
  PtyOptions po;
  po.stdout_on_pty = false;
  po.cols = 80;
  po.rows = 24;
  auto r = run_amlc_pty(with_ws(ws, small_sweep(ws)), po);
  REQUIRE_MESSAGE(r.code == 0, "tty: " << r.tty);
  CHECK_FALSE(r.timed_out);
  std::string id = r.json_out()["sweepId"];
  auto lines = progress_lines(r.tty);
  REQUIRE(!lines.empty());
  for (const auto& l : lines) {
    CHECK(l.rfind("sweep " + id.substr(0, 20), 0) == 0);
    CHECK_MESSAGE(l.size() <= 80, "progress line of " << l.size() << " columns on an 80-column terminal: " << l);
  }
  CHECK(r.tty.substr(r.tty.size() - 2) == "\r\n");
}

TEST_CASE("tty: errors are red on a terminal only - --no-color and NO_COLOR turn it off - the text is the same") {
  Workspace ws;
  const std::vector<std::string> args = with_ws(ws, {"model", "show", "-n", "nope"});
  const std::string red = "\033[31mamlc: error:\033[0m model 'nope' not found\r\n";

  auto colored = run_amlc_pty(args);
  CHECK(colored.code == 3);
  CHECK_FALSE(colored.timed_out);
  CHECK(colored.tty.rfind(red, 0) == 0);
  CHECK(count_of(colored.tty, "\033[") == 2);  // only the "amlc: error:" prefix
  CHECK(contains(colored.tty, "\r\namlc: hint: "));

  // Without a terminal: the same text, less the colour (and the terminal's \r).
  auto piped = run_amlc(args);
  CHECK(piped.code == 3);
  CHECK(piped.out.empty());
  CHECK_FALSE(contains(piped.err, "\033"));
  CHECK(piped.err == replace_all(replace_all(replace_all(colored.tty, "\033[31m", ""), "\033[0m", ""), "\r\n", "\n"));

  for (const auto& [what, a, env] : std::vector<std::tuple<std::string, std::vector<std::string>, std::map<std::string, std::string>>>{
           {"--no-color", with_ws(ws, {"--no-color", "model", "show", "-n", "nope"}), {}},
           {"--no-color after the command", with_ws(ws, {"model", "show", "-n", "nope", "--no-color"}), {}},
           {"NO_COLOR=1", args, {{"NO_COLOR", "1"}}}}) {
    CAPTURE(what);
    PtyOptions po;
    po.env = env;
    auto r = run_amlc_pty(a, po);
    CHECK(r.code == 3);
    CHECK_FALSE(contains(r.tty, "\033"));
    CHECK(r.tty.rfind("amlc: error: model 'nope' not found\r\n", 0) == 0);
    CHECK(r.tty == replace_all(piped.err, "\n", "\r\n"));
  }

  // no-color.org: an empty NO_COLOR does not turn colour off.
  {
    PtyOptions empty;
    empty.env = {{"NO_COLOR", ""}};
    auto r = run_amlc_pty(args, empty);
    CHECK(r.code == 3);
    CHECK(r.tty.rfind(red, 0) == 0);
  }

  // Colour follows stderr, not stdout: stdout a terminal, stderr a pipe: plain.
  PtyOptions po;
  po.stderr_on_pty = false;
  auto r = run_amlc_pty(args, po);
  CHECK(r.code == 3);
  CHECK(r.tty.empty());
  CHECK(r.err == piped.err);
}

TEST_CASE("tty: --no-color is honoured by an error in another global option") {
  // -o's value is checked while options are stored in declaration order; --no-color must not come too late.
  for (const auto& args : std::vector<std::vector<std::string>>{{"--no-color", "-o", "bogus", "model", "list"},
                                                                {"-o", "bogus", "--no-color", "model", "list"}}) {
    auto r = run_amlc_pty(args);
    CHECK(r.code == 2);
    CHECK(r.tty.rfind("amlc: error: --output: bogus not in", 0) == 0);
    CHECK_MESSAGE(!contains(r.tty, "\033"), "tty: " << r.tty);
  }
}

TEST_CASE("tty: run submit-script streams the script's lines live to the terminal in order - the run never reads it") {
  Workspace ws;
  fs::path src = ws.dir() / "src";
  // Line 1, then waits (bounded) for the test to have seen line 1 on the terminal: only live streaming gets
  // lines 2 and 3 printed. stdin is read to the end: it must be empty, not the terminal.
  write_text(src / "live.py", R"(import os, sys, time
print('tty-line-1', flush=True)
deadline = time.time() + 10
while not os.path.exists(sys.argv[1]):
    if time.time() > deadline:
        sys.exit(5)
    time.sleep(0.005)
print('tty-line-2', flush=True)
print('tty-line-3 stdin=%r' % sys.stdin.read(), flush=True)
)");

  for (bool stdout_on_pty : {true, false}) {
    CAPTURE(stdout_on_pty);
    fs::path go = ws.dir() / (stdout_on_pty ? "go1" : "go2");
    PtyOptions po;
    po.stdout_on_pty = stdout_on_pty;
    po.on_output = [&](const std::string& tty) {
      if (contains(tty, "tty-line-1\r\n") && !fs::exists(go)) write_text(go, "");
    };
    auto r = run_amlc_pty(with_ws(ws, {"run", "submit-script", "--source-directory", src.string(), "live.py", go.string()}), po);
    CHECK(r.code == 0);
    CHECK_FALSE(r.timed_out);
    size_t announce = r.tty.find("amlc: run ");
    size_t l1 = r.tty.find("tty-line-1\r\n");
    size_t l2 = r.tty.find("tty-line-2\r\n");
    size_t l3 = r.tty.find("tty-line-3 stdin=''\r\n");
    REQUIRE_MESSAGE(l1 != std::string::npos, "tty: " << r.tty);
    REQUIRE_MESSAGE(l2 != std::string::npos, "tty: " << r.tty);
    REQUIRE_MESSAGE(l3 != std::string::npos, "tty: " << r.tty);
    CHECK(announce < l1);
    CHECK(l1 < l2);
    CHECK(l2 < l3);
    CHECK(count_of(r.tty, "tty-line-") == 3);
    json rec;
    if (stdout_on_pty) {
      // The record follows the lines on the same terminal.
      size_t brace = r.tty.find('{', l3);
      REQUIRE(brace != std::string::npos);
      rec = json::parse(replace_all(r.tty.substr(brace), "\r\n", "\n"));
    } else {
      // The script's output is echoed on stderr: stdout holds the record only.
      CHECK_FALSE(contains(r.out, "tty-line-"));
      rec = r.json_out();
    }
    CHECK(rec["status"] == "Completed");
    CHECK(rec["exitCode"] == 0);
    CHECK(read_text(ws.root() / "runs" / rec["runId"].get<std::string>() / "logs" / "stdout.txt") ==
          "tty-line-1\ntty-line-2\ntty-line-3 stdin=''\n");
  }
}
