// The inference and deployment config schemas (config.hpp): parsing from files, the flags on top, the stored JSON
// form, validation, and the service name and key rules.
// One file (about 600 lines) on purpose: both schemas are read with the same value readers (scalar_text,
// string_map, note_ignored), and each numeric deployment setting has one NumberRule that the file key and its flag
// both obey; split in two, these would move to a shared internal header for no reader's gain.
#include "amlc/deploy/config.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <regex>

#include "amlc/config/document.hpp"
#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/util.hpp"

namespace amlc::deploy {

namespace {

using config::Document;

fs::path resolve_path(const fs::path& base, const std::string& p) {
  fs::path path(p);
  if (path.is_absolute()) return path.lexically_normal();
  return (base / path).lexically_normal();
}

// The numeric deployment settings: one rule each, applied to the deployment config keys and to the flags alike, so
// both accept the same values and state the same range (built from the bounds, never typed twice).
struct NumberRule {
  const char* noun;    // what the value is: "port", "number of CPU cores"
  bool integer;        // a whole number
  double min;          // the lowest value, or the bound it must exceed (min_inclusive false)
  bool min_inclusive;
  double max;          // the highest value
};
constexpr double kMaxGpus = 1024;
constexpr NumberRule kPortRule{"port", true, 1, true, 65535};
constexpr NumberRule kWorkerCountRule{"worker count", true, 1, true, kMaxWorkerCount};
constexpr NumberRule kScoringTimeoutRule{"number of milliseconds", true, 1, true, static_cast<double>(kMaxScoringTimeoutMs)};
constexpr NumberRule kCpuCoresRule{"number of CPU cores", false, 0, false, kMaxCpuCores};
constexpr NumberRule kMemoryGbRule{"memory size in GB", false, 0, false, kMaxMemoryGb};
constexpr NumberRule kGpuRule{"number of GPUs", false, 0, true, kMaxGpus};

// A bound as people write it: 65535, 86400000, 0.5.
std::string number_text(double v) {
  char buf[64];
  if (std::floor(v) == v && std::fabs(v) < 1e15) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  else std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// "an integer port from 1 to 65535", "a number of CPU cores greater than 0 and at most 1024".
std::string expected_text(const NumberRule& r) {
  std::string s = r.integer ? std::string("an integer ") + r.noun : std::string("a ") + r.noun;
  if (r.min_inclusive) return s + " from " + number_text(r.min) + " to " + number_text(r.max);
  return s + " greater than " + number_text(r.min) + " and at most " + number_text(r.max);
}

bool obeys(const NumberRule& r, double v) {
  return std::isfinite(v) && (r.min_inclusive ? v >= r.min : v > r.min) && v <= r.max && (!r.integer || std::floor(v) == v);
}

// A flag's value under its rule: returned as it is, or a usage error naming the flag and the range.
template <typename T>
T checked_flag(const NumberRule& r, const char* flag, T value) {
  if (!obeys(r, static_cast<double>(value))) usage_error(std::string(flag) + ": expected " + expected_text(r));
  return value;
}

// An integer under an integer rule at `pointer`; nullopt if absent or null. Anything else (a float with a
// fraction, a number out of range or too large for any integer type, a string, ...) is an error saying what was
// expected.
std::optional<long long> int_in_range(const Document& doc, const std::string& pointer, const NumberRule& rule) {
  const long long lo = static_cast<long long>(rule.min), hi = static_cast<long long>(rule.max);
  const std::string expected = expected_text(rule);
  const json* v = doc.find(pointer);
  if (!v || v->is_null()) return std::nullopt;
  std::optional<long long> out;
  if (v->is_number_integer()) {
    out = v->get<long long>();
  } else if (v->is_number_unsigned()) {
    if (v->get<unsigned long long>() <= static_cast<unsigned long long>(LLONG_MAX)) out = v->get<long long>();
  } else if (v->is_number_float()) {
    double d = v->get<double>();
    // Compared as doubles before any conversion: a huge value never reaches the (undefined) cast.
    if (std::isfinite(d) && std::floor(d) == d && d >= static_cast<double>(lo) && d <= static_cast<double>(hi))
      out = static_cast<long long>(d);
  }
  if (!out || *out < lo || *out > hi) doc.error(pointer, "expected " + expected + ", found " + doc.describe(pointer));
  return out;
}

// A number under a (non-integer) rule at `pointer`; nullopt if absent or null.
std::optional<double> number_in_range(const Document& doc, const std::string& pointer, const NumberRule& rule) {
  const json* v = doc.find(pointer);
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_number() && obeys(rule, v->get<double>())) return v->get<double>();
  doc.error(pointer, "expected " + expected_text(rule) + ", found " + doc.describe(pointer));
}

// A scalar written where text is expected (an environment variable value, a version, a package): numbers and
// booleans become their text (a number too large for any number type is kept as written). .inf and .nan have no
// digits to keep: ask for quotes.
std::string scalar_text(const Document& doc, const std::string& pointer, const json& v, const std::string& expected) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float() && !std::isfinite(v.get<double>()))
    doc.error(pointer, "expected " + expected + ", found " + doc.describe(pointer), "quote the value to keep it as written");
  if (v.is_number()) return v.dump();
  doc.error(pointer, "expected " + expected + ", found " + doc.describe(pointer));
}

