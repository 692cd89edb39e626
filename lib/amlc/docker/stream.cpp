#include "amlc/docker/stream.hpp"

#include <nlohmann/json.hpp>

#include "amlc/core/json.hpp"

namespace amlc::docker {

void LineSplitter::feed(std::string_view data) {
  size_t start = 0;
  while (true) {
    size_t nl = data.find('\n', start);
    if (nl == std::string_view::npos) break;
    std::string_view piece = data.substr(start, nl - start);
    std::string_view line;
    if (!buf_.empty()) {
      buf_.append(piece);
      line = buf_;
    } else {
      line = piece;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) sink_(line);
    buf_.clear();
    start = nl + 1;
  }
  buf_.append(data.substr(start));
}

void LineSplitter::finish() {
  std::string_view line = buf_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!line.empty()) {
    std::string copy(line);
    buf_.clear();
    sink_(copy);
  }
  buf_.clear();
}

std::string strip_ansi(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      size_t j = i + 2;
      while (j < s.size() && !((s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= 'a' && s[j] <= 'z'))) ++j;
      i = j;  // skip the final letter too
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

BuildStreamParser::BuildStreamParser(LineCallback on_line, size_t keep_lines)
    : on_line_(std::move(on_line)), keep_(keep_lines), json_lines_([this](std::string_view l) { on_json_line(l); }) {}

void BuildStreamParser::feed(std::string_view data) { json_lines_.feed(data); }

void BuildStreamParser::finish() {
  json_lines_.finish();
  if (!text_buf_.empty()) {
    std::string rest = std::move(text_buf_);
    text_buf_.clear();
    emit(rest);
  }
}

void BuildStreamParser::emit(std::string_view raw) {
  std::string line = strip_ansi(raw);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.empty()) return;
  if (keep_ > 0) {
    tail_.push_back(line);
    while (tail_.size() > keep_) tail_.pop_front();
  }
  if (on_line_) on_line_(line);
}

void BuildStreamParser::on_text(std::string_view text) {
  text_buf_.append(text);
  size_t start = 0;
  while (true) {
    size_t nl = text_buf_.find('\n', start);
    if (nl == std::string::npos) break;
    emit(std::string_view(text_buf_).substr(start, nl - start));
    start = nl + 1;
  }
  text_buf_.erase(0, start);
}

void BuildStreamParser::on_json_line(std::string_view line) {
  nlohmann::json j = try_parse_json(line);
  if (j.is_discarded() || !j.is_object()) {
    emit(line);  // not JSON: keep it as text rather than losing it
    return;
  }
  if (auto it = j.find("errorDetail"); it != j.end() && it->is_object()) {
    std::string msg = it->value("message", std::string{});
    if (msg.empty()) msg = j.value("error", std::string{"build failed"});
    error_ = strip_ansi(msg);
    return;
  }
  if (auto it = j.find("error"); it != j.end() && it->is_string()) {
    error_ = strip_ansi(it->get<std::string>());
    return;
  }
  if (auto it = j.find("stream"); it != j.end() && it->is_string()) {
    on_text(it->get_ref<const std::string&>());
  }
  if (auto it = j.find("aux"); it != j.end() && it->is_object()) {
    if (auto id = it->find("ID"); id != it->end() && id->is_string()) image_id_ = id->get<std::string>();
  }
  if (auto it = j.find("status"); it != j.end() && it->is_string() && !j.contains("progressDetail")) {
    std::string s = it->get<std::string>();
    if (auto id = j.find("id"); id != j.end() && id->is_string()) s = id->get<std::string>() + ": " + s;
    emit(s);
  }
}

void LogDemuxer::feed(std::string_view data) {
  if (raw_) {
    if (!data.empty()) sink_(LogStream::Stdout, data);
    return;
  }
  while (!data.empty()) {
    if (remaining_ == 0) {
      size_t need = 8 - header_len_;
      size_t take = std::min(need, data.size());
      for (size_t i = 0; i < take; ++i) header_[header_len_ + i] = static_cast<unsigned char>(data[i]);
      header_len_ += take;
      data.remove_prefix(take);
      if (header_len_ < 8) return;
      header_len_ = 0;
      unsigned type = header_[0];
      current_ = type <= 3 ? static_cast<LogStream>(type) : LogStream::Stdout;
      remaining_ = (uint32_t{header_[4]} << 24) | (uint32_t{header_[5]} << 16) | (uint32_t{header_[6]} << 8) |
                   uint32_t{header_[7]};
      continue;
    }
    size_t take = std::min<size_t>(remaining_, data.size());
    std::string_view piece = data.substr(0, take);
    remaining_ -= static_cast<uint32_t>(take);
    data.remove_prefix(take);
    if (current_ == LogStream::System) {
      system_error_.append(piece);
    } else {
      sink_(current_ == LogStream::Stdin ? LogStream::Stdout : current_, piece);
    }
  }
}

}  // namespace amlc::docker
