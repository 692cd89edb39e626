// Snapshots of a source folder: the limits, the listing (ignore rules, what is left out and why), the size check, and
// the deterministic .tar.gz written through TarWriter. Extraction is in extract.cpp.
#include "amlc/archive/snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

#include "amlc/archive/ignore.hpp"
#include "amlc/archive/tar_writer.hpp"
#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"

namespace amlc::archive {

namespace {

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (errno || *end || n == 0 || v[0] == '-') {
    usage_error(std::string(name) + "='" + v + "' is not a positive whole number", "e.g. " + std::string(name) + "=5000");
  }
  return n;
}

// The rule of symlink_stays_inside (snapshot.hpp), for a link in folder `link_dir` (relative to the root, real
// directories only). Only a relative target of the form "../../name/name" qualifies: leading ".." components that
// stay inside the root, then names ('.' and empty components are ignored). A ".." after a name could step out
// through another link: with "b -> .", "a -> b/.." is lexically inside but resolves to the root's parent. Names
// that are links are, by this same rule, inside; so every link that passes resolves inside.
bool link_stays_inside(const std::string& link_dir, const std::string& target) {
  if (target.empty() || target[0] == '/') return false;
  size_t depth = 0;
  for (size_t pos = 0; pos <= link_dir.size();) {
    size_t slash = link_dir.find('/', pos);
    size_t end = slash == std::string::npos ? link_dir.size() : slash;
    if (end > pos) ++depth;
    pos = end + 1;
  }
  bool named = false;
  for (size_t pos = 0; pos <= target.size();) {
    size_t slash = target.find('/', pos);
    size_t end = slash == std::string::npos ? target.size() : slash;
    std::string_view part(target.data() + pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (named || depth == 0) return false;
      --depth;
      continue;
    }
    named = true;
  }
  return true;
}

std::string parent_of(const std::string& rel) {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}

struct Walker {
  const fs::path& root;
  const WalkOptions& options;
  SourceListing& out;
  IgnoreStack stack;

  bool excluded_path(const fs::path& p) const {
    for (const auto& x : options.exclude_paths) {
      std::error_code ec;
      if (fs::equivalent(p, x, ec)) return true;
    }
    return false;
  }

  void exclude(const std::string& rel) {
    ++out.excluded;
    out.excluded_paths.push_back(rel);
  }

  void walk(const fs::path& dir, const std::string& rel_dir) {
    std::string which;
    auto rules = load_ignore_file(dir, rel_dir, &which);
    bool pushed = !rules.empty();
    if (pushed) stack.push(rel_dir, std::move(rules));

    std::vector<std::string> names;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) fail(ErrorKind::General, "cannot read directory " + dir.string() + ": " + ec.message());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) fail(ErrorKind::General, "cannot read directory " + dir.string() + ": " + ec.message());
      names.push_back(it->path().filename().string());
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      fs::path abs = dir / name;
      struct stat st {};
      if (::lstat(abs.c_str(), &st) != 0) {
        if (errno == ENOENT) continue;  // vanished while walking
        sys_fail("cannot stat " + abs.string());
      }
      bool is_dir = S_ISDIR(st.st_mode);
      if (name == ".git" || name == ".amlc") {
        exclude(rel);
        continue;
      }
      if (stack.ignored(rel, is_dir)) {
        exclude(rel);
        continue;
      }
      if (!options.exclude_paths.empty() && excluded_path(abs)) {
        exclude(rel);
        continue;
      }
      if (is_dir) {
        SourceEntry e;
        e.path = rel;
        e.type = SourceEntry::Type::Dir;
        e.disk_path = abs;
        out.entries.push_back(std::move(e));
        walk(abs, rel);
      } else if (S_ISREG(st.st_mode)) {
        add_file(rel, abs, st);
      } else if (S_ISLNK(st.st_mode)) {
        std::error_code lec;
        fs::path target = fs::read_symlink(abs, lec);
        if (lec) fail(ErrorKind::General, "cannot read symlink " + abs.string() + ": " + lec.message());
        std::string t = target.string();
        if (symlink_stays_inside(rel, t)) {
          SourceEntry e;
          e.path = rel;
          e.type = SourceEntry::Type::Symlink;
          e.link_target = t;
          e.disk_path = abs;
          out.entries.push_back(std::move(e));
          ++out.files;
          continue;
        }
        struct stat tst {};
        if (::stat(abs.c_str(), &tst) == 0 && S_ISREG(tst.st_mode)) {
          add_file(rel, abs, tst);  // a link out of the tree to a file: store the content
        } else {
          out.warnings.push_back(rel + " -> " + t + ": a symlink out of the source directory (or with '..' after a " +
                                 "name) to something other than a file, left out");
          exclude(rel);
        }
      } else {
        out.warnings.push_back(rel + ": " + describe_file_type(abs) + ", left out");
        exclude(rel);
      }
    }
    if (pushed) stack.pop();
  }

  void add_file(const std::string& rel, const fs::path& abs, const struct stat& st) {
    SourceEntry e;
    e.path = rel;
    e.type = SourceEntry::Type::File;
    e.size = static_cast<uint64_t>(st.st_size);
    e.executable = (st.st_mode & 0111) != 0;
    e.disk_path = abs;
    out.bytes += e.size;
    ++out.files;
    out.entries.push_back(std::move(e));
  }
};

}  // namespace