std::map<std::string, std::string> string_map(const Document& doc, const std::string& pointer) {
  std::map<std::string, std::string> out;
  const json* obj = doc.find(pointer);
  if (!obj || obj->is_null()) return out;
  if (!obj->is_object()) doc.error(pointer, "expected a mapping of NAME: VALUE");
  static const std::regex name_re("^[A-Za-z_][A-Za-z0-9_]*$");
  for (const auto& [k, v] : obj->items()) {
    std::string child = pointer + "/" + k;
    if (!std::regex_match(k, name_re))
      doc.error(child, "'" + k + "' is not a valid environment variable name", "use letters, digits and '_'");
    out[k] = scalar_text(doc, child, v, "a string value for the environment variable");
  }
  return out;
}

// A cloud-only key that amlc accepts and ignores, with a note.
void note_ignored(const Document& doc, const std::string& pointer, Notes& notes, const std::string& why) {
  if (!doc.find(pointer)) return;
  notes.push_back(doc.where(pointer) + ": key '" + Document::key_path(pointer) + "' is ignored locally (" + why + ")");
}

bool truthy(const Document& doc, const std::string& pointer) {
  const json* v = doc.find(pointer);
  if (!v || v->is_null()) return false;
  if (v->is_boolean()) return v->get<bool>();
  doc.error(pointer, "expected true or false");
}

CondaSpec conda_from_json(const Document& doc, const std::string& pointer) {
  CondaSpec spec;
  const json* root = doc.find(pointer);
  if (!root || root->is_null()) return spec;
  if (!root->is_object()) doc.error(pointer, "expected a conda environment mapping (name, channels, dependencies)");
  doc.check_keys(pointer, {"name", "channels", "dependencies", "prefix", "variables"});
  if (const json* ch = doc.find(pointer + "/channels"); ch && !ch->is_null()) {
    if (!ch->is_array()) doc.error(pointer + "/channels", "expected a list of channel names");
    for (size_t i = 0; i < ch->size(); ++i) spec.channels.push_back(doc.require_string(pointer + "/channels/" + std::to_string(i)));
  }
  const json* deps = doc.find(pointer + "/dependencies");
  if (!deps || deps->is_null()) return spec;
  if (!deps->is_array()) doc.error(pointer + "/dependencies", "expected a list of packages (strings, or {pip: [...]})");
  for (size_t i = 0; i < deps->size(); ++i) {
    std::string p = pointer + "/dependencies/" + std::to_string(i);
    const json& d = (*deps)[i];
    if (d.is_string()) {
      spec.conda.push_back(d.get<std::string>());
    } else if (d.is_object()) {
      doc.check_keys(p, {"pip"});
      const json* pip = doc.find(p + "/pip");
      if (!pip || !pip->is_array()) doc.error(p + "/pip", "expected a list of pip requirement strings");
      for (size_t j = 0; j < pip->size(); ++j) spec.pip.push_back(doc.require_string(p + "/pip/" + std::to_string(j)));
    } else if (d.is_number()) {
      spec.conda.push_back(scalar_text(doc, p, d, "a package string"));
    } else {
      doc.error(p, "expected a package string or a {pip: [...]} mapping");
    }
  }
  return spec;
}

