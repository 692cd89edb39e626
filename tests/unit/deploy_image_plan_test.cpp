// Image plans: deterministic context and hash, Dockerfile content, model dir semantics, service records,
// model materialization.
#include <doctest/doctest.h>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "amlc/core/error.hpp"
#include "amlc/core/hash.hpp"
#include "amlc/deploy/config.hpp"
#include "amlc/deploy/image_plan.hpp"
#include "amlc/deploy/models.hpp"
#include "amlc/deploy/services.hpp"
#include "amlc/registry/blob_store.hpp"
#include "amlc/workspace/workspace.hpp"
#include "support/harness.hpp"

using namespace amlc;
using namespace amlc::deploy;

namespace {

struct App {
  test::TempDir dir;
  InferenceConfig ic;
  App() {
    test::write_text(dir / "src" / "score.py", "def init(): pass\ndef run(d): return d\n");
    test::write_text(dir / "src" / "helpers" / "util.py", "X = 1\n");
    test::write_text(dir / "src" / "__pycache__" / "junk.pyc", "junk");
    test::write_text(dir / "env.yml", "dependencies: [numpy, {pip: [requests]}]\n");
    InferenceFlags f;
    f.source_directory = (dir / "src").string();
    f.entry_script = "score.py";
    f.conda_file = (dir / "env.yml").string();
    ic = apply_inference_flags({}, f, dir.path(), false);
  }
};

struct TarEntry {
  std::string path;
  long long mtime;
  int uid;
  unsigned mode;
};

std::vector<TarEntry> list_tar(const std::string& tar) {
  std::vector<TarEntry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  REQUIRE(archive_read_open_memory(a, tar.data(), tar.size()) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK)
    out.push_back({archive_entry_pathname(e), static_cast<long long>(archive_entry_mtime(e)),
                   static_cast<int>(archive_entry_uid(e)), static_cast<unsigned>(archive_entry_perm(e))});
  archive_read_free(a);
  return out;
}

}  // namespace

TEST_CASE("image plan: same inputs give the same tar bytes and tag - any content change gives a new tag") {
  App app;
  ImagePlan a = make_image_plan(app.ic, "sha256:base1");
  ImagePlan b = make_image_plan(app.ic, "sha256:base1");
  CHECK(a.hash == b.hash);
  CHECK(a.tag == "amlc-img:" + a.hash.substr(0, 16));
  CHECK(pack_context(a) == pack_context(b));

  CHECK(make_image_plan(app.ic, "sha256:base2").hash != a.hash);  // base image changed
  test::write_text(app.dir / "src" / "helpers" / "util.py", "X = 2\n");
  CHECK(make_image_plan(app.ic, "sha256:base1").hash != a.hash);  // code changed
}

TEST_CASE("image plan: models are not part of a service image (a new model version needs no build)") {
  App app;
  ImagePlan plan = make_image_plan(app.ic, "sha256:base");
  for (const auto& f : plan.files) CHECK(f.path.rfind("azureml-models/", 0) != 0);
  CHECK(plan.dockerfile.find("azureml-models") == std::string::npos);
  // The service's model list only reaches the container (mounts and AZUREML_MODEL_DIR).
  CHECK(model_dir_env({{"m", 1}}) == "/var/azureml-app/azureml-models/m/1");
  CHECK(model_dir_env({{"m", 2}}) == "/var/azureml-app/azureml-models/m/2");
  CHECK(model_dir_env({{"a", 1}, {"b", 3}}) == "/var/azureml-app/azureml-models");
  CHECK(make_image_plan(app.ic, "sha256:base").hash == plan.hash);
}

