#include "amlc/workspace/workspace.hpp"

#include <cctype>
#include <cstdlib>

#include "amlc/core/error.hpp"
#include "amlc/core/json.hpp"
#include "amlc/core/util.hpp"

namespace amlc {

namespace {

bool has_workspace(const fs::path& root) {
  std::error_code ec;
  return fs::is_regular_file(root / "workspace.json", ec);
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

std::optional<fs::path> resolve_named(const fs::path& p) {
  if (has_workspace(p)) return p;
  if (has_workspace(p / kWorkspaceDirName)) return p / kWorkspaceDirName;
  return std::nullopt;
}

}  // namespace

std::string record_text(const nlohmann::json& record) { return record.dump(2) + "\n"; }

nlohmann::json read_record(const fs::path& path) {
  std::string text = read_file(path);
  try {
    return parse_json(text, kMaxJsonDepth, "record " + path.string());
  } catch (const JsonTooDeep& e) {
    fail(ErrorKind::Damaged,
         "record " + path.string() + " is damaged (nested deeper than " + std::to_string(kMaxJsonDepth) + " levels)",
         "run 'amlc workspace check' to see all damage", e.what());
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::Damaged, "record " + path.string() + " is damaged (not valid JSON)",
         "run 'amlc workspace check' to see all damage", e.what());
  }
}

fs::path Workspace::user_default_root() {
  fs::path base;
  if (const char* x = env("XDG_DATA_HOME")) base = x;
  else if (const char* h = env("HOME")) base = fs::path(h) / ".local" / "share";
  else fail(ErrorKind::Usage, "cannot find a workspace: HOME is not set", "pass -w PATH or set AMLC_WORKSPACE");
  return base / "amlc" / "workspace";
}

std::optional<WorkspaceLocation> Workspace::locate(const std::optional<fs::path>& explicit_path, const fs::path& cwd) {
  if (explicit_path) {
    fs::path p = fs::absolute(*explicit_path);
    if (auto r = resolve_named(p)) return WorkspaceLocation{*r, "--workspace"};
    return std::nullopt;
  }
  if (const char* e = env("AMLC_WORKSPACE")) {
    fs::path p = fs::absolute(e);
    if (auto r = resolve_named(p)) return WorkspaceLocation{*r, "AMLC_WORKSPACE"};
    return std::nullopt;
  }
  for (fs::path dir = fs::absolute(cwd);; dir = dir.parent_path()) {
    if (has_workspace(dir / kWorkspaceDirName)) return WorkspaceLocation{dir / kWorkspaceDirName, ".amlc in " + dir.string()};
    if (dir == dir.parent_path()) break;
  }
  return WorkspaceLocation{user_default_root(), "user default"};
}

Workspace Workspace::open(const std::optional<fs::path>& explicit_path, const fs::path& cwd) {
  auto loc = locate(explicit_path, cwd);
  if (!loc) {
    std::string given = explicit_path ? explicit_path->string() : std::string(env("AMLC_WORKSPACE"));
    std::string from = explicit_path ? "-w/--workspace" : "AMLC_WORKSPACE";
    not_found("no amlc workspace at " + given + " (from " + from + ")",
              "create one with 'amlc workspace create " + given + "' or fix the path");
  }
  if (loc->how == "user default" && !has_workspace(loc->root)) {
    create_directories_durable(loc->root.parent_path());
    FileLock guard(loc->root.parent_path());
    if (!has_workspace(loc->root)) init_tree(loc->root, "default");
  }
  return load(loc->root, loc->how);
}

Workspace Workspace::load(const fs::path& root, const std::string& how) {
  nlohmann::json info = read_record(root / "workspace.json");
  int version = info.value("formatVersion", 0);
  if (version > kWorkspaceFormatVersion) {
    fail(ErrorKind::General,
         "workspace " + root.string() + " has format version " + std::to_string(version) + ", newer than this amlc (" +
             std::to_string(kWorkspaceFormatVersion) + ")",
         "upgrade amlc");
  }
  return Workspace(root, std::move(info), how);
}

void Workspace::init_tree(const fs::path& root, const std::string& name) {
  // Build the tree in a staging directory next to root, then rename it into place: a crash leaves
  // either no workspace or a complete one.
  fs::path parent = root.parent_path();
  create_directories_durable(parent);
  fs::path staging = temp_sibling(root);
  fs::create_directories(staging);
  try {
    for (const char* sub : {"blobs/sha256", "models", "cache", "experiments", "sweeps", "services", "tmp"}) {
      fs::create_directories(staging / sub);
    }
    nlohmann::json info = {{"formatVersion", kWorkspaceFormatVersion},
                           {"id", uuid4()},
                           {"name", name},
                           {"createdTime", now_iso8601()}};
    write_file_atomic(staging / "workspace.json", record_text(info));
    // The lock files exist from the start: taking a lock never changes the tree (a refused command leaves it as is).
    write_file_atomic(staging / ".lock", "");
    write_file_atomic(staging / "blobs" / "gc.lock", "");
    std::error_code ec;
    if (fs::exists(root, ec)) {
      // An existing empty directory may be replaced; anything else is a conflict.
      if (!fs::is_directory(root) || !fs::is_empty(root)) {
        conflict(root.string() + " exists and is not an empty directory", "choose another path");
      }
      fs::remove(root);
    }
    rename_durable(staging, root);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    throw;
  }
}

Workspace Workspace::create(const fs::path& dir, const std::string& name) {
  fs::path abs = fs::absolute(dir).lexically_normal();
  if (abs.filename().empty()) abs = abs.parent_path();
  fs::path root = abs.filename() == kWorkspaceDirName ? abs : abs / kWorkspaceDirName;
  if (has_workspace(root)) {
    conflict("a workspace already exists at " + root.string(), "use it with -w " + abs.string() + ", or choose another path");
  }
  std::string ws_name = name;
  if (ws_name.empty()) {
    // The folder's name made into a valid workspace name ("my ws" -> "my-ws"); --name is taken as given.
    for (char c : root.parent_path().filename().string()) {
      bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
      if (ws_name.empty() && !std::isalnum(static_cast<unsigned char>(c))) continue;
      ws_name.push_back(ok ? c : '-');
    }
    if (ws_name.size() > 255) ws_name.resize(255);
    if (ws_name.empty()) ws_name = "workspace";
  }
  validate_model_name(ws_name, "workspace name");
  create_directories_durable(root.parent_path());
  FileLock guard(root.parent_path());
  if (has_workspace(root)) conflict("a workspace already exists at " + root.string(), "choose another path");
  // A create killed before its rename left its staging folder here, outside any workspace gc could clean: remove
  // those whose writer is gone (under the lock every create of this folder takes).
  const std::string staging_prefix = root.filename().string() + ".tmp.";
  for (const fs::path& entry : list_dir_strict(root.parent_path())) {
    std::string entry_name = entry.filename().string();
    if (entry_name.rfind(staging_prefix, 0) == 0 && temp_state(entry_name, 0) == TempState::Orphaned) {
      std::error_code ec;
      fs::remove_all(entry, ec);
    }
  }
  init_tree(root, ws_name);
  return load(root, "created");
}

FileLock Workspace::lock() const { return FileLock(root_ / ".lock"); }
FileLock Workspace::read_lock() const {
  return FileLock(root_ / ".lock", FileLock::Mode::Shared, FileLock::Fallback::Reader);
}

}  // namespace amlc
