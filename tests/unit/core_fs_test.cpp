// Unit tests: core files and processes (temp names and their owners, bounded input reads, random secrets).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/process.hpp"
#include "amlc/core/util.hpp"
#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using amlc::Error;
using amlc::ErrorKind;
using amlc::TempState;

namespace {

template <class F>
Error expect_error(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected an amlc::Error");
  return Error(ErrorKind::General, "");
}

// The pid of a process that has exited and been reaped.
int dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return pid;
}

}  // namespace

TEST_CASE("a temp name names its live writer, and one whose writer died is orphaned") {
  std::string mine = amlc::temp_sibling("/x/run.json").filename().string();
  CHECK(mine.rfind("run.json.tmp.", 0) == 0);
  CHECK(amlc::temp_state(mine, 0) == TempState::Live);
  CHECK(amlc::temp_state(mine, 1e9) == TempState::Live);  // age does not matter while the writer runs

  // The same name with a pid that no longer runs.
  auto dash = mine.find('-', std::string("run.json.tmp.").size());
  std::string other = "run.json.tmp." + std::to_string(dead_pid()) + mine.substr(dash);
  CHECK(amlc::temp_state(other, 0) == TempState::Orphaned);

  // The right pid with another start time: the pid was reused by another process.
  const auto& me = amlc::this_process();
  std::string reused = mine;
  std::string ticks = "-" + std::to_string(me.start_ticks) + "-";
  reused.replace(reused.find(ticks), ticks.size(), "-" + std::to_string(me.start_ticks + 1) + "-");
  CHECK(amlc::temp_state(reused, 0) == TempState::Orphaned);

  // Another host: cannot be checked, so only age makes it orphaned.
  std::string foreign = mine;
  foreign.replace(foreign.rfind('-') + 1, 8, "00000000");
  if (foreign != mine) {
    CHECK(amlc::temp_state(foreign, 60) == TempState::Live);
    CHECK(amlc::temp_state(foreign, 2 * 24 * 3600) == TempState::Orphaned);
  }

  // Older names: "<pid>.<n>.<random>".
  CHECK(amlc::temp_state("blob.tmp." + std::to_string(dead_pid()) + ".3.0a1b2c3d", 0) == TempState::Orphaned);
  CHECK(amlc::temp_state("blob.tmp." + std::to_string(::getpid()) + ".3.0a1b2c3d", 0) == TempState::Live);
}

TEST_CASE("names that only look like temp names are not temp names") {
  for (const char* name : {"exp.tmp.1_1732000000_ab12", "a.tmp.", ".tmp.1.2.ab", "x.tmp.1-2-3.4", "x.tmp.1-2-zz.3.ab",
                           "x.tmp.a.1.ab", "model.json", "x.tmp.1.2.AB"}) {
    CAPTURE(name);
    CHECK(amlc::temp_state(name, 1e9) == TempState::NotTemp);
  }
}

TEST_CASE("process_alive tells this process, a dead one and a reused pid apart") {
  CHECK(amlc::process_alive(amlc::this_process()));
  CHECK_FALSE(amlc::process_alive(amlc::process_identity(dead_pid())));
  auto me = amlc::this_process();
  me.start_ticks += 1;
  CHECK_FALSE(amlc::process_alive(me));
  me = amlc::this_process();
  me.host = "another-host.example";
  me.pid = dead_pid();
  CHECK(amlc::process_alive(me));  // cannot be checked from here
}

TEST_CASE("read_input_file refuses fifos, devices, folders and files over the limit") {
  t::TempDir dir;
  t::write_text(dir / "ok.yml", "a: 1\n");
  CHECK(amlc::read_input_file(dir / "ok.yml", 100, "config") == "a: 1\n");
  CHECK(amlc::read_input_file(dir / "ok.yml", 5, "config") == "a: 1\n");  // exactly at the limit

  Error big = expect_error([&] { amlc::read_input_file(dir / "ok.yml", 4, "config"); });
  CHECK(big.kind() == ErrorKind::Usage);
  CHECK(std::string(big.what()).find("larger than 4 bytes") != std::string::npos);

  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  Error fifo = expect_error([&] { amlc::read_input_file(dir / "fifo", 100, "config"); });  // must not hang
  CHECK(fifo.kind() == ErrorKind::Usage);
  CHECK(std::string(fifo.what()).find("is a fifo, not a regular file") != std::string::npos);

  Error zero = expect_error([&] { amlc::read_input_file("/dev/zero", 100, "config"); });
  CHECK(zero.kind() == ErrorKind::Usage);
  CHECK(std::string(zero.what()).find("character device") != std::string::npos);

  CHECK(expect_error([&] { amlc::read_input_file(dir.path(), 100, "config"); }).kind() == ErrorKind::Usage);
  CHECK(expect_error([&] { amlc::read_input_file(dir / "missing.yml", 100, "config"); }).kind() == ErrorKind::NotFound);
}

TEST_CASE("random ids and keys come from the kernel: distinct, full length, hex") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string k = amlc::random_hex(16);
    CHECK(k.size() == 32);
    CHECK(k.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(k);
  }
  CHECK(seen.size() == 1000);
  // A child forked from this process draws different values (no state copied with the process).
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::string parent = amlc::random_hex(16);
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string c = amlc::random_hex(16);
    (void)!::write(fds[1], c.data(), c.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[32];
  REQUIRE(::read(fds[0], buf, 32) == 32);
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  CHECK(std::string(buf, 32) != amlc::random_hex(16));
  CHECK(std::string(buf, 32) != parent);
}