TEST_CASE("image plan: Dockerfile layers and context layout") {
  App app;
  test::write_text(app.dir / "steps.txt", "RUN echo extra");
  app.ic.extra_dockerfile_steps = app.dir / "steps.txt";
  app.ic.base_image = "my/base:1";
  ImagePlan plan = make_image_plan(app.ic, "sha256:x");
  const std::string& d = plan.dockerfile;
  CHECK(d.find("FROM my/base:1\n") != std::string::npos);
  size_t deps = d.find("COPY deps/ /amlc/deps/");
  size_t extra = d.find("RUN echo extra\n");
  size_t server = d.find("COPY amlc-python/ /amlc/python/");
  size_t code = d.find("COPY app/ /var/azureml-app/");
  REQUIRE(deps != std::string::npos);
  REQUIRE(extra != std::string::npos);
  REQUIRE(server != std::string::npos);
  REQUIRE(code != std::string::npos);
  CHECK(deps < extra);
  CHECK(extra < server);
  CHECK(server < code);
  CHECK(d.find("amlc.conda-packages=\"numpy\"") != std::string::npos);
  CHECK(d.find("amlc.pip-packages=\"requests\"") != std::string::npos);
  CHECK(d.find("ENV AZUREML_ENTRY_SCRIPT=\"score.py\"") != std::string::npos);
  CHECK(d.find("CMD [\"python3\", \"-m\", \"amlc_scoring.server\"]") != std::string::npos);
  CHECK(d.find("RUN pip") == std::string::npos);

  std::vector<std::string> paths;
  for (const auto& f : plan.files) paths.push_back(f.path);
  CHECK(std::is_sorted(paths.begin(), paths.end()));
  auto has = [&](const std::string& p) { return std::find(paths.begin(), paths.end(), p) != paths.end(); };
  CHECK(has("Dockerfile"));
  CHECK(has("app/score.py"));
  CHECK(has("app/helpers/util.py"));
  CHECK(has("deps/conda.yml"));
  CHECK(has("amlc-python/amlc_scoring/server.py"));
  CHECK_FALSE(has("app/__pycache__/junk.pyc"));

  std::vector<TarEntry> entries = list_tar(pack_context(plan));
  REQUIRE(!entries.empty());
  for (const auto& e : entries) {
    CHECK(e.mtime == 0);
    CHECK(e.uid == 0);
  }
  bool dockerfile = false;
  for (const auto& e : entries) dockerfile = dockerfile || e.path == "Dockerfile";
  CHECK(dockerfile);
}

TEST_CASE("image plan: package bakes models and writes a context folder") {
  App app;
  test::write_text(app.dir / "model" / "model.json", "{}");
  PlanOptions po;
  po.repository = "amlc-pkg";
  po.bake_environment = true;
  po.baked_models.push_back({"m", 3, app.dir / "model"});
  ImagePlan plan = make_image_plan(app.ic, "", po);
  CHECK(plan.tag.rfind("amlc-pkg:", 0) == 0);
  CHECK(plan.dockerfile.find("COPY azureml-models/ /var/azureml-app/azureml-models/") != std::string::npos);
  CHECK(plan.dockerfile.find("AZUREML_MODEL_DIR=\"/var/azureml-app/azureml-models/m/3\"") != std::string::npos);
  write_context_dir(plan, app.dir / "out");
  CHECK(test::read_text(app.dir / "out" / "Dockerfile") == plan.dockerfile);
  CHECK(test::read_text(app.dir / "out" / "azureml-models" / "m" / "3" / "model.json") == "{}");
  CHECK_THROWS_AS(write_context_dir(plan, app.dir / "out"), Error);  // not empty: refused
}

