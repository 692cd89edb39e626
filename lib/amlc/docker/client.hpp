// Docker Engine API client over amlc's HTTP transport (net/http.hpp, libcurl) on the engine's Unix socket (or plain
// tcp://), shared by the docker run target and by deployments.
//
//   amlc::docker::Client dc;                        // DOCKER_HOST or unix:///var/run/docker.sock
//   dc.ping();                                      // throws DockerUnavailable with a hint if no engine answers
//   auto b = dc.build_image_from_file(tar, {.tag = "amlc-svc:abc", .labels = {{"amlc.managed", "true"}}});
//   auto id = dc.create_container({.name = "svc", .image = "amlc-svc:abc",
//                                  .ports = {{.container_port = 5001, .host_port = 0}}}).id;
//   dc.start_container(id);
//   int port = *dc.inspect_container(id).host_port(5001);
//
// Every call negotiates the API version once per Client (GET /_ping + /version; min(kMaxApiVersion,
// daemon's max), refused below kMinApiVersion) and sends requests to /v<ver>/... . A Client is safe to
// share between threads: each request uses its own curl easy handle.
//
// Errors: everything throws amlc::Error (usually the DockerError subclass below):
//   - no engine / socket missing / refused          -> ErrorKind::DockerUnavailable (exit 5)
//   - permission denied on the socket                -> ErrorKind::DockerUnavailable, hint: docker group / root
//   - image missing (create, inspect via require_*)  -> ErrorKind::NotFound, hint: nothing can be pulled, build it
//   - container/image missing                        -> ErrorKind::NotFound
//   - name in use (409), port already allocated      -> ErrorKind::Conflict
//   - a build step failed                             -> BuildFailed (ErrorKind::General) with the last log lines
//   - SIGINT/SIGTERM during a long call               -> ErrorKind::Interrupted
//   - anything else                                   -> ErrorKind::General with the daemon's message
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/core/error.hpp"

namespace amlc::docker {

namespace fs = std::filesystem;
using Labels = std::map<std::string, std::string>;

// Newest API version this client was tested with, and the oldest it accepts.
inline constexpr std::string_view kMaxApiVersion = "1.47";
inline constexpr std::string_view kMinApiVersion = "1.40";

// ---------------------------------------------------------------------------------------------------------------
// Endpoint

struct Endpoint {
  enum class Scheme { Unix, Tcp };
  Scheme scheme = Scheme::Unix;
  std::string socket_path = "/var/run/docker.sock";  // Unix
  std::string host;                                  // Tcp
  int port = 2375;                                   // Tcp
  std::string text() const;                          // "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"
};

// Parses "unix:///path", "tcp://host[:port]" or "host:port" (tcp). Other schemes (ssh://, npipe://, fd://)
// and malformed values throw a Usage error naming DOCKER_HOST.
Endpoint parse_endpoint(std::string_view docker_host);
// DOCKER_HOST if set and non-empty, else unix:///var/run/docker.sock.
Endpoint endpoint_from_env();

// ---------------------------------------------------------------------------------------------------------------
// Errors

enum class DockerErrc {
  Unavailable,       // no engine answers (socket missing, connection refused, timeout, tcp host down)
  PermissionDenied,  // the socket exists but we may not connect (EACCES)
  TooOld,            // API version outside what we support
  NotFound,          // 404 (container, image, path)
  ImageNotFound,     // 404 "No such image" (or image missing on create)
  Conflict,          // 409 (name in use, running container removal, image in use)
  PortInUse,         // start failed: "port is already allocated" / "address already in use"
  BadRequest,        // 400
  BuildFailed,       // errorDetail in the build stream
  Daemon,            // any other daemon error (500, ...)
  Protocol,          // unparsable answer, transport error mid-way
  Interrupted,       // SIGINT/SIGTERM or a caller's should_stop
  Timeout,           // a finite request timeout expired
};

class DockerError : public Error {
 public:
  DockerError(ErrorKind kind, DockerErrc code, std::string message, std::string hint = {}, std::string detail = {},
              int http_status = 0, std::string daemon_message = {})
      : Error(kind, std::move(message), std::move(hint), std::move(detail)),
        code_(code),
        http_status_(http_status),
        daemon_message_(std::move(daemon_message)) {}
  DockerErrc code() const noexcept { return code_; }
  int http_status() const noexcept { return http_status_; }               // 0 for transport errors
  const std::string& daemon_message() const noexcept { return daemon_message_; }  // {"message": ...} as sent

