#include "amlc/runs/runconfig.hpp"

#include <cmath>
#include <cstdlib>

#include "amlc/core/error.hpp"
#include "amlc/runs/metrics.hpp"

namespace amlc::runs {

namespace {

std::string scalar_text(const config::Document& doc, const std::string& pointer, const config::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number_float()) {
    std::string s = v.dump();
    return s;
  }
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  doc.error(pointer, "expected a string or a number, found " + std::string(v.type_name()));
}

std::vector<std::string> string_list(const config::Document& doc, const std::string& pointer) {
  const auto* v = doc.find(pointer);
  std::vector<std::string> out;
  if (!v) return out;
  if (!v->is_array()) doc.error(pointer, "expected a list of strings, found " + std::string(v->type_name()));
  for (size_t i = 0; i < v->size(); ++i) {
    out.push_back(scalar_text(doc, pointer + "/" + std::to_string(i), (*v)[i]));
  }
  return out;
}

}  // namespace

RunConfig parse_run_config(const config::Document& doc) {
  RunConfig rc;
  rc.source = doc.source();
  if (!doc.root().is_object()) doc.error("", "a run configuration must be a mapping (script, arguments, environment, ...)");
  doc.check_keys("", {"script", "arguments", "target", "command", "metrics", "snapshot", "cancelGracePeriodSeconds",
                      "maxRunDurationSeconds", "environment", "framework", "communicator", "history", "nodeCount",
                      "priority", "credentialPassthrough", "identity", "data", "dataReferences", "outputData",
                      "sourceDirectoryDataStore", "amlCompute", "kubernetesCompute", "docker", "spark", "hdi",
                      "tensorflow", "mpi", "pyTorch", "parallelTask", "paralleltask", "name", "$schema",
                      "autoPrepareEnvironment", "instanceTypes", "aiSuperComputer"});
  rc.script = doc.get_string("/script");
  if (doc.find("/arguments")) rc.arguments = string_list(doc, "/arguments");
  rc.target = doc.get_string("/target");
  if (rc.target && *rc.target != "local" && *rc.target != "docker") {
    doc.error("/target", "unknown target '" + *rc.target + "'", "use local or docker");
  }
  if (const auto* c = doc.find("/command")) {
    if (c->is_string()) {
      rc.command = std::vector<std::string>{"/bin/sh", "-c", c->get<std::string>()};
    } else {
      rc.command = string_list(doc, "/command");
      if (rc.command->empty()) doc.error("/command", "the command list is empty", "e.g. command: [bash, run.sh]");
    }
  }
  if (doc.find("/environment")) {
    doc.check_keys("/environment", {"name", "version", "environmentVariables", "python", "docker", "spark",
                                    "databricks", "r", "inferencingStackVersion", "assetId"});
    if (const auto* ev = doc.find("/environment/environmentVariables")) {
      if (!ev->is_object()) doc.error("/environment/environmentVariables", "expected a mapping of NAME: value");
      for (const auto& [k, v] : ev->items()) {
        rc.environment_variables[k] = scalar_text(doc, "/environment/environmentVariables/" + k, v);
      }
    }
    if (doc.find("/environment/python")) {
      doc.check_keys("/environment/python", {"interpreterPath", "userManagedDependencies", "condaDependencies",
                                             "condaDependenciesFile", "baseCondaEnvironment"});
      rc.interpreter = doc.get_string("/environment/python/interpreterPath");
    }
    if (doc.find("/environment/docker")) {
      doc.check_keys("/environment/docker", {"enabled", "baseImage", "baseDockerfile", "platform", "arguments",
                                             "sharedVolumes", "shmSize", "baseImageRegistry", "buildContext",
                                             "gpuSupport"});
      rc.base_image = doc.get_string("/environment/docker/baseImage");
      if (doc.get_bool("/environment/docker/enabled").value_or(false) && !rc.target) rc.target = "docker";
    }
  }
  if (doc.find("/metrics")) {
    doc.check_keys("/metrics", {"regex", "fromStdout", "from_stdout"});
    rc.metrics_regex = doc.get_string("/metrics/regex");
    if (rc.metrics_regex) {
      rc.metrics_regex_where = doc.where("/metrics/regex") + ": key 'metrics.regex'";
      MetricPattern check(*rc.metrics_regex, rc.metrics_regex_where);  // compile now: errors carry the location
    }
    auto fs1 = doc.get_bool("/metrics/fromStdout");
    auto fs2 = doc.get_bool("/metrics/from_stdout");
    rc.metrics_from_stdout = fs1.value_or(fs2.value_or(true));
  }
  if (doc.find("/snapshot")) {
    doc.check_keys("/snapshot", {"maxFiles", "maxSizeMB"});
    if (auto n = doc.get_int("/snapshot/maxFiles")) {
      if (*n <= 0) doc.error("/snapshot/maxFiles", "expected a positive whole number");
      rc.max_files = static_cast<uint64_t>(*n);
    }
    if (auto n = doc.get_int("/snapshot/maxSizeMB")) {
      if (*n <= 0) doc.error("/snapshot/maxSizeMB", "expected a positive whole number of megabytes");
      rc.max_mb = static_cast<uint64_t>(*n);
    }
  }
  if (auto g = doc.get_number("/cancelGracePeriodSeconds")) {
    if (*g < 0 || !std::isfinite(*g)) doc.error("/cancelGracePeriodSeconds", "expected a number of seconds >= 0");
    rc.grace_seconds = *g;
  }
  if (auto d = doc.get_number("/maxRunDurationSeconds")) {
    if (*d <= 0 || !std::isfinite(*d)) doc.error("/maxRunDurationSeconds", "expected a number of seconds > 0");
    rc.max_duration_seconds = *d;
  }
  return rc;
}

