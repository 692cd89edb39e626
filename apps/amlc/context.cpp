#include "context.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "amlc/core/error.hpp"

namespace amlc::cli {

std::optional<fs::path> Context::workspace_option() const {
  if (workspace_path.empty()) return std::nullopt;
  return fs::path(workspace_path);
}

Workspace& Context::workspace() {
  if (!ws_) ws_.emplace(Workspace::open(workspace_option()));
  return *ws_;
}

output::Format Context::format() const {
  auto f = output::parse_format(output);
  if (!f) usage_error("unknown output format '" + output + "'", "use one of: json, yaml, table, tsv, none");
  return *f;
}

void Context::print(const json& value, const std::vector<output::Column>& columns) const {
  std::string text = output::render(value, format(), columns);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

bool Context::color() const {
  const char* nc = std::getenv("NO_COLOR");  // no-color.org: set and not empty
  return stderr_tty && !no_color && !(nc && *nc);
}

void Context::info(const std::string& message, bool always) const {
  if (!always && !verbose) return;
  std::cerr << message << "\n";
}

void on_run(CLI::App* sub, Context& ctx, std::function<int(Context&)> fn) {
  sub->callback([&ctx, fn = std::move(fn)] { ctx.action = [&ctx, fn] { return fn(ctx); }; });
}

void add_examples(CLI::App* sub, std::initializer_list<const char*> examples) {
  std::string footer = "\nExamples:\n";
  for (const char* e : examples) footer += std::string("  ") + e + "\n";
  sub->footer(footer);
}

CLI::App* add_group(CLI::App& parent, const std::string& name, const std::string& description,
                    std::initializer_list<const char*> examples) {
  CLI::App* group = parent.add_subcommand(name, description);
  group->require_subcommand(1);
  add_examples(group, examples);
  return group;
}

}  // namespace amlc::cli
