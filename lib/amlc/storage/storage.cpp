#include "amlc/storage/storage.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"
#include "amlc/core/util.hpp"
#include "amlc/deploy/models.hpp"
#include "amlc/deploy/services.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/registry/registry.hpp"
#include "amlc/runs/executor.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/sweep/store.hpp"

namespace amlc::storage {

namespace {

// Bytes a file or folder takes (its files' sizes; a symlink counts as nothing).
uint64_t size_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0;
  if (!S_ISDIR(st.st_mode)) return S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += static_cast<uint64_t>(st.st_size);
  }
  return total;
}

double age_seconds(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0;
  return now_unix() - static_cast<double>(st.st_mtim.tv_sec);
}

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(it->path());
  return out;
}

std::vector<fs::path> subdirs(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& p : entries(dir)) {
    std::error_code ec;
    if (fs::is_directory(fs::symlink_status(p, ec)) && temp_state(p.filename().string(), 0) == TempState::NotTemp)
      out.push_back(p);
  }
  return out;
}

// The folders amlc writes records and staging files into: the only places a temp name is amlc's own. (A run's
// outputs/, logs/ and working folder, and the extracted caches, hold the user's files with the user's names.)
std::vector<fs::path> record_folders(const Workspace& ws) {
  const fs::path root = ws.root();
  std::vector<fs::path> out{root, ws.tmp_dir(), ws.blobs_dir(), ws.models_dir(), runs::index_dir(ws),
                            sweep::sweeps_dir(ws), root / "services", root / "cache",
                            runs::snapshot_cache_dir(ws, "x").parent_path(), deploy::model_cache_root(ws)};
  for (const auto& p : subdirs(ws.blobs_dir())) out.push_back(p);
  for (const auto& p : subdirs(ws.models_dir())) out.push_back(p);
  for (const auto& p : subdirs(deploy::model_cache_root(ws))) out.push_back(p);
  for (const auto& p : subdirs(sweep::sweeps_dir(ws))) out.push_back(p);
  out.push_back(runs::experiments_dir(ws));
  for (const auto& exp : subdirs(runs::experiments_dir(ws))) {
    out.push_back(exp);
    out.push_back(exp / "runs");
    for (const auto& run : subdirs(exp / "runs")) out.push_back(run);
  }
  return out;
}

void find_temps(const Workspace& ws, std::vector<Leftover>& out) {
  for (const auto& dir : record_folders(ws)) {
    for (const auto& p : entries(dir)) {
      if (temp_state(p.filename().string(), age_seconds(p)) == TempState::Orphaned)
        out.push_back({p, "temp", size_of(p), "left by an interrupted write"});
    }
  }
}

// Blobs and extracted snapshots that no record refers to. Caller holds the exclusive pin to act on them.
void find_unreferenced(const Workspace& ws, const std::set<std::string>& referenced, std::vector<Leftover>& out) {
  for (const auto& shard : subdirs(ws.blobs_dir())) {
    for (const auto& f : entries(shard)) {
      std::string sha = shard.filename().string() + f.filename().string();
      if (is_sha256_hex(sha) && !referenced.count(sha)) out.push_back({f, "blob", size_of(f), sha});
    }
  }
  for (const auto& dir : subdirs(runs::snapshot_cache_dir(ws, "x").parent_path())) {
    std::string sha = dir.filename().string();
    if (is_sha256_hex(sha) && !referenced.count(sha)) out.push_back({dir, "cache", size_of(dir), "snapshot " + sha});
  }
  // A deleted model version's files (hard links: while they exist, the freed blob's space is not given back).
  for (const auto& name_dir : subdirs(deploy::model_cache_root(ws))) {
    std::string name = name_dir.filename().string();
    for (const auto& p : entries(name_dir)) {
      std::string file = p.filename().string();
      if (temp_state(file, 0) != TempState::NotTemp) continue;  // a staging folder: find_temps' business
      std::string stem = file.substr(0, file.find('.'));
      if (stem.empty() || !std::all_of(stem.begin(), stem.end(), ::isdigit) || stem.size() > 9) continue;
      std::error_code ec;
      if (!fs::exists(ws.models_dir() / name / (stem + ".json"), ec))
        out.push_back({p, "cache", size_of(p), "model " + name + ":" + stem});
    }
  }
}

void remove_path(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    // A folder a run made read-only: make it writable and try again.
    for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory()) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::permissions(p, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(p, ec);
    if (ec) fail(ErrorKind::General, "cannot remove " + p.string() + ": " + ec.message());
  }
}

}  // namespace

json Leftover::to_json() const { return {{"path", path.string()}, {"kind", kind}, {"bytes", bytes}, {"what", what}}; }

std::set<std::string> referenced_blobs(const Workspace& ws) {
  std::set<std::string> refs;
  auto add = [&](const std::string& sha) {
    if (!sha.empty()) refs.insert(sha);
  };
  registry::for_each_blob_ref(ws, add);
  runs::for_each_blob_ref(ws, add);
  sweep::for_each_blob_ref(ws, add);
  return refs;
}