 private:
  DockerErrc code_;
  int http_status_;
  std::string daemon_message_;
};

class BuildFailed : public DockerError {
 public:
  BuildFailed(std::string message, std::string hint, std::vector<std::string> log_tail)
      : DockerError(ErrorKind::General, DockerErrc::BuildFailed, std::move(message), std::move(hint),
                    join_lines(log_tail)),
        log_tail_(std::move(log_tail)) {}
  // The last build output lines (up to BuildOptions::keep_log_lines), ANSI colour codes removed.
  const std::vector<std::string>& log_tail() const noexcept { return log_tail_; }

 private:
  static std::string join_lines(const std::vector<std::string>& lines);
  std::vector<std::string> log_tail_;
};

// ---------------------------------------------------------------------------------------------------------------
// Data

struct VersionInfo {
  std::string version;          // engine version, "20.10.24+dfsg1"
  std::string api_version;      // daemon's maximum API version
  std::string min_api_version;  // daemon's minimum API version
  std::string negotiated;       // the version this client uses ("1.41")
  std::string os, arch, kernel_version;
  nlohmann::json raw;  // the whole /version answer
};

// Called for every build output line (the `stream` text split into lines, ANSI codes removed, no '\n').
using LineCallback = std::function<void(std::string_view line)>;
// Polled from the transfer callbacks (about once a second when idle): return true to abort (throws Interrupted).
// Long/unbounded operations (build, logs with follow, wait_container, put/get_archive) also abort when
// amlc::interrupted() (SIGINT/SIGTERM); short bounded calls (inspect, list, create, start, stop, kill, remove,
// wait_container_for) do not, so cleanup after Ctrl-C still works.
using StopPredicate = std::function<bool()>;

struct BuildOptions {
  std::string tag;                      // t=<tag> (required)
  std::vector<std::string> extra_tags;  // more t= values
  std::string dockerfile = "Dockerfile";  // path inside the context
  Labels labels;                          // image labels
  std::map<std::string, std::string> build_args;
  bool no_cache = false;
  std::string network_mode;  // for RUN steps; empty = daemon default
  LineCallback on_line;      // progress/log lines; may be empty
  StopPredicate should_stop;
  size_t keep_log_lines = 40;  // how many trailing lines BuildResult/BuildFailed keep
};

struct BuildResult {
  std::string image_id;               // "sha256:..." (from aux.ID, else from inspecting the tag)
  std::vector<std::string> log_tail;  // last keep_log_lines output lines
};

struct ImageInfo {
  std::string id;  // "sha256:..."
  std::vector<std::string> repo_tags;
  Labels labels;
  int64_t size = 0;
  std::string created;  // RFC 3339 (inspect) or unix seconds as text (list)
  nlohmann::json raw;
};

struct Mount {
  std::string source;  // absolute host path (bind) or volume name (volume)
  std::string target;  // path in the container
  bool read_only = false;
  std::string type = "bind";  // bind | volume | tmpfs
};

struct PortBinding {
  int container_port = 0;
  std::string protocol = "tcp";
  std::string host_ip = "127.0.0.1";
  int host_port = 0;  // 0: the daemon picks a free port (read it back with inspect_container().host_port())
};

struct HealthCheck {
  std::vector<std::string> test;  // {"CMD", "python3", "-c", "..."} or {"CMD-SHELL", "..."} or {"NONE"}
  std::chrono::milliseconds interval{0}, timeout{0}, start_period{0};  // 0 = inherit
  int retries = 0;                                                       // 0 = inherit
};

struct ContainerSpec {
  std::string name;  // optional; must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$
  std::string image;
  std::vector<std::string> cmd;                          // empty = image default
  std::optional<std::vector<std::string>> entrypoint;    // nullopt = image default; {} = clear it
  std::map<std::string, std::string> env;
  Labels labels;
  std::string working_dir;
  std::string user;  // "uid[:gid]" or a name
  std::vector<Mount> mounts;
  std::vector<PortBinding> ports;  // also added to ExposedPorts
  double cpus = 0;                 // NanoCpus = cpus * 1e9; 0 = unlimited
  int64_t memory_bytes = 0;        // 0 = unlimited
  std::string network_mode;        // "" = default (bridge), "none", "host", ...
  bool tty = false;                // keep false to get separate stdout/stderr
  std::optional<HealthCheck> healthcheck;
  std::string stop_signal;         // "" = image default
  std::optional<int> stop_timeout;  // seconds
  bool auto_remove = false;
};

struct CreateResult {
  std::string id;
  std::vector<std::string> warnings;
};

struct PublishedPort {
  int container_port = 0;
  std::string protocol = "tcp";
  std::string host_ip;
  int host_port = 0;
};

struct ContainerState {
  std::string status;  // created|running|paused|restarting|removing|exited|dead
  bool running = false;
  bool oom_killed = false;
  int exit_code = 0;
  int pid = 0;
  std::string error;
  std::string started_at;   // RFC 3339; "0001-01-01T00:00:00Z" when never started
  std::string finished_at;  // RFC 3339
  std::string health;       // ""(no healthcheck) | starting | healthy | unhealthy
  std::string health_log;   // output of the last health probe, if any
};

struct ContainerInfo {
  std::string id;
  std::string name;  // without the leading '/'
  std::string image;  // image ID
  std::string image_ref;  // Config.Image as given at create
  Labels labels;
  bool tty = false;
  ContainerState state;
  std::vector<PublishedPort> ports;  // actually published ports (NetworkSettings.Ports)
  nlohmann::json raw;
  // The host port published for container_port (prefers an IPv4 binding); nullopt if not published.
  std::optional<int> host_port(int container_port, std::string_view protocol = "tcp") const;
};

struct ContainerSummary {
  std::string id;
  std::vector<std::string> names;  // without leading '/'
  std::string image;
  std::string state;   // running, exited, ...
  std::string status;  // "Up 2 minutes"
  int64_t created = 0;
  Labels labels;
  nlohmann::json raw;
};

enum class LogStream { Stdin = 0, Stdout = 1, Stderr = 2, System = 3 };

struct LogOptions {
  bool stdout_ = true;
  bool stderr_ = true;
  bool follow = false;                // stream until the container stops (no total timeout)
  std::optional<int> tail;            // last N lines; nullopt = all
  std::optional<int64_t> since;       // unix seconds
  bool timestamps = false;
  StopPredicate should_stop;          // for follow
};
// Receives decoded payload chunks (not necessarily whole lines).
using LogCallback = std::function<void(LogStream stream, std::string_view data)>;

struct Logs {
  std::string out;
  std::string err;
};

enum class WaitCondition { NotRunning, NextExit, Removed };

struct RemoveOptions {
  bool force = false;
  bool volumes = false;      // containers: remove anonymous volumes
  bool missing_ok = false;   // 404 is success (idempotent remove)
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{300000};  // plain JSON calls; streaming/blocking calls have none
  std::string api_version;  // pin ("1.41"); empty = negotiate (DOCKER_API_VERSION is honoured when empty)
};

// ---------------------------------------------------------------------------------------------------------------
// Client

class Client {
 public:
  Client();  // endpoint_from_env(), default options
  explicit Client(Endpoint endpoint, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  const Endpoint& endpoint() const;

  // --- daemon
  void ping();                       // throws DockerUnavailable etc. if the daemon does not answer 200
  VersionInfo version();             // also negotiates
  std::string api_version();         // negotiated version ("1.41"), negotiating on first use

  // --- images
  BuildResult build_image_from_file(const fs::path& context_tar, const BuildOptions& options);
  BuildResult build_image_from_memory(std::string_view context_tar, const BuildOptions& options);
  std::optional<ImageInfo> inspect_image(const std::string& ref);  // nullopt on 404
  bool image_exists(const std::string& ref);
  // Like inspect_image, but a missing image is a NotFound error saying nothing can be pulled and how to build it.
  ImageInfo require_image(const std::string& ref);
  // Returns false if the image did not exist and options.missing_ok (else NotFound).
  bool remove_image(const std::string& ref, const RemoveOptions& options = {});
  // filters: {"amlc.managed" -> "true"} means label=amlc.managed=true; an empty value means "label present".
  std::vector<ImageInfo> list_images(const Labels& label_filter = {});

  // --- containers
  CreateResult create_container(const ContainerSpec& spec);
  void start_container(const std::string& id);  // 304 (already running) is success
  ContainerInfo inspect_container(const std::string& id);
  std::optional<ContainerInfo> find_container(const std::string& id_or_name);  // nullopt on 404
  // Streams logs to `on_data`; with follow, returns when the container stops (or throws Interrupted).
  void container_logs(const std::string& id, const LogOptions& options, const LogCallback& on_data);
  Logs container_logs(const std::string& id, const LogOptions& options = {});  // collected; follow ignored
  void stop_container(const std::string& id, int timeout_seconds = 10);   // 304 (not running) is success
  void kill_container(const std::string& id, const std::string& signal = "SIGKILL");
  bool remove_container(const std::string& id, const RemoveOptions& options = {});
  // Blocks until the condition is met; returns the exit code. A wait error ({"Error":{...}}) throws.
  int64_t wait_container(const std::string& id, WaitCondition condition = WaitCondition::NotRunning,
                         const StopPredicate& should_stop = {});
  // Same, but gives up after `timeout` and returns nullopt.
  std::optional<int64_t> wait_container_for(const std::string& id, std::chrono::milliseconds timeout,
                                            WaitCondition condition = WaitCondition::NotRunning);
  std::vector<ContainerSummary> list_containers(const Labels& label_filter = {}, bool all = true);
  // Uploads a tar (uncompressed, gzip, ...) and extracts it under `path` (which must exist in the container).
  void put_archive(const std::string& id, const std::string& path, std::string_view tar);
  void put_archive_file(const std::string& id, const std::string& path, const fs::path& tar_file);
  // Returns a tar holding `path` (file or directory) from the container.
  std::string get_archive(const std::string& id, const std::string& path);

  // --- escape hatch for endpoints not wrapped above: a versioned JSON call.
  // path_and_query like "/containers/json?all=1" (without /v<ver>); body sent as application/json if not null.
  // Non-2xx statuses throw (mapped as above). Returns the parsed body (null for empty bodies).
  nlohmann::json call_json(const std::string& method, const std::string& path_and_query,
                           const nlohmann::json& body = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------------------------
// Helpers (public for reuse and tests)

// "1.41" < "1.9"? No: compares numerically per component. Returns <0, 0, >0.
int compare_api_versions(std::string_view a, std::string_view b);
// Percent-encodes a query value / a path segment (keeping '/' and ':' for image references).
std::string url_encode(std::string_view s);
std::string encode_ref(std::string_view ref);
// Builds the JSON `filters` value for {"label": ["k=v", ...]}.
std::string label_filters(const Labels& labels);

}  // namespace amlc::docker
