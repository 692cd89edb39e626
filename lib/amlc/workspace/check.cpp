#include "amlc/workspace/check.hpp"

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"

namespace amlc {

nlohmann::json CheckReport::to_json() const {
  return {{"ok", ok()}, {"problems", problems}, {"stats", stats}};
}

void check_workspace_info(const Workspace& ws, std::vector<std::string>& problems) {
  try {
    auto info = read_record(ws.root() / "workspace.json");
    if (!info.contains("formatVersion") || !info.contains("id")) {
      problems.push_back((ws.root() / "workspace.json").string() + ": missing formatVersion or id");
    }
  } catch (const std::exception& e) {
    problems.push_back(e.what());
  }
}

void check_blobs(const Workspace& ws, std::vector<std::string>& problems, nlohmann::json& stats) {
  uint64_t blob_count = 0, blob_bytes = 0;
  std::error_code ec;
  if (fs::is_directory(ws.blobs_dir(), ec)) {
    for (const auto& shard : fs::directory_iterator(ws.blobs_dir())) {
      if (!shard.is_directory()) continue;
      for (const auto& f : fs::directory_iterator(shard.path())) {
        std::string name = shard.path().filename().string() + f.path().filename().string();
        if (f.path().filename().string().find(".tmp.") != std::string::npos) continue;  // an interrupted write
        if (!is_sha256_hex(name)) {
          problems.push_back(f.path().string() + ": unexpected file in the blob store");
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
          problems.push_back(f.path().string() + ": content does not match its hash (found sha256 " + actual + ")");
        }
      }
    }
  }
  stats["blobs"] = blob_count;
  stats["blobBytes"] = blob_bytes;
}

}  // namespace amlc
