#include "amlc/archive/snapshot.hpp"

#include <archive.h>
#include <archive_entry.h>
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
#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"

namespace amlc::archive {

namespace {

struct ArchiveDeleter {
  void operator()(struct archive* a) const {
    if (a) archive_write_free(a);
  }
};
struct ReadDeleter {
  void operator()(struct archive* a) const {
    if (a) archive_read_free(a);
  }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const {
    if (e) archive_entry_free(e);
  }
};
using WriteArchive = std::unique_ptr<struct archive, ArchiveDeleter>;
using ReadArchive = std::unique_ptr<struct archive, ReadDeleter>;
using Entry = std::unique_ptr<archive_entry, EntryDeleter>;

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

// Does a symlink at directory `link_dir` (relative to the root, real directories only) with `target` resolve
// inside the root, whatever other links in the tree point to? Only a relative target of the form
// "../../name/name" qualifies: leading ".." components that stay inside the root, then names ('.' and empty
// components are ignored). A ".." after a name could step out through another link: with "b -> .",
// "a -> b/.." is lexically inside but resolves to the root's parent. Names that are links are, by this same
// rule, inside; so every link that passes resolves inside.
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
        if (link_stays_inside(parent_of(rel), t)) {
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

void check_archive(struct archive* a, int rc, const std::string& what) {
  if (rc >= ARCHIVE_WARN) return;
  const char* msg = archive_error_string(a);
  fail(ErrorKind::General, what + ": " + (msg ? msg : "libarchive error"));
}

struct WriteState {
  int fd = -1;
  Sha256 sha;
  uint64_t bytes = 0;
  int error = 0;
};

la_ssize_t write_cb(struct archive*, void* data, const void* buf, size_t n) {
  auto* st = static_cast<WriteState*>(data);
  const char* p = static_cast<const char*>(buf);
  size_t left = n;
  while (left > 0) {
    ssize_t w = ::write(st->fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      st->error = errno;
      return -1;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  st->sha.update(buf, n);
  st->bytes += n;
  return static_cast<la_ssize_t>(n);
}

}  // namespace

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

  WriteState state;
  state.fd = out_fd.get();
  WriteArchive a(archive_write_new());
  if (!a) fail(ErrorKind::General, "libarchive: out of memory");
  check_archive(a.get(), archive_write_set_format_pax_restricted(a.get()), "cannot set the archive format");
  check_archive(a.get(), archive_write_add_filter_gzip(a.get()), "cannot set up gzip");
  std::string opts = "gzip:compression-level=" + std::to_string(compression_level) + ",gzip:!timestamp";
  check_archive(a.get(), archive_write_set_options(a.get(), opts.c_str()), "cannot set gzip options");
  archive_write_set_bytes_per_block(a.get(), 1 << 20);
  archive_write_set_bytes_in_last_block(a.get(), 1);
  check_archive(a.get(), archive_write_open(a.get(), &state, nullptr, write_cb, nullptr),
                "cannot start the archive " + output.string());

  std::vector<char> buf(1 << 20);
  Entry entry(archive_entry_new());
  uint64_t files = 0;
  for (const auto& e : listing.entries) {
    archive_entry_clear(entry.get());
    archive_entry_set_pathname(entry.get(), e.path.c_str());
    archive_entry_set_mtime(entry.get(), kSnapshotMtime, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    switch (e.type) {
      case SourceEntry::Type::Dir:
        archive_entry_set_filetype(entry.get(), AE_IFDIR);
        archive_entry_set_perm(entry.get(), 0755);
        archive_entry_set_size(entry.get(), 0);
        break;
      case SourceEntry::Type::Symlink:
        archive_entry_set_filetype(entry.get(), AE_IFLNK);
        archive_entry_set_perm(entry.get(), 0777);
        archive_entry_set_symlink(entry.get(), e.link_target.c_str());
        archive_entry_set_size(entry.get(), 0);
        break;
      case SourceEntry::Type::File:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_perm(entry.get(), e.executable ? 0755 : 0644);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(e.size));
        break;
    }
    if (e.type != SourceEntry::Type::File) {
      check_archive(a.get(), archive_write_header(a.get(), entry.get()), "cannot add " + e.path);
      continue;
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
    check_archive(a.get(), archive_write_header(a.get(), entry.get()), "cannot add " + e.path);
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
      la_ssize_t w = archive_write_data(a.get(), buf.data(), static_cast<size_t>(got));
      if (w < 0) {
        if (state.error) {
          errno = state.error;
          sys_fail("cannot write " + output.string());
        }
        check_archive(a.get(), static_cast<int>(w), "cannot write " + output.string());
      }
      left -= static_cast<uint64_t>(got);
    }
    ++files;
  }
  int rc = archive_write_close(a.get());
  if (rc < ARCHIVE_WARN) {
    if (state.error) {
      errno = state.error;
      sys_fail("cannot write " + output.string());
    }
    check_archive(a.get(), rc, "cannot finish " + output.string());
  }
  a.reset();
  if (::fsync(out_fd.get()) != 0) sys_fail("cannot write " + output.string());
  if (::rename(tmp.c_str(), output.c_str()) != 0) sys_fail("cannot rename " + tmp.string() + " to " + output.string());
  cleanup.armed = false;
  (void)source;
  SnapshotInfo info;
  info.path = output;
  info.sha256 = state.sha.hex_digest();
  info.files = listing.files;
  info.bytes = listing.bytes;
  info.excluded = listing.excluded;
  info.archive_bytes = state.bytes;
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
  std::string out_abs = fs::absolute(output).lexically_normal().string();
  std::string src_abs = fs::absolute(source).lexically_normal().string();
  if (out_abs.size() > src_abs.size() && out_abs.compare(0, src_abs.size(), src_abs) == 0) {
    std::string rel = fs::path(out_abs).lexically_relative(src_abs).generic_string();
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

// ----------------------------------------------------------------------------------------------------------
// Extraction

namespace {

[[noreturn]] void refuse(const fs::path& archive_path, const std::string& entry, const std::string& why) {
  fail(ErrorKind::General, "refusing to extract " + archive_path.string() + ": entry '" + entry + "' " + why,
       "the archive is unsafe or damaged; do not use it");
}

// Checks an archive path: relative, no "..", not empty. Returns it normalised (no "./", no trailing '/').
std::string safe_relative(const fs::path& archive_path, const std::string& name, const char* what) {
  if (name.empty()) refuse(archive_path, name, std::string("has an empty ") + what);
  if (name[0] == '/') refuse(archive_path, name, std::string("has an absolute ") + what);
  std::string norm;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    std::string part = name.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    pos = slash == std::string::npos ? name.size() + 1 : slash + 1;
    if (part == "..") refuse(archive_path, name, std::string("has a '..' component in its ") + what);
    if (part.empty() || part == ".") continue;
    norm += (norm.empty() ? "" : "/") + part;
  }
  if (norm.empty()) refuse(archive_path, name, std::string("has an empty ") + what);
  return norm;
}

// Refuses `rel` if one of its parent directories (as now on disk under `dest`) is a symlink.
void refuse_through_symlink(const fs::path& archive_path, const fs::path& dest, const std::string& name,
                            const std::string& rel) {
  for (size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
    std::string walk = rel.substr(0, slash);
    struct stat st {};
    if (::lstat((dest / walk).c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      refuse(archive_path, name, "would be written through the symlink '" + walk + "'");
    }
  }
}

std::string read_error(struct archive* a) {
  const char* msg = archive_error_string(a);
  return msg ? msg : "unknown error";
}

}  // namespace

ExtractInfo extract_snapshot(const fs::path& archive_path, const fs::path& dest_in, const ExtractLimits& limits) {
  // The archive must be a regular file: opened without blocking (a fifo would hang), then checked.
  Fd fd(::open(archive_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) sys_fail("cannot open archive " + archive_path.string());
  struct stat ast {};
  if (::fstat(fd.get(), &ast) != 0) sys_fail("cannot open archive " + archive_path.string());
  if (!S_ISREG(ast.st_mode)) {
    fail(ErrorKind::General, "cannot open archive " + archive_path.string() + ": it is not a regular file");
  }

  std::error_code ec;
  fs::create_directories(dest_in, ec);
  if (ec) fail(ErrorKind::General, "cannot create " + dest_in.string() + ": " + ec.message());
  // libarchive's SECURE_SYMLINKS check walks the whole path: resolve symlinks in `dest` itself first.
  fs::path dest = fs::canonical(dest_in, ec);
  if (ec) fail(ErrorKind::General, "cannot resolve " + dest_in.string() + ": " + ec.message());
  if (!fs::is_empty(dest, ec)) fail(ErrorKind::Conflict, "cannot extract into " + dest.string() + ": it is not empty");

  ReadArchive in(archive_read_new());
  if (!in) fail(ErrorKind::General, "libarchive: out of memory");
  // Snapshots are gzip'ed tar files. Only gzip (zlib, in process) is enabled: "filter all" would also run external
  // decompressors (lrzip, lzop, grzip...) on a crafted file.
  archive_read_support_filter_gzip(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  if (archive_read_open_fd(in.get(), fd.get(), 1 << 20) != ARCHIVE_OK) {
    fail(ErrorKind::General, "cannot open archive " + archive_path.string() + ": " + read_error(in.get()));
  }
  struct DiskDeleter {
    void operator()(struct archive* a) const {
      if (a) archive_write_free(a);
    }
  };
  std::unique_ptr<struct archive, DiskDeleter> out(archive_write_disk_new());
  if (!out) fail(ErrorKind::General, "libarchive: out of memory");
  // ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS cannot be combined with a target directory without chdir() (which is
  // process-wide); absolute names are refused by our own check below before the destination is prefixed.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_NO_OVERWRITE);

  // What the decompressed stream may hold besides file content: headers (a pax header, a ustar header and long
  // names take a few KB per entry) and the end-of-archive blocks.
  const uint64_t max_stream = limits.max_bytes + 16 * 1024 * limits.max_entries + (16u << 20);
  auto check_stream = [&](const std::string& name) {
    if (static_cast<uint64_t>(archive_filter_bytes(in.get(), 0)) > max_stream) {
      refuse(archive_path, name, "takes the archive over " + human_bytes(max_stream) + " of headers and data");
    }
  };

  ExtractInfo info;
  uint64_t entries = 0;
  archive_entry* entry = nullptr;
  for (;;) {
    int rc = archive_read_next_header(in.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      fail(ErrorKind::General, "cannot read archive " + archive_path.string() + ": " + read_error(in.get()));
    }
    const char* raw_name = archive_entry_pathname(entry);
    std::string name = raw_name ? raw_name : "";
    check_stream(name);
    if (++entries > limits.max_entries) {
      refuse(archive_path, name, "is one entry too many (at most " + std::to_string(limits.max_entries) + ")");
    }
    std::string rel = safe_relative(archive_path, name, "path");
    // Beyond PATH_MAX libarchive chdir()s its way down (the working directory is process-wide), and nothing else
    // could open the file by its path afterwards.
    if (dest.string().size() + 1 + rel.size() >= PATH_MAX) refuse(archive_path, name, "has a path too long for this system");
    mode_t type = archive_entry_filetype(entry);
    const char* hard = archive_entry_hardlink(entry);
    if (hard) {
      std::string target = safe_relative(archive_path, hard, "hard link target");
      // Only to a regular file extracted before, reached without a symlink: a hard link to a symlink would keep
      // the link's relative target at another depth, and could point outside.
      refuse_through_symlink(archive_path, dest, name, target);
      struct stat tst {};
      if (::lstat((dest / target).c_str(), &tst) != 0 || !S_ISREG(tst.st_mode)) {
        refuse(archive_path, name, "is a hard link to '" + target + "', which is not a file extracted before it");
      }
      archive_entry_set_hardlink(entry, (dest / target).c_str());
    } else if (type == AE_IFLNK) {
      const char* t = archive_entry_symlink(entry);
      std::string target = t ? t : "";
      if (target.empty()) refuse(archive_path, name, "is a symlink without a target");
      if (target[0] == '/') refuse(archive_path, name, "is a symlink to an absolute path (" + target + ")");
      if (!link_stays_inside(parent_of(rel), target)) {
        refuse(archive_path, name,
               "is a symlink pointing outside the target directory (" + target +
                   "), or that could through another symlink ('..' after a name)");
      }
    } else if (type == AE_IFCHR || type == AE_IFBLK) {
      refuse(archive_path, name, "is a device file");
    } else if (type == AE_IFIFO) {
      refuse(archive_path, name, "is a fifo");
    } else if (type == AE_IFSOCK) {
      refuse(archive_path, name, "is a socket");
    } else if (type != AE_IFREG && type != AE_IFDIR) {
      refuse(archive_path, name, "has an unsupported file type");
    }
    // Never write through a symlink that an earlier entry created.
    refuse_through_symlink(archive_path, dest, name, rel);
    // Content is counted at its declared size before anything is written: a sparse file's holes count too.
    la_int64_t declared = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
    if (type == AE_IFREG && !hard && declared > 0) {
      if (static_cast<uint64_t>(declared) > limits.max_bytes - std::min(limits.max_bytes, info.bytes)) {
        refuse(archive_path, name,
               "(" + human_bytes(static_cast<uint64_t>(declared)) + ") takes the content over the limit of " +
                   human_bytes(limits.max_bytes));
      }
    }
    archive_entry_set_pathname(entry, (dest / rel).c_str());
    // No setuid/setgid/sticky; directories stay traversable and removable by their owner.
    archive_entry_set_perm(entry, (archive_entry_perm(entry) & 0777) | (type == AE_IFDIR ? 0700 : 0));
    archive_entry_set_uid(entry, 0);
    archive_entry_set_gid(entry, 0);
    rc = archive_write_header(out.get(), entry);
    if (rc < ARCHIVE_WARN) refuse(archive_path, name, "cannot be written: " + read_error(out.get()));
    if (type == AE_IFREG && !hard && declared > 0) {
      const void* block = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      for (;;) {
        rc = archive_read_data_block(in.get(), &block, &size, &offset);
        if (rc == ARCHIVE_EOF) break;
        if (rc < ARCHIVE_WARN) {
          fail(ErrorKind::General,
               "cannot read archive " + archive_path.string() + " at '" + name + "': " + read_error(in.get()));
        }
        check_stream(name);
        if (offset < 0 || static_cast<uint64_t>(offset) + size > static_cast<uint64_t>(declared)) {
          refuse(archive_path, name, "has more content than its declared size");
        }
        if (archive_write_data_block(out.get(), block, size, offset) < ARCHIVE_WARN) {
          fail(ErrorKind::General, "cannot write " + (dest / rel).string() + ": " + read_error(out.get()));
        }
      }
      info.bytes += static_cast<uint64_t>(declared);
    }
    rc = archive_write_finish_entry(out.get());
    if (rc < ARCHIVE_WARN) {
      fail(ErrorKind::General, "cannot write " + (dest / rel).string() + ": " + read_error(out.get()));
    }
    if (type == AE_IFDIR) ++info.dirs;
    else ++info.files;
  }
  if (archive_write_close(out.get()) < ARCHIVE_WARN) {
    fail(ErrorKind::General, "cannot finish extracting into " + dest.string() + ": " + read_error(out.get()));
  }
  return info;
}

}  // namespace amlc::archive
