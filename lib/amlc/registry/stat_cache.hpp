// Stat cache: remembers the content hash of files by (path, device, inode, size, mtime, ctime), as git's
// index and ccache do, so re-registering unchanged files reads nothing. Rebuildable: losing it only costs
// time. Entries for files modified within the last two seconds are not kept (racy timestamps).
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace amlc {

class StatCache {
 public:
  explicit StatCache(std::filesystem::path file);
  std::optional<std::string> lookup(const std::string& abs_path, const struct stat& st) const;
  void remember(const std::string& abs_path, const struct stat& st, const std::string& sha256);
  // Merges with what is on disk now and writes atomically (call under the workspace lock).
  void save();

 private:
  struct Entry {
    unsigned long long dev = 0, ino = 0, size = 0;
    long long mtime_ns = 0, ctime_ns = 0;
    std::string sha256;
  };
  static std::map<std::string, Entry> load(const std::filesystem::path& file);

  std::filesystem::path file_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, Entry> added_;
  mutable std::mutex mu_;
  double started_;
};

}  // namespace amlc