InferenceConfig parse_inference(const Document& doc, const fs::path& base_dir, Notes& notes) {
  if (!doc.root().is_object()) doc.error("", "expected a mapping of inference configuration keys (entryScript, sourceDirectory, ...)");
  doc.check_keys("", {"entryScript", "sourceDirectory", "runtime", "condaFile", "extraDockerfileSteps",
                      "extraDockerFileSteps", "baseImage", "baseImageRegistry", "enableGpu", "cudaVersion",
                      "description", "environment", "schemaFile", "dependencies"});
  if (doc.find("/extraDockerfileSteps") && doc.find("/extraDockerFileSteps") &&
      !doc.find("/extraDockerfileSteps")->is_null() && !doc.find("/extraDockerFileSteps")->is_null())
    doc.error("/extraDockerFileSteps", "both extraDockerfileSteps and extraDockerFileSteps are set", "keep one of them");

  InferenceConfig ic;
  std::optional<std::string> src = doc.get_string("/sourceDirectory");
  if (src && !src->empty()) {
    ic.source_directory = resolve_path(base_dir, *src);
    std::error_code ec;
    if (!fs::is_directory(*ic.source_directory, ec))
      doc.error("/sourceDirectory", "folder '" + ic.source_directory->string() + "' does not exist (" +
                                        describe_file_type(*ic.source_directory) + ")",
                "paths in an inference config are relative to the folder holding the config file");
  }
  const fs::path rel_base = ic.source_directory ? *ic.source_directory : base_dir;
  if (auto es = doc.get_string("/entryScript"); es && !es->empty()) {
    ic.entry_script = *es;
    ic.entry_script_path = resolve_path(rel_base, *es);
    std::error_code ec;
    if (!fs::is_regular_file(ic.entry_script_path, ec))
      doc.error("/entryScript", "entry script '" + ic.entry_script_path.string() + "' is not a file (" +
                                    describe_file_type(ic.entry_script_path) + ")",
                ic.source_directory ? "entryScript is relative to sourceDirectory"
                                    : "entryScript is relative to the folder holding the config file");
  }
  if (auto rt = doc.get_string("/runtime"); rt && !rt->empty()) {
    std::string r = to_lower(*rt);
    if (r == "spark-py") doc.error("/runtime", "runtime 'spark-py' is not supported locally", "use runtime: python");
    if (r != "python" && r != "python-slim") doc.error("/runtime", "unknown runtime '" + *rt + "'", "expected python (or python-slim)");
    ic.runtime = r;
  }
  if (auto cf = doc.get_string("/condaFile"); cf && !cf->empty()) {
    ic.conda_file = resolve_path(rel_base, *cf);
    std::error_code ec;
    if (!fs::is_regular_file(*ic.conda_file, ec))
      doc.error("/condaFile", "conda file '" + ic.conda_file->string() + "' is not a file (" +
                                  describe_file_type(*ic.conda_file) + ")");
    try {
      (void)load_conda_file(*ic.conda_file);
    } catch (const Error& e) {
      doc.error("/condaFile", std::string("the conda file is invalid: ") + e.what());
    }
  }
  for (const char* key : {"/extraDockerfileSteps", "/extraDockerFileSteps"}) {
    if (auto st = doc.get_string(key); st && !st->empty()) {
      ic.extra_dockerfile_steps = resolve_path(rel_base, *st);
      std::error_code ec;
      if (!fs::is_regular_file(*ic.extra_dockerfile_steps, ec))
        doc.error(key, "extra Dockerfile steps file '" + ic.extra_dockerfile_steps->string() + "' is not a file (" +
                           describe_file_type(*ic.extra_dockerfile_steps) + ")");
    }
  }
  if (auto bi = doc.get_string("/baseImage"); bi && !bi->empty()) ic.base_image = *bi;
  note_ignored(doc, "/baseImageRegistry", notes, "amlc uses images from the local Docker engine; docker pull or load the base image first");
  if (truthy(doc, "/enableGpu"))
    notes.push_back(doc.where("/enableGpu") + ": key 'enableGpu' is ignored locally (no GPU here: the service runs on CPU)");
  note_ignored(doc, "/cudaVersion", notes, "no GPU locally");
  note_ignored(doc, "/schemaFile", notes, "legacy image option");
  note_ignored(doc, "/dependencies", notes, "legacy image option; put files in sourceDirectory");
  if (auto d = doc.get_string("/description")) ic.description = *d;

  if (const json* env = doc.find("/environment"); env && !env->is_null()) {
    if (!env->is_object()) doc.error("/environment", "expected an environment mapping (name, version, python, docker, environmentVariables)");
    doc.check_keys("/environment", {"name", "version", "python", "docker", "environmentVariables", "inferencingStackVersion",
                                    "spark", "databricks", "r", "assetId", "tags", "properties"});
    if (auto n = doc.get_string("/environment/name")) {
      if (starts_with(to_lower(*n), "microsoft") || starts_with(to_lower(*n), "azureml"))
        doc.error("/environment/name", "environment names must not start with 'Microsoft' or 'AzureML'");
      ic.environment_name = *n;
    }
    if (const json* v = doc.find("/environment/version"); v && !v->is_null())
      ic.environment_version = scalar_text(doc, "/environment/version", *v, "a version string");
    ic.environment_variables = string_map(doc, "/environment/environmentVariables");
    if (auto s = doc.get_string("/environment/inferencingStackVersion")) ic.inferencing_stack_version = *s;
    for (const char* k : {"/environment/spark", "/environment/databricks", "/environment/r"})
      note_ignored(doc, k, notes, "not used by local deployments");
    if (doc.find("/environment/python")) {
      doc.check_keys("/environment/python", {"userManagedDependencies", "interpreterPath", "condaDependenciesFile",
                                             "baseCondaEnvironment", "condaDependencies"});
      ic.user_managed_dependencies = doc.get_bool("/environment/python/userManagedDependencies").value_or(false);
      note_ignored(doc, "/environment/python/interpreterPath", notes, "the scoring server runs python3 from the base image");
      note_ignored(doc, "/environment/python/baseCondaEnvironment", notes, "no conda locally");
      if (const json* cd = doc.find("/environment/python/condaDependencies"); cd && !cd->is_null()) {
        (void)conda_from_json(doc, "/environment/python/condaDependencies");
        ic.conda_dependencies = *cd;
      }
      if (auto cf = doc.get_string("/environment/python/condaDependenciesFile"); cf && !cf->empty()) {
        ic.conda_file = resolve_path(rel_base, *cf);
        std::error_code ec;
        if (!fs::is_regular_file(*ic.conda_file, ec))
          doc.error("/environment/python/condaDependenciesFile",
                    "conda file '" + ic.conda_file->string() + "' is not a file (" + describe_file_type(*ic.conda_file) + ")");
      }
    }
    if (doc.find("/environment/docker")) {
      doc.check_keys("/environment/docker", {"enabled", "baseImage", "baseDockerfile", "sharedVolumes", "shmSize",
                                             "arguments", "baseImageRegistry", "gpuSupport", "platform", "buildContext"});
      if (auto bi = doc.get_string("/environment/docker/baseImage"); bi && !bi->empty()) ic.base_image = *bi;
      if (const json* bd = doc.find("/environment/docker/baseDockerfile"); bd && !bd->is_null())
        doc.error("/environment/docker/baseDockerfile", "a base Dockerfile is not supported locally",
                  "build it with 'docker build -t NAME .' and set environment.docker.baseImage: NAME");
      for (const char* k : {"/environment/docker/baseImageRegistry", "/environment/docker/sharedVolumes",
                            "/environment/docker/shmSize", "/environment/docker/arguments", "/environment/docker/enabled",
                            "/environment/docker/gpuSupport", "/environment/docker/platform", "/environment/docker/buildContext"}) {
        const json* v = doc.find(k);
        if (v && !v->is_null()) note_ignored(doc, k, notes, "not used by local deployments");
      }
    }
    if (doc.find("/condaFile") && !ic.conda_dependencies.is_null())
      notes.push_back(doc.where("/condaFile") + ": condaFile is ignored because environment.python.condaDependencies is set");
  }
  return ic;
}

