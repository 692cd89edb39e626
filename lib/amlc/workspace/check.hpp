// `workspace check`: verifies every record and every stored file against its hash.
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

// A module (runs, sweeps, services) adds its own verification with register_checker.
using Checker = void (*)(const Workspace& ws, std::vector<std::string>& problems, nlohmann::json& stats);
void register_checker(const char* name, Checker checker);

// Hashes every blob (without a lock: blobs never change), then checks every record under Workspace::read_lock().
CheckReport check_workspace(const Workspace& ws);

}  // namespace amlc
