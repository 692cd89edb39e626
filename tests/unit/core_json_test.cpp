// parse_json / try_parse_json: JSON from sources amlc does not control, with a nesting bound.
#include <string>

#include <doctest/doctest.h>

#include "amlc/core/json.hpp"

using json = nlohmann::json;

TEST_CASE("core: parse_json refuses a document nested deeper than the bound before anything recurses into it") {
  // 1,000,000 levels: nlohmann parses it, but dump(), copies and comparisons of the value overflow the stack.
  std::string deep(1000000, '[');
  deep += std::string(1000000, ']');
  try {
    (void)amlc::parse_json(deep, amlc::kMaxJsonDepth, "metrics line");
    FAIL("a document nested 1,000,000 levels deep was parsed");
  } catch (const amlc::JsonTooDeep& e) {
    std::string what = e.what();
    CHECK(what.find("metrics line") != std::string::npos);
    CHECK(what.find("deeper than " + std::to_string(amlc::kMaxJsonDepth)) != std::string::npos);
  }
  CHECK_THROWS_AS(amlc::parse_json(deep), json::exception);  // handled where "not JSON" is handled
  CHECK(amlc::try_parse_json(deep).is_discarded());
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(100000, '}');
  CHECK_THROWS_AS(amlc::parse_json(objects), amlc::JsonTooDeep);
  CHECK(amlc::try_parse_json(objects).is_discarded());
  // Unclosed brackets count as well: the text is refused before the parser sees it.
  CHECK_THROWS_AS(amlc::parse_json(std::string(1000000, '[')), amlc::JsonTooDeep);

  // Exactly at the bound is accepted, one more is not.
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  CHECK(amlc::parse_json(nested(amlc::kMaxJsonDepth)).is_array());
  CHECK_THROWS_AS(amlc::parse_json(nested(amlc::kMaxJsonDepth + 1)), amlc::JsonTooDeep);
  CHECK(amlc::parse_json(nested(3), 3).dump() == "[[[]]]");
  CHECK_THROWS_AS(amlc::parse_json(nested(4), 3), amlc::JsonTooDeep);
  CHECK(amlc::json_depth("1", 10) == 0);
  CHECK(amlc::json_depth(R"({"a":[1,{"b":[]}],"c":{}})", 10) == 4);
}

TEST_CASE("core: parse_json does not count brackets inside strings and parses normal documents as json::parse does") {
  // 100,000 brackets inside a string (with escaped quotes and backslashes around them) are text, not nesting.
  std::string s = R"({"name":"\"\\[)" + std::string(100000, '[') + R"(\\","v":[1,"]]]{{{"]})";
  json j = amlc::parse_json(s);
  CHECK(j == json::parse(s));
  CHECK(j["name"].get<std::string>().size() == 100000 + 4);
  CHECK(amlc::json_depth(s, 10) == 2);
  for (std::string doc : {R"({"runId":"x_1","status":"Completed","tags":{"a":"b"},"metrics":[1,2.5,null,true]})",
                          "[]", "{}", "\"text\"", "3", "-1.5e3", "null", " [ 1 , [ 2 , [ 3 ] ] ] "}) {
    CHECK(amlc::parse_json(doc) == json::parse(doc));
    CHECK(amlc::try_parse_json(doc) == json::parse(doc));
  }
  // Not JSON: nlohmann's own error, unchanged.
  CHECK_THROWS_AS(amlc::parse_json("{\"a\":"), json::parse_error);
  CHECK_THROWS_AS(amlc::parse_json(""), json::parse_error);
  CHECK(amlc::try_parse_json("{\"a\":").is_discarded());
  CHECK(amlc::try_parse_json("]]]]").is_discarded());
}
