// The one tar writer (archive/tar_writer.hpp): what it writes, read back with libarchive; determinism with and
// without gzip; a failing sink; ownership of the libarchive handle.
#include <archive.h>
#include <archive_entry.h>

#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

#include "amlc/archive/tar_writer.hpp"
#include "amlc/core/error.hpp"

using amlc::archive::TarWriter;

namespace {

struct Read {
  std::string path;
  unsigned type = 0;
  unsigned perm = 0;
  long long mtime = 0;
  long long uid = -1, gid = -1;
  bool named_owner = false;
  std::string link;
  std::string data;
};

std::vector<Read> read_all(const std::string& bytes) {
  std::vector<Read> out;
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  REQUIRE(archive_read_open_memory(a, bytes.data(), bytes.size()) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Read r;
    r.path = archive_entry_pathname(e);
    r.type = archive_entry_filetype(e);
    r.perm = archive_entry_perm(e);
    r.mtime = archive_entry_mtime(e);
    r.uid = archive_entry_uid(e);
    r.gid = archive_entry_gid(e);
    const char* un = archive_entry_uname(e);
    const char* gn = archive_entry_gname(e);
    r.named_owner = (un && *un) || (gn && *gn);
    if (const char* l = archive_entry_symlink(e)) r.link = l;
    char buf[4096];
    for (la_ssize_t n; (n = archive_read_data(a, buf, sizeof buf)) > 0;) r.data.append(buf, static_cast<size_t>(n));
    out.push_back(std::move(r));
  }
  archive_read_free(a);
  return out;
}

std::string sample(int gzip_level, int64_t mtime) {
  std::string out;
  TarWriter w([&](std::string_view d) { out.append(d); }, {.what = "the sample", .mtime = mtime, .gzip_level = gzip_level});
  w.add_directory("app", 0755);
  w.add_file("app/score.py", 0644, "def run(d): return d\n");
  w.add_file("app/empty", 0600, "");
  w.add_symlink("app/link.py", "score.py");
  w.begin_file("app/run.sh", 0755, 10);
  w.write("#!/bin/");
  w.write("sh\n");
  w.close();
  return out;
}

}  // namespace

TEST_CASE("tar writer: entries in order with the mode given, owner 0:0 without names, one mtime, content whole") {
  std::vector<Read> got = read_all(sample(0, 315532800));
  REQUIRE(got.size() == 5);
  CHECK(got[0].path == "app/");
  CHECK(got[0].type == AE_IFDIR);
  CHECK(got[0].perm == 0755);
  CHECK(got[1].path == "app/score.py");
  CHECK(got[1].data == "def run(d): return d\n");
  CHECK(got[1].perm == 0644);
  CHECK(got[2].path == "app/empty");
  CHECK(got[2].perm == 0600);
  CHECK(got[2].data.empty());
  CHECK(got[3].type == AE_IFLNK);
  CHECK(got[3].link == "score.py");
  CHECK(got[4].path == "app/run.sh");
  CHECK(got[4].perm == 0755);
  CHECK(got[4].data == "#!/bin/sh\n");
  for (const auto& r : got) {
    CHECK(r.mtime == 315532800);
    CHECK(r.uid == 0);
    CHECK(r.gid == 0);
    CHECK_FALSE(r.named_owner);
  }
}

TEST_CASE("tar writer: the same entries give the same bytes, gzip'ed or not - no padding after the end blocks") {
  std::string plain = sample(0, 0);
  CHECK(plain == sample(0, 0));
  CHECK(plain.size() % 512 == 0);
  CHECK(plain.size() < 10240);  // a 10 KiB block would pad it
  std::string gz = sample(1, 0);
  CHECK(gz == sample(1, 0));
  CHECK(gz.substr(0, 2) == "\x1f\x8b");
  CHECK(gz[4] == 0);  // no timestamp in the gzip header
  CHECK(read_all(gz).size() == 5);
  CHECK(sample(9, 0) != gz);
  CHECK_THROWS_AS(sample(10, 0), amlc::Error);
}

TEST_CASE("tar writer: a sink's exception comes out of the call that wrote, and a writer is moved, never copied") {
  static_assert(!std::is_copy_constructible_v<TarWriter> && !std::is_copy_assignable_v<TarWriter>);
  static_assert(std::is_nothrow_move_constructible_v<TarWriter>);
  size_t written = 0;
  TarWriter w([&](std::string_view d) {
    if (written + d.size() > 2048) throw std::runtime_error("disk full");
    written += d.size();
  }, {});
  TarWriter moved = std::move(w);
  CHECK_THROWS_WITH_AS(
      {
        for (int i = 0; i < 100; ++i) moved.add_file("f" + std::to_string(i), 0644, std::string(1000, 'x'));
        moved.close();
      },
      "disk full", std::runtime_error);

  std::string out;
  TarWriter a([&](std::string_view d) { out.append(d); }, {});
  a.add_file("one", 0644, "1");
  TarWriter b = std::move(a);
  b.add_file("two", 0644, "2");
  b.close();
  std::vector<Read> got = read_all(out);
  REQUIRE(got.size() == 2);
  CHECK(got[1].path == "two");
  CHECK(got[1].data == "2");
}
