// SHA-256 (OpenSSL libcrypto: hardware SHA extensions where the CPU has them).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace amlc {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex_digest();  // finalizes

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
// Streams the file in chunks; never reads it whole into memory.
std::string sha256_file(const std::filesystem::path& path);
bool is_sha256_hex(std::string_view s);

}  // namespace amlc
