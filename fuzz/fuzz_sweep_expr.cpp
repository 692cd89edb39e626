// Fuzz target: the sweep search-space expression parser (sweep::parse_expression: "uniform(0.05, 0.1)",
// "choice(range(1, 10, 2))", "choice([16, 32], 'x')"...). Bad input must end in an amlc::Error.
// The input reaches the parser as in amlc: as the string value of `parameters.p` in a config document, so only
// what config::parse lets through (UTF-8 text without NUL bytes) is tried; other inputs are rejected (-1).
#include <cstddef>
#include <cstdint>
#include <string>

#include "amlc/config/document.hpp"
#include "amlc/core/error.hpp"
#include "amlc/sweep/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string yaml = "parameters:\n  p: '";
  for (size_t i = 0; i < size; ++i) {
    char c = static_cast<char>(data[i]);
    if (c == '\n' || c == '\r') return -1;  // a single-quoted YAML scalar would fold it
    yaml += c == '\'' ? std::string("''") : std::string(1, c);
  }
  yaml += "'\n";
  amlc::config::Document doc;
  std::string expr;
  try {
    doc = amlc::config::parse(yaml, "fuzz.yml");
    expr = doc.require_string("/parameters/p");
  } catch (const amlc::Error&) {
    return -1;
  }
  amlc::sweep::Parameter p;
  p.name = "p";
  try {
    amlc::sweep::parse_expression(doc, "/parameters/p", expr, p);
    (void)p.to_json().dump();
    (void)amlc::sweep::grid_size({p});
  } catch (const amlc::Error&) {
  }
  return 0;
}
