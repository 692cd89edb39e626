#include "amlc/registry/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"

namespace amlc {

namespace {

constexpr size_t kChunk = 1 << 20;

}  // namespace

fs::path BlobStore::path_of(const std::string& sha256) const { return dir_ / sha256.substr(0, 2) / sha256.substr(2); }

bool BlobStore::contains(const std::string& sha256) const {
  struct stat st {};
  return ::stat(path_of(sha256).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

FileLock BlobStore::pin() const { return FileLock(dir_.parent_path() / "gc.lock", FileLock::Mode::Shared); }
FileLock BlobStore::pin_exclusive() const { return FileLock(dir_.parent_path() / "gc.lock", FileLock::Mode::Exclusive); }

StoredBlob BlobStore::put_file(const fs::path& source, const std::string& known_sha256) {
  Batch batch;
  StoredBlob b = put_file(source, known_sha256, batch);
  commit(batch);
  return b;
}

void BlobStore::commit(Batch& batch) {
  if (batch.pending.empty()) return;
  Fd dfd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) sys_fail("cannot open " + dir_.string());
  if (::syncfs(dfd.get()) != 0) sys_fail("cannot sync " + dir_.string());
  for (auto& [tmp, final_path] : batch.pending) {
    struct stat st {};
    if (::stat(final_path.c_str(), &st) == 0) {  // stored meanwhile by someone else
      ::unlink(tmp.c_str());
      continue;
    }
    std::error_code ec;
    fs::create_directories(final_path.parent_path(), ec);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) sys_fail("cannot store blob " + final_path.string());
  }
  batch.pending.clear();
  ::syncfs(dfd.get());  // the renames
}

StoredBlob BlobStore::put_file(const fs::path& source, const std::string& known_sha256, Batch& batch) {
  if (!known_sha256.empty() && contains(known_sha256)) {
    struct stat st {};
    if (::stat(source.c_str(), &st) != 0) sys_fail("cannot read " + source.string());
    return {known_sha256, static_cast<uint64_t>(st.st_size), false};
  }
  // O_NONBLOCK: a fifo put in the file's place meanwhile must not block the open.
  Fd in(::open(source.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!in.valid()) sys_fail("cannot read " + source.string());
  struct stat before {};
  if (::fstat(in.get(), &before) != 0) sys_fail("cannot read " + source.string());
  if (!S_ISREG(before.st_mode)) usage_error(source.string() + " is not a regular file", "store regular files only");
  ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  fs::path tmp = temp_sibling(dir_ / "blob");
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!out.valid()) sys_fail("cannot create " + tmp.string());
  Sha256 h;
  uint64_t size = 0;
  try {
    // read(2), never mmap: a source truncated while it is read must be an error, not a SIGBUS.
    std::vector<char> buf(kChunk);
    for (;;) {
      ssize_t n = ::read(in.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        sys_fail("cannot read " + source.string());
      }
      if (n == 0) break;
      h.update(buf.data(), static_cast<size_t>(n));
      write_all(out.get(), buf.data(), static_cast<size_t>(n), tmp);
      size += static_cast<uint64_t>(n);
    }
    struct stat after {};
    if (::fstat(in.get(), &after) != 0) sys_fail("cannot read " + source.string());
    auto same_time = [](const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; };
    if (static_cast<uint64_t>(after.st_size) != size || before.st_size != after.st_size ||
        !same_time(before.st_mtim, after.st_mtim) || !same_time(before.st_ctim, after.st_ctim)) {
      conflict(source.string() + " changed while it was being read",
               "register it again once nothing writes to it (or copy it first)");
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  std::string sha = h.hex_digest();
  fs::path final_path = path_of(sha);
  struct stat st {};
  if (::stat(final_path.c_str(), &st) == 0) {
    ::unlink(tmp.c_str());  // already stored (identical content)
    return {sha, size, false};
  }
  {
    std::lock_guard lock(batch.mu);
    for (const auto& [t, f] : batch.pending) {
      if (f == final_path) {  // the same content twice in one batch
        ::unlink(tmp.c_str());
        return {sha, size, false};
      }
    }
    batch.pending.emplace_back(tmp, final_path);
  }
  return {sha, size, true};
}

StoredBlob BlobStore::put_bytes(std::string_view data) {
  std::string sha = sha256_hex(data);
  if (contains(sha)) return {sha, data.size(), false};
  fs::path final_path = path_of(sha);
  std::error_code ec;
  fs::create_directories(final_path.parent_path(), ec);
  write_file_atomic(final_path, data, 0444);
  return {sha, data.size(), true};
}

void BlobStore::copy_out(const std::string& sha256, const fs::path& target, unsigned mode) const {
  fs::path src = path_of(sha256);
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) {
    if (errno == ENOENT) fail(ErrorKind::Damaged, "stored content " + sha256 + " is missing from the workspace", "run 'amlc workspace check'");
    sys_fail("cannot read " + src.string());
  }
  fs::path tmp = temp_sibling(target);
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!out.valid()) sys_fail("cannot create " + tmp.string());
  try {
    struct stat st {};
    ::fstat(in.get(), &st);
    off_t remaining = st.st_size;
    while (remaining > 0) {
      ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<size_t>(remaining), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EXDEV || errno == ENOSYS || errno == EINVAL) {
          std::vector<char> buf(kChunk);
          for (;;) {
            ssize_t r = ::read(in.get(), buf.data(), buf.size());
            if (r < 0) {
              if (errno == EINTR) continue;
              sys_fail("cannot read " + src.string());
            }
            if (r == 0) break;
            write_all(out.get(), buf.data(), static_cast<size_t>(r), tmp);
          }
          break;
        }
        sys_fail("cannot copy to " + tmp.string());
      }
      if (n == 0) break;
      remaining -= n;
    }
    ::fchmod(out.get(), mode);
    if (::fdatasync(out.get()) != 0) sys_fail("cannot sync " + tmp.string());
  } catch (...) {
    out.reset();
    ::unlink(tmp.c_str());
    throw;
  }
  in.reset();
  out.reset();
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    sys_fail("cannot write " + target.string());
  }
}

std::string BlobStore::verify(const std::string& sha256) const { return sha256_file(path_of(sha256)); }

}  // namespace amlc