DeployConfig parse_deploy(const Document& doc, Notes& notes) {
  if (!doc.root().is_object()) doc.error("", "expected a mapping of deployment configuration keys (computeType, port, ...)");
  static const std::vector<std::string> cloud_only = {
      "location", "sslEnabled", "sslCertificate", "sslKey", "sslCname", "cname", "appInsightsEnabled", "dnsNameLabel",
      "vnetName", "subnetName", "vaultBaseUrl", "keyName", "keyVersion", "autoScaler", "dataCollection",
      "tokenAuthEnabled", "maxConcurrentRequestsPerContainer", "maxQueueWaitMs", "numReplicas", "gpuCores",
      "livenessProbeRequirements", "namespace", "computeTargetName", "versionName", "trafficPercentile",
      "isDefault", "isControlVersion", "description", "tags", "properties", "primaryKey", "secondaryKey"};
  std::vector<std::string> allowed = {"computeType", "port", "authEnabled", "containerResourceRequirements",
                                      "scoringTimeoutMs", "workerCount", "environmentVariables", "keys"};
  allowed.insert(allowed.end(), cloud_only.begin(), cloud_only.end());
  doc.check_keys("", allowed);

  bool aks = false;
  if (auto ct = doc.get_string("/computeType")) {
    std::string c = to_lower(*ct);
    if (c == "aci" || c == "aks") {
      aks = c == "aks";
      notes.push_back(doc.where("/computeType") + ": computeType '" + *ct +
                      "' is deployed locally: one container on this machine's Docker engine" +
                      (aks && !doc.find("/authEnabled") ? "; key auth is on, as az sets it for AKS" : ""));
    } else if (c != "local") {
      bool known = c == "aksendpoint" || c == "mir";
      doc.error("/computeType",
                known ? "computeType '" + *ct + "' is not supported locally" : "unknown deployment type '" + *ct + "'",
                "amlc deploys to the local Docker engine: set computeType: local (ACI and AKS configs work too)");
    }
  }
  DeployConfig dc;
  if (auto v = int_in_range(doc, "/port", kPortRule)) dc.port = static_cast<int>(*v);
  if (auto a = doc.get_bool("/authEnabled")) {
    dc.auth_enabled = *a;
    dc.auth_set = true;
  } else {
    dc.auth_enabled = aks;
  }
  if (doc.find("/containerResourceRequirements")) {
    doc.check_keys("/containerResourceRequirements", {"cpu", "memoryInGB", "cpuLimit", "memoryInGBLimit", "gpu"});
    auto cpu = number_in_range(doc, "/containerResourceRequirements/cpu", kCpuCoresRule);
    auto cpu_limit = number_in_range(doc, "/containerResourceRequirements/cpuLimit", kCpuCoresRule);
    auto mem = number_in_range(doc, "/containerResourceRequirements/memoryInGB", kMemoryGbRule);
    auto mem_limit = number_in_range(doc, "/containerResourceRequirements/memoryInGBLimit", kMemoryGbRule);
    dc.cpu_cores = cpu_limit ? cpu_limit : cpu;  // the limit is what Docker enforces
    dc.memory_gb = mem_limit ? mem_limit : mem;
    auto g = number_in_range(doc, "/containerResourceRequirements/gpu", kGpuRule);
    if (g && *g > 0)
      notes.push_back(doc.where("/containerResourceRequirements/gpu") + ": GPUs are ignored locally (no GPU here)");
  }
  dc.scoring_timeout_ms = int_in_range(doc, "/scoringTimeoutMs", kScoringTimeoutRule);
  if (auto v = int_in_range(doc, "/workerCount", kWorkerCountRule)) dc.worker_count = static_cast<int>(*v);
  dc.environment_variables = string_map(doc, "/environmentVariables");
  if (doc.find("/keys")) {
    doc.check_keys("/keys", {"primaryKey", "secondaryKey"});
    for (const char* k : {"/keys/primaryKey", "/keys/secondaryKey"}) {
      const json* v = doc.find(k);
      if (!v || v->is_null()) continue;
      std::string key = scalar_text(doc, k, *v, std::string("a key of ") + kServiceKeyRule);
      if (!is_valid_service_key(key)) doc.error(k, std::string("expected a key of ") + kServiceKeyRule);
      (std::string(k) == "/keys/primaryKey" ? dc.primary_key : dc.secondary_key) = key;
    }
  }
  for (const auto& k : cloud_only) {
    const json* v = doc.find("/" + k);
    if (v && !v->is_null()) note_ignored(doc, "/" + k, notes, "a cloud-only setting");
  }
  return dc;
}

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

