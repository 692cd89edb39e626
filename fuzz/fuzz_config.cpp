// Fuzz target: the YAML/JSON config loader (config::parse) and the Document accessors every schema uses.
// Bad input must end in an amlc::Error; anything else (a crash, another exception, a timeout, memory) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "amlc/config/document.hpp"
#include "amlc/core/error.hpp"

namespace {

using amlc::config::Document;
using json = amlc::config::json;

void touch(const Document& doc, const std::string& pointer) {
  (void)doc.where(pointer);
  (void)doc.key_mark(pointer);
  (void)Document::key_path(pointer);
  auto attempt = [](auto&& fn) {
    try {
      fn();
    } catch (const amlc::Error&) {
    }
  };
  attempt([&] { (void)doc.get_string(pointer); });
  attempt([&] { (void)doc.get_number(pointer); });
  attempt([&] { (void)doc.get_int(pointer); });
  attempt([&] { (void)doc.get_bool(pointer); });
  attempt([&] { doc.check_keys(pointer, {"type", "name", "values"}); });
}

void walk(const Document& doc, const json& v, const std::string& pointer, size_t& budget) {
  if (budget == 0) return;
  --budget;
  touch(doc, pointer);
  if (v.is_object()) {
    for (const auto& [key, child] : v.items()) {
      std::string token;
      for (char c : key) token += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
      walk(doc, child, pointer + "/" + token, budget);
    }
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) walk(doc, v[i], pointer + "/" + std::to_string(i), budget);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    Document doc = amlc::config::parse(text, "fuzz.yml");
    size_t budget = 2000;  // accessors on the first values: enough to cover them, not quadratic in the input
    walk(doc, doc.root(), "", budget);
    (void)doc.root().dump();
  } catch (const amlc::Error&) {
  }
  return 0;
}
