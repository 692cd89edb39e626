// The workspace: one directory tree holding every record amlc keeps.
//
//   <root>/workspace.json              {"formatVersion", "id", "name", "createdTime"}
//   <root>/.lock                       flock target for every read-modify-write of shared records (lock());
//                                      the other locks (run folder, sweep, blobs/gc.lock, services) and their order
//                                      are listed in ARCHITECTURE.md section 4
//   <root>/blobs/sha256/ab/cdef...     file contents, stored once
//   <root>/models/<name>/<version>.json, <root>/models/<name>/aliases.json
//   <root>/cache/                      stat cache (path -> hash), rebuildable
//   <root>/experiments/<exp>/runs/<id>/  (runs), <root>/sweeps/<id>/ (sweeps), <root>/services/ (services)
//   <root>/tmp/                        staging for atomic multi-file writes
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "amlc/core/fs.hpp"

namespace amlc {

inline constexpr int kWorkspaceFormatVersion = 1;
inline constexpr const char* kWorkspaceDirName = ".amlc";

struct WorkspaceLocation {
  fs::path root;
  std::string how;  // "--workspace", "AMLC_WORKSPACE", ".amlc in <dir>", "user default"
};

class Workspace {
 public:
  // Resolution order: explicit (-w), AMLC_WORKSPACE, the nearest .amlc/ upward from `cwd`,
  // the per-user default ($XDG_DATA_HOME/amlc/workspace, created on first use).
  // An explicit or AMLC_WORKSPACE path may name the workspace root or a folder holding .amlc/.
  static Workspace open(const std::optional<fs::path>& explicit_path, const fs::path& cwd = fs::current_path());
  static std::optional<WorkspaceLocation> locate(const std::optional<fs::path>& explicit_path, const fs::path& cwd);
  static fs::path user_default_root();

  // Creates a workspace in `dir`/.amlc (or at `dir` itself when `dir` is the user default root).
  // Conflict if one exists there already.
  static Workspace create(const fs::path& root, const std::string& name);

  const fs::path& root() const { return root_; }
  const nlohmann::json& info() const { return info_; }
  std::string name() const { return info_.value("name", ""); }
  const std::string& how_found() const { return how_; }

  fs::path path(const std::string& rel) const { return root_ / rel; }
  fs::path blobs_dir() const { return root_ / "blobs" / "sha256"; }
  fs::path models_dir() const { return root_ / "models"; }
  fs::path tmp_dir() const { return root_ / "tmp"; }

  // The workspace-wide exclusive lock: hold it for every read-modify-write of records.
  FileLock lock() const;
  // The shared side, for a reader that needs a view no writer changes meanwhile (works on a read-only workspace).
  FileLock read_lock() const;

 private:
  Workspace(fs::path root, nlohmann::json info, std::string how)
      : root_(std::move(root)), info_(std::move(info)), how_(std::move(how)) {}
  static Workspace load(const fs::path& root, const std::string& how);
  static void init_tree(const fs::path& root, const std::string& name);

  fs::path root_;
  nlohmann::json info_;
  std::string how_;
};

// Serialises a record as the workspace stores it (pretty JSON, trailing newline).
std::string record_text(const nlohmann::json& record);
// Reads a JSON record; a parse failure is reported as workspace damage naming the file.
nlohmann::json read_record(const fs::path& path);

}  // namespace amlc
