// docker::Client's image calls: build (the context tar from a file or from memory, the JSON-lines build stream, a
// failed step turned into BuildFailed with a hint), inspect, require, remove, list.
#include "amlc/core/util.hpp"
#include "amlc/docker/client_impl.hpp"
#include "amlc/docker/errors.hpp"
#include "amlc/docker/stream.hpp"

namespace amlc::docker {

using namespace detail;

namespace {

ImageInfo image_from_inspect(const json& j) {
  ImageInfo info;
  info.id = str(j, "Id");
  info.repo_tags = strings_of(j.value("RepoTags", json()));
  if (auto c = j.find("Config"); c != j.end() && c->is_object()) info.labels = labels_of(c->value("Labels", json()));
  if (auto s = j.find("Size"); s != j.end() && s->is_number()) info.size = s->get<int64_t>();
  info.created = str(j, "Created");
  info.raw = j;
  return info;
}

ImageInfo image_from_summary(const json& j) {
  ImageInfo info;
  info.id = str(j, "Id");
  info.repo_tags = strings_of(j.value("RepoTags", json()));
  info.labels = labels_of(j.value("Labels", json()));
  if (auto s = j.find("Size"); s != j.end() && s->is_number()) info.size = s->get<int64_t>();
  if (auto c = j.find("Created"); c != j.end() && c->is_number()) info.created = std::to_string(c->get<int64_t>());
  info.raw = j;
  return info;
}

std::string build_hint(const std::string& error) {
  std::string e = to_lower(error);
  for (const char* needle : {"pull access denied", "repository does not exist", "manifest unknown", "no such host",
                             "dial tcp", "lookup ", "not found: manifest", "no such image", "failed to resolve",
                             "connection refused", "i/o timeout", "server misbehaving"}) {
    if (e.find(needle) != std::string::npos) return missing_image_hint();
  }
  return "fix the step shown in the build log (the last lines are in the error detail; --debug shows them)";
}

}  // namespace

BuildResult Client::Impl::build(bool from_file, const fs::path& file, std::string_view mem, const BuildOptions& o) {
  if (o.tag.empty()) usage_error("an image build needs a tag");
  std::string q = "/build?t=" + url_encode(o.tag);
  for (const auto& t : o.extra_tags) q += "&t=" + url_encode(t);
  q += "&dockerfile=" + url_encode(o.dockerfile.empty() ? "Dockerfile" : o.dockerfile);
  q += "&rm=1&forcerm=1&pull=0";
  if (o.no_cache) q += "&nocache=1";
  if (!o.labels.empty()) q += "&labels=" + url_encode(json(o.labels).dump());
  if (!o.build_args.empty()) q += "&buildargs=" + url_encode(json(o.build_args).dump());
  if (!o.network_mode.empty()) q += "&networkmode=" + url_encode(o.network_mode);

  BuildStreamParser parser(o.on_line, o.keep_log_lines);
  http::Request req = plain("POST", path(q));
  req.timeout = std::chrono::milliseconds(0);
  req.content_type = "application/x-tar";
  req.has_body = true;
  if (from_file) req.body_file = file;
  else req.body = mem;
  req.sink = [&parser](std::string_view d) { parser.feed(d); };
  req.should_stop = o.should_stop;
  req.interruptible = true;
  send(req, "cannot build image " + o.tag);
  parser.finish();
  if (parser.failed()) {
    std::string hint = build_hint(parser.error());
    std::string message = "building image " + o.tag + " failed: " + trim(parser.error());
    auto tail = parser.tail();
    if (hint == missing_image_hint()) {
      // "Step 1/2 : FROM base:tag" as the last step: the base image is missing and cannot be pulled.
      for (auto it = tail.rbegin(); it != tail.rend(); ++it) {
        if (!starts_with(*it, "Step ")) continue;
        auto pos = it->find(" : FROM ");
        if (pos != std::string::npos) {
          std::string base = trim(it->substr(pos + 8));
          base = base.substr(0, base.find(' '));
          message = "building image " + o.tag + " failed: the base image " + base +
                    " does not exist locally and cannot be pulled (" + trim(parser.error()) + ")";
        }
        break;
      }
    }
    throw BuildFailed(message, hint, std::move(tail));
  }
  BuildResult result;
  result.image_id = parser.image_id();
  result.log_tail = parser.tail();
  if (result.image_id.empty()) {
    http::Request ir = plain("GET", path("/images/" + encode_ref(o.tag) + "/json"));
    http::Response r = send(ir, "building image " + o.tag + " produced no image");
    result.image_id = str(parse_body(r.body, "inspect image"), "Id");
  }
  return result;
}


BuildResult Client::build_image_from_file(const fs::path& context_tar, const BuildOptions& options) {
  return impl_->build(true, context_tar, {}, options);
}

BuildResult Client::build_image_from_memory(std::string_view context_tar, const BuildOptions& options) {
  return impl_->build(false, {}, context_tar, options);
}

std::optional<ImageInfo> Client::inspect_image(const std::string& ref) {
  http::Request req = impl_->plain("GET", impl_->path("/images/" + encode_ref(ref) + "/json"));
  http::Response r = impl_->send(req, "cannot inspect image " + ref, {404});
  if (r.status == 404) return std::nullopt;
  return image_from_inspect(parse_body(r.body, "inspect image"));
}

bool Client::image_exists(const std::string& ref) { return inspect_image(ref).has_value(); }

ImageInfo Client::require_image(const std::string& ref) {
  auto info = inspect_image(ref);
  if (!info)
    throw DockerError(ErrorKind::NotFound, DockerErrc::ImageNotFound,
                      "image " + ref + " does not exist in the Docker engine at " + impl_->endpoint.text(),
                      missing_image_hint(), {}, 404);
  return *info;
}

bool Client::remove_image(const std::string& ref, const RemoveOptions& options) {
  http::Request req = impl_->plain(
      "DELETE", impl_->path("/images/" + encode_ref(ref) + "?force=" + (options.force ? "1" : "0") + "&noprune=0"));
  http::Response r = impl_->send(req, "cannot remove image " + ref, {404});
  if (r.status == 404) {
    if (options.missing_ok) return false;
    throw api_error(404, r.body, "cannot remove image " + ref);
  }
  return true;
}

std::vector<ImageInfo> Client::list_images(const Labels& label_filter) {
  std::string q = "/images/json";
  if (!label_filter.empty()) q += "?filters=" + url_encode(label_filters(label_filter));
  http::Request req = impl_->plain("GET", impl_->path(q));
  json arr = parse_body(impl_->send(req, "cannot list images").body, "list images");
  std::vector<ImageInfo> out;
  if (arr.is_array())
    for (const auto& j : arr) out.push_back(image_from_summary(j));
  return out;
}

}  // namespace amlc::docker
