// Snapshots: deterministic bytes, normalised entries, limits, safe extraction of crafted archives.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <chrono>
#include <fstream>
#include <functional>
#include <vector>

#include <doctest/doctest.h>

#include "amlc/archive/snapshot.hpp"
#include "amlc/core/error.hpp"
#include "amlc/core/hash.hpp"
#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using namespace amlc::archive;

namespace {

void make_tree(const fs::path& root) {
  t::write_text(root / "train.py", "print('hi')\n");
  t::write_text(root / "pkg/__init__.py", "");
  t::write_text(root / "pkg/util.py", std::string(5000, 'u'));
  t::write_text(root / "run.sh", "#!/bin/sh\necho run\n");
  fs::permissions(root / "run.sh", fs::perms::owner_all | fs::perms::group_read, fs::perm_options::replace);
  t::write_text(root / (std::string(120, 'n') + ".txt"), "long name");
  t::write_text(root / "deep/a/b/c/d.txt", "d");
  fs::create_directories(root / "empty");
  fs::create_symlink("pkg/util.py", root / "link.py");
  t::write_text(root / ".gitignore", "*.pyc\n");
  t::write_text(root / "pkg/junk.pyc", "junk");
}

struct Entry {
  std::string path;
  int type;
  int perm;
  long long mtime;
  long long uid, gid;
  bool has_uname;
  std::string symlink;
};

std::vector<Entry> read_entries(const fs::path& archive_path) {
  std::vector<Entry> out;
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  REQUIRE(archive_read_open_filename(a, archive_path.c_str(), 10240) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    out.push_back({archive_entry_pathname(e), static_cast<int>(archive_entry_filetype(e)),
                   static_cast<int>(archive_entry_perm(e)), static_cast<long long>(archive_entry_mtime(e)),
                   static_cast<long long>(archive_entry_uid(e)), static_cast<long long>(archive_entry_gid(e)),
                   archive_entry_uname(e) != nullptr && *archive_entry_uname(e),
                   archive_entry_symlink(e) ? archive_entry_symlink(e) : ""});
    archive_read_data_skip(a);
  }
  archive_read_free(a);
  return out;
}

std::string bytes_of(const fs::path& p) { return t::read_text(p); }

// Builds a tar.gz with raw entries, as an attacker would.
struct Crafted {
  struct archive* a;
  explicit Crafted(const fs::path& path) {
    a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  }
  ~Crafted() {
    archive_write_close(a);
    archive_write_free(a);
  }
  void add(const std::string& name, mode_t type, const std::string& content = "", const std::string& link = "",
           bool hard = false) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, 0644);
    if (type == AE_IFLNK) archive_entry_set_symlink(e, link.c_str());
    if (hard) archive_entry_set_hardlink(e, link.c_str());
    if (type == AE_IFCHR) archive_entry_set_rdev(e, makedev(1, 3));
    archive_entry_set_size(e, type == AE_IFREG && !hard ? static_cast<la_int64_t>(content.size()) : 0);
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    if (type == AE_IFREG && !content.empty()) archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  }
};

std::string extract_error(const fs::path& archive_path, const fs::path& dest, const ExtractLimits& limits = {}) {
  try {
    extract_snapshot(archive_path, dest, limits);
  } catch (const amlc::Error& e) {
    return e.what();
  }
  return "";
}

// Runs `fn` in a child process; its exit status: 0 if it returned, the error kind's exit code if it threw an
// amlc::Error, 99 on anything else, -1 if it was still running after `seconds` (it is then killed).
int exit_code_in_child(const std::function<void()>& fn, double seconds = 30) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      fn();
      ::_exit(0);
    } catch (const amlc::Error& e) {
      ::_exit(amlc::exit_code(e.kind()));
    } catch (...) {
      ::_exit(99);
    }
  }
  int status = 0;
  if (!t::wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, seconds)) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Where `p` really leads (symlinks resolved as far as they exist).
std::string resolved(const fs::path& p) { return fs::weakly_canonical(p).string(); }

}  // namespace

