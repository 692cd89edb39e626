// Rendering command results: -o json|yaml|table|tsv|none.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlc::output {

using json = nlohmann::json;

enum class Format { Json, Yaml, Table, Tsv, None };

std::optional<Format> parse_format(const std::string& text);
const std::vector<std::string>& format_names();

// A table column: header and a JSON pointer into each row ("/name", "/tags").
struct Column {
  std::string header;
  std::string pointer;
};

// json: pretty (2 spaces) as az; yaml: block style; table: aligned columns for a list of objects (or
// one object as one row), using `columns` or, if empty, the object's scalar keys; tsv: the same cells
// tab-separated without a header; none: nothing. The result ends with '\n' unless empty.
std::string render(const json& value, Format format, const std::vector<Column>& columns = {});

std::string to_yaml(const json& value);
std::string cell_text(const json& v);  // how one value shows in a table/tsv cell

}  // namespace amlc::output