std::optional<fs::path> opt_path(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return fs::path(j[key].get<std::string>());
}

}  // namespace

CondaSpec load_conda_file(const fs::path& file) {
  Document doc = config::load_file(file);
  if (doc.root().is_null()) return {};
  return conda_from_json(doc, "");
}

CondaSpec InferenceConfig::packages() const {
  if (!conda_dependencies.is_null()) {
    Document doc("environment.python.condaDependencies", conda_dependencies, {});
    return conda_from_json(doc, "");
  }
  if (conda_file) return load_conda_file(*conda_file);
  return {};
}

json InferenceConfig::to_json() const {
  json j;
  j["sourceDirectory"] = source_directory ? json(source_directory->string()) : json(nullptr);
  j["entryScript"] = entry_script;
  j["entryScriptPath"] = entry_script_path.string();
  j["condaFile"] = conda_file ? json(conda_file->string()) : json(nullptr);
  j["extraDockerfileSteps"] = extra_dockerfile_steps ? json(extra_dockerfile_steps->string()) : json(nullptr);
  j["runtime"] = runtime;
  j["baseImage"] = base_image;
  j["description"] = description;
  j["environmentName"] = environment_name;
  j["environmentVersion"] = environment_version;
  j["condaDependencies"] = conda_dependencies;
  j["userManagedDependencies"] = user_managed_dependencies;
  j["environmentVariables"] = environment_variables;
  j["inferencingStackVersion"] = inferencing_stack_version;
  return j;
}

