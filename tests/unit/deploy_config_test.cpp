// Inference and deployment config parsing: az ml schema, file:line:col errors, flags over file values.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

#include "amlc/core/error.hpp"
#include "amlc/deploy/config.hpp"
#include "support/harness.hpp"

using namespace amlc;
using namespace amlc::deploy;

namespace {

std::string usage_message(const std::function<void()>& fn, std::string* hint = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Usage);
    if (hint) *hint = e.hint();
    return e.what();
  }
  FAIL("expected a usage error");
  return {};
}

struct Src {
  test::TempDir dir;
  Src() {
    test::write_text(dir / "score.py", "def init(): pass\ndef run(d): return d\n");
    test::write_text(dir / "env.yml", "name: x\ndependencies:\n  - numpy\n  - pip:\n    - scikit-learn==1.2\n");
    test::write_text(dir / "steps.txt", "RUN echo hi\n");
  }
};

}  // namespace

TEST_CASE("inference config: az ml keys, both extraDockerfileSteps spellings, paths relative to the file") {
  Src s;
  Notes notes;
  for (const char* key : {"extraDockerfileSteps", "extraDockerFileSteps"}) {
    test::write_text(s.dir / "ic.json", std::string("{\n  \"entryScript\": \"score.py\",\n  \"runtime\": \"python\",\n"
                                                    "  \"condaFile\": \"env.yml\",\n  \"") +
                                            key + "\": \"steps.txt\",\n  \"baseImage\": null\n}\n");
    InferenceConfig ic = load_inference_config(s.dir / "ic.json", notes);
    CHECK(ic.entry_script == "score.py");
    CHECK(ic.entry_script_path == s.dir.path() / "score.py");
    REQUIRE(ic.extra_dockerfile_steps);
    CHECK(ic.extra_dockerfile_steps->filename() == "steps.txt");
    CHECK(ic.base_image == kDefaultBaseImage);
    CondaSpec p = ic.packages();
    CHECK(p.conda == std::vector<std::string>{"numpy"});
    CHECK(p.pip == std::vector<std::string>{"scikit-learn==1.2"});
  }
  CHECK(notes.empty());
}

TEST_CASE("inference config: unknown key -> file:line:col and a did-you-mean hint") {
  Src s;
  test::write_text(s.dir / "ic.json", "{\n  \"entryScript\": \"score.py\",\n  \"condaFlie\": \"env.yml\"\n}\n");
  Notes notes;
  std::string hint;
  std::string msg = usage_message([&] { load_inference_config(s.dir / "ic.json", notes); }, &hint);
  CHECK(msg.find("ic.json:3:3") != std::string::npos);
  CHECK(msg.find("condaFlie") != std::string::npos);
  CHECK(hint.find("condaFile") != std::string::npos);
}

TEST_CASE("inference config: missing entry script names the file, line and key") {
  Src s;
  test::write_text(s.dir / "ic.yml", "runtime: python\nentryScript: nope.py\n");
  Notes notes;
  std::string msg = usage_message([&] { load_inference_config(s.dir / "ic.yml", notes); });
  CHECK(msg.find("ic.yml:2:") != std::string::npos);
  CHECK(msg.find("entryScript") != std::string::npos);
  CHECK(msg.find("nope.py") != std::string::npos);
}

TEST_CASE("inference config: wrong type, spark runtime, GPU note, environment section") {
  Src s;
  Notes notes;
  test::write_text(s.dir / "a.json", "{\"entryScript\": 5}");
  CHECK(usage_message([&] { load_inference_config(s.dir / "a.json", notes); }).find("a.json:1:") != std::string::npos);
  test::write_text(s.dir / "b.json", "{\"entryScript\": \"score.py\", \"runtime\": \"spark-py\"}");
  CHECK(usage_message([&] { load_inference_config(s.dir / "b.json", notes); }).find("not supported locally") !=
        std::string::npos);
  test::write_text(s.dir / "c.yml",
                   "entryScript: score.py\nenableGpu: true\nbaseImageRegistry: {address: x}\nenvironment:\n"
                   "  name: my-env\n  version: 1\n  environmentVariables: {A: '1', B: 2}\n"
                   "  docker: {baseImage: 'other/base:1', enabled: true}\n"
                   "  python:\n    userManagedDependencies: false\n    condaDependencies:\n"
                   "      dependencies: [numpy, {pip: [flask]}]\n");
  InferenceConfig ic = load_inference_config(s.dir / "c.yml", notes);
  CHECK(ic.base_image == "other/base:1");
  CHECK(ic.environment_name == "my-env");
  CHECK(ic.environment_variables.at("B") == "2");
  CHECK(ic.packages().pip == std::vector<std::string>{"flask"});
  REQUIRE(notes.size() >= 3);
  bool gpu = false;
  for (const auto& n : notes) gpu = gpu || n.find("enableGpu") != std::string::npos;
  CHECK(gpu);
  test::write_text(s.dir / "d.yml", "entryScript: score.py\nenvironment:\n  docker:\n    baseDockerfile: 'FROM x'\n");
  CHECK(usage_message([&] { load_inference_config(s.dir / "d.yml", notes); }).find("d.yml:4:") != std::string::npos);
}

