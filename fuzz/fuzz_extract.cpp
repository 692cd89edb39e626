// Fuzz target: snapshot extraction (archive::extract_snapshot) of hostile .tar.gz files. Refusing is fine (an
// amlc::Error); what must never happen: a crash, anything written beside the destination, or a device, fifo,
// socket or symlink leading outside it left inside the destination. Such a finding aborts.
//
// The input is a tar stream, gzip'ed here before extraction, so that mutations act on tar headers (libarchive is
// not instrumented: random bytes inside a gzip stream would almost never reach it). An input that already starts
// with the gzip magic (1f 8b) is used as it is. The checksum of each tar header is recomputed before, or nearly
// every mutation of a header would only test libarchive's checksum check.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "amlc/archive/snapshot.hpp"
#include "amlc/core/error.hpp"

namespace fs = std::filesystem;

namespace {

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz_extract: %s\n", what.c_str());
  std::abort();
}

// The scratch folder of this process: <TMPDIR>/amlc-fuzz-extract.XXXXXX/{archive.tar.gz, jail/dest}.
const fs::path& scratch() {
  static const fs::path dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "amlc-fuzz-extract.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) finding("mkdtemp failed");
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch(), ec);
    });
    return fs::path(tmpl);
  }();
  return dir;
}

// Recomputes the checksum of every 512-byte header, walking from header to header by the size fields.
void fix_checksums(std::vector<uint8_t>& tar) {
  size_t at = 0;
  while (at + 512 <= tar.size()) {
    uint8_t* h = tar.data() + at;
    bool zero = true;
    for (size_t i = 0; i < 512 && zero; ++i) zero = h[i] == 0;
    if (zero) {
      at += 512;
      continue;
    }
    unsigned sum = 0;
    for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    std::snprintf(reinterpret_cast<char*>(h) + 148, 8, "%06o", sum & 0777777);
    h[155] = ' ';
    uint64_t size = 0;
    if (!(h[124] & 0x80)) {
      for (size_t i = 124; i < 136 && h[i] >= '0' && h[i] <= '7'; ++i) size = size * 8 + (h[i] - '0');
    }
    if (h[156] >= '1' && h[156] <= '6') size = 0;  // links, devices, directories, fifos: no data follows
    at += 512;
    at += std::min<uint64_t>((size + 511) / 512 * 512, tar.size());
  }
}

std::vector<uint8_t> gzip(const uint8_t* data, size_t size) {
  z_stream z{};
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) finding("deflateInit2 failed");
  std::vector<uint8_t> out(deflateBound(&z, static_cast<uLong>(size)) + 32);
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = static_cast<uInt>(size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) finding("deflate failed");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void make_removable(const fs::path& p) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  }
}

void check_tree(const fs::path& dest) {
  const std::string prefix = dest.string() + "/";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dest, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
      finding("special file extracted: " + it->path().string());
    }
    if (st.st_mode & (S_ISUID | S_ISGID | S_ISVTX)) finding("setuid/setgid/sticky bit: " + it->path().string());
    if (S_ISLNK(st.st_mode)) {
      std::error_code cec;
      fs::path real = fs::weakly_canonical(it->path(), cec);
      if (!cec && real != dest && real.string().rfind(prefix, 0) != 0) {
        finding("symlink leads outside: " + it->path().string() + " -> " + real.string());
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& dir = scratch();
  fs::path archive = dir / "archive.tar.gz";
  fs::path jail = dir / "jail";
  fs::path dest = jail / "dest";
  std::vector<uint8_t> packed;
  if (size < 2 || data[0] != 0x1f || data[1] != 0x8b) {
    std::vector<uint8_t> tar(data, data + size);
    fix_checksums(tar);
    packed = gzip(tar.data(), tar.size());
    data = packed.data();
    size = packed.size();
  }
  {
    int fd = ::open(archive.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) finding("cannot write the input");
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::write(fd, data + done, size - done);
      if (n <= 0) finding("cannot write the input");
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  }
  std::error_code ec;
  fs::create_directories(jail, ec);
  amlc::archive::ExtractLimits limits;
  limits.max_entries = 500;
  limits.max_bytes = 4u << 20;
  try {
    amlc::archive::extract_snapshot(archive, dest, limits);
  } catch (const amlc::Error&) {
  }
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path() != archive && e.path() != jail) finding("written beside the destination: " + e.path().string());
  }
  for (const auto& e : fs::directory_iterator(jail)) {
    if (e.path() != dest) finding("written beside the destination: " + e.path().string());
  }
  if (fs::exists(dest, ec)) {
    check_tree(dest);
    make_removable(dest);
    fs::remove_all(dest, ec);
    if (ec) finding("cannot remove the extracted tree: " + ec.message());
  }
  return 0;
}
