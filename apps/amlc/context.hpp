// What every command shares: global options, the workspace (opened on first use), output rendering.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/output/render.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::cli {

using json = nlohmann::json;

struct Context {
  // Global options.
  std::string workspace_path;   // -w/--workspace ("" = not given)
  std::string output = "json";  // -o/--output
  bool verbose = false;
  bool debug = false;
  bool no_color = false;

  // Set by the chosen subcommand's callback; run by main after parsing.
  std::function<int()> action;

  bool stdout_tty = false;
  bool stderr_tty = false;

  Workspace& workspace();
  std::optional<fs::path> workspace_option() const;
  output::Format format() const;

  // Prints a result on stdout in the chosen format.
  void print(const json& value, const std::vector<output::Column>& columns = {}) const;
  // Progress and information for people: stderr, only with --verbose (or always when `always`).
  void info(const std::string& message, bool always = false) const;
  bool color() const;  // stderr may use colour

 private:
  std::optional<Workspace> ws_;
};

// Wires `fn` to run when `sub` is the chosen command.
void on_run(CLI::App* sub, Context& ctx, std::function<int(Context&)> fn);
// Appends an "Examples:" section to the command's --help.
void add_examples(CLI::App* sub, std::initializer_list<const char*> examples);
// A command group (model, run, ...): needs a subcommand; --help lists them.
CLI::App* add_group(CLI::App& parent, const std::string& name, const std::string& description,
                    std::initializer_list<const char*> examples);

}  // namespace amlc::cli