TEST_CASE("deployment config: local only, ports, resources, cloud-only keys warn") {
  Notes notes;
  DeployConfig dc = parse_deploy_config(
      "{\"computeType\": \"LOCAL\", \"port\": 8890, \"authEnabled\": true,\n"
      " \"containerResourceRequirements\": {\"cpu\": 0.5, \"memoryInGB\": 1.5}, \"workerCount\": 2,\n"
      " \"scoringTimeoutMs\": 5000, \"location\": \"westeurope\", \"environmentVariables\": {\"X\": \"y\"}}",
      "dc.json", notes);
  CHECK(dc.port == 8890);
  CHECK(dc.auth_enabled);
  CHECK(dc.cpu_cores == doctest::Approx(0.5));
  CHECK(dc.memory_gb == doctest::Approx(1.5));
  CHECK(dc.worker_count == 2);
  CHECK(dc.scoring_timeout_ms == 5000);
  CHECK(dc.environment_variables.at("X") == "y");
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("location") != std::string::npos);

  std::string m = usage_message([&] { parse_deploy_config("computeType: mir\nport: 80\n", "dc.yml", notes); });
  CHECK(m.find("dc.yml:1:") != std::string::npos);
  CHECK(m.find("computeType") != std::string::npos);
  CHECK(m.find("not supported locally") != std::string::npos);
  m = usage_message([&] { parse_deploy_config("computeType: local\nport: 70000\n", "dc.yml", notes); });
  CHECK(m.find("dc.yml:2:7") != std::string::npos);
  m = usage_message([&] { parse_deploy_config("computeType: local\nprot: 80\n", "dc.yml", notes); });
  CHECK(m.find("dc.yml:2:1") != std::string::npos);
  m = usage_message([&] { parse_deploy_config("computeType: local\ncontainerResourceRequirements: {cpu: -1}\n", "dc.yml", notes); });
  CHECK(m.find("containerResourceRequirements.cpu") != std::string::npos);
  m = usage_message([&] { parse_deploy_config("computeType: local\nenvironmentVariables: {'A-B': x}\n", "dc.yml", notes); });
  CHECK(m.find("A-B") != std::string::npos);
}

