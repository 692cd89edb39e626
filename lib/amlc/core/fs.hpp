// Files: durable atomic writes, whole-file reads, advisory locks, temp directories.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace amlc {

namespace fs = std::filesystem;

// Reads a whole (small) file. Throws NotFound if missing, General on other errors.
std::string read_file(const fs::path& path);
std::optional<std::string> read_file_if_exists(const fs::path& path);

// Writes `content` to a temp file next to `path`, fsyncs it, renames it over `path` and fsyncs the
// directory: after a crash the file holds either the old or the new content, never a mix.
void write_file_atomic(const fs::path& path, std::string_view content, unsigned mode = 0644);

// Appends one line (a '\n' is added) with a single write() and fsyncs: for append-only journals.
void append_line_durable(const fs::path& path, std::string_view line);

void fsync_path(const fs::path& path);  // file or directory

// An owned file descriptor, closed on destruction and on reset(); -1 is none. Movable (the source is left with
// none), not copyable: one owner closes it, also when an exception leaves its scope.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int release() noexcept {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  // Closes the descriptor held (if any) and holds `fd` instead (-1: none). errno is kept across the close, so
  // that an error path can reset() before reporting the errno of the call that failed.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// write(2) until all of `data` is written (EINTR retried); `path` names the file in errors.
void write_all(int fd, const char* data, size_t size, const fs::path& path);
// Replaces the content of the open file `fd` by `text` in place (pwrite at offset 0; the inode stays), padding with
// blanks before a final newline when the old content was longer, so that a JSON (or YAML) document stays valid
// without a truncate. Locking and fsync are the caller's. Errors name `path`.
void overwrite_in_place(int fd, std::string text, const fs::path& path);
void create_directories_durable(const fs::path& dir);

// Renames a directory tree atomically into place (rename(2)), fsyncing the parent.
void rename_durable(const fs::path& from, const fs::path& to);

// A unique name for a temp sibling of `path` (same directory, same filesystem):
// "<name>.tmp.<pid>-<startTicks>-<host>.<n>.<random>", naming the process that writes it, so that a file or folder
// left by a writer that died (kill -9, power loss) can be told from one still being written.
fs::path temp_sibling(const fs::path& path);

// What a directory entry's name says about it. Orphaned: a temp file or folder whose writer is gone for sure
// (same host, that process no longer runs; another host: untouched for `foreign_age_seconds`). Live: its writer
// may still be at work. NotTemp: not a temp name (a run id such as "x.tmp.1_17_ab" is not one).
enum class TempState { NotTemp, Live, Orphaned };
TempState temp_state(std::string_view filename, double age_seconds, double foreign_age_seconds = 24 * 3600.0);

// Reads a file the user gave (a config, a request body, an ignore file): refuses anything that is not a regular
// file (a fifo or /dev/zero would hang or never end) and anything over `max_bytes`, naming `what` in the error
// (Usage; NotFound if missing). Never reads more than max_bytes + 1 bytes, even from a file that grows meanwhile.
std::string read_input_file(const fs::path& path, size_t max_bytes, std::string_view what);
inline constexpr size_t kMaxConfigBytes = 4u << 20;  // YAML/JSON configs, conda files, ignore files, scripts

// The entries of a folder, for code that must not miss one (deciding what may be freed): a missing folder has none,
// any other error (EACCES, EMFILE, EIO) throws instead of looking like an empty or shorter listing.
std::vector<fs::path> list_dir_strict(const fs::path& dir);
// Whether `path` exists / is a folder (not following a final symlink), for the same code: ENOENT is false, any
// other error throws.
bool exists_strict(const fs::path& path);
bool is_directory_strict(const fs::path& path);

// Advisory lock on a lock file, or on a directory itself (flock). Blocks until acquired. Released on destruction.
class FileLock {
 public:
  enum class Mode { Shared, Exclusive };
  // Reader: a Shared lock for a reader that only needs a consistent view; on a workspace it may not write (a
  // read-only mount, another user's files) it goes on without the lock, as no writer can use the lock file either.
  // Every other lock fails when it cannot be taken.
  enum class Fallback { None, Reader };
  FileLock(const fs::path& lock_file, Mode mode = Mode::Exclusive, Fallback fallback = Fallback::None);
  FileLock(FileLock&& other) noexcept = default;
  FileLock& operator=(FileLock&&) = delete;

 private:
  Fd fd_;  // closing it releases the flock
};

// A temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  explicit TempDir(const fs::path& parent = fs::temp_directory_path(), std::string_view prefix = "amlc");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }  // keep the directory

 private:
  fs::path path_;
};

// What kind of thing is at `path` without following a final symlink (for clear input errors).
std::string describe_file_type(const fs::path& path);

// `rel` (a relative path from the user or from a file amlc does not control) resolved inside `dir`, every symlink on
// the way followed: nullopt if it is empty, absolute, `dir` itself, or leads out of `dir` - by "..", or through a
// symlink anywhere on the way. A missing tail is kept as written (normalised), so the caller can say "no such file".
std::optional<fs::path> resolve_inside(const fs::path& dir, const fs::path& rel);

// The same question asked of names only, for paths that do not exist here (yet): a path written in a record or a
// config, relative (to `dir`) or absolute. Returns it relative to `dir` and normalised ("a/./b" -> "a/b"), or
// nullopt if it is empty, `dir` itself, or leads out of `dir` by "..". Symlinks are not looked at: where the path
// exists on disk and may hold links, use resolve_inside. A name such as "a..b" is a name, not a way out.
std::optional<fs::path> lexically_inside(const fs::path& dir, const fs::path& path);

}  // namespace amlc