InferenceConfig InferenceConfig::from_json(const json& j) {
  InferenceConfig ic;
  try {
    ic.source_directory = opt_path(j, "sourceDirectory");
    ic.entry_script = j.value("entryScript", "");
    ic.entry_script_path = j.value("entryScriptPath", "");
    ic.conda_file = opt_path(j, "condaFile");
    ic.extra_dockerfile_steps = opt_path(j, "extraDockerfileSteps");
    ic.runtime = j.value("runtime", "python");
    ic.base_image = j.value("baseImage", kDefaultBaseImage);
    ic.description = j.value("description", "");
    ic.environment_name = j.value("environmentName", "");
    ic.environment_version = j.value("environmentVersion", "");
    ic.conda_dependencies = j.value("condaDependencies", json(nullptr));
    ic.user_managed_dependencies = j.value("userManagedDependencies", false);
    ic.environment_variables = j.value("environmentVariables", std::map<std::string, std::string>{});
    ic.inferencing_stack_version = j.value("inferencingStackVersion", "");
  } catch (const json::exception& e) {
    fail(ErrorKind::Damaged, std::string("stored inference config is invalid: ") + e.what());
  }
  return ic;
}

json DeployConfig::to_json() const {
  json j;
  j["computeType"] = "local";
  j["port"] = opt(port);
  j["authEnabled"] = auth_enabled;
  j["cpuCores"] = opt(cpu_cores);
  j["memoryInGB"] = opt(memory_gb);
  j["scoringTimeoutMs"] = opt(scoring_timeout_ms);
  j["workerCount"] = opt(worker_count);
  j["environmentVariables"] = environment_variables;
  return j;  // keys are never stored here: they live in the 0600 keys file
}

