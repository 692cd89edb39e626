#include "amlc/runs/request.hpp"

#include "amlc/core/error.hpp"

namespace amlc::runs {

namespace {

std::string string_or(const json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : it->get<std::string>();
}

std::map<std::string, std::string> string_map(const json& j) {
  std::map<std::string, std::string> out;
  if (j.is_null()) return out;
  if (!j.is_object()) throw json::type_error::create(302, "environmentVariables is not an object", &j);
  for (const auto& [k, v] : j.items()) out[k] = v.get<std::string>();
  return out;
}

// The flat form sweep records had before the run definition had one form.
RunRequest from_flat(const json& j, RunRequest r) {
  r.script = j.value("script", std::string());
  r.arguments = j.value("arguments", std::vector<std::string>{});
  r.command = j.value("command", std::vector<std::string>{});
  r.interpreter = j.value("interpreter", std::string("python3"));
  r.target = j.value("target", std::string("local"));
  r.image = j.value("image", std::string(kDefaultDockerImage));
  r.environment = string_map(j.value("environmentVariables", json::object()));
  r.metrics_regex = j.value("metricsRegex", std::string());
  r.metrics_regex_where = j.value("metricsRegexWhere", std::string());
  r.metrics_from_stdout = j.value("metricsFromStdout", true);
  r.grace_seconds = j.value("cancelGracePeriodSeconds", 10.0);
  r.max_duration_seconds = j.value("maxRunDurationSeconds", 0.0);
  r.source_dir = j.value("sourceDirectory", std::string("."));
  return r;
}

}  // namespace

json request_to_json(const RunRequest& r) {
  json env = json::object();
  for (const auto& [k, v] : r.environment) env[k] = v;
  return {{"script", r.script.empty() ? json() : json(r.script)},
          {"arguments", r.arguments},
          {"command", resolve_command(r)},
          {"sourceDirectory", r.snapshot ? json() : json(fs::absolute(r.source_dir).lexically_normal().string())},
          {"target", r.target},
          {"environment",
           {{"environmentVariables", env},
            {"python", {{"interpreterPath", r.interpreter}}},
            {"docker", {{"enabled", r.target == "docker"}, {"baseImage", r.target == "docker" ? json(r.image) : json()}}}}},
          {"metrics", {{"regex", r.metrics_regex.empty() ? json() : json(r.metrics_regex)}, {"fromStdout", r.metrics_from_stdout}}},
          {"cancelGracePeriodSeconds", r.grace_seconds},
          {"maxRunDurationSeconds", r.max_duration_seconds > 0 ? json(r.max_duration_seconds) : json()}};
}

RunRequest request_from_json(const json& j, const std::string& experiment, const std::string& what) {
  RunRequest r;
  r.experiment = experiment;
  try {
    if (!j.is_object()) throw json::type_error::create(302, "not an object", &j);
    if (!j.contains("environment")) return from_flat(j, std::move(r));
    r.script = string_or(j, "script", "");
    r.arguments = j.value("arguments", std::vector<std::string>{});
    r.target = string_or(j, "target", "local");
    const json& env = j.at("environment");
    r.environment = string_map(env.value("environmentVariables", json::object()));
    r.interpreter = string_or(env.value("python", json::object()), "interpreterPath", "python3");
    r.image = string_or(env.value("docker", json::object()), "baseImage", kDefaultDockerImage);
    const json metrics = j.value("metrics", json::object());
    r.metrics_regex = string_or(metrics, "regex", "");
    r.metrics_from_stdout = metrics.value("fromStdout", true);
    r.grace_seconds = j.value("cancelGracePeriodSeconds", json()).is_null() ? 10.0 : j["cancelGracePeriodSeconds"].get<double>();
    r.max_duration_seconds = j.value("maxRunDurationSeconds", json()).is_null() ? 0.0 : j["maxRunDurationSeconds"].get<double>();
    r.source_dir = string_or(j, "sourceDirectory", ".");
    // The recorded command is resolve_command()'s: the program, then the script, then the arguments. Recover the
    // program the request named ("" when it was the default for the script).
    auto argv = j.at("command").get<std::vector<std::string>>();
    if (argv.size() < r.arguments.size() || !std::equal(r.arguments.begin(), r.arguments.end(), argv.end() - static_cast<long>(r.arguments.size())))
      throw json::other_error::create(501, "command does not end with the arguments", &j);
    argv.resize(argv.size() - r.arguments.size());
    RunRequest plain = r;
    plain.arguments.clear();
    if (!r.script.empty() && argv == resolve_command(plain)) return r;  // the default program for the script
    if (!r.script.empty()) {
      if (argv.empty() || argv.back() != r.script) throw json::other_error::create(501, "command does not name the script", &j);
      argv.pop_back();
    }
    if (argv.empty()) throw json::other_error::create(501, "command names no program", &j);
    r.command = std::move(argv);
  } catch (const json::exception& e) {
    fail(ErrorKind::Damaged, what + " is damaged: " + e.what());
  }
  return r;
}

}  // namespace amlc::runs
