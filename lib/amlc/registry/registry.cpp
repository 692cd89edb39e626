// The model registry (registry.hpp): versions, tags and properties, aliases, register/show/list/update/download/
// remove, and the registry's part of `workspace check`.
// One file (about 660 lines) on purpose: every function here reads or writes the same three files of a model
// (models/<name>/<version>.json, model.json's lastVersion, aliases.json) through the helpers at its top, under one
// set of lock rules (ARCHITECTURE.md section 4); the blob side is blob_store.*, the freeing rule storage/.
#include "amlc/registry/registry.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"
#include "amlc/core/json.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/registry/stat_cache.hpp"

namespace amlc::registry {

namespace {

fs::path model_dir(const Workspace& ws, const std::string& name) { return ws.models_dir() / name; }
fs::path manifest_path(const Workspace& ws, const std::string& name, int version) {
  return model_dir(ws, name) / (std::to_string(version) + ".json");
}
fs::path aliases_path(const Workspace& ws, const std::string& name) { return model_dir(ws, name) / "aliases.json"; }
// The name's own record: {"name", "lastVersion"}, the highest version ever given. It stays when every version is
// deleted, so that a version number, once given, is never given again (as az ml and MLflow).
fs::path name_record_path(const Workspace& ws, const std::string& name) { return model_dir(ws, name) / "model.json"; }

std::string model_id(const std::string& name, int version) { return name + ":" + std::to_string(version); }

std::vector<int> versions_of(const Workspace& ws, const std::string& name) {
  std::vector<int> out;
  std::error_code ec;
  fs::directory_iterator it(model_dir(ws, name), ec);
  if (ec) return out;
  for (const auto& e : it) {
    std::string fname = e.path().filename().string();
    if (fname.size() < 6 || fname.substr(fname.size() - 5) != ".json") continue;
    std::string stem = fname.substr(0, fname.size() - 5);
    if (stem.empty() || !std::all_of(stem.begin(), stem.end(), ::isdigit)) continue;
    out.push_back(std::stoi(stem));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The highest version number ever given to `name` (0: none). Caller holds the workspace lock.
int last_version(const Workspace& ws, const std::string& name) {
  int last = 0;
  std::vector<int> vs = versions_of(ws, name);
  if (!vs.empty()) last = vs.back();
  if (auto text = read_file_if_exists(name_record_path(ws, name))) {
    try {
      json j = parse_json(*text);
      if (j.contains("lastVersion") && j["lastVersion"].is_number_integer()) last = std::max(last, j["lastVersion"].get<int>());
    } catch (const json::exception&) {
      fail(ErrorKind::Damaged, "model record " + name_record_path(ws, name).string() + " is damaged",
           "run 'amlc workspace check'");
    }
  }
  return last;
}

void save_last_version(const Workspace& ws, const std::string& name, int version) {
  write_file_atomic(name_record_path(ws, name), record_text({{"name", name}, {"lastVersion", version}}));
}

// A record read while other processes may delete it: nullopt if it is gone.
std::optional<json> read_record_if_exists(const fs::path& path) {
  try {
    return read_record(path);
  } catch (const Error&) {
    if (!exists_strict(path)) return std::nullopt;
    throw;
  }
}

std::vector<std::string> model_names(const Workspace& ws) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(ws.models_dir(), ec);
  if (ec) return out;
  for (const auto& e : it)
    if (e.is_directory() && is_model_name(e.path().filename().string())) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

json load_aliases(const Workspace& ws, const std::string& name) {
  auto text = read_file_if_exists(aliases_path(ws, name));
  if (!text) return json::object();
  try {
    return parse_json(*text);
  } catch (const json::exception&) {
    fail(ErrorKind::Damaged, "alias record " + aliases_path(ws, name).string() + " is damaged",
         "run 'amlc workspace check'");
  }
}

// The aliases that point at an existing version: one left pointing at a deleted version (a delete interrupted
// before it removed the alias) is not an alias any more, for every reader.
json live_aliases(const Workspace& ws, const std::string& name) {
  json aliases = load_aliases(ws, name);
  std::vector<int> vs = versions_of(ws, name);
  json live = json::object();
  for (const auto& [alias, v] : aliases.items())
    if (v.is_number_integer() && std::binary_search(vs.begin(), vs.end(), v.get<int>())) live[alias] = v;
  return live;
}

json with_aliases(json record, const json& aliases) {
  json names = json::array();
  for (const auto& [alias, v] : aliases.items())
    if (v.is_number_integer() && v.get<int>() == record.value("version", 0)) names.push_back(alias);
  record["aliases"] = names;
  return record;
}

json load_manifest(const Workspace& ws, const std::string& name, int version) {
  fs::path p = manifest_path(ws, name, version);
  if (!fs::exists(p)) {
    std::vector<int> vs = versions_of(ws, name);
    std::string hint = vs.empty() ? "run 'amlc model list' to see registered models"
                                  : "versions of '" + name + "': " + std::to_string(vs.front()) + ".." + std::to_string(vs.back());
    not_found("model '" + model_id(name, version) + "' not found", hint);
  }
  return read_record(p);
}

void validate_alias(const std::string& alias) {
  if (!is_model_name(alias) || alias == "latest" ||
      std::all_of(alias.begin(), alias.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    usage_error("invalid alias '" + alias + "'",
                "an alias is 1 to 255 letters, digits, '-', '.', '_' (starting with a letter or digit), not a number and not 'latest'");
  }
}

// One file to register.
struct Input {
  std::string rel;   // path inside the model (starts with the registered file or folder's name)
  fs::path abs;
  unsigned mode = 0644;
  struct stat st {};
  std::string sha256;
  uint64_t size = 0;
};

std::vector<Input> collect_inputs(const fs::path& path) {
  std::string type = describe_file_type(path);
  if (type == "missing") not_found("model path " + path.string() + " does not exist", "check the path given with -p/--model-path");
  fs::path abs = fs::absolute(path).lexically_normal();
  if (abs.filename().empty()) abs = abs.parent_path();
  std::string base = abs.filename().string();
  if (base.empty() || base == "." || base == "..") base = "model";
  std::vector<Input> out;
  auto add = [&](const fs::path& file, const std::string& rel) {
    Input in;
    in.abs = file;
    in.rel = rel;
    if (::stat(file.c_str(), &in.st) != 0) sys_fail("cannot read " + file.string());
    if (!S_ISREG(in.st.st_mode)) {
      std::string t = describe_file_type(file);
      if (t == "symlink") t = "link to a " + std::string(S_ISDIR(in.st.st_mode) ? "directory" : "special file");
      usage_error(file.string() + " is a " + t + ", not a regular file", "a model holds regular files only; remove it or register another path");
    }
    if (::access(file.c_str(), R_OK) != 0) sys_fail("cannot read " + file.string());
    in.mode = (in.st.st_mode & 0111) ? 0755 : 0644;
    out.push_back(std::move(in));
  };
  struct stat st {};
  if (::stat(abs.c_str(), &st) != 0) sys_fail("cannot read " + abs.string());
  if (S_ISREG(st.st_mode)) {
    add(abs, base);
  } else if (S_ISDIR(st.st_mode)) {
    // Depth-first with an explicit stack; a folder reached again through a symlink to one of its own parents is
    // a loop, named as such (following it would never end).
    struct Dir {
      fs::path path;
      std::vector<std::pair<dev_t, ino_t>> ancestry;  // this folder and its parents, as followed
    };
    std::vector<Dir> stack{{abs, {{st.st_dev, st.st_ino}}}};
    while (!stack.empty()) {
      Dir dir = std::move(stack.back());
      stack.pop_back();
      std::error_code ec;
      fs::directory_iterator it(dir.path, ec);
      if (ec) fail(ErrorKind::General, "cannot read folder " + dir.path.string() + ": " + ec.message());
      std::vector<fs::path> entries;
      for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) fail(ErrorKind::General, "cannot read folder " + dir.path.string() + ": " + ec.message());
        entries.push_back(it->path());
      }
      for (const auto& entry : entries) {
        struct stat est {};
        if (::stat(entry.c_str(), &est) != 0) {
          if (errno == ELOOP) usage_error(entry.string() + " is a symlink loop", "a model holds regular files only; remove the link");
          if (errno == ENOENT && describe_file_type(entry) == "symlink")
            usage_error(entry.string() + " is a symlink to nothing", "a model holds regular files only; remove the link");
          sys_fail("cannot read " + entry.string());
        }
        if (!S_ISDIR(est.st_mode)) {
          add(entry, base + "/" + entry.lexically_relative(abs).generic_string());
          continue;
        }
        std::pair<dev_t, ino_t> id{est.st_dev, est.st_ino};
        if (std::find(dir.ancestry.begin(), dir.ancestry.end(), id) != dir.ancestry.end()) {
          usage_error(entry.string() + " is a symlink loop: it leads back to a folder that contains it",
                      "remove the link, or register a folder without it");
        }
        Dir child{entry, dir.ancestry};
        child.ancestry.push_back(id);
        stack.push_back(std::move(child));
      }
    }
    if (out.empty()) usage_error("model folder " + abs.string() + " contains no files", "register a folder that holds the model's files");
  } else {
    usage_error("model path " + path.string() + " is a " + type + ", not a file or folder", "pass a regular file or a folder to -p/--model-path");
  }
  std::sort(out.begin(), out.end(), [](const Input& a, const Input& b) { return a.rel < b.rel; });
  return out;
}

// Hashes and stores every input, in parallel (the store is content-addressed, so order does not matter).
uint64_t store_inputs(const Workspace& ws, std::vector<Input>& inputs) {
  BlobStore store(ws.blobs_dir());
  BlobStore::Batch batch;
  StatCache cache(ws.root() / "cache" / "statcache.json");
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> added_bytes{0};
  std::mutex err_mu;
  std::exception_ptr error;
  auto work = [&] {
    for (;;) {
      size_t i = next++;
      if (i >= inputs.size()) return;
      {
        std::lock_guard lock(err_mu);
        if (error) return;
      }
      try {
        throw_if_interrupted();
        Input& in = inputs[i];
        std::string abs = in.abs.string();
        std::string known = cache.lookup(abs, in.st).value_or("");
        StoredBlob b = store.put_file(in.abs, known, batch);
        in.sha256 = b.sha256;
        in.size = b.size;
        if (b.added) added_bytes += b.size;
        if (known.empty()) cache.remember(abs, in.st, b.sha256);
      } catch (...) {
        std::lock_guard lock(err_mu);
        if (!error) error = std::current_exception();
        return;
      }
    }
  };
  unsigned n = std::min<unsigned>(std::max(1u, std::thread::hardware_concurrency()), 4);
  n = static_cast<unsigned>(std::min<size_t>(n, inputs.size()));
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (error) {
    for (auto& [tmp, final_path] : batch.pending) ::unlink(tmp.c_str());
    std::rethrow_exception(error);
  }
  store.commit(batch);
  {
    FileLock guard = ws.lock();
    cache.save();
  }
  return added_bytes;
}

bool match_filter(const json& kvs, const std::vector<std::string>& filters) {
  for (const auto& f : filters) {
    bool had_value = false;
    auto [k, v] = parse_key_value(f, "filter", true, &had_value);
    if (!kvs.contains(k)) return false;
    if (had_value && kvs[k] != v) return false;
  }
  return true;
}

}  // namespace


ModelRef parse_model_id(const std::string& id) {
  ModelRef ref;
  if (auto at = id.find('@'); at != std::string::npos) {
    ref.name = id.substr(0, at);
    ref.alias = id.substr(at + 1);
    validate_model_name(ref.name);
    if (ref.alias.empty()) usage_error("model id '" + id + "' has an empty alias", "write NAME@ALIAS, e.g. churn@prod");
    return ref;
  }
  auto colon = id.rfind(':');
  if (colon == std::string::npos) {
    ref.name = id;
  } else {
    ref.name = id.substr(0, colon);
    std::string v = id.substr(colon + 1);
    if (v != "latest") {
      if (v.empty() || v.size() > 9 || !std::all_of(v.begin(), v.end(), ::isdigit) || std::stoi(v) < 1) {
        usage_error("model id '" + id + "' has an invalid version '" + v + "'",
                    "write NAME:VERSION (a positive number), NAME:latest or NAME@ALIAS");
      }
      ref.version = std::stoi(v);
    }
  }
  validate_model_name(ref.name);
  return ref;
}

json register_model(const Workspace& ws, const RegisterRequest& req) {
  validate_model_name(req.name);
  std::vector<Input> inputs = collect_inputs(req.path);
  // Held until the manifest is written: no blob this model uses can be freed before it refers to them.
  FileLock pin = BlobStore(ws.blobs_dir()).pin();
  uint64_t added = store_inputs(ws, inputs);

  json files = json::array();
  uint64_t total = 0;
  for (const auto& in : inputs) {
    files.push_back({{"path", in.rel}, {"sha256", in.sha256}, {"size", in.size}, {"mode", in.mode == 0755 ? "0755" : "0644"}});
    total += in.size;
  }
  bool is_file = inputs.size() == 1 && inputs[0].rel.find('/') == std::string::npos;
  std::string now = now_iso8601();
  json record = {{"id", ""},
                 {"name", req.name},
                 {"version", 0},
                 {"description", req.description.empty() ? json(nullptr) : json(req.description)},
                 {"createdTime", now},
                 {"updatedTime", now},
                 {"tags", req.tags},
                 {"properties", req.properties},
                 {"framework", req.framework.empty() ? json("Custom") : json(req.framework)},
                 {"frameworkVersion", req.framework_version.empty() ? json(nullptr) : json(req.framework_version)},
                 {"runId", req.run_id.empty() ? json(nullptr) : json(req.run_id)},
                 {"experimentName", req.experiment_name.empty() ? json(nullptr) : json(req.experiment_name)},
                 {"assetPath", req.asset_path.empty() ? json(nullptr) : json(req.asset_path)},
                 {"modelPath", inputs[0].rel.substr(0, inputs[0].rel.find('/'))},
                 {"sourcePath", fs::absolute(req.path).lexically_normal().string()},
                 {"kind", is_file ? "file" : "folder"},
                 {"fileCount", inputs.size()},
                 {"size", total},
                 {"files", files}};
  {
    FileLock guard = ws.lock();
    int version = last_version(ws, req.name) + 1;
    record["version"] = version;
    record["id"] = model_id(req.name, version);
    create_directories_durable(model_dir(ws, req.name));
    // The number is taken first: a crash between the two writes skips a version, never reuses one.
    save_last_version(ws, req.name, version);
    write_file_atomic(manifest_path(ws, req.name, version), record_text(record));
  }
  record["aliases"] = json::array();
  record["storedBytes"] = added;
  return record;
}

json show(const Workspace& ws, const std::string& name, std::optional<int> version) {
  validate_model_name(name);
  if (!version) {
    std::vector<int> vs = versions_of(ws, name);
    if (vs.empty()) not_found("model '" + name + "' not found", "run 'amlc model list' to see registered models");
    version = vs.back();
  }
  return with_aliases(load_manifest(ws, name, *version), load_aliases(ws, name));
}

std::string model_id_from_metadata_file(const std::string& path) {
  const std::string hint = "pass the file written by 'amlc model register -t FILE'";
  std::string text;
  try {
    text = read_input_file(path, kMaxConfigBytes, "model metadata file");
  } catch (const Error& e) {
    fail(e.kind(), e.what(), hint);
  }
  nlohmann::json j;
  try {
    j = parse_json(text);
  } catch (const nlohmann::json::exception&) {
    usage_error("model metadata file " + path + " is not valid JSON", hint);
  }
  if (!j.is_object() || !j.contains("modelId") || !j["modelId"].is_string())
    usage_error("model metadata file " + path + " has no \"modelId\"", hint);
  return j["modelId"];
}

json resolve(const Workspace& ws, const std::string& id) {
  ModelRef ref = parse_model_id(id);
  if (!ref.alias.empty()) {
    json aliases = live_aliases(ws, ref.name);
    if (!aliases.contains(ref.alias)) {
      std::vector<std::string> names;
      for (const auto& [a, v] : aliases.items()) names.push_back(a);
      not_found("model '" + ref.name + "' has no alias '" + ref.alias + "'",
                names.empty() ? "set one with 'amlc model alias set " + ref.name + " " + ref.alias + " VERSION'"
                              : "its aliases: " + join(names, ", "));
    }
    return show(ws, ref.name, aliases[ref.alias].get<int>());
  }
  return show(ws, ref.name, ref.version);
}

std::vector<json> list(const Workspace& ws, const ListFilter& filter) {
  std::vector<json> out;
  std::vector<std::string> names;
  if (!filter.name.empty()) {
    validate_model_name(filter.name);
    names.push_back(filter.name);
  } else {
    names = model_names(ws);
  }
  for (const auto& name : names) {
    std::vector<int> vs = versions_of(ws, name);
    if (vs.empty()) continue;
    json aliases = load_aliases(ws, name);
    for (auto it = vs.rbegin(); it != vs.rend(); ++it) {
      auto stored = read_record_if_exists(manifest_path(ws, name, *it));
      if (!stored) continue;  // deleted while we list
      json rec = with_aliases(std::move(*stored), aliases);
      if (!match_filter(rec.value("tags", json::object()), filter.tags)) continue;
      if (!match_filter(rec.value("properties", json::object()), filter.properties)) continue;
      if (!filter.run_id.empty() && rec.value("runId", json()) != filter.run_id) continue;
      rec.erase("files");
      out.push_back(std::move(rec));
      if (filter.latest) break;
    }
  }
  return out;
}

json update(const Workspace& ws, const std::string& id, const UpdateRequest& req) {
  for (const auto& k : req.remove_tags)
    if (k.empty()) usage_error("--remove-tag needs a tag name");
  FileLock guard = ws.lock();
  json rec = resolve(ws, id);
  std::string name = rec["name"];
  int version = rec["version"];
  json record = read_record(manifest_path(ws, name, version));
  for (const auto& [k, v] : req.add_properties) {
    if (record["properties"].contains(k) && record["properties"][k] != v) {
      conflict("property '" + k + "' of model '" + model_id(name, version) + "' is already '" +
                   record["properties"][k].get<std::string>() + "'; properties cannot be changed",
               "use a tag for values that change (--add-tag)");
    }
  }
  for (const auto& [k, v] : req.add_tags) record["tags"][k] = v;
  for (const auto& k : req.remove_tags) {
    if (!record["tags"].contains(k)) not_found("model '" + model_id(name, version) + "' has no tag '" + k + "'");
    record["tags"].erase(k);
  }
  for (const auto& [k, v] : req.add_properties) record["properties"][k] = v;
  if (req.description) record["description"] = *req.description;
  record["updatedTime"] = now_iso8601();
  write_file_atomic(manifest_path(ws, name, version), record_text(record));
  return with_aliases(record, load_aliases(ws, name));
}

json download(const Workspace& ws, const std::string& id, const fs::path& target_dir, bool overwrite) {
  json rec = resolve(ws, id);
  std::string type = describe_file_type(target_dir);
  if (type != "missing" && type != "directory") usage_error("target " + target_dir.string() + " is a " + type + ", not a folder");
  // Check everything before writing anything.
  std::vector<std::pair<fs::path, const json*>> plan;
  for (const auto& f : rec["files"]) {
    std::string rel = f["path"];
    auto p = lexically_inside(target_dir, rel);
    if (!p || fs::path(rel).is_absolute()) {
      fail(ErrorKind::Damaged, "model '" + rec["id"].get<std::string>() + "' has an unsafe file path '" + rel + "'");
    }
    fs::path target = target_dir / *p;
    if (!overwrite && fs::exists(fs::symlink_status(target))) {
      conflict(target.string() + " already exists", "pass --overwrite to replace it, or choose another --target-dir");
    }
    plan.emplace_back(target, &f);
  }
  BlobStore store(ws.blobs_dir());
  json written = json::array();
  for (const auto& [target, f] : plan) {
    fs::create_directories(target.parent_path());
    if (overwrite && fs::is_directory(fs::symlink_status(target))) {
      conflict(target.string() + " is a folder; it will not be replaced by a file", "remove it first");
    }
    unsigned mode = (*f).value("mode", "0644") == "0755" ? 0755 : 0644;
    store.copy_out((*f)["sha256"], target, mode);
    written.push_back(target.string());
  }
  return {{"id", rec["id"]}, {"targetDir", fs::absolute(target_dir).string()}, {"files", written}};
}

json remove(const Workspace& ws, const std::string& id, const BeforeRemove& before_remove) {
  FileLock guard = ws.lock();
  json rec = resolve(ws, id);
  std::string name = rec["name"];
  int version = rec["version"];
  if (before_remove) before_remove(name, version);
  // The number stays taken (recorded before the version goes: a workspace from before model.json has no record).
  save_last_version(ws, name, last_version(ws, name));
  // One unlink is the delete readers see: aliases left pointing at the version are ignored by every reader
  // (resolve says the version is gone) and are cleaned up next, or by 'workspace gc' after a crash.
  if (::unlink(manifest_path(ws, name, version).c_str()) != 0) sys_fail("cannot delete " + manifest_path(ws, name, version).string());
  fsync_path(model_dir(ws, name));
  json aliases = load_aliases(ws, name);
  json kept = json::object();
  json dropped = json::array();
  for (const auto& [a, v] : aliases.items()) {
    if (v == version) dropped.push_back(a);
    else kept[a] = v;
  }
  if (!dropped.empty()) {
    if (kept.empty()) {
      std::error_code ec;
      fs::remove(aliases_path(ws, name), ec);
    } else {
      write_file_atomic(aliases_path(ws, name), record_text(kept));
    }
  }
  json files = json::array();
  for (const auto& f : rec["files"]) files.push_back(f.value("sha256", ""));
  return {{"id", model_id(name, version)}, {"deleted", true}, {"removedAliases", dropped}, {"blobs", files}};
}

void for_each_blob_ref(const Workspace& ws, const std::function<void(const std::string&)>& fn) {
  // Strict: a folder that cannot be listed or a record that cannot be read throws, never hides a reference. Every
  // folder counts, whatever its name (the naming rule may differ in another amlc version).
  for (const auto& dir : list_dir_strict(ws.models_dir())) {
    if (!is_directory_strict(dir)) continue;
    for (const auto& file : list_dir_strict(dir)) {
      std::string fname = file.filename().string();
      if (fname.size() < 6 || fname.substr(fname.size() - 5) != ".json") continue;
      std::string stem = fname.substr(0, fname.size() - 5);
      if (!std::all_of(stem.begin(), stem.end(), ::isdigit)) continue;
      auto m = read_record_if_exists(file);
      if (!m) continue;
      for (const auto& f : m->value("files", json::array())) fn(f.value("sha256", ""));
    }
  }
}

std::vector<std::string> dangling_aliases(const Workspace& ws) {
  std::vector<std::string> out;
  for (const auto& name : model_names(ws)) {
    std::vector<int> vs = versions_of(ws, name);
    json aliases;
    try {
      aliases = load_aliases(ws, name);
    } catch (const Error&) {
      continue;  // damage: reported by check()
    }
    for (const auto& [alias, v] : aliases.items())
      if (v.is_number_integer() && !std::binary_search(vs.begin(), vs.end(), v.get<int>())) out.push_back(name + "@" + alias);
  }
  return out;
}

void remove_dangling_aliases(const Workspace& ws) {
  FileLock guard = ws.lock();
  for (const auto& name : model_names(ws)) {
    std::vector<int> vs = versions_of(ws, name);
    json aliases = load_aliases(ws, name);
    json kept = json::object();
    for (const auto& [alias, v] : aliases.items())
      if (!v.is_number_integer() || std::binary_search(vs.begin(), vs.end(), v.get<int>())) kept[alias] = v;
    if (kept.size() == aliases.size()) continue;
    if (kept.empty()) fs::remove(aliases_path(ws, name));
    else write_file_atomic(aliases_path(ws, name), record_text(kept));
  }
}

json set_alias(const Workspace& ws, const std::string& name, const std::string& alias, int version) {
  validate_model_name(name);
  validate_alias(alias);
  FileLock guard = ws.lock();
  load_manifest(ws, name, version);  // must exist
  json aliases = live_aliases(ws, name);
  json previous = aliases.contains(alias) ? aliases[alias] : json(nullptr);
  aliases[alias] = version;
  write_file_atomic(aliases_path(ws, name), record_text(aliases));
  return {{"name", name}, {"alias", alias}, {"version", version}, {"previousVersion", previous}, {"id", model_id(name, version)}};
}

json delete_alias(const Workspace& ws, const std::string& name, const std::string& alias) {
  validate_model_name(name);
  FileLock guard = ws.lock();
  json aliases = live_aliases(ws, name);
  if (!aliases.contains(alias)) not_found("model '" + name + "' has no alias '" + alias + "'");
  int version = aliases[alias];
  aliases.erase(alias);
  if (aliases.empty()) fs::remove(aliases_path(ws, name));
  else write_file_atomic(aliases_path(ws, name), record_text(aliases));
  return {{"name", name}, {"alias", alias}, {"version", version}, {"deleted", true}};
}

void check(const Workspace& ws, std::vector<std::string>& problems, json& stats) {
  BlobStore store(ws.blobs_dir());
  uint64_t models = 0;
  for (const auto& name : model_names(ws)) {
    std::vector<int> vs = versions_of(ws, name);
    for (int v : vs) {
      fs::path p = manifest_path(ws, name, v);
      json m;
      try {
        m = parse_json(read_file(p));
      } catch (const std::exception& e) {
        problems.push_back(p.string() + ": not a valid model record (" + std::string(e.what()) + ")");
        continue;
      }
      ++models;
      if (m.value("name", "") != name || m.value("version", 0) != v) {
        problems.push_back(p.string() + ": name/version inside do not match the file's place");
      }
      if (!m.contains("files") || !m["files"].is_array()) {
        problems.push_back(p.string() + ": no file list");
        continue;
      }
      for (const auto& f : m["files"]) {
        std::string sha = f.value("sha256", "");
        if (!is_sha256_hex(sha)) {
          problems.push_back(p.string() + ": file '" + f.value("path", "?") + "' has no valid sha256");
        } else if (!store.contains(sha)) {
          problems.push_back(p.string() + ": content of '" + f.value("path", "?") + "' (sha256 " + sha + ") is missing from the blob store");
        } else {
          std::error_code ec;
          auto size = fs::file_size(store.path_of(sha), ec);
          if (f.value("size", uint64_t{0}) != size) {
            problems.push_back(p.string() + ": size of '" + f.value("path", "?") + "' does not match the stored content");
          }
        }
      }
    }
    try {
      (void)last_version(ws, name);
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
    fs::path ap = aliases_path(ws, name);
    if (fs::exists(ap)) {
      try {
        json a = parse_json(read_file(ap));
        // An alias left pointing at a deleted version is a leftover of an interrupted delete (readers ignore it;
        // 'workspace gc' removes it), not damage.
        for (const auto& [alias, v] : a.items()) {
          if (!v.is_number_integer()) problems.push_back(ap.string() + ": alias '" + alias + "' is not a version number");
        }
      } catch (const std::exception&) {
        problems.push_back(ap.string() + ": not valid JSON");
      }
    }
  }
  stats["models"] = models;
}

}  // namespace amlc::registry
