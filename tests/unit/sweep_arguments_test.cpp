// How a trial's parameters become script arguments: formatting of values, and base arguments that name a
// parameter dropped.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "amlc/sweep/arguments.hpp"
#include "amlc/sweep/config.hpp"

using namespace amlc::sweep;

namespace {

const char* kAz = R"(sampling:
  type: random
  parameter_space:
  - {name: --penalty, expression: choice, values: [0.5, 1, 1.5]}
  - {name: learning_rate, expression: uniform, values: [0.05, 0.1]}
  - {name: --batch, expression: choice, values: [[16, 32, 64]]}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: 4
)";

// Parameters --lr and batch, in the native form.
const char* kTwo = "parameters:\n  --lr: uniform(0.01, 0.1)\n  batch: choice(16, 32)\nprimary_metric: {name: accuracy, goal: maximize}\nmax_total_runs: 4\n";

}  // namespace

TEST_CASE("sweep arguments: script arguments and value formatting") {
  SweepConfig c = parse_config_text(kAz, "hd.yml");
  json params{{"--penalty", 1}, {"learning_rate", 0.1}, {"--batch", 32}};
  CHECK(script_arguments(c, params) == std::vector<std::string>{"--penalty", "1", "--learning_rate", "0.1", "--batch", "32"});
  CHECK(format_value(json(1.0)) == "1.0");
  CHECK(format_value(json(0.1)) == "0.1");
  CHECK(format_value(json(1e-5)) == "1e-05");
  CHECK(format_value(json(0.30000000000000004)) == "0.30000000000000004");
  CHECK(std::stod(format_value(json(0.07123456789012345))) == 0.07123456789012345);
  CHECK(format_value(json(-3)) == "-3");
  CHECK(format_value(json("adam")) == "adam");
  CHECK(format_value(json(true)) == "True");
  CHECK(format_value(json::array({1, 2})) == "[1,2]");
  CHECK(argument_name("-x") == "-x");
  CHECK(argument_name("x") == "--x");
  CHECK(bare_parameter_name("--lr") == "lr");
  CHECK(bare_parameter_name("lr") == "lr");
  CHECK(bare_parameter_name("---") == "");
}

TEST_CASE("sweep arguments: base arguments naming a sweep parameter are replaced") {
  SweepConfig cfg = parse_config_text(kTwo, "t.yml");
  std::vector<std::string> dropped;
  auto out = remove_parameter_arguments(
      cfg, {"--epochs", "3", "--lr", "0.5", "--batch=8", "-v", "--data", "x.csv", "lr", "--lr", "-1e-3"}, &dropped);
  CHECK(out == std::vector<std::string>{"--epochs", "3", "-v", "--data", "x.csv", "lr"});
  CHECK(dropped == std::vector<std::string>{"--lr", "--batch", "--lr"});
  // A flag followed by another option keeps that option.
  CHECK(remove_parameter_arguments(cfg, {"--lr", "--epochs", "3"}) == std::vector<std::string>{"--epochs", "3"});
}
