#include "amlc/core/fs.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "amlc/core/error.hpp"
#include "amlc/core/hash.hpp"
#include "amlc/core/process.hpp"
#include "amlc/core/util.hpp"

namespace amlc {

namespace {


constexpr std::string_view kTempMark = ".tmp.";

// The first 8 hex digits of the host name's SHA-256: short, and the same for every process of a host.
const std::string& host_tag() {
  static const std::string tag = sha256_hex(host_name()).substr(0, 8);
  return tag;
}

std::string temp_suffix() {
  static std::atomic<unsigned> counter{0};
  const ProcessIdentity& me = this_process();
  char buf[128];
  std::snprintf(buf, sizeof buf, "%d-%lld-%s.%u.%s", me.pid, me.start_ticks, host_tag().c_str(), counter++,
                random_hex(4).c_str());
  return buf;
}

bool all_of(std::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }
bool is_digit_or_minus(char c) { return is_digit(c) || c == '-'; }

}  // namespace

void Fd::reset(int fd) noexcept {
  if (fd_ >= 0 && fd_ != fd) {
    int saved = errno;
    ::close(fd_);
    errno = saved;
  }
  fd_ = fd;
}

void overwrite_in_place(int fd, std::string text, const fs::path& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) sys_fail("cannot stat " + path.string());
  if (static_cast<off_t>(text.size()) < st.st_size) {
    bool nl = !text.empty() && text.back() == '\n';
    if (nl) text.pop_back();
    text.append(static_cast<size_t>(st.st_size) - text.size() - (nl ? 1 : 0), ' ');
    if (nl) text.push_back('\n');
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      sys_fail("cannot write " + path.string());
    }
    done += static_cast<size_t>(n);
  }
}

void write_all(int fd, const char* data, size_t size, const fs::path& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      sys_fail("cannot write " + path.string());
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

std::string read_file(const fs::path& path) {
  auto content = read_file_if_exists(path);
  if (!content) {
    errno = ENOENT;
    sys_fail("cannot read " + path.string());
  }
  return *content;
}

std::optional<std::string> read_file_if_exists(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    sys_fail("cannot read " + path.string());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode)) {
    fail(ErrorKind::Usage, path.string() + " is a directory, not a file");
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      sys_fail("cannot read " + path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

fs::path temp_sibling(const fs::path& path) {
  fs::path p = path;
  p += std::string(kTempMark) + temp_suffix();
  return p;
}

std::vector<fs::path> list_dir_strict(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return out;
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) out.push_back(it->path());
  if (ec) fail(ErrorKind::General, "cannot list " + dir.string() + ": " + ec.message());
  return out;
}

bool exists_strict(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  sys_fail("cannot stat " + path.string());
}

bool is_directory_strict(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return S_ISDIR(st.st_mode);
  if (errno == ENOENT || errno == ENOTDIR) return false;
  sys_fail("cannot stat " + path.string());
}

TempState temp_state(std::string_view name, double age_seconds, double foreign_age_seconds) {
  auto mark = name.rfind(kTempMark);
  if (mark == std::string_view::npos || mark == 0) return TempState::NotTemp;
  std::vector<std::string> parts = split(name.substr(mark + kTempMark.size()), '.');
  if (parts.size() != 3 || !all_of(parts[1], is_digit) || !all_of(parts[2], is_hex)) return TempState::NotTemp;
  std::vector<std::string> owner = split(parts[0], '-');
  if (owner.size() == 1 && all_of(owner[0], is_digit)) {
    // An older name ("<pid>.<n>.<random>"): no start time and no host to compare, so a live pid keeps it a day.
    bool gone = ::kill(std::atoi(owner[0].c_str()), 0) != 0 && errno == ESRCH;
    return gone || age_seconds > foreign_age_seconds ? TempState::Orphaned : TempState::Live;
  }
  // "<pid>-<startTicks>-<host>" (startTicks is -1 when /proc was unreadable: then split gives an empty part).
  if (owner.size() < 3 || !all_of(owner[0], is_digit) || !all_of(owner.back(), is_hex)) return TempState::NotTemp;
  std::string ticks = join(std::vector<std::string>(owner.begin() + 1, owner.end() - 1), "-");
  if (!all_of(ticks, is_digit_or_minus)) return TempState::NotTemp;
  if (owner.back() != host_tag()) return age_seconds > foreign_age_seconds ? TempState::Orphaned : TempState::Live;
  ProcessIdentity id{std::atoi(owner[0].c_str()), std::atoll(ticks.c_str()), host_name()};
  return process_alive(id) ? TempState::Live : TempState::Orphaned;
}

std::string read_input_file(const fs::path& path, size_t max_bytes, std::string_view what) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) not_found(std::string(what) + " " + path.string() + " does not exist");
    sys_fail("cannot read " + std::string(what) + " " + path.string());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) sys_fail("cannot read " + std::string(what) + " " + path.string());
  if (!S_ISREG(st.st_mode)) {
    std::string type = S_ISDIR(st.st_mode)    ? "directory"
                       : S_ISFIFO(st.st_mode) ? "fifo"
                       : S_ISCHR(st.st_mode)  ? "character device"
                       : S_ISBLK(st.st_mode)  ? "block device"
                       : S_ISSOCK(st.st_mode) ? "socket"
                                              : "special file";
    usage_error(std::string(what) + " " + path.string() + " is a " + type + ", not a regular file",
                "pass a regular file");
  }
  auto too_big = [&] {
    usage_error(std::string(what) + " " + path.string() + " is larger than " + std::to_string(max_bytes) + " bytes",
                "a file this large is not a " + std::string(what) + "; check the path");
  };
  if (static_cast<uint64_t>(st.st_size) > max_bytes) too_big();
  std::string out;
  out.resize(std::min<size_t>(static_cast<size_t>(st.st_size), max_bytes) + 1);
  size_t got = 0;
  for (;;) {
    if (got == out.size()) {
      if (got > max_bytes) too_big();
      out.resize(std::min(max_bytes + 1, got * 2 + 4096));
    }
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      sys_fail("cannot read " + std::string(what) + " " + path.string());
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_bytes) too_big();
  out.resize(got);
  return out;
}

