#include "amlc/workspace/check.hpp"

#include <mutex>
#include <utility>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"
#include "amlc/registry/registry.hpp"

namespace amlc {

namespace {
std::vector<std::pair<const char*, Checker>>& checkers() {
  static std::vector<std::pair<const char*, Checker>> list;
  return list;
}
}  // namespace

void register_checker(const char* name, Checker checker) { checkers().emplace_back(name, checker); }

nlohmann::json CheckReport::to_json() const {
  return {{"ok", ok()}, {"problems", problems}, {"stats", stats}};
}

CheckReport check_workspace(const Workspace& ws) {
  CheckReport report;
  try {
    auto info = read_record(ws.root() / "workspace.json");
    if (!info.contains("formatVersion") || !info.contains("id")) {
      report.problems.push_back((ws.root() / "workspace.json").string() + ": missing formatVersion or id");
    }
  } catch (const std::exception& e) {
    report.problems.push_back(e.what());
  }
  // Blobs: every file's name must be its content's hash.
  uint64_t blob_count = 0, blob_bytes = 0;
  std::error_code ec;
  if (fs::is_directory(ws.blobs_dir(), ec)) {
    for (const auto& shard : fs::directory_iterator(ws.blobs_dir())) {
      if (!shard.is_directory()) continue;
      for (const auto& f : fs::directory_iterator(shard.path())) {
        std::string name = shard.path().filename().string() + f.path().filename().string();
        if (f.path().filename().string().find(".tmp.") != std::string::npos) continue;  // an interrupted write
        if (!is_sha256_hex(name)) {
          report.problems.push_back(f.path().string() + ": unexpected file in the blob store");
          continue;
        }
        std::string actual;
        try {
          actual = sha256_file(f.path());
        } catch (const Error&) {
          if (!exists_strict(f.path())) continue;  // freed meanwhile (blobs are hashed without the workspace lock)
          throw;
        }
        ++blob_count;
        blob_bytes += f.file_size(ec);
        if (actual != name) {
          report.problems.push_back(f.path().string() + ": content does not match its hash (found sha256 " + actual + ")");
        }
      }
    }
  }
  report.stats["blobs"] = blob_count;
  report.stats["blobBytes"] = blob_bytes;
  // Records: a consistent view, no writer in between. (Blobs above never change once stored, so hashing them, the
  // long part, holds no lock that would stop registers, runs and deploys.)
  FileLock guard = ws.read_lock();
  registry::check(ws, report.problems, report.stats);
  for (const auto& [name, fn] : checkers()) fn(ws, report.problems, report.stats);
  return report;
}

}  // namespace amlc