TEST_CASE("flags win over file values - entry script relative to the source directory") {
  Src s;
  test::write_text(s.dir / "src" / "pkg" / "main.py", "def init(): pass\ndef run(d): return d\n");
  test::write_text(s.dir / "ic.json", "{\"entryScript\": \"pkg/main.py\", \"sourceDirectory\": \"src\"}");
  Notes notes;
  InferenceConfig ic = load_inference_config(s.dir / "ic.json", notes);
  ic = apply_inference_flags(ic, {}, s.dir.path(), true);
  CHECK(ic.entry_script == "pkg/main.py");
  InferenceFlags f;
  f.base_image = "my/base:2";
  ic = apply_inference_flags(ic, f, s.dir.path(), true);
  CHECK(ic.base_image == "my/base:2");

  DeployConfig dc = parse_deploy_config("{\"computeType\": \"local\", \"port\": 1234, \"authEnabled\": false}", "dc", notes);
  DeployFlags df;
  df.port = 4321;
  df.auth_enabled = true;
  dc = apply_deploy_flags(dc, df);
  CHECK(dc.port == 4321);
  CHECK(dc.auth_enabled);
  df = {};
  df.compute_type = "mir";
  CHECK_THROWS_AS(apply_deploy_flags(dc, df), Error);
  // --compute-type aks turns key auth on (az's AKS default) unless authEnabled was given.
  df.compute_type = "aks";
  CHECK_FALSE(apply_deploy_flags(DeployConfig{}, {}).auth_enabled);
  CHECK(apply_deploy_flags(DeployConfig{}, df).auth_enabled);
  CHECK_FALSE(apply_deploy_flags(parse_deploy_config("authEnabled: false\n", "dc", notes), df).auth_enabled);
  df.auth_enabled = false;
  CHECK_FALSE(apply_deploy_flags(DeployConfig{}, df).auth_enabled);

  InferenceFlags bad;
  bad.entry_script = "missing.py";
  CHECK(usage_message([&] { apply_inference_flags({}, bad, s.dir.path(), false); }).find("--entry-script") !=
        std::string::npos);

  // The entry script must lie inside the source directory (by name: "..x.py" is a name inside it).
  test::write_text(s.dir / "src" / "..x.py", "def init(): pass\ndef run(d): return d\n");
  InferenceFlags inside;
  inside.source_directory = "src";
  inside.entry_script = "..x.py";
  CHECK(apply_inference_flags({}, inside, s.dir.path(), false).entry_script == "..x.py");
  InferenceFlags outside = inside;
  outside.entry_script = (s.dir / "score.py").string();
  CHECK(usage_message([&] { apply_inference_flags({}, outside, s.dir.path(), false); })
            .find("is outside the source directory") != std::string::npos);
}

TEST_CASE("stored configs round-trip through JSON") {
  Src s;
  InferenceFlags f;
  f.entry_script = (s.dir / "score.py").string();
  f.conda_file = (s.dir / "env.yml").string();
  InferenceConfig ic = apply_inference_flags({}, f, s.dir.path(), false);
  InferenceConfig back = InferenceConfig::from_json(ic.to_json());
  CHECK(back.to_json() == ic.to_json());
  DeployConfig dc;
  dc.port = 5;
  dc.worker_count = 3;
  dc.environment_variables["A"] = "b";
  CHECK(DeployConfig::from_json(dc.to_json()).to_json() == dc.to_json());
}

TEST_CASE("service names follow az ml's rule") {
  for (const char* ok : {"abc", "my-svc-1", "a23456789012345678901234567890ab"}) CHECK(is_service_name(ok));
  for (const char* bad : {"ab", "Abc", "1abc", "abc-", "a_bc", "a23456789012345678901234567890abc", ""})
    CHECK_FALSE(is_service_name(bad));
  CHECK_THROWS_AS(validate_service_name("Bad"), Error);
}

TEST_CASE("deployment config: az ACI and AKS configs deploy locally - AKS turns key auth on unless told otherwise") {
  Notes notes;
  DeployConfig aks = parse_deploy_config(
      "{\"computeType\": \"AKS\", \"autoScaler\": {\"autoscaleEnabled\": true}, \"numReplicas\": 2}", "aks.json", notes);
  CHECK(aks.auth_enabled);
  bool told = false;
  for (const auto& n : notes) told = told || (n.find("deployed locally") != std::string::npos && n.find("key auth is on") != std::string::npos);
  CHECK(told);
  notes.clear();
  CHECK_FALSE(parse_deploy_config("computeType: AKS\nauthEnabled: false\n", "aks.yml", notes).auth_enabled);
  CHECK_FALSE(parse_deploy_config("computeType: ACI\n", "aci.yml", notes).auth_enabled);
  CHECK(parse_deploy_config("computeType: ACI\nauthEnabled: true\n", "aci.yml", notes).auth_enabled);
  CHECK_FALSE(parse_deploy_config("computeType: local\n", "dc.yml", notes).auth_enabled);
}

TEST_CASE("deployment config: keys given in the file must be usable ones") {
  Notes notes;
  std::string m = usage_message([&] { parse_deploy_config("keys:\n  primaryKey: short\n", "dc.yml", notes); });
  CHECK(m.find("dc.yml:2:15: key 'keys.primaryKey'") != std::string::npos);
  DeployConfig keyed = parse_deploy_config("keys: {primaryKey: 12345678901, secondaryKey: 'abc-def-ghi'}\n", "dc.yml", notes);
  CHECK(keyed.primary_key == "12345678901");
  CHECK(keyed.secondary_key == "abc-def-ghi");
}