void fsync_path(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) sys_fail("cannot open " + path.string());
  if (::fsync(fd.get()) != 0 && errno != EINVAL) sys_fail("cannot fsync " + path.string());
}

void write_file_atomic(const fs::path& path, std::string_view content, unsigned mode) {
  fs::path tmp = temp_sibling(path);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) sys_fail("cannot create " + tmp.string());
  try {
    write_all(fd.get(), content.data(), content.size(), tmp);
    if (::fsync(fd.get()) != 0) sys_fail("cannot fsync " + tmp.string());
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) sys_fail("cannot rename into " + path.string());
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

void append_line_durable(const fs::path& path, std::string_view line) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd.valid()) sys_fail("cannot open " + path.string());
  std::string buf(line);
  buf.push_back('\n');
  write_all(fd.get(), buf.data(), buf.size(), path);
  if (::fsync(fd.get()) != 0) sys_fail("cannot fsync " + path.string());
}

void create_directories_durable(const fs::path& dir) {
  std::error_code ec;
  fs::path existing = dir;
  while (!existing.empty() && !fs::exists(existing, ec)) existing = existing.parent_path();
  fs::create_directories(dir, ec);
  if (ec) fail(ErrorKind::General, "cannot create directory " + dir.string() + ": " + ec.message());
  // fsync every directory we created plus the first existing parent.
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    fsync_path(p);
    if (p == existing) break;
    if (p == p.parent_path()) break;
  }
}

void rename_durable(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) sys_fail("cannot rename " + from.string() + " to " + to.string());
  fsync_path(to.parent_path());
}

FileLock::FileLock(const fs::path& lock_file, Mode mode, Fallback fallback) {
  std::error_code ec;
  if (fs::is_directory(lock_file, ec)) {
    fd_.reset(::open(lock_file.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  } else if (mode == Mode::Shared) {
    // A reader needs no write access: flock works on a descriptor opened read-only.
    fd_.reset(::open(lock_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_.valid() && errno == ENOENT) fd_.reset(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd_.valid() && fallback == Fallback::Reader && (errno == EROFS || errno == EACCES || errno == EPERM)) return;
  } else {
    fd_.reset(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  }
  if (!fd_.valid()) sys_fail("cannot open lock file " + lock_file.string());
  int op = mode == Mode::Exclusive ? LOCK_EX : LOCK_SH;
  while (::flock(fd_.get(), op) != 0) {
    if (errno == EINTR) continue;
    fd_.reset();
    sys_fail("cannot lock " + lock_file.string());
  }
}

TempDir::TempDir(const fs::path& parent, std::string_view prefix) {
  std::string tmpl = (parent / (std::string(prefix) + ".XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) sys_fail("cannot create a temporary directory in " + parent.string());
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
}

std::string describe_file_type(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "missing";
  if (S_ISREG(st.st_mode)) return "file";
  if (S_ISDIR(st.st_mode)) return "directory";
  if (S_ISLNK(st.st_mode)) return "symlink";
  if (S_ISSOCK(st.st_mode)) return "socket";
  if (S_ISFIFO(st.st_mode)) return "fifo";
  if (S_ISCHR(st.st_mode)) return "character device";
  if (S_ISBLK(st.st_mode)) return "block device";
  return "special file";
}

std::optional<fs::path> resolve_inside(const fs::path& dir, const fs::path& rel) {
  fs::path normal = rel.lexically_normal();
  if (rel.empty() || rel.is_absolute() || rel.has_root_name() || normal == "." || normal.empty()) return std::nullopt;
  std::error_code ec;
  fs::path base = fs::weakly_canonical(dir, ec);
  if (ec) return std::nullopt;
  fs::path full = fs::weakly_canonical(dir / rel, ec);
  if (ec) return std::nullopt;
  auto [b, f] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (b != base.end() || f == full.end()) return std::nullopt;
  return full;
}

std::optional<fs::path> lexically_inside(const fs::path& dir, const fs::path& path) {
  if (path.empty() || path.has_root_name()) return std::nullopt;
  fs::path rel = path.is_absolute() ? path.lexically_normal().lexically_relative(fs::absolute(dir).lexically_normal())
                                    : path.lexically_normal();
  if (rel.empty() || rel == "." || rel.is_absolute()) return std::nullopt;
  if (*rel.begin() == "..") return std::nullopt;
  // lexically_normal keeps a trailing separator as an empty last element: "a/" names the folder "a".
  if (!rel.empty() && rel.filename().empty()) rel = rel.parent_path();
  return rel;
}

}  // namespace amlc