RunConfig load_run_config(const fs::path& path) { return parse_run_config(config::load_file(path)); }

fs::path find_run_config(const std::string& name, const fs::path& source_dir) {
  std::error_code ec;
  std::vector<fs::path> tried;
  auto consider = [&](const fs::path& p) {
    tried.push_back(p);
    return fs::is_regular_file(p, ec);
  };
  if (consider(name)) return name;
  for (const fs::path& base : {source_dir / ".azureml", fs::path(".azureml")}) {
    if (consider(base / (name + ".runconfig"))) return base / (name + ".runconfig");
  }
  if (consider(name + ".runconfig")) return name + ".runconfig";
  std::string list;
  for (const auto& p : tried) list += (list.empty() ? "" : ", ") + p.string();
  not_found("run configuration '" + name + "' not found (looked at " + list + ")",
            "pass the file's path with -c, e.g. -c .azureml/local.runconfig");
}

void check_script_arguments(const std::vector<std::string>& script_and_args) {
  if (!script_and_args.empty() && !script_and_args[0].empty() && script_and_args[0][0] == '-') {
    usage_error("unknown option '" + script_and_args[0] + "' before the script",
                "options of amlc go before SCRIPT; everything after SCRIPT is passed to it");
  }
}

fs::path apply_run_config(RunRequest& request, const RunFlags& flags) {
  fs::path file;
  std::optional<RunConfig> rc;
  if (!flags.runconfig.empty()) {
    file = find_run_config(flags.runconfig, request.source_dir);
    rc = load_run_config(file);
  }
  check_script_arguments(flags.script_and_args);
  if (rc) {
    if (rc->script) request.script = *rc->script;
    if (rc->arguments) request.arguments = *rc->arguments;
    if (rc->command) request.command = *rc->command;
    if (rc->target) request.target = *rc->target;
    if (rc->interpreter) request.interpreter = *rc->interpreter;
    if (rc->base_image) request.image = *rc->base_image;
    request.environment = rc->environment_variables;
    if (rc->metrics_regex) {
      request.metrics_regex = *rc->metrics_regex;
      request.metrics_regex_where = rc->metrics_regex_where;
    }
    request.metrics_from_stdout = rc->metrics_from_stdout;
    if (rc->max_files) request.limits.max_files = *rc->max_files;
    if (rc->max_mb) request.limits.max_bytes = *rc->max_mb * 1024 * 1024;
    if (rc->grace_seconds) request.grace_seconds = *rc->grace_seconds;
    if (rc->max_duration_seconds) request.max_duration_seconds = *rc->max_duration_seconds;
  }
  // The environment overrides the run configuration's limits.
  auto env_limits = archive::SnapshotLimits::from_env();
  if (std::getenv("AMLC_SNAPSHOT_MAX_FILES")) request.limits.max_files = env_limits.max_files;
  if (std::getenv("AMLC_SNAPSHOT_MAX_MB")) request.limits.max_bytes = env_limits.max_bytes;
  if (!flags.script_and_args.empty()) {
    request.script = flags.script_and_args[0];
    request.arguments.assign(flags.script_and_args.begin() + 1, flags.script_and_args.end());
  }
  if (!flags.target.empty()) request.target = flags.target;
  return file;
}

}  // namespace amlc::runs
