// `workspace check`'s report, and the checks of what the workspace itself owns (storage::check_workspace runs them all).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/workspace/workspace.hpp"

namespace amlc {

struct CheckReport {
  std::vector<std::string> problems;  // each one names the file and what is wrong
  nlohmann::json stats = nlohmann::json::object();
  bool ok() const { return problems.empty(); }
  nlohmann::json to_json() const;
};

// The workspace's own parts of `workspace check` (storage::check_workspace asks every module in turn; this one knows
// no other module's records). workspace.json: readable, with formatVersion and id.
void check_workspace_info(const Workspace& ws, std::vector<std::string>& problems);
// Every blob's file name is its content's hash. Needs no lock (blobs never change once stored; one freed meanwhile
// is skipped). Sets stats "blobs" and "blobBytes".
void check_blobs(const Workspace& ws, std::vector<std::string>& problems, nlohmann::json& stats);

}  // namespace amlc
