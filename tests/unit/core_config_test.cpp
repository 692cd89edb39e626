// Unit tests: core (files, locks, hashing, utils), config documents, output rendering, model ids.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "amlc/config/document.hpp"
#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/hash.hpp"
#include "amlc/core/util.hpp"
#include "amlc/output/render.hpp"
#include "amlc/registry/registry.hpp"
#include "support/harness.hpp"

using amlc::Error;
using amlc::ErrorKind;
using json = nlohmann::json;

namespace {

// Runs `fn`, expecting an amlc::Error; returns it.
template <class F>
Error expect_error(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected an amlc::Error");
  return Error(ErrorKind::General, "");
}

}  // namespace

TEST_CASE("exit codes are the documented ones") {
  CHECK(amlc::exit_code(ErrorKind::General) == 1);
  CHECK(amlc::exit_code(ErrorKind::Usage) == 2);
  CHECK(amlc::exit_code(ErrorKind::NotFound) == 3);
  CHECK(amlc::exit_code(ErrorKind::Conflict) == 4);
  CHECK(amlc::exit_code(ErrorKind::DockerUnavailable) == 5);
  CHECK(amlc::exit_code(ErrorKind::Damaged) == 6);
  CHECK(amlc::exit_code(ErrorKind::Interrupted) == 130);
}

TEST_CASE("write_file_atomic replaces content and leaves no temp files") {
  amlc::test::TempDir tmp;
  auto p = tmp / "rec.json";
  amlc::write_file_atomic(p, "one");
  amlc::write_file_atomic(p, "two");
  CHECK(amlc::read_file(p) == "two");
  int n = 0;
  for ([[maybe_unused]] const auto& e : amlc::fs::directory_iterator(tmp.path())) ++n;
  CHECK(n == 1);
  CHECK_FALSE(amlc::read_file_if_exists(tmp / "missing").has_value());
  CHECK(expect_error([&] { amlc::read_file(tmp / "missing"); }).kind() == ErrorKind::NotFound);
}

TEST_CASE("append_line_durable appends whole lines") {
  amlc::test::TempDir tmp;
  auto p = tmp / "journal.jsonl";
  amlc::append_line_durable(p, "{\"a\":1}");
  amlc::append_line_durable(p, "{\"a\":2}");
  CHECK(amlc::read_file(p) == "{\"a\":1}\n{\"a\":2}\n");
}

TEST_CASE("FileLock excludes another process") {
  amlc::test::TempDir tmp;
  auto lock_path = tmp / ".lock";
  auto counter = tmp / "counter";
  amlc::write_file_atomic(counter, "0");
  // 4 processes x 50 read-modify-write increments under the lock: no update is lost.
  std::vector<pid_t> kids;
  for (int k = 0; k < 4; ++k) {
    pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0; i < 50; ++i) {
        amlc::FileLock guard(lock_path);
        int v = std::stoi(amlc::read_file(counter));
        amlc::write_file_atomic(counter, std::to_string(v + 1));
      }
      _exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
  }
  CHECK(amlc::read_file(counter) == "200");
}

