// libcurl behind net::perform: RAII for the easy handle and header list, the transfer callbacks (body in from memory
// or a file, body out to a sink or collected under a cap, headers, stop polling), and the outcome of a failure.
#include "amlc/net/http.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"

namespace amlc::net {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// Owns a curl_slist.
class Slist {
 public:
  void append(const std::string& line) {
    curl_slist* next = curl_slist_append(list_.get(), line.c_str());
    if (!next) fail(ErrorKind::General, "out of memory building HTTP headers");
    if (!list_) list_.reset(next);
  }
  curl_slist* get() const { return list_.get(); }

 private:
  std::unique_ptr<curl_slist, SlistDeleter> list_;
};

struct Transfer {
  const Request* req = nullptr;
  Response* resp = nullptr;
  CURL* h = nullptr;
  // request body
  std::string_view mem;
  size_t mem_off = 0;
  int file = -1;
  uint64_t file_left = 0;
  // state
  bool stopped = false;    // interrupted or should_stop
  bool too_large = false;  // the collected body passed max_body
  std::exception_ptr error;  // the sink or should_stop threw
  bool status_known = false;
  bool ok_status = false;

  bool must_stop() {
    if (stopped) return true;
    if (req->interruptible && amlc::interrupted()) return stopped = true;
    if (req->should_stop) {
      try {
        if (req->should_stop()) return stopped = true;
      } catch (...) {
        error = std::current_exception();
        return stopped = true;
      }
    }
    return false;
  }
};

size_t on_write(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * nmemb;
  if (t->must_stop()) return 0;
  if (!t->status_known) {
    long code = 0;
    curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &code);
    t->resp->status = code;
    t->status_known = true;
    t->ok_status = code >= 200 && code < 300;
  }
  if (t->ok_status && t->req->sink) {
    try {
      t->req->sink(std::string_view(ptr, n));
    } catch (...) {
      t->error = std::current_exception();
      return 0;
    }
    return n;
  }
  if (n > t->req->max_body - std::min(t->req->max_body, t->resp->body.size())) {
    t->too_large = true;
    return 0;
  }
  t->resp->body.append(ptr, n);
  return n;
}

size_t on_read(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  if (t->must_stop()) return CURL_READFUNC_ABORT;
  size_t cap = size * nitems;
  if (t->file >= 0) {
    // At most the size announced in Content-Length, even from a file that grows meanwhile.
    size_t want = static_cast<size_t>(std::min<uint64_t>(cap, t->file_left));
    for (;;) {
      ssize_t got = ::read(t->file, buffer, want);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return CURL_READFUNC_ABORT;
      t->file_left -= static_cast<uint64_t>(got);
      return static_cast<size_t>(got);
    }
  }
  size_t n = std::min(cap, t->mem.size() - t->mem_off);
  std::memcpy(buffer, t->mem.data() + t->mem_off, n);
  t->mem_off += n;
  return n;
}

size_t on_header(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * nitems;
  std::string_view line(buffer, n);
  if (starts_with(line, "HTTP/")) {  // a new response (e.g. after 100 Continue)
    t->resp->headers.clear();
    t->status_known = false;
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->resp->headers[to_lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return n;
}

int on_progress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(userdata);
  return t->must_stop() ? 1 : 0;
}

}  // namespace

Response perform(const Request& req) {
  global_init();
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) fail(ErrorKind::General, "cannot initialise libcurl");
  CURL* h = easy.get();
  Response resp;
  Transfer t;
  t.req = &req;
  t.resp = &resp;
  t.h = h;
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  if (!req.unix_socket.empty()) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req.unix_socket.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);

  Slist headers;
  headers.append("Expect:");  // never wait for 100-continue on uploads
  headers.append(std::string("User-Agent: amlc/") + AMLC_VERSION);
  if (!req.content_type.empty()) headers.append("Content-Type: " + req.content_type);
  for (const auto& line : req.headers) headers.append(line);

  std::optional<Fd> file;
  curl_off_t body_size = 0;
  if (req.has_body) {
    if (!req.body_file.empty()) {
      file.emplace(::open(req.body_file.c_str(), O_RDONLY | O_CLOEXEC));
      if (file->get() < 0) sys_fail("cannot open " + req.body_file.string());
      struct stat st {};
      if (::fstat(file->get(), &st) != 0) sys_fail("cannot read the size of " + req.body_file.string());
      body_size = static_cast<curl_off_t>(st.st_size);
      t.file = file->get();
      t.file_left = static_cast<uint64_t>(st.st_size);
    } else {
      t.mem = req.body;
      body_size = static_cast<curl_off_t>(req.body.size());
    }
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
  }

  if (req.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    if (req.has_body) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, body_size);
    } else {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t{0});
    }
  } else if (req.method == "PUT") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, req.has_body ? body_size : curl_off_t{0});
    if (!req.has_body) {
      curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(h, CURLOPT_READDATA, &t);
    }
  } else if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());

  CURLcode rc = curl_easy_perform(h);
  if (t.error) std::rethrow_exception(t.error);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  resp.status = code;
  if (t.stopped) {
    resp.outcome = Outcome::Stopped;
    return resp;
  }
  if (rc == CURLE_OK) {
    char* ct = nullptr;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) resp.content_type = ct;
    return resp;
  }
  resp.curl_code = static_cast<int>(rc);
  resp.error = curl_easy_strerror(rc);
  resp.detail = errbuf;
  curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &resp.os_errno);
  curl_off_t connect_us = 0;
  curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
  const bool connected = connect_us > 0 || code != 0;
  if (t.too_large) resp.outcome = Outcome::TooLarge;
  else if (rc == CURLE_OPERATION_TIMEDOUT && connected) resp.outcome = Outcome::TimedOut;
  else if (!connected || rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) resp.outcome = Outcome::NoConnection;
  else resp.outcome = Outcome::Failed;
  return resp;
}

}  // namespace amlc::net
