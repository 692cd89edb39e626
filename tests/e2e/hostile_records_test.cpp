// Records in the workspace are hostile input: a run's script can rewrite any file in its run folder, and any
// process can write the workspace. A value nested 100,000 levels deep parsed, then printing or copying it overflowed
// the stack; now such a record is damaged (exit 6) like any other record amlc cannot read.
#include <doctest/doctest.h>

#include "support/harness.hpp"

namespace fs = std::filesystem;
namespace t = amlc::test;
using json = nlohmann::json;

namespace {

// `file` (a JSON object) with a first member nested 100,000 levels deep.
void nest_deep(const fs::path& file) {
  std::string text = t::read_text(file);
  REQUIRE(text.rfind("{", 0) == 0);
  t::write_text(file, R"({"zzDeep":)" + std::string(100000, '[') + std::string(100000, ']') + "," + text.substr(1));
}

}  // namespace

TEST_CASE("records: a run record holding a value nested 100,000 levels deep is damaged, not a crash") {
  t::Workspace ws;
  t::write_text(ws.dir() / "src/ok.py", "print('ok=1')\n");
  auto r = ws.run({"run", "submit-script", "-e", "x", "--source-directory", (ws.dir() / "src").string(), "ok.py"});
  REQUIRE_MESSAGE(r.code == 0, r.err.substr(0, 500));
  std::string id = r.json_out()["runId"];
  fs::path dir = fs::canonical(ws.root() / "runs" / id);
  nest_deep(dir / "run.json");
  auto show = ws.run({"run", "show", "-r", id});
  CHECK(show.code == 6);
  CHECK(show.err.find("run.json is damaged") != std::string::npos);
  CHECK(show.err.find("nested deeper than") != std::string::npos);
}

TEST_CASE("records: a model record holding a value nested 100,000 levels deep is damaged, not a crash") {
  t::Workspace ws;
  t::write_text(ws.dir() / "model.pkl", "weights");
  ws.ok({"model", "register", "-n", "m", "-p", (ws.dir() / "model.pkl").string()});
  nest_deep(ws.root() / "models" / "m" / "1.json");
  auto show = ws.run({"model", "show", "-n", "m"});
  CHECK(show.code == 6);
  CHECK(show.err.find("1.json is damaged") != std::string::npos);
  auto check = ws.run({"workspace", "check"});
  CHECK(check.code == 6);
  CHECK(check.out.find("1.json") != std::string::npos);
}
