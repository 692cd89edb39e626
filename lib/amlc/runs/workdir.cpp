// A run's working folder: the snapshot extracted into <run>/wd, either directly or hard-linked from the one copy
// extracted into <ws>/cache/snapshots/<sha256>/ (reuse), or a finished run's kept folder relinked to the snapshot
// (adopt, for sweeps); and the bound on what an extraction may write, taken from the run record.
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "amlc/core/error.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/runs/execution_impl.hpp"

namespace amlc::runs {

namespace {

// Hard links (no data copied, no new inodes for files); directories and symlinks are recreated.
void link_copy(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  auto st = fs::symlink_status(from);
  if (fs::is_symlink(st)) {
    fs::copy_symlink(from, to);
    return;
  }
  if (!fs::is_directory(st)) {
    fs::create_hard_link(from, to);
    return;
  }
  fs::create_directory(to);
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator(); ++it) {
    fs::path dst = to / it->path().lexically_relative(from);
    auto est = it->symlink_status();
    if (fs::is_directory(est)) fs::create_directory(dst);
    else if (fs::is_symlink(est)) fs::copy_symlink(it->path(), dst);
    else fs::create_hard_link(it->path(), dst);
  }
}

// Gives the owner write and search permission on every folder under `dir`, so that remove_all can empty it.
void make_removable(const fs::path& dir) {
  std::error_code ec;
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (it->is_directory(e2) && !it->is_symlink(e2)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, e2);
  }
}

// Turns `to`, an earlier run's working folder, back into an exact hard-link copy of the snapshot cache `from`:
// entries that still match (the same inode, the same symlink target, a folder) stay, anything the run added or
// replaced goes, anything it removed comes back. The top-level "outputs" link is the run's own and is left alone.
void relink_tree(const fs::path& from, const fs::path& to, bool top) {
  std::set<std::string> kept;
  for (const auto& e : fs::directory_iterator(to)) {
    std::string name = e.path().filename().string();
    if (top && name == "outputs") continue;
    fs::path src = from / name;
    struct stat a {}, b {};
    bool keep = false;
    if (::lstat(src.c_str(), &a) == 0 && ::lstat(e.path().c_str(), &b) == 0) {
      if (S_ISDIR(a.st_mode) && S_ISDIR(b.st_mode)) {
        relink_tree(src, e.path(), false);
        keep = true;
      } else if (S_ISREG(a.st_mode) && S_ISREG(b.st_mode)) {
        keep = a.st_ino == b.st_ino && a.st_dev == b.st_dev;
      } else if (S_ISLNK(a.st_mode) && S_ISLNK(b.st_mode)) {
        keep = fs::read_symlink(src) == fs::read_symlink(e.path());
      }
    }
    if (keep) kept.insert(name);
    else fs::remove_all(e.path());
  }
  for (const auto& e : fs::directory_iterator(from)) {
    std::string name = e.path().filename().string();
    if ((top && name == "outputs") || kept.count(name)) continue;
    link_copy(e.path(), to / name);
  }
}

// What extracting a run's snapshot may create: the content the run record says the snapshot holds (its "bytes", the
// sum of the sizes the archive declares, recorded when it was made), so a blob swapped in the store cannot fill the
// disk. Entries keep the archive's own bound: the record counts files and symlinks, not directories. A record
// without the figure (or with a damaged one) keeps the archive's defaults.
archive::ExtractLimits snapshot_extract_limits(const json& snapshot) {
  archive::ExtractLimits limits;
  if (!snapshot.is_object()) return limits;
  if (auto it = snapshot.find("bytes"); it != snapshot.end() && it->is_number_unsigned())
    limits.max_bytes = std::min(limits.max_bytes, it->get<uint64_t>());
  return limits;
}

// Fills `wd` with the snapshot. With `reuse`, the snapshot is extracted once into the workspace cache and hard-
// linked from there; `adopt` (a finished run's kept working folder of the same snapshot) is then moved into place
// and brought back to the snapshot's state instead of building a new one: a sweep creates and deletes no folder
// per trial.
void extract_into(const Workspace& ws, const std::string& sha, const archive::ExtractLimits& limits, const fs::path& wd,
                  bool reuse, const fs::path& adopt) {
  BlobStore blobs(ws.blobs_dir());
  fs::path blob = blobs.path_of(sha);
  if (!blobs.contains(sha)) {
    fail(ErrorKind::Damaged, "the run's snapshot " + sha + " is missing from the blob store",
         "run 'amlc workspace check'; resubmit the run");
  }
  std::error_code ec;
  if (!reuse) {
    fs::remove_all(wd, ec);
    archive::extract_snapshot(blob, wd, limits);
    return;
  }
  fs::path cache = snapshot_cache_dir(ws, sha);
  if (!fs::is_directory(cache, ec)) {
    fs::create_directories(cache.parent_path());
    fs::path staging = temp_sibling(cache);
    try {
      archive::extract_snapshot(blob, staging, limits);
    } catch (...) {
      make_removable(staging);  // a refused archive leaves a partial tree, maybe with unwritable folders
      fs::remove_all(staging, ec);
      throw;
    }
    // Read-only files: runs share them through hard links, so an in-place write must fail, not leak.
    for (auto it = fs::recursive_directory_iterator(staging); it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_regular_file() && !it->is_symlink()) {
        fs::permissions(it->path(), fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                        fs::perm_options::remove);
      }
    }
    if (::rename(staging.c_str(), cache.c_str()) != 0) fs::remove_all(staging, ec);  // another process won
  }
  if (!adopt.empty()) {
    fs::remove_all(wd, ec);
    if (::rename(adopt.c_str(), wd.c_str()) == 0) {
      try {
        relink_tree(cache, wd, true);
        return;
      } catch (const std::exception&) {
        // Something the run left cannot be undone in place (e.g. a folder it made read-only): start afresh.
        make_removable(wd);
      }
    } else {
      fs::remove_all(adopt, ec);
    }
  }
  fs::remove_all(wd, ec);
  link_copy(cache, wd);
}

}  // namespace

void make_workdir(const Workspace& ws, const fs::path& dir, const json& snapshot, bool reuse, const fs::path& adopt) {
  fs::path wd = dir / "wd";
  extract_into(ws, snapshot.value("sha256", ""), snapshot_extract_limits(snapshot), wd, reuse, adopt);
  fs::create_directories(dir / "outputs");
  fs::create_directories(dir / "logs");
  std::error_code ec;
  if (!fs::is_symlink(wd / "outputs", ec) || fs::read_symlink(wd / "outputs", ec) != "../outputs") {
    if (fs::exists(fs::symlink_status(wd / "outputs"))) fs::remove_all(wd / "outputs");
    fs::create_symlink("../outputs", wd / "outputs");
  }
}

}  // namespace amlc::runs
