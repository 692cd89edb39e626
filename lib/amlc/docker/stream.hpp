// Incremental decoders for Docker's streamed answers. Pure byte-chunk state machines: feed them whatever
// curl's write callback receives (objects and frames straddle chunks), no I/O inside.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "amlc/docker/client.hpp"

namespace amlc::docker {

// Splits a byte stream into lines ("\n" or "\r\n"); empty lines are skipped.
class LineSplitter {
 public:
  using Sink = std::function<void(std::string_view line)>;
  explicit LineSplitter(Sink sink) : sink_(std::move(sink)) {}
  void feed(std::string_view data);
  void finish();  // emits a trailing line without '\n'

 private:
  Sink sink_;
  std::string buf_;
};

// Removes ANSI escape sequences (ESC [ ... letter), as the builder colours step stderr red.
std::string strip_ansi(std::string_view s);

// Parses the /build JSON-lines progress stream.
class BuildStreamParser {
 public:
  BuildStreamParser(LineCallback on_line, size_t keep_lines);
  void feed(std::string_view data);
  void finish();

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }  // errorDetail.message (or error)
  const std::string& image_id() const { return image_id_; }  // last aux.ID
  std::vector<std::string> tail() const { return {tail_.begin(), tail_.end()}; }

 private:
  void on_json_line(std::string_view line);
  void on_text(std::string_view text);
  void emit(std::string_view line);

  LineCallback on_line_;
  size_t keep_;
  LineSplitter json_lines_;
  std::string text_buf_;  // `stream` text not yet ending in '\n'
  std::deque<std::string> tail_;
  std::string error_;
  std::string image_id_;
};

// Decodes the multiplexed log stream: frames of an 8-byte header {type, 0, 0, 0, size (big-endian u32)}
// followed by `size` payload bytes. Payload is passed on as it arrives (a frame may come in pieces).
// In raw mode (TTY containers) every byte is stdout.
class LogDemuxer {
 public:
  LogDemuxer(LogCallback sink, bool raw = false) : sink_(std::move(sink)), raw_(raw) {}
  void set_raw(bool raw) { raw_ = raw; }
  void feed(std::string_view data);
  // True when the stream ended in the middle of a frame (truncated answer).
  bool incomplete() const { return header_len_ != 0 || remaining_ != 0; }
  const std::string& system_error() const { return system_error_; }  // stream type 3 payload, if any

 private:
  LogCallback sink_;
  bool raw_;
  unsigned char header_[8]{};
  size_t header_len_ = 0;
  uint32_t remaining_ = 0;
  LogStream current_ = LogStream::Stdout;
  std::string system_error_;
};

}  // namespace amlc::docker