TEST_CASE("service records: services_using_model, keys file mode, workspace check") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  json a = {{"name", "svc-a"}, {"state", "Healthy"}, {"port", 1}, {"imageTag", "x"}, {"createdTime", "t"},
            {"models", json::array({{{"name", "m"}, {"version", 1}}, {{"name", "n"}, {"version", 2}}})},
            {"authEnabled", true}};
  json b = a;
  b["name"] = "svc-b";
  b["authEnabled"] = false;
  b["models"] = json::array({{{"name", "m"}, {"version", 2}}});
  write_service(ws, a);
  write_service(ws, b);
  write_keys(ws, "svc-a", {"p1", "s1"});
  struct stat st {};
  REQUIRE(::stat(service_keys_path(ws, "svc-a").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(services_using_model(ws, "m", 1) == std::vector<std::string>{"svc-a"});
  CHECK(services_using_model(ws, "m", 2) == std::vector<std::string>{"svc-b"});
  CHECK(services_using_model(ws, "n", 1).empty());
  CHECK(list_service_records(ws).size() == 2);
  CHECK(read_keys(ws, "svc-a")->secondary == "s1");

  std::vector<std::string> problems;
  json stats;
  check_services(ws, problems, stats);
  CHECK(problems.empty());
  CHECK(stats["services"] == 2);
  test::write_text(service_record_path(ws, "svc-c"), "{not json");
  ::chmod(service_keys_path(ws, "svc-a").c_str(), 0644);
  check_services(ws, problems, stats);
  CHECK(problems.size() == 2);
}

TEST_CASE("model cache: materialized once from the blob store, then reused") {
  test::TempDir tmp;
  Workspace ws = Workspace::create(tmp.path(), "t");
  BlobStore blobs(ws.blobs_dir());
  StoredBlob b1 = blobs.put_bytes("weights");
  StoredBlob b2 = blobs.put_bytes("vocab");
  json rec = {{"name", "m"}, {"version", 4},
              {"files", json::array({{{"path", "model.bin"}, {"sha256", b1.sha256}, {"size", 7}, {"mode", "0644"}},
                                     {{"path", "sub/vocab.txt"}, {"sha256", b2.sha256}, {"size", 5}, {"mode", "0644"}}})}};
  fs::path dir = materialize_model(ws, rec);
  CHECK(dir == ws.root() / "cache" / "models" / "m" / "4");
  CHECK(test::read_text(dir / "model.bin") == "weights");
  CHECK(test::read_text(dir / "sub" / "vocab.txt") == "vocab");
  CHECK(materialize_model(ws, rec) == dir);
  // The same version number with other files (re-registered after a delete) is not served stale.
  json reused = rec;
  reused["files"] = json::array({{{"path", "model.bin"}, {"sha256", b2.sha256}, {"size", 5}, {"mode", "0644"}}});
  CHECK(materialize_model(ws, reused) == dir);
  CHECK(test::read_text(dir / "model.bin") == "vocab");
  CHECK_FALSE(fs::exists(dir / "sub"));
  json bad = rec;
  bad["version"] = 5;
  for (const char* unsafe : {"../escape", "sub/../../escape", "/abs/path", ".", ""}) {
    bad["files"][0]["path"] = unsafe;
    CHECK_THROWS_AS(materialize_model(ws, bad), Error);
    CHECK_FALSE(fs::exists(ws.root() / "cache" / "models" / "m" / "5"));
  }
  // Two dots inside a name are a name, not a way out.
  json dotted = rec;
  dotted["version"] = 6;
  dotted["files"] = json::array({{{"path", "weights..v2.bin"}, {"sha256", b1.sha256}, {"size", 7}, {"mode", "0644"}},
                                 {{"path", "a..b/vocab.txt"}, {"sha256", b2.sha256}, {"size", 5}, {"mode", "0644"}}});
  fs::path dotted_dir = materialize_model(ws, dotted);
  CHECK(test::read_text(dotted_dir / "weights..v2.bin") == "weights");
  CHECK(test::read_text(dotted_dir / "a..b" / "vocab.txt") == "vocab");
}

TEST_CASE("image plan: the source directory honours .amlignore (else .gitignore) as run snapshots do") {
  App app;
  test::write_text(app.dir / "src" / "data" / "big.csv", "1,2,3\n");
  test::write_text(app.dir / "src" / "notes.tmp", "scratch");
  test::write_text(app.dir / "src" / ".gitignore", "*.tmp\n");
  test::write_text(app.dir / "src" / ".git" / "HEAD", "ref: refs/heads/main\n");
  auto paths_of = [&] {
    std::vector<std::string> paths;
    for (const auto& f : make_image_plan(app.ic, "sha256:x").files) paths.push_back(f.path);
    return paths;
  };
  auto has = [](const std::vector<std::string>& v, const std::string& p) { return std::find(v.begin(), v.end(), p) != v.end(); };
  auto with_gitignore = paths_of();
  CHECK(has(with_gitignore, "app/data/big.csv"));
  CHECK_FALSE(has(with_gitignore, "app/notes.tmp"));
  CHECK_FALSE(has(with_gitignore, "app/.git/HEAD"));
  test::write_text(app.dir / "src" / ".amlignore", "data/\n");  // .amlignore wins over .gitignore
  auto with_amlignore = paths_of();
  CHECK_FALSE(has(with_amlignore, "app/data/big.csv"));
  CHECK(has(with_amlignore, "app/notes.tmp"));
  CHECK(has(with_amlignore, "app/score.py"));
}
