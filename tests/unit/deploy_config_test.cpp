// Inference and deployment config parsing: az ml schema, file:line:col errors, flags over file values.
#include <doctest/doctest.h>

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

  std::string m = usage_message([&] { parse_deploy_config("computeType: aci\nport: 80\n", "dc.yml", notes); });
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
  df.compute_type = "aks";
  CHECK_THROWS_AS(apply_deploy_flags(dc, df), Error);

  InferenceFlags bad;
  bad.entry_script = "missing.py";
  CHECK(usage_message([&] { apply_inference_flags({}, bad, s.dir.path(), false); }).find("--entry-script") !=
        std::string::npos);
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
