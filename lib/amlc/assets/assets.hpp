// Python files shipped inside the binary (lib/amlc/assets/python/, embedded at build time).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace amlc::assets {

struct Asset {
  std::string path;        // relative, e.g. "amlc/__init__.py"
  std::string_view data;
};

const std::vector<Asset>& all();
const Asset* find(std::string_view path);

// A hash of all assets (names and contents): identifies this set of helper files.
std::string fingerprint();

// Writes all assets under `dir` (once per fingerprint: <cache>/python-<fingerprint>/) and returns the
// directory to put on PYTHONPATH. Safe under concurrent callers (staged, then renamed into place).
std::filesystem::path materialize(const std::filesystem::path& cache_dir);

}  // namespace amlc::assets
