// Extraction of snapshots (extract_snapshot, declared in snapshot.hpp): a gzip'ed tar read with libarchive and
// written under the destination with every entry checked first (paths, link targets, file types, sizes and
// counts against ExtractLimits), so that an archive amlc did not write cannot reach outside the destination.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <memory>

#include "amlc/archive/snapshot.hpp"
#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"

namespace amlc::archive {

namespace {

struct ReadDeleter {
  void operator()(struct archive* a) const {
    if (a) archive_read_free(a);
  }
};
using ReadArchive = std::unique_ptr<struct archive, ReadDeleter>;

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
      if (!symlink_stays_inside(rel, target)) {
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