TEST_CASE("deployment config: every numeric key names file:line:col, the key and the range - huge numbers included") {
  Notes notes;
  const std::string huge(2000, '9');
  struct Case {
    std::string key;      // as written
    std::string path;     // as reported
    std::string expected;
  };
  const std::vector<Case> keys = {
      {"port", "port", "expected an integer port from 1 to 65535"},
      {"workerCount", "workerCount", "expected an integer worker count from 1 to 64"},
      {"scoringTimeoutMs", "scoringTimeoutMs", "expected an integer number of milliseconds from 1 to 86400000"},
  };
  for (const auto& k : keys) {
    for (const std::string& bad : std::vector<std::string>{huge, "-" + huge, "1e400", "0", "-1", "80.5", "99999999999999999999", "'abc'", "[1]",
                                   "true", ".inf", ".nan"}) {
      if (k.key != "port" && bad == "99999999999999999999") continue;
      std::string text = "computeType: local\n" + k.key + ": " + bad + "\n";
      std::string m = usage_message([&] { parse_deploy_config(text, "dc.yml", notes); });
      INFO(k.key << ": " << bad.substr(0, 20) << " -> " << m);
      CHECK(m.find("dc.yml:2:" + std::to_string(k.key.size() + 3) + ": key '" + k.path + "': " + k.expected + ", found ") !=
            std::string::npos);
      CHECK(m.find("null") == std::string::npos);
    }
  }
  CHECK(usage_message([&] { parse_deploy_config("port: " + huge + "\n", "dc.yml", notes); })
            .find("found a number too large to represent") != std::string::npos);
  CHECK(usage_message([&] { parse_deploy_config("port: 70000\n", "dc.yml", notes); }).find("found 70000") != std::string::npos);
  CHECK(parse_deploy_config("port: 8080.0\nworkerCount: 2\nscoringTimeoutMs: 86400000\n", "dc.yml", notes).port == 8080);

  for (const std::string key : {"cpu", "cpuLimit", "memoryInGB", "memoryInGBLimit"}) {
    for (const std::string& bad : std::vector<std::string>{huge, "1e300", "0", "-1", ".inf", ".nan", "'abc'"}) {
      std::string text = "containerResourceRequirements:\n  " + key + ": " + bad + "\n";
      std::string m = usage_message([&] { parse_deploy_config(text, "dc.yml", notes); });
      INFO(key << ": " << bad.substr(0, 20) << " -> " << m);
      CHECK(m.find("dc.yml:2:" + std::to_string(key.size() + 5) + ": key 'containerResourceRequirements." + key + "': expected a ") !=
            std::string::npos);
      CHECK(m.find("null") == std::string::npos);
    }
  }
  DeployConfig ok = parse_deploy_config("containerResourceRequirements: {cpu: 0.5, memoryInGB: 1024}\n", "dc.yml", notes);
  CHECK(ok.cpu_cores == doctest::Approx(0.5));
  CHECK(ok.memory_gb == doctest::Approx(1024));
  CHECK(usage_message([&] { parse_deploy_config("containerResourceRequirements: {gpu: " + huge + "}\n", "dc.yml", notes); })
            .find("containerResourceRequirements.gpu") != std::string::npos);

  // Text values given as numbers keep their text, digits and all, however long; .inf has no digits: it asks for quotes.
  DeployConfig env = parse_deploy_config("environmentVariables: {A: 12, B: 0.5, C: true}\n", "dc.yml", notes);
  CHECK(env.environment_variables.at("A") == "12");
  CHECK(env.environment_variables.at("B") == "0.5");
  CHECK(env.environment_variables.at("C") == "true");
  DeployConfig env_big = parse_deploy_config("environmentVariables:\n  A: " + huge + "\n  B: 1e400\n", "dc.yml", notes);
  CHECK(env_big.environment_variables.at("A") == huge);
  CHECK(env_big.environment_variables.at("B") == "1e400");
  std::string hint;
  std::string m = usage_message([&] { parse_deploy_config("environmentVariables:\n  A: .inf\n", "dc.yml", notes); }, &hint);
  CHECK(m.find("dc.yml:2:6: key 'environmentVariables.A'") != std::string::npos);
  CHECK(hint.find("quote") != std::string::npos);

  // The flags have the same bounds.
  for (auto set : std::vector<std::function<void(DeployFlags&)>>{
           [](DeployFlags& f) { f.cpu_cores = INFINITY; }, [](DeployFlags& f) { f.cpu_cores = NAN; },
           [](DeployFlags& f) { f.memory_gb = 1e300; }, [](DeployFlags& f) { f.scoring_timeout_ms = 1LL << 60; },
           [](DeployFlags& f) { f.worker_count = 65; }, [](DeployFlags& f) { f.port = 65536; }}) {
    DeployFlags f;
    set(f);
    CHECK_THROWS_AS(apply_deploy_flags(DeployConfig{}, f), Error);
  }
}

