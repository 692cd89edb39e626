// Unit tests: core (files, locks, hashing, utils), config documents, output rendering, model ids.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <csignal>
#include <cmath>
#include <limits>
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
  CHECK(std::string(e2.what()) == "sweep.yml:4:17: key 'max_total_runs': expected an integer, found the string 'many'");
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

namespace {

// "a: &a [x, x, ...]", "b: &b [*a, *a, ...]", ...: `levels` anchors of `width` items, width^levels values.
std::string alias_bomb(int levels, int width) {
  std::string text;
  for (int i = 0; i < levels; ++i) {
    std::string name = "l" + std::to_string(i);
    text += name + ": &" + name + " [";
    for (int k = 0; k < width; ++k) text += (k ? "," : "") + (i == 0 ? std::string("x") : "*l" + std::to_string(i - 1));
    text += "]\n";
  }
  return text;
}

}  // namespace

TEST_CASE("config: an alias bomb is refused at its position instead of expanding") {
  // 10^8 values from 244 bytes; before the limit this ran for minutes and ended in std::bad_alloc.
  std::string bomb = alias_bomb(8, 10);
  CHECK(bomb.size() < 500);
  auto e = expect_error([&] { amlc::config::parse(bomb, "bomb.yml"); });
  CHECK(e.kind() == ErrorKind::Usage);
  std::string msg = e.what();
  CHECK_MESSAGE(msg.rfind("bomb.yml:", 0) == 0, msg);
  CHECK_MESSAGE(msg.find("the document expands to more than 16 MB of values and key paths") != std::string::npos, msg);
  CHECK(e.hint().find("aliases") != std::string::npos);
  // Aliases themselves are fine: a few repeated values.
  auto d = amlc::config::parse(alias_bomb(3, 4), "ok.yml");
  CHECK(d.root()["l2"].size() == 4);
  CHECK(d.root()["l2"][3][3][3] == "x");
  CHECK(d.where("/l2/3/3/3") == "ok.yml:1:16");  // the alias resolves to the anchored list's 4th item
}

