#include "amlc/docker/http.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>

#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/docker/errors.hpp"

namespace amlc::docker::http {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct File {
  std::FILE* f = nullptr;
  ~File() {
    if (f) std::fclose(f);
  }
};

struct Transfer {
  const Request* req = nullptr;
  Response* resp = nullptr;
  CURL* h = nullptr;
  // request body
  std::string_view mem;
  size_t mem_off = 0;
  std::FILE* file = nullptr;
  // state
  bool stopped = false;       // interrupted or should_stop
  bool sink_failed = false;   // sink threw
  std::exception_ptr error;
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
      t->sink_failed = true;
      return 0;
    }
  } else if (t->resp->body.size() < (64u << 20)) {
    t->resp->body.append(ptr, n);
  }
  return n;
}

size_t on_read(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  if (t->must_stop()) return CURL_READFUNC_ABORT;
  size_t cap = size * nitems;
  if (t->file) {
    size_t got = std::fread(buffer, 1, cap, t->file);
    if (got == 0 && std::ferror(t->file)) return CURL_READFUNC_ABORT;
    return got;
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

std::string base_url(const Endpoint& ep) {
  if (ep.scheme == Endpoint::Scheme::Unix) return "http://localhost";
  return "http://" + ep.host + ":" + std::to_string(ep.port);
}

}  // namespace

Easy::Easy() {
  global_init();
  h_ = curl_easy_init();
  if (!h_) throw DockerError(ErrorKind::General, DockerErrc::Protocol, "cannot initialise libcurl");
}
Easy::~Easy() {
  if (h_) curl_easy_cleanup(h_);
}

Slist::~Slist() {
  if (list_) curl_slist_free_all(list_);
}
void Slist::append(const std::string& line) {
  curl_slist* next = curl_slist_append(list_, line.c_str());
  if (!next) throw DockerError(ErrorKind::General, DockerErrc::Protocol, "out of memory building HTTP headers");
  list_ = next;
}

Response perform(const Endpoint& endpoint, std::chrono::milliseconds connect_timeout, const Request& req,
                 bool allow_timeout) {
  Easy easy;
  CURL* h = easy.get();
  Response resp;
  Transfer t;
  t.req = &req;
  t.resp = &resp;
  t.h = h;
  char errbuf[CURL_ERROR_SIZE] = {0};

  std::string url = base_url(endpoint) + req.target;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  if (endpoint.scheme == Endpoint::Scheme::Unix) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, endpoint.socket_path.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()));
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

  File file;
  curl_off_t body_size = 0;
  if (req.has_body) {
    if (!req.body_file.empty()) {
      file.f = std::fopen(req.body_file.c_str(), "rb");
      if (!file.f) sys_fail("cannot open " + req.body_file.string());
      std::error_code ec;
      auto sz = std::filesystem::file_size(req.body_file, ec);
      if (ec) throw Error(ErrorKind::General, "cannot read the size of " + req.body_file.string() + ": " + ec.message());
      body_size = static_cast<curl_off_t>(sz);
      t.file = file.f;
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
  if (t.stopped) throw DockerError(ErrorKind::Interrupted, DockerErrc::Interrupted, "interrupted");
  if (rc != CURLE_OK) {
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    long os_errno = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    curl_off_t connect_us = 0;
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
    bool connected = connect_us > 0 || code != 0;
    if (rc == CURLE_OPERATION_TIMEDOUT && connected) {
      if (allow_timeout) {
        resp.status = code;
        resp.timed_out = true;
        return resp;
      }
      throw DockerError(ErrorKind::General, DockerErrc::Timeout,
                        "the Docker engine at " + endpoint.text() + " did not answer " + req.method + " " + req.target +
                            " within " + std::to_string(req.timeout.count() / 1000) + " s",
                        {}, errbuf);
    }
    if (!connected || rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
      throw connect_error(endpoint, static_cast<int>(rc), os_errno, errbuf);
    }
    throw DockerError(ErrorKind::General, DockerErrc::Protocol,
                      "the connection to the Docker engine at " + endpoint.text() + " failed during " + req.method +
                          " " + req.target + ": " + curl_easy_strerror(rc),
                      {}, errbuf);
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

}  // namespace amlc::docker::http
