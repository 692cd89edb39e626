// Temporary stub: the real implementation follows shortly.
#include "amlc/docker/client.hpp"

#include <cstdlib>

namespace amlc::docker {

namespace {
[[noreturn]] void todo(const char* what) {
  throw DockerError(ErrorKind::General, DockerErrc::Daemon, std::string("docker client: ") + what + " not implemented yet");
}
}  // namespace

std::string BuildFailed::join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string Endpoint::text() const {
  return scheme == Scheme::Unix ? "unix://" + socket_path : "tcp://" + host + ":" + std::to_string(port);
}
Endpoint parse_endpoint(std::string_view) { todo("parse_endpoint"); }
Endpoint endpoint_from_env() { return Endpoint{}; }

std::optional<int> ContainerInfo::host_port(int, std::string_view) const { return std::nullopt; }

struct Client::Impl {
  Endpoint endpoint;
  ClientOptions options;
};

Client::Client() : Client(endpoint_from_env()) {}
Client::Client(Endpoint endpoint, ClientOptions options) : impl_(std::make_unique<Impl>(Impl{std::move(endpoint), std::move(options)})) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
const Endpoint& Client::endpoint() const { return impl_->endpoint; }

void Client::ping() { todo("ping"); }
VersionInfo Client::version() { todo("version"); }
std::string Client::api_version() { todo("api_version"); }
BuildResult Client::build_image_from_file(const fs::path&, const BuildOptions&) { todo("build"); }
BuildResult Client::build_image_from_memory(std::string_view, const BuildOptions&) { todo("build"); }
std::optional<ImageInfo> Client::inspect_image(const std::string&) { todo("inspect_image"); }
bool Client::image_exists(const std::string&) { todo("image_exists"); }
ImageInfo Client::require_image(const std::string&) { todo("require_image"); }
bool Client::remove_image(const std::string&, const RemoveOptions&) { todo("remove_image"); }
std::vector<ImageInfo> Client::list_images(const Labels&) { todo("list_images"); }
CreateResult Client::create_container(const ContainerSpec&) { todo("create_container"); }
void Client::start_container(const std::string&) { todo("start_container"); }
ContainerInfo Client::inspect_container(const std::string&) { todo("inspect_container"); }
std::optional<ContainerInfo> Client::find_container(const std::string&) { todo("find_container"); }
void Client::container_logs(const std::string&, const LogOptions&, const LogCallback&) { todo("logs"); }
Logs Client::container_logs(const std::string&, const LogOptions&) { todo("logs"); }
void Client::stop_container(const std::string&, int) { todo("stop"); }
void Client::kill_container(const std::string&, const std::string&) { todo("kill"); }
bool Client::remove_container(const std::string&, const RemoveOptions&) { todo("remove_container"); }
int64_t Client::wait_container(const std::string&, WaitCondition, const StopPredicate&) { todo("wait"); }
std::optional<int64_t> Client::wait_container_for(const std::string&, std::chrono::milliseconds, WaitCondition) { todo("wait"); }
std::vector<ContainerSummary> Client::list_containers(const Labels&, bool) { todo("list_containers"); }
void Client::put_archive(const std::string&, const std::string&, std::string_view) { todo("put_archive"); }
void Client::put_archive_file(const std::string&, const std::string&, const fs::path&) { todo("put_archive"); }
std::string Client::get_archive(const std::string&, const std::string&) { todo("get_archive"); }
nlohmann::json Client::call_json(const std::string&, const std::string&, const nlohmann::json&) { todo("call_json"); }

int compare_api_versions(std::string_view, std::string_view) { todo("compare"); }
std::string url_encode(std::string_view) { todo("url_encode"); }
std::string encode_ref(std::string_view) { todo("encode_ref"); }
std::string label_filters(const Labels&) { todo("label_filters"); }

}  // namespace amlc::docker