TEST_CASE("config: plain scalars follow the YAML 1.2 core schema / huge numbers are errors naming the key") {
  auto d = amlc::config::parse(
      "i: 42\nneg: -7\npos: +5\nzeros: 007\nmax: 9223372036854775807\nmin: -9223372036854775808\n"
      "f: 1.5\ne: 1e5\ndot: .5\ntrail: 1.\nnege: -2.5E-3\ninf: .inf\nninf: -.Inf\nnan: .NaN\n"
      "hex: 0x1F\noct: 0o17\nyes: yes\nver: 1.2.3\nq: '123'\nbig_quoted: \"99999999999999999999\"\n"
      "sub: 1e-310\nplus: +\nsign_inf: +.inf\nsign_nan: -.nan\nexp_only: e5\n",
      "t.yml");
  const json& r = d.root();
  CHECK(r["i"] == 42);
  CHECK(r["i"].is_number_integer());
  CHECK(r["neg"] == -7);
  CHECK(r["pos"] == 5);
  CHECK(r["zeros"] == 7);
  CHECK(r["max"] == 9223372036854775807LL);
  CHECK(r["min"] == std::numeric_limits<long long>::min());
  CHECK(r["f"] == 1.5);
  CHECK(r["e"] == 100000.0);
  CHECK(r["e"].is_number_float());
  CHECK(r["dot"] == 0.5);
  CHECK(r["trail"] == 1.0);
  CHECK(r["nege"] == doctest::Approx(-0.0025));
  CHECK(r["inf"].get<double>() == std::numeric_limits<double>::infinity());
  CHECK(r["ninf"].get<double>() == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(r["nan"].get<double>()));
  CHECK(r["hex"] == "0x1F");
  CHECK(r["oct"] == "0o17");
  CHECK(r["yes"] == "yes");
  CHECK(r["ver"] == "1.2.3");
  CHECK(r["q"] == "123");
  CHECK(r["big_quoted"] == "99999999999999999999");
  CHECK(r["sub"].get<double>() > 0);
  CHECK(r["plus"] == "+");
  CHECK(r["sign_inf"].get<double>() == std::numeric_limits<double>::infinity());
  CHECK(r["sign_nan"] == "-.nan");
  CHECK(r["exp_only"] == "e5");

  // 30,000 digits crashed the process (std::regex recursion); 2,000 digits silently became inf, 25 a rounded float.
  // A number no 64-bit type holds is kept as written (an environment variable gets its digits), marked as such: a
  // key that needs a number says what it found.
  for (size_t digits : {size_t{25}, size_t{2000}, size_t{30000}}) {
    INFO(digits);
    std::string text = "sweep:\n  seed: " + std::string(digits, '9') + "\n";
    auto big = amlc::config::parse(text, "big.yml");
    CHECK(big.is_big_number("/sweep/seed"));
    CHECK(big.get_string("/sweep/seed") == std::string(digits, '9'));
    auto e = expect_error([&] { big.get_int("/sweep/seed"); });
    CHECK(e.kind() == ErrorKind::Usage);
    std::string msg = e.what();
    CHECK_MESSAGE(msg == "big.yml:2:9: key 'sweep.seed': expected an integer, found a number too large to represent: "
                         "999999999999...999999999999 (" + std::to_string(digits) + " characters)",
                  msg);
    CHECK(expect_error([&] { big.get_number("/sweep/seed"); }).kind() == ErrorKind::Usage);
  }
  auto d1 = amlc::config::parse("x: [1, 9223372036854775808]\n", "t.yml");
  CHECK(d1.root()["x"][1] == "9223372036854775808");
  CHECK(std::string(expect_error([&] { d1.get_int("/x/1"); }).what()) ==
        "t.yml:1:8: key 'x[1]': expected an integer, found a number too large to represent: 9223372036854775808");
  auto d2e = amlc::config::parse("lr: 1e400\ntiny: 1e-400\n", "t.yml");
  CHECK(std::string(expect_error([&] { d2e.get_number("/lr"); }).what()) ==
        "t.yml:1:5: key 'lr': expected a number, found a number too large to represent: 1e400");
  CHECK(d2e.get_number("/tiny") == 0.0);
  auto d3e = amlc::config::parse("lr: -" + std::string(400, '9') + ".5\n", "t.yml");
  CHECK(d3e.is_big_number("/lr"));
  CHECK_FALSE(d3e.is_big_number("/nothing"));
  auto d4e = amlc::config::parse(std::string(30000, '7') + "\n", "top.yml");
  CHECK(d4e.is_big_number(""));
  // A long number that fits a double is still a number.
  auto d2 = amlc::config::parse("p: 0." + std::string(30000, '3') + "\n", "t.yml");
  CHECK(d2.root()["p"].get<double>() == doctest::Approx(1.0 / 3));
  // get_int never converts a whole float outside the range of long long (that would be undefined behaviour).
  auto d3 = amlc::config::parse("n: 1e19\nm: -9.3e18\nk: 4e18\n", "t.yml");
  CHECK(std::string(expect_error([&] { d3.get_int("/n"); }).what()) ==
        "t.yml:1:4: key 'n': expected an integer, found 1e+19");
  CHECK(expect_error([&] { d3.get_int("/m"); }).kind() == ErrorKind::Usage);
  CHECK(d3.get_int("/k") == 4000000000000000000LL);
}

TEST_CASE("config: nesting is bounded (brackets, indentation and aliases) with the position named") {
  using amlc::config::kMaxNesting;
  auto nested = [](int depth) { return "a: " + std::string(depth, '[') + "1" + std::string(depth, ']') + "\n"; };
  CHECK(amlc::config::parse(nested(kMaxNesting - 1), "ok.yml").root()["a"].is_array());
  auto e = expect_error([&] { amlc::config::parse(nested(kMaxNesting + 1), "deep.yml"); });
  CHECK(e.kind() == ErrorKind::Usage);
  CHECK_MESSAGE(std::string(e.what()).rfind("deep.yml:1:" + std::to_string(kMaxNesting + 4) + ": key 'a", 0) == 0, e.what());
  CHECK(std::string(e.what()).find("nested more than 100 levels deep") != std::string::npos);
  // yaml-cpp's own guard fires first on very deep input; its "bad file" is reworded.
  std::string block_seq, flow_map;
  for (int i = 0; i < 100000; ++i) block_seq += "- ";
  block_seq += "x\n";
  for (int i = 0; i < 50000; ++i) flow_map += "{a: ";
  flow_map += "1" + std::string(50000, '}') + "\n";
  for (const std::string& text : {nested(100000), block_seq, flow_map}) {
    auto e2 = expect_error([&] { amlc::config::parse(text, "deep.yml"); });
    CHECK(e2.kind() == ErrorKind::Usage);
    CHECK_MESSAGE(std::string(e2.what()).find("deep.yml:") == 0, e2.what());
    CHECK_MESSAGE(std::string(e2.what()).find("nested more than 100 levels deep") != std::string::npos, e2.what());
  }
  // Aliases nest too: each anchor one level deeper than the last.
  std::string chain = "l0: &l0 [x]\n";
  for (int i = 1; i <= kMaxNesting + 5; ++i) {
    chain += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [*l" + std::to_string(i - 1) + "]\n";
  }
  auto e3 = expect_error([&] { amlc::config::parse(chain, "chain.yml"); });
  CHECK(std::string(e3.what()).find("nested more than 100 levels deep") != std::string::npos);
}

