#include "amlc/assets/assets.hpp"

#include <cstdio>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"

namespace amlc::assets {

const Asset* find(std::string_view path) {
  for (const auto& a : all())
    if (a.path == path) return &a;
  return nullptr;
}

std::string fingerprint() {
  static const std::string fp = [] {
    Sha256 h;
    for (const auto& a : all()) {
      h.update(a.path);
      h.update(std::string_view("\0", 1));
      h.update(std::to_string(a.data.size()));
      h.update(a.data);
    }
    return h.hex_digest().substr(0, 16);
  }();
  return fp;
}

std::filesystem::path materialize(const std::filesystem::path& cache_dir) {
  fs::path target = cache_dir / ("python-" + fingerprint());
  std::error_code ec;
  if (fs::is_directory(target, ec)) return target;
  create_directories_durable(cache_dir);
  fs::path staging = temp_sibling(target);
  try {
    for (const auto& a : all()) {
      fs::path p = staging / a.path;
      fs::create_directories(p.parent_path());
      write_file_atomic(p, a.data);
    }
    if (::rename(staging.c_str(), target.c_str()) != 0) {
      // Another process won the race: theirs is identical.
      fs::remove_all(staging, ec);
    }
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  return target;
}

}  // namespace amlc::assets