bool symlink_stays_inside(const std::string& link_path, const std::string& target) {
  return link_stays_inside(parent_of(link_path), target);
}

SnapshotLimits SnapshotLimits::from_env() {
  SnapshotLimits l;
  l.max_files = env_number("AMLC_SNAPSHOT_MAX_FILES", l.max_files);
  l.max_bytes = env_number("AMLC_SNAPSHOT_MAX_MB", l.max_bytes / (1024 * 1024)) * 1024 * 1024;
  return l;
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

SourceListing list_source(const fs::path& root, const WalkOptions& options) {
  std::error_code ec;
  auto st = fs::status(root, ec);
  if (ec || !fs::is_directory(st)) {
    usage_error("source directory " + root.string() + " is " + (ec ? "missing" : describe_file_type(root)) +
                    ", not a directory",
                "pass an existing directory (--source-directory DIR)");
  }
  SourceListing out;
  Walker w{root, options, out, {}};
  w.walk(root, "");
  return out;
}

void check_limits(const fs::path& root, const SourceListing& listing, const SnapshotLimits& limits) {
  bool too_many = listing.files > limits.max_files;
  bool too_big = listing.bytes > limits.max_bytes;
  if (!too_many && !too_big) return;
  struct Agg {
    uint64_t files = 0, bytes = 0;
    bool dir = false;
  };
  std::map<std::string, Agg> top;
  for (const auto& e : listing.entries) {
    auto slash = e.path.find('/');
    std::string first = e.path.substr(0, slash);
    Agg& a = top[first];
    if (slash != std::string::npos || e.type == SourceEntry::Type::Dir) a.dir = true;
    if (e.type != SourceEntry::Type::Dir) {
      ++a.files;
      a.bytes += e.size;
    }
  }
  std::vector<std::pair<std::string, Agg>> v(top.begin(), top.end());
  std::sort(v.begin(), v.end(), [&](const auto& x, const auto& y) {
    if (too_big) return x.second.bytes != y.second.bytes ? x.second.bytes > y.second.bytes : x.first < y.first;
    return x.second.files != y.second.files ? x.second.files > y.second.files : x.first < y.first;
  });
  std::string biggest;
  for (size_t i = 0; i < v.size() && i < 5; ++i) {
    if (i) biggest += ", ";
    biggest += v[i].first + (v[i].second.dir ? "/" : "") + " (" + std::to_string(v[i].second.files) + " file" +
               (v[i].second.files == 1 ? "" : "s") + ", " + human_bytes(v[i].second.bytes) + ")";
  }
  std::string what;
  if (too_many) {
    what = std::to_string(listing.files) + " files (limit " + std::to_string(limits.max_files) + ")";
  }
  if (too_big) {
    if (!what.empty()) what += " and ";
    what += human_bytes(listing.bytes) + " (limit " + human_bytes(limits.max_bytes) + ")";
  }
  usage_error("source directory " + root.string() + " is too large for a snapshot: " + what +
                  "; the largest entries: " + biggest,
              "leave files out with a .amlignore (gitignore syntax), or raise the limit with AMLC_SNAPSHOT_MAX_FILES / "
              "AMLC_SNAPSHOT_MAX_MB (or snapshot.maxFiles / snapshot.maxSizeMB in the run config)");
}

SnapshotInfo write_snapshot(const fs::path& source, const SourceListing& listing, const fs::path& output,
                            int compression_level) {
  if (compression_level < 1 || compression_level > 9) usage_error("gzip level must be 1..9");
  fs::path tmp = temp_sibling(output);
  Fd out_fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (out_fd.get() < 0) sys_fail("cannot create " + tmp.string());
  struct Cleanup {
    fs::path p;
    bool armed = true;
    ~Cleanup() {
      if (armed) {
        std::error_code ec;
        fs::remove(p, ec);
      }
    }
  } cleanup{tmp};

  Sha256 sha;
  uint64_t archive_bytes = 0;
  TarWriter tar(
      [&](std::string_view d) {
        write_all(out_fd.get(), d.data(), d.size(), output);
        sha.update(d.data(), d.size());
        archive_bytes += d.size();
      },
      {.what = output.string(), .mtime = kSnapshotMtime, .gzip_level = compression_level});
  std::vector<char> buf(1 << 20);
  for (const auto& e : listing.entries) {
    switch (e.type) {
      case SourceEntry::Type::Dir:
        tar.add_directory(e.path, 0755);
        continue;
      case SourceEntry::Type::Symlink:
        tar.add_symlink(e.path, e.link_target);
        continue;
      case SourceEntry::Type::File:
        break;
    }
    // O_NONBLOCK and the fstat: a file replaced by a fifo since the listing must not hang the snapshot.
    Fd in(::open(e.disk_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (in.get() < 0) sys_fail("cannot read " + e.disk_path.string());
    struct stat in_st {};
    if (::fstat(in.get(), &in_st) != 0) sys_fail("cannot read " + e.disk_path.string());
    if (!S_ISREG(in_st.st_mode)) {
      fail(ErrorKind::General,
           e.disk_path.string() + " changed while the snapshot was being written: it is no longer a regular file",
           "snapshot again when nothing changes the source directory");
    }
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    tar.begin_file(e.path, e.executable ? 0755 : 0644, e.size);
    uint64_t left = e.size;
    while (left > 0) {
      ssize_t got = ::read(in.get(), buf.data(), std::min<uint64_t>(buf.size(), left));
      if (got < 0) {
        if (errno == EINTR) continue;
        sys_fail("cannot read " + e.disk_path.string());
      }
      if (got == 0) {
        fail(ErrorKind::General, e.disk_path.string() + " shrank while the snapshot was being written",
             "snapshot again when nothing writes to the source directory");
      }
      tar.write(std::string_view(buf.data(), static_cast<size_t>(got)));
      left -= static_cast<uint64_t>(got);
    }
  }
  tar.close();
  if (::fsync(out_fd.get()) != 0) sys_fail("cannot write " + output.string());
  if (::rename(tmp.c_str(), output.c_str()) != 0) sys_fail("cannot rename " + tmp.string() + " to " + output.string());
  cleanup.armed = false;
  (void)source;
  SnapshotInfo info;
  info.path = output;
  info.sha256 = sha.hex_digest();
  info.files = listing.files;
  info.bytes = listing.bytes;
  info.excluded = listing.excluded;
  info.archive_bytes = archive_bytes;
  return info;
}

SnapshotInfo create_snapshot(const fs::path& source, const fs::path& output, const SnapshotOptions& options) {
  WalkOptions wo;
  wo.exclude_paths = options.exclude_paths;
  std::error_code ec;
  if (fs::exists(output, ec)) wo.exclude_paths.push_back(output);
  SourceListing listing = list_source(source, wo);
  check_limits(source, listing, options.limits);
  // An output file inside the source directory must not include itself (nor its temp sibling).
  if (std::optional<fs::path> inside = lexically_inside(source, fs::absolute(output))) {
    const std::string rel = inside->generic_string();
    auto& v = listing.entries;
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](const SourceEntry& e) {
                             if (e.path != rel) return false;
                             --listing.files;
                             listing.bytes -= e.size;
                             ++listing.excluded;
                             return true;
                           }),
            v.end());
  }
  return write_snapshot(source, listing, output, options.compression_level);
}

}  // namespace amlc::archive