TEST_CASE("deployment config: a numeric setting has one rule - the file key and the flag say the same range") {
  Notes notes;
  struct Case {
    std::string file;                           // a config file with a bad value
    std::string key;                            // as reported
    std::function<void(DeployFlags&)> set_bad;  // the same bad value as a flag
    std::string flag;
    std::string bound;                          // the upper bound, as it must appear in both messages
  };
  auto text = [](double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return std::string(buf);
  };
  const std::vector<Case> cases = {
      {"port: 0\n", "port", [](DeployFlags& f) { f.port = 0; }, "--port", "65535"},
      {"workerCount: 65\n", "workerCount", [](DeployFlags& f) { f.worker_count = 65; }, "--worker-count",
       std::to_string(kMaxWorkerCount)},
      {"scoringTimeoutMs: 0\n", "scoringTimeoutMs", [](DeployFlags& f) { f.scoring_timeout_ms = 0; }, "--scoring-timeout-ms",
       std::to_string(kMaxScoringTimeoutMs)},
      {"containerResourceRequirements: {cpu: 2000}\n", "containerResourceRequirements.cpu",
       [](DeployFlags& f) { f.cpu_cores = 2000; }, "--cpu-cores", text(kMaxCpuCores)},
      {"containerResourceRequirements: {memoryInGBLimit: 0}\n", "containerResourceRequirements.memoryInGBLimit",
       [](DeployFlags& f) { f.memory_gb = 0; }, "--memory-gb", text(kMaxMemoryGb)},
  };
  for (const auto& c : cases) {
    std::string from_file = usage_message([&] { parse_deploy_config(c.file, "dc.yml", notes); });
    DeployFlags f;
    c.set_bad(f);
    std::string from_flag = usage_message([&] { apply_deploy_flags(DeployConfig{}, f); });
    INFO(from_file << " | " << from_flag);
    const std::string head = "key '" + c.key + "': expected ";
    auto at = from_file.find(head);
    REQUIRE(at != std::string::npos);
    auto end = from_file.find(", found ", at);
    REQUIRE(end != std::string::npos);
    const std::string expected = from_file.substr(at + head.size(), end - at - head.size());
    CHECK(from_flag == c.flag + ": expected " + expected);
    CHECK(expected.find(" " + c.bound) != std::string::npos);
  }
}

TEST_CASE("inference config: a number where text is expected keeps its text, however long, or asks for quotes for .inf") {
  Src s;
  Notes notes;
  const std::string huge(2000, '9');
  test::write_text(s.dir / "a.yml", "entryScript: score.py\nenvironment:\n  version: " + huge + "\n");
  CHECK(load_inference_config(s.dir / "a.yml", notes).environment_version == huge);
  test::write_text(s.dir / "b.yml", "entryScript: score.py\nenvironment:\n  version: 3\n  environmentVariables: {N: .nan}\n");
  std::string m = usage_message([&] { load_inference_config(s.dir / "b.yml", notes); });
  CHECK(m.find("b.yml:4:29: key 'environment.environmentVariables.N'") != std::string::npos);
  CHECK(m.find("null") == std::string::npos);
  test::write_text(s.dir / "c.yml", "entryScript: score.py\nenvironment:\n  version: 3\n");
  CHECK(load_inference_config(s.dir / "c.yml", notes).environment_version == "3");
}