TEST_CASE("archive: the same tree gives the same bytes / whatever the mtimes / owners' modes and location") {
  t::TempDir tmp;
  make_tree(tmp / "a");
  auto s1 = create_snapshot(tmp / "a", tmp / "one.tar.gz");
  // A copy with other mtimes and group/other bits gives the same archive.
  fs::copy(tmp / "a", tmp / "b", fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  fs::last_write_time(tmp / "b/train.py", fs::file_time_type::clock::now() - std::chrono::hours(50));
  fs::permissions(tmp / "b/train.py", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  auto s2 = create_snapshot(tmp / "b", tmp / "two.tar.gz");
  CHECK(s1.sha256 == s2.sha256);
  CHECK(bytes_of(tmp / "one.tar.gz") == bytes_of(tmp / "two.tar.gz"));
  CHECK(s1.sha256 == amlc::sha256_file(tmp / "one.tar.gz"));
  CHECK(s1.files == 8);  // 6 files + link.py + .gitignore; junk.pyc excluded
  CHECK(s1.excluded == 1);
  CHECK(s1.archive_bytes == fs::file_size(tmp / "one.tar.gz"));

  // gzip header: no FNAME flag, MTIME zero.
  std::string gz = bytes_of(tmp / "one.tar.gz");
  REQUIRE(gz.size() > 10);
  CHECK(static_cast<unsigned char>(gz[0]) == 0x1f);
  CHECK((static_cast<unsigned char>(gz[3]) & 0x08) == 0);
  CHECK(gz.substr(4, 4) == std::string(4, '\0'));

  auto entries = read_entries(tmp / "one.tar.gz");
  std::vector<std::string> names;
  for (const auto& e : entries) {
    names.push_back(e.path);
    CHECK(e.mtime == kSnapshotMtime);
    CHECK(e.uid == 0);
    CHECK(e.gid == 0);
    CHECK(!e.has_uname);
    if (e.type == AE_IFDIR) CHECK(e.perm == 0755);
    if (e.path == "run.sh") CHECK(e.perm == 0755);
    if (e.path == "train.py") CHECK(e.perm == 0644);
    if (e.path == "link.py") {
      CHECK(e.type == AE_IFLNK);
      CHECK(e.symlink == "pkg/util.py");
    }
  }
  CHECK(names.front() == ".gitignore");
  CHECK(std::find(names.begin(), names.end(), "pkg/junk.pyc") == names.end());
  CHECK(std::find(names.begin(), names.end(), std::string(120, 'n') + ".txt") != names.end());
  CHECK(std::find(names.begin(), names.end(), "empty/") != names.end());  // directories end with '/'

  // Changing one byte changes the hash.
  t::write_text(tmp / "b/train.py", "print('hj')\n");
  CHECK(create_snapshot(tmp / "b", tmp / "three.tar.gz").sha256 != s1.sha256);
}

TEST_CASE("archive: extraction round-trips content / exec bits / symlinks and empty directories") {
  t::TempDir tmp;
  make_tree(tmp / "src");
  create_snapshot(tmp / "src", tmp / "s.tar.gz");
  auto info = extract_snapshot(tmp / "s.tar.gz", tmp / "out");
  CHECK(info.files == 8);
  CHECK(t::read_text(tmp / "out/pkg/util.py") == std::string(5000, 'u'));
  CHECK(t::read_text(tmp / "out/deep/a/b/c/d.txt") == "d");
  CHECK(fs::is_symlink(tmp / "out/link.py"));
  CHECK(t::read_text(tmp / "out/link.py") == std::string(5000, 'u'));
  CHECK(fs::is_directory(tmp / "out/empty"));
  CHECK((fs::status(tmp / "out/run.sh").permissions() & fs::perms::owner_exec) != fs::perms::none);
  CHECK((fs::status(tmp / "out/train.py").permissions() & fs::perms::owner_exec) == fs::perms::none);
  CHECK(!fs::exists(tmp / "out/pkg/junk.pyc"));
  // Not into a non-empty directory.
  CHECK_THROWS_AS(extract_snapshot(tmp / "s.tar.gz", tmp / "out"), amlc::Error);
}

TEST_CASE("archive: limits count files and bytes and name the biggest entries") {
  t::TempDir tmp;
  t::write_text(tmp / "src/a.py", "x");
  for (int i = 0; i < 5; ++i) t::write_text(tmp / ("src/data/f" + std::to_string(i)), std::string(1000, 'x'));
  t::write_text(tmp / "src/big.bin", std::string(3000, 'b'));
  SnapshotOptions o;
  o.limits.max_files = 4;
  try {
    create_snapshot(tmp / "src", tmp / "x.tar.gz", o);
    FAIL("expected a limit error");
  } catch (const amlc::Error& e) {
    CHECK(e.kind() == amlc::ErrorKind::Usage);
    std::string m = e.what();
    CHECK(m.find("7 files (limit 4)") != std::string::npos);
    CHECK(m.find("data/ (5 files") != std::string::npos);
    CHECK(std::string(e.hint()).find("AMLC_SNAPSHOT_MAX_FILES") != std::string::npos);
  }
  CHECK(!fs::exists(tmp / "x.tar.gz"));
  o.limits.max_files = 100;
  o.limits.max_bytes = 4000;
  try {
    create_snapshot(tmp / "src", tmp / "x.tar.gz", o);
    FAIL("expected a limit error");
  } catch (const amlc::Error& e) {
    std::string m = e.what();
    CHECK(m.find("limit 3.9 KB") != std::string::npos);
    // Sorted by size: data/ (5000 bytes) first, then big.bin.
    CHECK(m.find("data/") < m.find("big.bin"));
  }
  ::setenv("AMLC_SNAPSHOT_MAX_FILES", "12", 1);
  ::setenv("AMLC_SNAPSHOT_MAX_MB", "7", 1);
  auto l = SnapshotLimits::from_env();
  CHECK(l.max_files == 12);
  CHECK(l.max_bytes == 7ull * 1024 * 1024);
  ::setenv("AMLC_SNAPSHOT_MAX_MB", "lots", 1);
  CHECK_THROWS_AS(SnapshotLimits::from_env(), amlc::Error);
  ::unsetenv("AMLC_SNAPSHOT_MAX_FILES");
  ::unsetenv("AMLC_SNAPSHOT_MAX_MB");
}

TEST_CASE("archive: crafted archives are refused with the entry named / and nothing lands outside") {
  t::TempDir tmp;
  struct Bad {
    const char* label;
    std::function<void(Crafted&)> build;
    const char* expect;
  };
  std::vector<Bad> bad = {
      {"dotdot", [](Crafted& c) { c.add("../evil.txt", AE_IFREG, "x"); }, "'..'"},
      {"dotdot-middle", [](Crafted& c) { c.add("a/../../evil.txt", AE_IFREG, "x"); }, "'..'"},
      {"absolute", [](Crafted& c) { c.add("/tmp/amlc-evil-abs.txt", AE_IFREG, "x"); }, "absolute path"},
      {"symlink-out", [](Crafted& c) { c.add("link", AE_IFLNK, "", "../../etc"); }, "pointing outside"},
      {"symlink-abs", [](Crafted& c) { c.add("link", AE_IFLNK, "", "/etc/passwd"); }, "absolute path (/etc/passwd)"},
      {"hardlink-out", [](Crafted& c) { c.add("h", AE_IFREG, "", "../outside.txt", true); }, "'..'"},
      {"device", [](Crafted& c) { c.add("dev", AE_IFCHR); }, "device file"},
      {"fifo", [](Crafted& c) { c.add("pipe", AE_IFIFO); }, "fifo"},
      {"through-symlink",
       [](Crafted& c) {
         c.add("sub", AE_IFDIR);
         c.add("d", AE_IFLNK, "", "sub");
         c.add("d/x.txt", AE_IFREG, "x");
       },
       "through the symlink 'd'"},
  };
  for (auto& b : bad) {
    INFO(b.label);
    fs::path arc = tmp / (std::string(b.label) + ".tar.gz");
    {
      Crafted c(arc);
      b.build(c);
    }
    fs::path dest = tmp / "dest" / b.label / "inner";
    std::string err = extract_error(arc, dest);
    CHECK_MESSAGE(err.find(b.expect) != std::string::npos, err);
    CHECK(err.find("entry '") != std::string::npos);
    CHECK(!fs::exists(tmp / "dest" / b.label / "evil.txt"));
    CHECK(!fs::exists(tmp / "dest" / "evil.txt"));
    CHECK(!fs::exists(tmp / "evil.txt"));
  }
  CHECK(!fs::exists("/tmp/amlc-evil-abs.txt"));
  // A symlink that stays inside is fine.
  fs::path ok = tmp / "ok.tar.gz";
  {
    Crafted c(ok);
    c.add("sub", AE_IFDIR);
    c.add("sub/f.txt", AE_IFREG, "hello");
    c.add("sub/l", AE_IFLNK, "", "../sub/f.txt");
  }
  CHECK(extract_error(ok, tmp / "okdest") == "");
  CHECK(t::read_text(tmp / "okdest/sub/l") == "hello");
}

TEST_CASE("archive: the workspace and the output file inside the source directory are left out") {
  t::TempDir tmp;
  t::write_text(tmp / "src/a.py", "a");
  t::write_text(tmp / "src/.amlc/workspace.json", "{}");
  t::write_text(tmp / "src/wsdir/blobs/x", "x");
  SnapshotOptions o;
  o.exclude_paths = {tmp / "src/wsdir"};
  auto info = create_snapshot(tmp / "src", tmp / "src/out.tar.gz", o);
  auto names = read_entries(tmp / "src/out.tar.gz");
  CHECK(names.size() == 1);
  CHECK(names[0].path == "a.py");
  CHECK(info.excluded == 2);
  // A second run with the output already present still leaves it out and gives the same bytes.
  auto again = create_snapshot(tmp / "src", tmp / "src/out.tar.gz", o);
  CHECK(again.sha256 == info.sha256);
}

TEST_CASE("archive: a symlink that resolves outside only through another symlink is refused") {
  t::TempDir tmp;
  // "b -> ." is inside, "a -> b/.." is lexically inside too, but resolves to the parent of the destination.
  for (bool b_first : {true, false}) {
    INFO(b_first);
    fs::path arc = tmp / (std::string("chain") + (b_first ? "1" : "2") + ".tar.gz");
    {
      Crafted c(arc);
      if (b_first) c.add("b", AE_IFLNK, "", ".");
      c.add("a", AE_IFLNK, "", "b/..");
      if (!b_first) c.add("b", AE_IFLNK, "", ".");
    }
    fs::path dest = tmp / (std::string("d") + (b_first ? "1" : "2")) / "inner";
    std::string err = extract_error(arc, dest);
    CHECK_MESSAGE(err.find("entry 'a' is a symlink pointing outside the target directory (b/..)") != std::string::npos,
                  err);
    if (fs::is_symlink(dest / "a")) CHECK(resolved(dest / "a").rfind(dest.string(), 0) == 0);
  }
  // A hard link to a symlink keeps the link's relative target at another depth: "x/y/s -> ../../f" is inside,
  // a hard link "h" to it would point two levels above the destination.
  fs::path arc = tmp / "hard.tar.gz";
  {
    Crafted c(arc);
    c.add("x", AE_IFDIR);
    c.add("x/y", AE_IFDIR);
    c.add("f", AE_IFREG, "f");
    c.add("x/y/s", AE_IFLNK, "", "../../f");
    c.add("h", AE_IFREG, "", "x/y/s", true);
  }
  fs::path dest = tmp / "hd" / "inner";
  std::string err = extract_error(arc, dest);
  CHECK_MESSAGE(err.find("entry 'h' is a hard link to 'x/y/s', which is not a file extracted before it") !=
                    std::string::npos,
                err);
  if (fs::is_symlink(dest / "h")) CHECK(resolved(dest / "h").rfind(dest.string(), 0) == 0);
  // Hard links to files (also through a later name) are fine.
  fs::path ok = tmp / "hardok.tar.gz";
  {
    Crafted c(ok);
    c.add("f", AE_IFREG, "content");
    c.add("sub/g", AE_IFREG, "", "f", true);
    c.add("up/l", AE_IFLNK, "", "../sub/g");
  }
  CHECK(extract_error(ok, tmp / "okd") == "");
  CHECK(t::read_text(tmp / "okd/sub/g") == "content");
  CHECK(t::read_text(tmp / "okd/up/l") == "content");
  // Snapshots never store such a link: with '..' after a name it is followed (a file) or left out.
  t::write_text(tmp / "src/real.txt", "real");
  fs::create_directories(tmp / "src/dir");
  fs::create_symlink("dir/../real.txt", tmp / "src/odd");
  fs::create_symlink("../real.txt", tmp / "src/dir/fine");
  auto listing = list_source(tmp / "src");
  for (const auto& e : listing.entries) {
    if (e.path == "odd") CHECK(e.type == SourceEntry::Type::File);
    if (e.path == "dir/fine") CHECK(e.type == SourceEntry::Type::Symlink);
  }
  create_snapshot(tmp / "src", tmp / "src.tar.gz");
  CHECK(extract_error(tmp / "src.tar.gz", tmp / "srcout") == "");
  CHECK(!fs::is_symlink(tmp / "srcout/odd"));
  CHECK(t::read_text(tmp / "srcout/odd") == "real");
  CHECK(t::read_text(tmp / "srcout/dir/fine") == "real");
}

TEST_CASE("archive: extraction is bounded in entries and bytes (sparse files count in full)") {
  t::TempDir tmp;
  fs::path many = tmp / "many.tar.gz";
  {
    Crafted c(many);
    for (int i = 0; i < 30; ++i) c.add("f" + std::to_string(i), AE_IFREG, "x");
  }
  ExtractLimits small;
  small.max_entries = 20;
  std::string err = extract_error(many, tmp / "m", small);
  CHECK_MESSAGE(err.find("entry 'f20' is one entry too many (at most 20)") != std::string::npos, err);
  CHECK(extract_error(many, tmp / "m2") == "");

  fs::path big = tmp / "big.tar.gz";
  {
    Crafted c(big);
    c.add("a", AE_IFREG, std::string(600, 'a'));
    c.add("b", AE_IFREG, std::string(600, 'b'));
  }
  ExtractLimits bytes;
  bytes.max_bytes = 1000;
  err = extract_error(big, tmp / "b", bytes);
  CHECK_MESSAGE(err.find("entry 'b' (600 B) takes the content over the limit of 1000 B") != std::string::npos, err);
  CHECK(!fs::exists(tmp / "b/b"));

  // A 1 TB sparse file in a few hundred bytes: refused by the default limits before anything is written.
  fs::path sparse = tmp / "sparse.tar.gz";
  {
    struct archive* a = archive_write_new();
    archive_write_set_format_pax(a);
    archive_write_add_filter_gzip(a);
    REQUIRE(archive_write_open_filename(a, sparse.c_str()) == ARCHIVE_OK);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "hole");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    const la_int64_t size = 1ll << 40;
    archive_entry_set_size(e, size);
    archive_entry_sparse_add_entry(e, size - 1, 1);
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    REQUIRE(archive_write_data(a, "x", 1) == 1);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
  }
  CHECK(fs::file_size(sparse) < 4096);
  err = extract_error(sparse, tmp / "s");
  CHECK_MESSAGE(err.find("entry 'hole' (1.0 TB) takes the content over the limit of 16.0 GB") != std::string::npos, err);
  CHECK(!fs::exists(tmp / "s/hole"));
}

TEST_CASE("archive: only gzip'ed tar files that are regular files are extracted (a fifo does not hang)") {
  t::TempDir tmp;
  fs::path fifo = tmp / "snap.tar.gz";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(exit_code_in_child([&] { extract_snapshot(fifo, tmp / "out"); }) == 1);
  CHECK(extract_error(fifo, tmp / "out2").find("is not a regular file") != std::string::npos);
  // Other compressions are not snapshots (and some would start external programs).
  fs::path xz = tmp / "snap.tar.xz";
  {
    struct archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_xz(a);
    REQUIRE(archive_write_open_filename(a, xz.c_str()) == ARCHIVE_OK);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "f");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 1);
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    archive_write_data(a, "x", 1);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
  }
  std::string err = extract_error(xz, tmp / "x");
  CHECK_MESSAGE(err.find("Unrecognized archive format") != std::string::npos, err);
  CHECK(!fs::exists(tmp / "x/f"));
}

