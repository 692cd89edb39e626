// Source snapshots: a deterministic .tar.gz of a source directory (ignore rules applied) and safe extraction.
//
//   auto info = archive::create_snapshot("src", "snap.tar.gz", {});   // sha256, files, bytes, excluded
//   archive::extract_snapshot("snap.tar.gz", "/tmp/run/wd");           // refuses anything unsafe
//
// Determinism: entries in sorted order (depth first, names by byte order), pax (restricted) format,
// mtime fixed at kSnapshotMtime, uid/gid 0 and no user/group names, modes 0644/0755 (files: 0755 if any
// execute bit is set; directories 0755; symlinks 0777), gzip without name or timestamp. The same tree gives
// the same bytes, hence the same sha256.
//
// What is left out: paths excluded by .amlignore/.gitignore (see ignore.hpp), any ".git" and ".amlc" entry,
// `exclude_paths` (e.g. the workspace when it lies inside the source directory), sockets, fifos, devices,
// and symlinks that leave the tree (or have '..' after a name in their target, which extraction refuses) and do
// not point at a regular file (those that do are stored as that file's content). An .amlignore/.gitignore that is
// not a regular file is an error (see ignore.hpp).
//
// Code: snapshot.cpp (limits, listing, writing through archive::TarWriter), extract.cpp (extraction).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace amlc::archive {

namespace fs = std::filesystem;

inline constexpr int64_t kSnapshotMtime = 315532800;  // 1980-01-01T00:00:00Z

struct SnapshotLimits {
  uint64_t max_files = 2000;
  uint64_t max_bytes = 300ull * 1024 * 1024;
  // Defaults as az ml (2000 files, 300 MB), overridden by AMLC_SNAPSHOT_MAX_FILES / AMLC_SNAPSHOT_MAX_MB
  // (a bad value is a Usage error naming the variable).
  static SnapshotLimits from_env();
};

struct SourceEntry {
  enum class Type { File, Dir, Symlink };
  std::string path;  // relative to the root, '/'-separated
  Type type = Type::File;
  uint64_t size = 0;        // files only
  bool executable = false;  // files only
  std::string link_target;  // symlinks only
  fs::path disk_path;       // what to read (the link's target for followed symlinks)
};

struct SourceListing {
  std::vector<SourceEntry> entries;  // sorted; directories included
  uint64_t files = 0;                // files and symlinks
  uint64_t bytes = 0;                // sum of file sizes
  uint64_t excluded = 0;             // paths left out (an excluded directory counts once)
  std::vector<std::string> excluded_paths;
  std::vector<std::string> warnings;  // e.g. "data -> /mnt/x: a symlink out of the tree to a directory, skipped"
};

struct WalkOptions {
  std::vector<fs::path> exclude_paths;  // absolute paths never included (the workspace, the output file)
};

// Lists what a snapshot of `root` would hold. Usage error if `root` is not a directory.
SourceListing list_source(const fs::path& root, const WalkOptions& options = {});

// Whether a symlink at `link_path` (relative to the root, '/'-separated) with `target` resolves inside the root,
// whatever other links in the tree point to: a relative target of leading ".." components that stay inside, then
// names. Listing keeps such links as links; extraction refuses every other one.
bool symlink_stays_inside(const std::string& link_path, const std::string& target);

// Throws a Usage error if the listing exceeds the limits, naming the 5 largest top-level entries.
void check_limits(const fs::path& root, const SourceListing& listing, const SnapshotLimits& limits);

struct SnapshotOptions {
  SnapshotLimits limits;
  int compression_level = 1;  // gzip level: 1 is several times faster than tar's default 6 for ~10% more bytes
  std::vector<fs::path> exclude_paths;
};

struct SnapshotInfo {
  fs::path path;
  std::string sha256;
  uint64_t files = 0;
  uint64_t bytes = 0;  // uncompressed content
  uint64_t excluded = 0;
  uint64_t archive_bytes = 0;
};

// Writes the archive to `output` atomically (temp sibling, then rename). Checks the limits first.
SnapshotInfo create_snapshot(const fs::path& source, const fs::path& output, const SnapshotOptions& options = {});
// Archives an already computed listing (no limit check).
SnapshotInfo write_snapshot(const fs::path& source, const SourceListing& listing, const fs::path& output,
                            int compression_level = 1);

struct ExtractInfo {
  uint64_t files = 0;
  uint64_t dirs = 0;
  uint64_t bytes = 0;  // file content at declared sizes
};

// Bounds on what one extraction may create, whatever the archive says. The defaults are far above what a snapshot
// made with the default limits (2000 files, 300 MB) holds, and above what raised limits usually give; a caller that
// knows the snapshot (a run record's files and bytes) can pass tighter ones.
struct ExtractLimits {
  uint64_t max_entries = 200000;          // files, links and directories
  uint64_t max_bytes = 16ull << 30;       // file content, at declared sizes (a sparse file counts in full)
};

// Extracts `archive_path` (a gzip'ed tar; a regular file) into `dest` (created if missing; it must be empty).
// Refused, with the entry named: absolute paths, ".." components, symlinks that point outside `dest` or could
// through another symlink ('..' after a name in the target), hard links to anything but a regular file extracted
// before, writing through a symlink, device files, fifos and sockets, more than `limits` entries or bytes.
// Permissions: the entry's rwx bits under the umask (directories always u+rwx); no setuid/setgid/sticky; no owners;
// mtimes are the extraction time. A refusal is a General error whose message names the entry and the reason;
// `dest` may then hold a partial tree (extract into a staging dir).
ExtractInfo extract_snapshot(const fs::path& archive_path, const fs::path& dest, const ExtractLimits& limits = {});

// "1.2 MB", "300 MB", "512 B".
std::string human_bytes(uint64_t bytes);

}  // namespace amlc::archive
