#include "amlc/deploy/services.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cctype>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/json.hpp"
#include "amlc/core/util.hpp"
#include "amlc/deploy/config.hpp"

namespace amlc::deploy {

fs::path services_dir(const Workspace& ws) { return ws.root() / "services"; }
fs::path service_record_path(const Workspace& ws, const std::string& name) { return services_dir(ws) / (name + ".json"); }
fs::path service_keys_path(const Workspace& ws, const std::string& name) {
  return services_dir(ws) / (name + ".keys.json");
}
std::string container_name(const Workspace& ws, const std::string& service) {
  std::string id = ws.info().value("id", "");
  std::string short_id;
  for (char c : id)
    if (std::isalnum(static_cast<unsigned char>(c)) && short_id.size() < 8) short_id += c;
  return "amlc-" + service + (short_id.empty() ? "" : "-" + short_id);
}

namespace {

// The lock files live in the rebuildable cache, not among the records.
fs::path service_lock_path(const Workspace& ws, const std::string& name) {
  return ws.root() / "cache" / "locks" / ("service-" + name + ".lock");
}

// Whether `lock_file` is held exclusively right now: a try-lock that takes it shared without waiting (and drops it
// at once). A shared probe only fails against an exclusive holder, never against another probe: two readers
// asking at the same moment do not take each other for a writer.
bool held_exclusively(const fs::path& lock_file) {
  Fd fd(::open(lock_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;  // no lock file: nobody ever locked it
  while (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK;
  }
  return false;  // released with the descriptor
}

}  // namespace

std::string service_workspace_id(const Workspace& ws) {
  std::string id = ws.info().value("id", "");
  return id.empty() ? ws.root().string() : id;
}

FileLock service_lock(const Workspace& ws, const std::string& name) {
  fs::path path = service_lock_path(ws, name);
  create_directories_durable(path.parent_path());
  return FileLock(path);
}

bool service_busy(const Workspace& ws, const std::string& name) {
  return held_exclusively(service_lock_path(ws, name));
}

json public_view(json rec) {
  rec.erase("inferenceConfig");
  rec.erase("deploymentConfig");
  return rec;
}

std::vector<std::string> model_ids_of(const json& rec) {
  std::vector<std::string> ids;
  for (const auto& m : rec.value("models", json::array()))
    ids.push_back(m.value("name", "") + ":" + std::to_string(m.value("version", 0)));
  return ids;
}

std::optional<json> read_service(const Workspace& ws, const std::string& name) {
  if (!is_service_name(name)) return std::nullopt;
  fs::path p = service_record_path(ws, name);
  std::error_code ec;
  if (!fs::exists(p, ec)) return std::nullopt;
  return read_record(p);
}

json require_service(const Workspace& ws, const std::string& name) {
  validate_service_name(name);
  auto r = read_service(ws, name);
  if (!r) not_found("no service named '" + name + "' in workspace " + ws.root().string(), "see 'amlc service list'");
  return *r;
}

void write_service(const Workspace& ws, const json& record) {
  create_directories_durable(services_dir(ws));
  write_file_atomic(service_record_path(ws, record.at("name").get<std::string>()), record_text(record));
}

std::vector<json> list_service_records(const Workspace& ws) {
  std::vector<json> out;
  std::error_code ec;
  fs::path dir = services_dir(ws);
  if (!fs::is_directory(dir, ec)) return out;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string f = e.path().filename().string();
    if (f.size() > 5 && f.compare(f.size() - 5, 5, ".json") == 0 && f.find(".keys.json") == std::string::npos) {
      std::string n = f.substr(0, f.size() - 5);
      if (is_service_name(n)) names.push_back(n);
    }
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) out.push_back(read_record(service_record_path(ws, n)));
  return out;
}

void remove_service_files(const Workspace& ws, const std::string& name) {
  std::error_code ec;
  fs::remove(service_keys_path(ws, name), ec);
  fs::remove(service_record_path(ws, name), ec);
  if (ec) fail(ErrorKind::General, "cannot remove the record of service '" + name + "': " + ec.message());
  fsync_path(services_dir(ws));
}

namespace {

// The keys file is bind-mounted (as a file) into the service's container, so it is rewritten in place (the mount
// follows the inode, not the name) under an exclusive flock on the file itself; readers here take the shared one.
// The scoring server does not lock: its workers re-read the file at most every 0.2 s (comparing the content, not
// the mtime) and keep their previous keys if they ever read a half-written one (amlc_scoring/app.py, Keys).
std::optional<std::string> read_locked(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    sys_fail("cannot open " + path.string());
  }
  while (::flock(fd.get(), LOCK_SH) != 0 && errno == EINTR) {
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace

std::optional<ServiceKeys> read_keys(const Workspace& ws, const std::string& name) {
  auto text = read_locked(service_keys_path(ws, name));
  if (!text) return std::nullopt;
  try {
    json j = parse_json(*text);
    return ServiceKeys{j.at("primaryKey").get<std::string>(), j.at("secondaryKey").get<std::string>()};
  } catch (const json::exception& e) {
    fail(ErrorKind::Damaged, "keys file " + service_keys_path(ws, name).string() + " is damaged",
         "regenerate the keys with 'amlc service regen-key -n " + name + " --key Primary' (and Secondary)", e.what());
  }
}

void write_keys(const Workspace& ws, const std::string& name, const ServiceKeys& keys) {
  create_directories_durable(services_dir(ws));
  json j = {{"primaryKey", keys.primary}, {"secondaryKey", keys.secondary}};
  std::string text = j.dump() + "\n";
  fs::path path = service_keys_path(ws, name);
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno != ENOENT) sys_fail("cannot open " + path.string());
    write_file_atomic(path, text, 0600);  // a new service: created whole
    return;
  }
  // In place, so that a running container sees the new keys without a restart.
  while (::flock(fd.get(), LOCK_EX) != 0 && errno == EINTR) {
  }
  overwrite_in_place(fd.get(), text, path);
  if (::fsync(fd.get()) != 0) sys_fail("cannot fsync " + path.string());
}

// 128 bits from getrandom(2), drawn anew for every key: no key is derived from another.
std::string new_key() { return random_hex(16); }

std::vector<std::string> services_using_model(const Workspace& ws, const std::string& name, int version) {
  std::vector<std::string> out;
  auto uses = [&](const json& models) {
    if (!models.is_array()) return false;
    return std::any_of(models.begin(), models.end(), [&](const json& m) {
      return m.is_object() && m.value("name", "") == name && m.value("version", -1) == version;
    });
  };
  for (const auto& r : list_service_records(ws))
    if (uses(r.value("models", json::array())) || uses(r.value("pendingModels", json::array())))
      out.push_back(r.value("name", ""));
  return out;
}

void check_services(const Workspace& ws, std::vector<std::string>& problems, json& stats) {
  std::error_code ec;
  fs::path dir = services_dir(ws);
  int count = 0;
  if (!fs::is_directory(dir, ec)) {
    stats["services"] = 0;
    return;
  }
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string f = e.path().filename().string();
    if (f.find(".tmp") != std::string::npos || f[0] == '.') continue;
    bool keys = f.size() > 10 && f.compare(f.size() - 10, 10, ".keys.json") == 0;
    bool rec = !keys && f.size() > 5 && f.compare(f.size() - 5, 5, ".json") == 0;
    if (!keys && !rec) {
      problems.push_back(e.path().string() + ": unexpected file in services/");
      continue;
    }
    std::string name = f.substr(0, f.size() - (keys ? 10 : 5));
    if (keys) {
      struct stat st {};
      if (::stat(e.path().c_str(), &st) == 0 && (st.st_mode & 077) != 0)
        problems.push_back(e.path().string() + ": keys file is readable by others (mode should be 0600)");
      try {
        json j = parse_json(read_file(e.path()));
        if (!j.contains("primaryKey") || !j.contains("secondaryKey"))
          problems.push_back(e.path().string() + ": keys file lacks primaryKey/secondaryKey");
      } catch (const std::exception&) {
        problems.push_back(e.path().string() + ": keys file is not valid JSON");
      }
      if (!fs::exists(dir / (name + ".json"), ec))
        problems.push_back(e.path().string() + ": keys file without a service record");
      continue;
    }
    ++count;
    json r;
    try {
      r = parse_json(read_file(e.path()));
    } catch (const std::exception&) {
      problems.push_back(e.path().string() + ": service record is not valid JSON");
      continue;
    }
    if (!r.is_object() || r.value("name", "") != name) {
      problems.push_back(e.path().string() + ": service record's name does not match its file name");
      continue;
    }
    for (const char* k : {"state", "port", "models", "imageTag", "createdTime"})
      if (!r.contains(k)) problems.push_back(e.path().string() + ": service record lacks '" + k + "'");
    if (r.value("authEnabled", false) && !fs::exists(service_keys_path(ws, name), ec))
      problems.push_back(e.path().string() + ": auth is enabled but the keys file is missing");
  }
  stats["services"] = count;
}

}  // namespace amlc::deploy