TEST_CASE("list_dir_strict throws where a listing fails, instead of returning fewer entries") {
  t::TempDir dir;
  t::write_text(dir / "a", "a");
  t::write_text(dir / "b", "b");
  CHECK(amlc::list_dir_strict(dir.path()).size() == 2);
  CHECK(amlc::list_dir_strict(dir / "missing").empty());
  CHECK_FALSE(amlc::exists_strict(dir / "missing"));
  CHECK_FALSE(amlc::is_directory_strict(dir / "a"));
  CHECK(amlc::is_directory_strict(dir.path()));
  // Out of file descriptors (EMFILE): the listing cannot be made, and says so. In a child, not to starve this process.
  pid_t pid = ::fork();
  if (pid == 0) {
    // The undefined-behaviour sanitizer checks an object's type through a pipe the first time it meets that
    // type, which needs two free descriptors: meet amlc::Error once before there are none.
    try {
      amlc::fail(amlc::ErrorKind::General, "warm-up");
    } catch (const Error& e) {
      if (e.kind() != amlc::ErrorKind::General) ::_exit(3);
    }
    struct rlimit rl {};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    int highest = 0;
    for (int fd = 0; fd < 1024; ++fd)
      if (::fcntl(fd, F_GETFD) >= 0) highest = fd;
    rl.rlim_cur = static_cast<rlim_t>(highest + 1);
    ::setrlimit(RLIMIT_NOFILE, &rl);
    while (::dup(0) >= 0) {
    }
    int code = 0;
    try {
      amlc::list_dir_strict(dir.path());
      code = 1;  // no error: wrong
    } catch (const Error&) {
      code = 0;
    }
    std::error_code ec;
    fs::directory_iterator it(dir.path(), ec);  // what the scans used before: an error that looks like an empty folder
    if (!ec) code = 2;
    ::_exit(code);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("a writer's shared lock fails when it cannot be taken, only a reader may go on without one") {
  // sysfs refuses to create a file, even for root (EACCES): a lock file that cannot be made.
  fs::path impossible = "/sys/amlc-lock-test";
  CHECK_THROWS_AS(amlc::FileLock(impossible, amlc::FileLock::Mode::Shared), Error);
  CHECK_THROWS_AS(amlc::FileLock(impossible, amlc::FileLock::Mode::Exclusive), Error);
  CHECK_NOTHROW(amlc::FileLock(impossible, amlc::FileLock::Mode::Shared, amlc::FileLock::Fallback::Reader));
}

TEST_CASE("lexically_inside keeps names inside a folder and refuses every way out") {
  using amlc::lexically_inside;
  fs::path dir = "/srv/app";
  CHECK(lexically_inside(dir, "score.py") == fs::path("score.py"));
  CHECK(lexically_inside(dir, "a/./b/../c.py") == fs::path("a/c.py"));
  CHECK(lexically_inside(dir, "/srv/app/sub/x.py") == fs::path("sub/x.py"));
  CHECK(lexically_inside(dir, "a..b") == fs::path("a..b"));
  CHECK(lexically_inside(dir, "sub/") == fs::path("sub"));
  CHECK_FALSE(lexically_inside(dir, ""));
  CHECK_FALSE(lexically_inside(dir, "."));
  CHECK_FALSE(lexically_inside(dir, "/srv/app"));
  CHECK_FALSE(lexically_inside(dir, "../x.py"));
  CHECK_FALSE(lexically_inside(dir, "a/../../x.py"));
  CHECK_FALSE(lexically_inside(dir, "/srv/other/x.py"));
  CHECK_FALSE(lexically_inside(dir, "/srv/app2/x.py"));
  CHECK_FALSE(lexically_inside(dir, "/etc/passwd"));
}

TEST_CASE("Fd owns one descriptor: a move hands it over, reset and destruction close it") {
  auto is_open = [](int fd) { return ::fcntl(fd, F_GETFD) != -1; };
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(raw >= 0);
  amlc::Fd a(raw);
  CHECK(a.valid());
  amlc::Fd b(std::move(a));
  CHECK_FALSE(a.valid());
  CHECK(a.get() == -1);
  CHECK(b.get() == raw);
  CHECK(is_open(raw));

  int other = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(other >= 0);
  amlc::Fd c(other);
  c = std::move(b);  // the descriptor c held is closed, c now holds raw
  CHECK(c.get() == raw);
  CHECK_FALSE(b.valid());
  CHECK_FALSE(is_open(other));
  CHECK(is_open(raw));

  errno = EACCES;
  c.reset();  // closes, and keeps errno for an error path
  CHECK(errno == EACCES);
  CHECK_FALSE(c.valid());
  CHECK_FALSE(is_open(raw));

  int third = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(third >= 0);
  {
    amlc::Fd d;
    CHECK_FALSE(d.valid());
    d.reset(third);
    CHECK(d.get() == third);
    int kept = d.release();
    CHECK(kept == third);
    CHECK_FALSE(d.valid());
  }
  CHECK(is_open(third));  // released: not closed by d
  amlc::Fd e(third);
}