TEST_CASE("archive: a file replaced by a fifo while the snapshot is written is an error, not a hang") {
  t::TempDir tmp;
  t::write_text(tmp / "src/a.txt", "a");
  t::write_text(tmp / "src/b.txt", "b");
  auto listing = list_source(tmp / "src");
  fs::remove(tmp / "src/b.txt");
  REQUIRE(::mkfifo((tmp / "src/b.txt").c_str(), 0600) == 0);
  CHECK(exit_code_in_child([&] { write_snapshot(tmp / "src", listing, tmp / "out.tar.gz"); }) == 1);
  try {
    write_snapshot(tmp / "src", listing, tmp / "out.tar.gz");
    FAIL("expected an error");
  } catch (const amlc::Error& e) {
    CHECK(std::string(e.what()).find("b.txt changed while the snapshot was being written") != std::string::npos);
  }
  CHECK(!fs::exists(tmp / "out.tar.gz"));
}

TEST_CASE("archive: an entry whose full path would not fit in PATH_MAX is refused") {
  t::TempDir tmp;
  // libarchive would otherwise chdir() its way down (the working directory is process-wide) or fail midway.
  std::string deep;
  for (int i = 0; i < 1100; ++i) deep += "abc/";
  fs::path arc = tmp / "deep.tar.gz";
  {
    Crafted c(arc);
    c.add(deep + "f.txt", AE_IFREG, "x");
  }
  fs::path cwd = fs::current_path();
  std::string err = extract_error(arc, tmp / "out");
  CHECK_MESSAGE(err.find("has a path too long for this system") != std::string::npos, err.substr(0, 200));
  CHECK(fs::current_path() == cwd);
  CHECK(fs::is_empty(tmp / "out"));
}