DeployConfig DeployConfig::from_json(const json& j) {
  DeployConfig dc;
  try {
    if (j.contains("port") && !j["port"].is_null()) dc.port = j["port"].get<int>();
    dc.auth_enabled = j.value("authEnabled", false);
    dc.auth_set = j.contains("authEnabled");
    if (j.contains("cpuCores") && !j["cpuCores"].is_null()) dc.cpu_cores = j["cpuCores"].get<double>();
    if (j.contains("memoryInGB") && !j["memoryInGB"].is_null()) dc.memory_gb = j["memoryInGB"].get<double>();
    if (j.contains("scoringTimeoutMs") && !j["scoringTimeoutMs"].is_null())
      dc.scoring_timeout_ms = j["scoringTimeoutMs"].get<long long>();
    if (j.contains("workerCount") && !j["workerCount"].is_null()) dc.worker_count = j["workerCount"].get<int>();
    dc.environment_variables = j.value("environmentVariables", std::map<std::string, std::string>{});
  } catch (const json::exception& e) {
    fail(ErrorKind::Damaged, std::string("stored deployment config is invalid: ") + e.what());
  }
  return dc;
}

InferenceConfig parse_inference_config(const std::string& text, const std::string& source_name,
                                       const fs::path& base_dir, Notes& notes) {
  Document doc = config::parse(text, source_name);
  return parse_inference(doc, base_dir, notes);
}

InferenceConfig load_inference_config(const fs::path& file, Notes& notes) {
  Document doc = config::load_file(file);
  fs::path base = fs::absolute(file).parent_path();
  return parse_inference(doc, base, notes);
}

DeployConfig parse_deploy_config(const std::string& text, const std::string& source_name, Notes& notes) {
  Document doc = config::parse(text, source_name);
  return parse_deploy(doc, notes);
}

DeployConfig load_deploy_config(const fs::path& file, Notes& notes) {
  Document doc = config::load_file(file);
  return parse_deploy(doc, notes);
}

InferenceConfig apply_inference_flags(InferenceConfig ic, const InferenceFlags& f, const fs::path& cwd, bool had_file) {
  (void)had_file;
  auto check_file = [](const fs::path& p, const std::string& flag) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      usage_error(flag + ": '" + p.string() + "' is not a file (" + describe_file_type(p) + ")");
  };
  if (f.source_directory) {
    fs::path sd = resolve_path(cwd, *f.source_directory);
    std::error_code ec;
    if (!fs::is_directory(sd, ec))
      usage_error("--source-directory: '" + sd.string() + "' is not a folder (" + describe_file_type(sd) + ")");
    ic.source_directory = sd;
    if (!f.entry_script && !ic.entry_script.empty()) ic.entry_script_path = sd / ic.entry_script;
  }
  if (f.entry_script) {
    fs::path es;
    // A flag path is relative to the current directory, unless a source directory is set (az ml's rule).
    if (ic.source_directory) {
      fs::path in_src = resolve_path(*ic.source_directory, *f.entry_script);
      std::error_code ec;
      if (fs::is_regular_file(in_src, ec)) es = in_src;
      else es = resolve_path(cwd, *f.entry_script);
    } else {
      es = resolve_path(cwd, *f.entry_script);
    }
    check_file(es, "--entry-script");
    ic.entry_script_path = es;
    ic.entry_script = *f.entry_script;
  }
  if (f.conda_file) {
    fs::path cf = resolve_path(cwd, *f.conda_file);
    check_file(cf, "--conda-file");
    (void)load_conda_file(cf);
    ic.conda_file = cf;
    ic.conda_dependencies = nullptr;
  }
  if (f.extra_docker_file_steps) {
    fs::path st = resolve_path(cwd, *f.extra_docker_file_steps);
    check_file(st, "--extra-docker-file-steps");
    ic.extra_dockerfile_steps = st;
  }
  if (f.base_image) {
    if (f.base_image->empty()) usage_error("--base-image: expected an image name");
    ic.base_image = *f.base_image;
  }
  if (f.runtime) {
    std::string r = to_lower(*f.runtime);
    if (r == "spark-py") usage_error("--runtime spark-py is not supported locally", "use --runtime python");
    if (r != "python" && r != "python-slim") usage_error("--runtime: unknown runtime '" + *f.runtime + "'", "expected python");
    ic.runtime = r;
  }
  // The entry script's name inside the app: relative to the source directory when it lies inside it.
  if (!ic.entry_script_path.empty()) {
    if (ic.source_directory) {
      std::optional<fs::path> rel = lexically_inside(*ic.source_directory, ic.entry_script_path);
      if (!rel)
        usage_error("entry script '" + ic.entry_script_path.string() + "' is outside the source directory '" +
                        ic.source_directory->string() + "'",
                    "put the entry script inside the source directory");
      ic.entry_script = rel->generic_string();
    } else {
      ic.entry_script = ic.entry_script_path.filename().string();
    }
  }
  return ic;
}

