#include "amlc/registry/stat_cache.hpp"

#include <nlohmann/json.hpp>

#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"
#include "amlc/core/json.hpp"
#include "amlc/core/util.hpp"

namespace amlc {

namespace {
long long ns(const struct timespec& ts) { return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec; }
constexpr size_t kMaxEntries = 200000;
}  // namespace

StatCache::StatCache(std::filesystem::path file) : file_(std::move(file)), entries_(load(file_)), started_(now_unix()) {}

std::map<std::string, StatCache::Entry> StatCache::load(const std::filesystem::path& file) {
  std::map<std::string, Entry> out;
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(file);
  } catch (...) {
    return out;
  }
  if (!text) return out;
  try {
    auto j = parse_json(*text);
    for (const auto& [path, v] : j.at("entries").items()) {
      Entry e;
      e.dev = v.at(0);
      e.ino = v.at(1);
      e.size = v.at(2);
      e.mtime_ns = v.at(3);
      e.ctime_ns = v.at(4);
      e.sha256 = v.at(5);
      if (is_sha256_hex(e.sha256)) out[path] = e;
    }
  } catch (...) {
    out.clear();  // a damaged cache is just an empty one
  }
  return out;
}

std::optional<std::string> StatCache::lookup(const std::string& abs_path, const struct stat& st) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(abs_path);
  if (it == entries_.end()) return std::nullopt;
  const Entry& e = it->second;
  if (e.dev != static_cast<unsigned long long>(st.st_dev) || e.ino != static_cast<unsigned long long>(st.st_ino) ||
      e.size != static_cast<unsigned long long>(st.st_size) || e.mtime_ns != ns(st.st_mtim) || e.ctime_ns != ns(st.st_ctim)) {
    return std::nullopt;
  }
  return e.sha256;
}

void StatCache::remember(const std::string& abs_path, const struct stat& st, const std::string& sha256) {
  // A file changed in the last two seconds could change again within the timestamp granularity.
  double mtime = static_cast<double>(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1e9;
  double ctime = static_cast<double>(st.st_ctim.tv_sec) + st.st_ctim.tv_nsec / 1e9;
  if (mtime > started_ - 2.0 || ctime > started_ - 2.0) return;
  Entry e{static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino),
          static_cast<unsigned long long>(st.st_size), ns(st.st_mtim), ns(st.st_ctim), sha256};
  std::lock_guard lock(mu_);
  added_[abs_path] = e;
}

void StatCache::save() {
  std::lock_guard lock(mu_);
  if (added_.empty()) return;
  auto merged = load(file_);
  for (auto& [k, v] : added_) merged[k] = v;
  while (merged.size() > kMaxEntries) merged.erase(merged.begin());
  nlohmann::json entries = nlohmann::json::object();
  for (const auto& [k, e] : merged) entries[k] = {e.dev, e.ino, e.size, e.mtime_ns, e.ctime_ns, e.sha256};
  std::error_code ec;
  std::filesystem::create_directories(file_.parent_path(), ec);
  write_file_atomic(file_, nlohmann::json{{"version", 1}, {"entries", entries}}.dump());
  added_.clear();
}

}  // namespace amlc
