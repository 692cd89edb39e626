// The one writer of tar archives (libarchive, pax restricted format), deterministic by construction: entries are
// written in the order given, owned by 0:0 without user or group names, all with one mtime, with the mode given;
// optionally gzip'ed without a name or timestamp. Bytes go to a sink (a file, a string, a hash).
//
//   std::string tar;
//   archive::TarWriter w([&](std::string_view d) { tar.append(d); }, {.what = "the build context"});
//   w.add_directory("app", 0755);
//   w.add_file("app/score.py", 0644, text);
//   w.close();
//
// Used by snapshots (archive/snapshot.cpp: .tar.gz to a file) and by the image plan (deploy/image_plan.cpp: the
// Docker build context in memory).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace amlc::archive {

class TarWriter {
 public:
  // Receives the archive's bytes in order. It may throw: the exception comes out of the call that wrote.
  using Sink = std::function<void(std::string_view)>;
  struct Options {
    std::string what = "the archive";  // named in errors: "cannot write the archive (header of 'a/b'): ..."
    int64_t mtime = 0;                 // every entry's modification time (unix seconds)
    int gzip_level = 0;                // 1..9: gzip'ed at that level; 0: a plain tar
  };

  TarWriter(Sink sink, Options options);
  ~TarWriter();
  TarWriter(TarWriter&&) noexcept;
  TarWriter& operator=(TarWriter&&) noexcept;
  TarWriter(const TarWriter&) = delete;  // one owner of the libarchive handle
  TarWriter& operator=(const TarWriter&) = delete;

  // `path` is '/'-separated and relative; a directory's gets no trailing '/' (added where the format wants it).
  void add_directory(const std::string& path, unsigned mode = 0755);
  void add_symlink(const std::string& path, const std::string& target);  // mode 0777
  void add_file(const std::string& path, unsigned mode, std::string_view data);
  // A file whose content comes in pieces: begin_file, then write() `size` bytes in all.
  void begin_file(const std::string& path, unsigned mode, uint64_t size);
  void write(std::string_view data);
  // Writes the end of the archive and flushes it to the sink. Without close(), the destructor only frees.
  void close();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace amlc::archive