DeployConfig apply_deploy_flags(DeployConfig dc, const DeployFlags& f) {
  if (f.compute_type) {
    std::string c = to_lower(*f.compute_type);
    if (c != "local" && c != "aci" && c != "aks")
      usage_error("--compute-type '" + *f.compute_type + "' is not supported locally",
                  "use --compute-type local (the default), aci or aks: all deploy to the local Docker engine");
    if (c == "aks" && !f.auth_enabled && !dc.auth_set) dc.auth_enabled = true;  // az's AKS default
  }
  if (f.port) dc.port = checked_flag(kPortRule, "--port", *f.port);
  if (f.auth_enabled) {
    dc.auth_enabled = *f.auth_enabled;
    dc.auth_set = true;
  }
  if (f.scoring_timeout_ms) dc.scoring_timeout_ms = checked_flag(kScoringTimeoutRule, "--scoring-timeout-ms", *f.scoring_timeout_ms);
  if (f.worker_count) dc.worker_count = checked_flag(kWorkerCountRule, "--worker-count", *f.worker_count);
  if (f.cpu_cores) dc.cpu_cores = checked_flag(kCpuCoresRule, "--cpu-cores", *f.cpu_cores);
  if (f.memory_gb) dc.memory_gb = checked_flag(kMemoryGbRule, "--memory-gb", *f.memory_gb);
  return dc;
}

void validate_inference_config(const InferenceConfig& ic) {
  if (ic.entry_script_path.empty())
    usage_error("no entry script: set entryScript in the inference config or pass --entry-script",
                "e.g. amlc model deploy -n svc -m model:1 --entry-script score.py");
  std::error_code ec;
  if (!fs::is_regular_file(ic.entry_script_path, ec))
    usage_error("entry script '" + ic.entry_script_path.string() + "' is not a file (" +
                describe_file_type(ic.entry_script_path) + ")");
  if (ic.source_directory && !fs::is_directory(*ic.source_directory, ec))
    usage_error("source directory '" + ic.source_directory->string() + "' is not a folder");
  if (ic.conda_file && !fs::is_regular_file(*ic.conda_file, ec))
    usage_error("conda file '" + ic.conda_file->string() + "' is not a file");
  if (ic.extra_dockerfile_steps && !fs::is_regular_file(*ic.extra_dockerfile_steps, ec))
    usage_error("extra Dockerfile steps file '" + ic.extra_dockerfile_steps->string() + "' is not a file");
}

bool is_service_name(const std::string& name) {
  static const std::regex re("^[a-z]([-a-z0-9]*[a-z0-9])?$");
  return name.size() >= 3 && name.size() <= 32 && std::regex_match(name, re);
}

bool is_valid_service_key(const std::string& key) {
  if (key.size() < 8 || key.size() > 256) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c > ' ' && c < 127 && c != '"' && c != '\'' && c != '\\'; });
}

void validate_service_name(const std::string& name) {
  if (!is_service_name(name))
    usage_error("invalid service name '" + name + "'",
                "service names are 3 to 32 characters: lowercase letters, digits and '-', starting with a letter "
                "and not ending with '-'");
}

}  // namespace amlc::deploy
