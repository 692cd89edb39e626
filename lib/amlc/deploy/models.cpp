#include "amlc/deploy/models.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <set>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"
#include "amlc/core/util.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/registry/registry.hpp"

namespace amlc::deploy {

fs::path model_cache_root(const Workspace& ws) { return ws.root() / "cache" / "models"; }

fs::path model_cache_dir(const Workspace& ws, const std::string& name, int version) {
  return model_cache_root(ws) / name / std::to_string(version);
}

fs::path materialize_model(const Workspace& ws, const nlohmann::json& record) {
  std::string name;
  int version = 0;
  try {
    name = record.at("name").get<std::string>();
    version = record.at("version").get<int>();
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::Damaged, "model record lacks name/version", "run 'amlc workspace check'", e.what());
  }
  fs::path target = model_cache_dir(ws, name, version);
  // A sibling marker names the exact file list: a version number reused after a delete is not served stale.
  const std::string digest = sha256_hex(record.value("files", nlohmann::json::array()).dump());
  const fs::path marker = target.parent_path() / (std::to_string(version) + ".files-sha256");
  std::error_code ec;
  if (fs::is_directory(target, ec)) {
    if (trim(read_file_if_exists(marker).value_or("")) == digest) return target;
    fs::path old = temp_sibling(target);
    if (::rename(target.c_str(), old.c_str()) == 0) fs::remove_all(old, ec);
  }
  create_directories_durable(target.parent_path());
  write_file_atomic(marker, digest + "\n");
  fs::path staging = temp_sibling(target);
  BlobStore blobs(ws.blobs_dir());
  try {
    fs::create_directories(staging);
    for (const auto& f : record.value("files", nlohmann::json::array())) {
      std::string rel = f.at("path").get<std::string>();
      std::optional<fs::path> inside = fs::path(rel).is_absolute() ? std::nullopt : lexically_inside(staging, rel);
      if (!inside)
        fail(ErrorKind::Damaged, "model " + name + ":" + std::to_string(version) + " has an unsafe file path '" + rel + "'");
      const fs::path& rp = *inside;
      std::string sha = f.at("sha256").get<std::string>();
      unsigned mode = 0644;
      if (auto it = f.find("mode"); it != f.end()) {
        if (it->is_string()) mode = static_cast<unsigned>(std::stoul(it->get<std::string>(), nullptr, 8));
        else if (it->is_number_unsigned()) mode = it->get<unsigned>();
      }
      fs::path dst = staging / rp;
      fs::create_directories(dst.parent_path());
      fs::path src = blobs.path_of(sha);
      if (!fs::exists(src, ec))
        fail(ErrorKind::Damaged, "model " + name + ":" + std::to_string(version) + ": stored file for '" + rel + "' is missing",
             "run 'amlc workspace check'");
      // A hard link shares the blob (read-only mount: the container cannot change it). Modes differ? copy.
      if (::link(src.c_str(), dst.c_str()) != 0) blobs.copy_out(sha, dst, (mode & 0111) ? 0755 : 0644);
    }
    fsync_path(staging);
    if (::rename(staging.c_str(), target.c_str()) != 0) {
      int err = errno;
      fs::remove_all(staging, ec);
      if (!(err == ENOTEMPTY || err == EEXIST) || !fs::is_directory(target, ec))
        sys_fail("cannot move the model cache into place at " + target.string());
    } else {
      fsync_path(target.parent_path());
    }
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  return target;
}

std::vector<nlohmann::json> resolve_model_records(const Workspace& ws, const std::vector<std::string>& model_ids) {
  std::vector<nlohmann::json> out;
  std::set<std::string> names;
  for (const auto& id : model_ids) {
    nlohmann::json rec = registry::resolve(ws, id);
    std::string name = rec.at("name").get<std::string>();
    if (!names.insert(name).second)
      usage_error("model '" + name + "' is given more than once", "deploy one version of each model");
    out.push_back(std::move(rec));
  }
  return out;
}

std::vector<ResolvedModel> materialize_models(const Workspace& ws, const std::vector<nlohmann::json>& records) {
  std::vector<ResolvedModel> out;
  for (const auto& rec : records) {
    ResolvedModel m;
    m.name = rec.at("name").get<std::string>();
    m.version = rec.at("version").get<int>();
    m.dir = materialize_model(ws, rec);
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<ResolvedModel> resolve_models(const Workspace& ws, const std::vector<std::string>& model_ids) {
  return materialize_models(ws, resolve_model_records(ws, model_ids));
}

}  // namespace amlc::deploy