TEST_CASE("config: text that is not UTF-8 (or has a NUL byte) is an error at its line:col (it made JSON output throw later)") {
  // Found by fuzz_config: a Latin-1 byte went into the document and nlohmann's dump() threw type_error 316
  // ("this is a bug in amlc") when the sweep journal was written.
  auto e = expect_error([] { amlc::config::parse("a: 1\nprimary_metric_name: caf\xE9\n", "latin1.yml"); });
  CHECK(e.kind() == ErrorKind::Usage);
  CHECK(std::string(e.what()) == "latin1.yml:2:25: not valid UTF-8 (byte 0xE9)");
  CHECK(e.hint().find("save the file as UTF-8") != std::string::npos);
  CHECK(std::string(expect_error([] { amlc::config::parse("\xEF\xBB\xBF" "a: 1\n\xFF\xFF", "x.yml"); }).what()) ==
        "x.yml:2:1: not valid UTF-8 (byte 0xFF)");
  for (const char* bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "\xF8\x88\x80\x80\x80"}) {
    CHECK(expect_error([&] { amlc::config::parse(std::string("k: ") + bad + "\n", "t.yml"); }).kind() == ErrorKind::Usage);
  }
  // NUL bytes: not text, and leading ones made yaml-cpp decode the rest as UTF-32 into invalid strings (found by
  // fuzz_config: nlohmann's dump() threw in get_int's error message).
  auto e3 = expect_error([] { amlc::config::parse(std::string("\0\0\0cript: 1\n", 13), "nul.yml"); });
  CHECK(std::string(e3.what()) == "nul.yml:1:1: a NUL byte: this is not a text file");
  auto e4 = expect_error([] { amlc::config::parse(std::string("a: 1\nb: x\0y\n", 12), "nul.yml"); });
  CHECK(std::string(e4.what()) == "nul.yml:2:5: a NUL byte: this is not a text file");
  // Escapes cannot make invalid UTF-8 either: yaml-cpp refuses half a surrogate pair.
  auto e2 = expect_error([] { amlc::config::parse("name: \"x\\uD800y\"\n", "esc.yml"); });
  CHECK(std::string(e2.what()).rfind("esc.yml:1:", 0) == 0);
  // Well-formed UTF-8 of every length is fine, and so are whole-code-point escapes.
  auto d = amlc::config::parse("k: \"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \\u00e9 \\U0001F600\"\n\xC3\xA9t\xC3\xA9: 1\n", "ok.yml");
  CHECK(d.root()["k"] == "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xC3\xA9 \xF0\x9F\x98\x80");
  CHECK(d.root()["\xC3\xA9t\xC3\xA9"] == 1);
  CHECK(!d.root().dump().empty());
}

TEST_CASE("config files: fifos and devices are refused (exit 2) instead of hanging / documents are bounded") {
  amlc::test::TempDir tmp;
  amlc::fs::path fifo = tmp / "config.yml";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // In a child process: before the fix, opening the fifo blocked forever.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      amlc::config::load_file(fifo);
      ::_exit(0);
    } catch (const Error& e) {
      ::_exit(amlc::exit_code(e.kind()));
    } catch (...) {
      ::_exit(99);
    }
  }
  int status = 0;
  bool ended = amlc::test::wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 30);
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  CHECK(ended);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  auto e = expect_error([] { amlc::config::load_file("/dev/zero"); });
  CHECK(e.kind() == ErrorKind::Usage);
  CHECK(std::string(e.what()) == "config file /dev/zero is a character device, not a regular file");
  amlc::test::write_text(tmp / "big.yml", "a: " + std::string(amlc::kMaxConfigBytes, 'x') + "\n");
  CHECK(std::string(expect_error([&] { amlc::config::load_file(tmp / "big.yml"); }).what()).find("is larger than") !=
        std::string::npos);
  CHECK(std::string(expect_error([] { amlc::config::parse(std::string(amlc::kMaxConfigBytes + 1, ' '), "x.yml"); }).what())
            .find("x.yml is larger than") == 0);
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
