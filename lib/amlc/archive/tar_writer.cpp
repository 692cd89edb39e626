// TarWriter over libarchive: the handle and one reused entry in a State, the sink behind libarchive's C write
// callback (an exception from the sink is kept and rethrown after libarchive returns, never thrown through C).
#include "amlc/archive/tar_writer.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <exception>
#include <utility>

#include "amlc/core/error.hpp"

namespace amlc::archive {

struct TarWriter::State {
  Sink sink;
  Options options;
  struct archive* a = nullptr;
  archive_entry* entry = nullptr;
  std::exception_ptr sink_error;
  bool closed = false;

  ~State() {
    if (entry) archive_entry_free(entry);
    if (a) archive_write_free(a);
  }

  // After a libarchive call: the sink's exception if it threw, else an error naming `step` if the call failed.
  void check(la_ssize_t rc, const std::string& step) {
    if (sink_error) std::rethrow_exception(std::exchange(sink_error, nullptr));
    if (rc >= ARCHIVE_WARN) return;
    const char* msg = archive_error_string(a);
    fail(ErrorKind::General, "cannot write " + options.what + " (" + step + "): " + (msg ? msg : "libarchive error"));
  }

  static la_ssize_t on_write(struct archive*, void* data, const void* buf, size_t n) {
    auto* s = static_cast<State*>(data);
    try {
      s->sink(std::string_view(static_cast<const char*>(buf), n));
    } catch (...) {
      s->sink_error = std::current_exception();
      return -1;
    }
    return static_cast<la_ssize_t>(n);
  }

  // A fresh entry with the fixed attributes.
  archive_entry* next(const std::string& path, mode_t type, unsigned mode) {
    archive_entry_clear(entry);
    archive_entry_set_pathname(entry, path.c_str());
    archive_entry_set_filetype(entry, type);
    archive_entry_set_perm(entry, mode);
    archive_entry_set_mtime(entry, options.mtime, 0);
    archive_entry_set_uid(entry, 0);
    archive_entry_set_gid(entry, 0);
    archive_entry_set_size(entry, 0);
    return entry;
  }

  void header(const std::string& path) { check(archive_write_header(a, entry), "header of '" + path + "'"); }
};

TarWriter::TarWriter(Sink sink, Options options) : s_(std::make_unique<State>()) {
  s_->sink = std::move(sink);
  s_->options = std::move(options);
  s_->a = archive_write_new();
  s_->entry = archive_entry_new();
  if (!s_->a || !s_->entry) fail(ErrorKind::General, "libarchive: out of memory");
  struct archive* a = s_->a;
  s_->check(archive_write_set_format_pax_restricted(a), "format");
  const int level = s_->options.gzip_level;
  if (level != 0) {
    if (level < 1 || level > 9) usage_error("gzip level must be 1..9 (0: no gzip)");
    s_->check(archive_write_add_filter_gzip(a), "gzip");
    std::string opts = "gzip:compression-level=" + std::to_string(level) + ",gzip:!timestamp";
    s_->check(archive_write_set_options(a, opts.c_str()), "gzip options");
  }
  archive_write_set_bytes_per_block(a, 1 << 20);
  archive_write_set_bytes_in_last_block(a, 1);  // no padding after the end-of-archive blocks
  s_->check(archive_write_open(a, s_.get(), nullptr, State::on_write, nullptr), "open");
}

TarWriter::~TarWriter() = default;
TarWriter::TarWriter(TarWriter&&) noexcept = default;
TarWriter& TarWriter::operator=(TarWriter&&) noexcept = default;

void TarWriter::add_directory(const std::string& path, unsigned mode) {
  s_->next(path, AE_IFDIR, mode);
  s_->header(path);
}

void TarWriter::add_symlink(const std::string& path, const std::string& target) {
  archive_entry_set_symlink(s_->next(path, AE_IFLNK, 0777), target.c_str());
  s_->header(path);
}

void TarWriter::begin_file(const std::string& path, unsigned mode, uint64_t size) {
  archive_entry_set_size(s_->next(path, AE_IFREG, mode), static_cast<la_int64_t>(size));
  s_->header(path);
}

void TarWriter::write(std::string_view data) {
  if (data.empty()) return;
  la_ssize_t w = archive_write_data(s_->a, data.data(), data.size());
  s_->check(w < 0 ? w : ARCHIVE_OK, "data of '" + std::string(archive_entry_pathname(s_->entry)) + "'");
}

void TarWriter::add_file(const std::string& path, unsigned mode, std::string_view data) {
  begin_file(path, mode, data.size());
  write(data);
}

void TarWriter::close() {
  if (s_->closed) return;
  s_->closed = true;
  s_->check(archive_write_close(s_->a), "end");
}

}  // namespace amlc::archive