TEST_CASE("sha256 of known vectors, streamed files") {
  CHECK(amlc::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(amlc::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  amlc::test::TempDir tmp;
  std::string big(3 * 1024 * 1024 + 17, 'q');
  amlc::test::write_text(tmp / "big", big);
  CHECK(amlc::sha256_file(tmp / "big") == amlc::sha256_hex(big));
  CHECK(amlc::is_sha256_hex(amlc::sha256_hex("x")));
  CHECK_FALSE(amlc::is_sha256_hex("xyz"));
}

TEST_CASE("key=value parsing and name rules") {
  CHECK(amlc::parse_key_value("a=b=c", "--tag") == std::pair<std::string, std::string>{"a", "b=c"});
  CHECK(amlc::parse_key_value("a=", "--tag") == std::pair<std::string, std::string>{"a", ""});
  CHECK(expect_error([] { amlc::parse_key_value("a", "--tag"); }).kind() == ErrorKind::Usage);
  CHECK(expect_error([] { amlc::parse_key_value("=b", "--tag"); }).kind() == ErrorKind::Usage);
  bool had = true;
  CHECK(amlc::parse_key_value("k", "--tag", true, &had).first == "k");
  CHECK_FALSE(had);
  CHECK(amlc::is_model_name("a"));
  CHECK(amlc::is_model_name("Model-1.2_x"));
  CHECK_FALSE(amlc::is_model_name(""));
  CHECK_FALSE(amlc::is_model_name("-a"));
  CHECK_FALSE(amlc::is_model_name(".hidden"));
  CHECK_FALSE(amlc::is_model_name("a/b"));
  CHECK_FALSE(amlc::is_model_name("a b"));
  CHECK(amlc::is_model_name(std::string(255, 'a')));
  CHECK_FALSE(amlc::is_model_name(std::string(256, 'a')));
  CHECK(amlc::closest_match("primary_metric_nam", {"primary_metric_name", "max_total_runs"}) == "primary_metric_name");
  CHECK(amlc::closest_match("zzzzzz", {"primary_metric_name"}).empty());
}

TEST_CASE("model ids: NAME:VERSION, NAME:latest, NAME@ALIAS, NAME") {
  auto r = amlc::registry::parse_model_id("churn:3");
  CHECK(r.name == "churn");
  CHECK(r.version == 3);
  CHECK_FALSE(amlc::registry::parse_model_id("churn:latest").version.has_value());
  CHECK_FALSE(amlc::registry::parse_model_id("churn").version.has_value());
  CHECK(amlc::registry::parse_model_id("churn@prod").alias == "prod");
  CHECK(amlc::registry::parse_model_id("a.b-c:12").name == "a.b-c");
  CHECK(expect_error([] { amlc::registry::parse_model_id("churn:0"); }).kind() == ErrorKind::Usage);
  CHECK(expect_error([] { amlc::registry::parse_model_id("churn:-1"); }).kind() == ErrorKind::Usage);
  CHECK(expect_error([] { amlc::registry::parse_model_id(":1"); }).kind() == ErrorKind::Usage);
}

TEST_CASE("config documents: YAML and JSON values with types") {
  auto d = amlc::config::parse("a: 1\nb: 1.5\nc: true\nd: null\ne: '1'\nf: hello\ng: [1, two]\nh: {x: 1e-3}\n", "t.yml");
  CHECK(d.root()["a"] == 1);
  CHECK(d.root()["b"] == 1.5);
  CHECK(d.root()["c"] == true);
  CHECK(d.root()["d"].is_null());
  CHECK(d.root()["e"] == "1");
  CHECK(d.root()["f"] == "hello");
  CHECK(d.root()["g"] == json::array({1, "two"}));
  CHECK(d.root()["h"]["x"] == doctest::Approx(0.001));
  auto j = amlc::config::parse("{\n  \"entryScript\": \"score.py\",\n  \"port\": 32267\n}\n", "ic.json");
  CHECK(j.root()["entryScript"] == "score.py");
  CHECK(j.root()["port"] == 32267);
  CHECK(j.where("/port") == "ic.json:3:11");
}

TEST_CASE("config errors name file:line:col, the key and what was expected") {
  auto d = amlc::config::parse("policy:\n  type: Bandit\n  slack_factr: 0.1\nmax_total_runs: many\n", "sweep.yml");
  auto e = expect_error([&] { d.check_keys("/policy", {"type", "slack_factor", "slack_amount"}); });
  CHECK(e.kind() == ErrorKind::Usage);
  CHECK(std::string(e.what()) == "sweep.yml:3:3: unknown key 'policy.slack_factr'");
  CHECK(e.hint() == "did you mean 'slack_factor'?");
  auto e2 = expect_error([&] { d.get_int("/max_total_runs"); });
  CHECK(std::string(e2.what()) == "sweep.yml:4:17: key 'max_total_runs': expected an integer, found a string \"many\"");
  auto e3 = expect_error([] { amlc::config::parse("a: [1, 2\nb: 3\n", "bad.yml"); });
  CHECK(std::string(e3.what()).rfind("bad.yml:", 0) == 0);
  auto e4 = expect_error([] { amlc::config::parse("a: 1\na: 2\n", "dup.yml"); });
  CHECK(std::string(e4.what()) == "dup.yml:2:1: key 'a' appears twice");
  auto e5 = expect_error([&] { d.require_string("/missing"); });
  CHECK(std::string(e5.what()).find("key 'missing': is required") != std::string::npos);
  CHECK(amlc::config::Document::key_path("/a/0/b") == "a[0].b");
}

TEST_CASE("config files: missing file, directory, BOM, UTF-16") {
  amlc::test::TempDir tmp;
  CHECK(expect_error([&] { amlc::config::load_file(tmp / "nope.yml"); }).kind() == ErrorKind::NotFound);
  CHECK(expect_error([&] { amlc::config::load_file(tmp.path()); }).kind() == ErrorKind::Usage);
  amlc::test::write_text(tmp / "bom.json", "\xEF\xBB\xBF{\"a\": 1}");
  CHECK(amlc::config::load_file(tmp / "bom.json").root()["a"] == 1);
  amlc::test::write_text(tmp / "u16.json", std::string("\xFF\xFE{\0", 4));
  auto e = expect_error([&] { amlc::config::load_file(tmp / "u16.json"); });
  CHECK(std::string(e.what()).find("UTF-16") != std::string::npos);
}

TEST_CASE("output rendering: json, yaml, table, tsv, none") {
  using amlc::output::Format;
  using amlc::output::render;
  json rows = json::array({{{"name", "a"}, {"version", 1}, {"tags", {{"k", "v"}}}}, {{"name", "bb"}, {"version", 12}, {"tags", json::object()}}});
  CHECK(render(rows, Format::None).empty());
  CHECK(json::parse(render(rows, Format::Json)) == rows);
  std::vector<amlc::output::Column> cols = {{"Name", "/name"}, {"Version", "/version"}, {"Tags", "/tags"}};
  CHECK(render(rows, Format::Table, cols) == "Name  Version  Tags\n----  -------  ----\na     1        k=v\nbb    12\n");
  CHECK(render(rows, Format::Tsv, cols) == "a\t1\tk=v\nbb\t12\t\n");
  std::string y = render(json{{"s", "1"}, {"e", json::object()}, {"l", json::array()}}, Format::Yaml);
  CHECK(y.find("s: \"1\"") != std::string::npos);
  CHECK(y.find("e: {}") != std::string::npos);
  CHECK(y.find("l: []") != std::string::npos);
  CHECK(render(json{{"a", 1}}, Format::Table) == "a\n-\n1\n");
}