Freed free_unreferenced(const Workspace& ws, const std::set<std::string>& candidates) {
  Freed freed;
  if (candidates.empty()) return freed;
  BlobStore store(ws.blobs_dir());
  FileLock pin = store.pin_exclusive();
  const std::set<std::string> refs = referenced_blobs(ws);
  for (const auto& sha : candidates) {
    if (!is_sha256_hex(sha) || refs.count(sha)) continue;
    fs::path p = store.path_of(sha);
    uint64_t size = size_of(p);
    if (::unlink(p.c_str()) == 0) {
      ++freed.blobs;
      freed.bytes += size;
    }
  }
  return freed;
}

std::vector<std::string> model_users(const Workspace& ws, const std::string& name, int version) {
  return deploy::services_using_model(ws, name, version);
}

json delete_model(const Workspace& ws, const std::string& model_id) {
  json out = registry::remove(ws, model_id, [&ws](const std::string& name, int version) {
    std::vector<std::string> users = model_users(ws, name, version);
    if (!users.empty()) {
      conflict("cannot delete model '" + name + ":" + std::to_string(version) + "': it is used by service(s) " +
                   join(users, ", "),
               "delete or update those services first ('amlc service delete -n NAME')");
    }
  });
  std::set<std::string> candidates;
  for (const auto& sha : out["blobs"]) candidates.insert(sha.get<std::string>());
  out.erase("blobs");
  // The version's files hard-linked for deployments go too, or freeing the blobs would give no space back.
  registry::ModelRef ref = registry::parse_model_id(out["id"].get<std::string>());
  remove_path(deploy::model_cache_dir(ws, ref.name, *ref.version));
  std::error_code ec;
  fs::remove(deploy::model_cache_dir(ws, ref.name, *ref.version).string() + ".files-sha256", ec);
  try {
    Freed f = free_unreferenced(ws, candidates);
    out["freedBytes"] = f.bytes;
  } catch (const Error& e) {
    out["freedBytes"] = 0;
    out["warning"] = std::string("the version's contents were kept: ") + e.what() +
                     "; repair the workspace, then run 'amlc workspace gc'";
  }
  return out;
}

std::vector<Leftover> find_leftovers(const Workspace& ws) {
  std::vector<Leftover> out;
  find_temps(ws, out);
  find_unreferenced(ws, referenced_blobs(ws), out);
  for (const auto& a : registry::dangling_aliases(ws)) {
    std::string name = a.substr(0, a.find('@'));
    out.push_back({ws.models_dir() / name / "aliases.json", "alias", 0, a});
  }
  for (const auto& [exp, id] : runs::unindexed_runs(ws)) out.push_back({runs::index_dir(ws) / id, "index", 0, "run " + id});
  return out;
}

json WorkspaceCheck::to_json() const {
  json j = report.to_json();
  json items = json::array();
  uint64_t bytes = 0;
  for (const auto& l : leftovers) {
    items.push_back(l.to_json());
    bytes += l.bytes;
  }
  j["leftovers"] = {{"count", leftovers.size()}, {"bytes", bytes}, {"items", items}};
  return j;
}

WorkspaceCheck check_workspace(const Workspace& ws) {
  WorkspaceCheck out;
  std::vector<std::string>& problems = out.report.problems;
  json& stats = out.report.stats;
  check_workspace_info(ws, problems);
  check_blobs(ws, problems, stats);
  // Records: a consistent view, no writer in between. (Blobs above never change once stored, so hashing them, the
  // long part, holds no lock that would stop registers, runs and deploys.)
  FileLock guard = ws.read_lock();
  registry::check(ws, problems, stats);
  runs::check_runs(ws, problems, stats);
  sweep::check_sweeps(ws, problems, stats);
  deploy::check_services(ws, problems, stats);
  if (out.report.ok()) out.leftovers = find_leftovers(ws);
  return out;
}

json collect_garbage(const Workspace& ws, bool dry_run) {
  std::vector<Leftover> items;
  if (dry_run) {
    items = find_leftovers(ws);
  } else {
    find_temps(ws, items);
    for (const auto& l : items) remove_path(l.path);
    {
      FileLock pin = BlobStore(ws.blobs_dir()).pin_exclusive();
      size_t first = items.size();
      find_unreferenced(ws, referenced_blobs(ws), items);
      for (size_t i = first; i < items.size(); ++i) remove_path(items[i].path);
    }
    for (const auto& [exp, id] : runs::unindexed_runs(ws)) {
      runs::index_run(ws, exp, id);
      items.push_back({runs::index_dir(ws) / id, "index", 0, "run " + id});
    }
    std::vector<std::string> aliases = registry::dangling_aliases(ws);
    if (!aliases.empty()) {
      registry::remove_dangling_aliases(ws);
      for (const auto& a : aliases) {
        std::string name = a.substr(0, a.find('@'));
        items.push_back({ws.models_dir() / name / "aliases.json", "alias", 0, a});
      }
    }
  }
  json list = json::array();
  uint64_t bytes = 0;
  for (const auto& l : items) {
    list.push_back(l.to_json());
    bytes += l.bytes;
  }
  return {{dry_run ? "found" : "removed", list}, {"count", items.size()}, {"bytes", bytes}};
}

}  // namespace amlc::storage
