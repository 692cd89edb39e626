// Content-addressed blob store: <ws>/blobs/sha256/ab/cdef... holds each distinct content once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "amlc/core/fs.hpp"

namespace amlc {

namespace fs = std::filesystem;

struct StoredBlob {
  std::string sha256;
  uint64_t size = 0;
  bool added = false;  // false when the content was already in the store
};

class BlobStore {
 public:
  explicit BlobStore(fs::path dir) : dir_(std::move(dir)) {}

  fs::path path_of(const std::string& sha256) const;
  bool contains(const std::string& sha256) const;

  // The rule that keeps a blob alive between being stored and being referenced: whoever adds a reference to a blob
  // (stores it, or finds it already stored) holds pin() (a shared lock) until the record that refers to it is
  // written; freeing blobs (storage::free_unreferenced, the only place that does) holds pin_exclusive() while it
  // decides what no record refers to and removes it. Lock order: pin() before Workspace::lock(); never
  // pin_exclusive() while holding Workspace::lock().
  FileLock pin() const;
  FileLock pin_exclusive() const;

  // Streams `source` into the store (hashing while copying, one pass), unless `known_sha256` is given
  // and already stored, in which case nothing is read. Durable: temp file + fsync + rename.
  // A source that changes while it is read (size, mtime or ctime differ afterwards, or it is truncated) is
  // refused with a Conflict error and nothing is stored.
  StoredBlob put_file(const fs::path& source, const std::string& known_sha256 = {});

  // Batched variant for many files: contents are written to temp files without a sync each; then
  // commit() makes them all durable with one syncfs() and only then gives them their final names.
  // A blob under its hash is therefore always complete, at the cost of one sync per batch.
  struct Batch {
    std::vector<std::pair<fs::path, fs::path>> pending;  // temp -> final
    std::mutex mu;
  };
  StoredBlob put_file(const fs::path& source, const std::string& known_sha256, Batch& batch);
  void commit(Batch& batch);
  StoredBlob put_bytes(std::string_view data);

  // Copies a blob to `target` (created or replaced atomically), byte-identical, with `mode`.
  void copy_out(const std::string& sha256, const fs::path& target, unsigned mode = 0644) const;

  // Recomputes the hash of a stored blob.
  std::string verify(const std::string& sha256) const;

  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

}  // namespace amlc
