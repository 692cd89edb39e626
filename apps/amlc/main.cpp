// amlc: parses argv, runs one library call, renders the result, maps errors to exit codes.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "amlc/core/error.hpp"
#include "amlc/core/signals.hpp"
#include "commands.hpp"

namespace {

void print_error(const amlc::cli::Context& ctx, const std::string& message, const std::string& hint,
                 const std::string& detail) {
  const bool color = ctx.color();
  std::cerr << (color ? "\033[31mamlc: error:\033[0m " : "amlc: error: ") << message << "\n";
  if (!hint.empty()) std::cerr << "amlc: hint: " << hint << "\n";
  if (ctx.debug && !detail.empty()) std::cerr << "amlc: detail: " << detail << "\n";
}

std::string command_path(const CLI::App* app) {
  std::string path;
  for (const CLI::App* a = app; a; a = a->get_parent()) path = a->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  amlc::cli::Context ctx;
  ctx.stdout_tty = ::isatty(STDOUT_FILENO);
  ctx.stderr_tty = ::isatty(STDERR_FILENO);
  if (const char* o = std::getenv("AMLC_OUTPUT"); o && *o) ctx.output = o;

  CLI::App app{"amlc: the Azure ML v1 workflow (models, runs, sweeps, deployments) on one machine", "amlc"};
  app.set_version_flag("--version", std::string("amlc ") + AMLC_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  app.option_defaults()->always_capture_default();
  // First: CLI11 stores values in declaration order, and a bad value of a later option (-o bogus) fails the parse
  // before later flags are stored; --no-color must be known by then for the error message.
  app.add_flag("--no-color", ctx.no_color, "No colour in messages (also: NO_COLOR)");
  app.add_option("-w,--workspace", ctx.workspace_path, "Workspace directory (default: AMLC_WORKSPACE, the nearest .amlc/ upward, or the user default)");
  app.add_option("-o,--output", ctx.output, "Output format: json, yaml, table, tsv, none (default json, or AMLC_OUTPUT)")
      ->check(CLI::IsMember({"json", "yaml", "table", "tsv", "none"}));
  app.add_flag("--verbose", ctx.verbose, "Print progress and details on stderr");
  app.add_flag("--debug", ctx.debug, "Print debugging details with errors");
  amlc::cli::add_examples(&app, {"amlc workspace create .", "amlc model register -n mymodel -p model.pkl",
                                 "amlc model list -o table"});

  amlc::cli::add_workspace_commands(app, ctx);
  amlc::cli::add_model_commands(app, ctx);
  amlc::cli::add_run_commands(app, ctx);
  amlc::cli::add_experiment_commands(app, ctx);
  amlc::cli::add_snapshot_commands(app, ctx);
  amlc::cli::add_sweep_commands(app, ctx);
  amlc::cli::add_service_commands(app, ctx);
  amlc::cli::add_completion_command(app, ctx);

  try {
    app.parse(argc, argv);
    (void)ctx.format();  // AMLC_OUTPUT is checked here, before the command does anything (-o is checked by CLI11)
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e) == 0 ? 0 : 0;
  } catch (const CLI::CallForAllHelp& e) {
    app.exit(e);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    app.exit(e);
    return 0;
  } catch (const CLI::ParseError& e) {
    // Find the deepest subcommand that was parsed, to point at its --help.
    const CLI::App* deepest = &app;
    for (bool more = true; more;) {
      more = false;
      for (const CLI::App* sub : deepest->get_subcommands()) {
        deepest = sub;
        more = true;
        break;
      }
    }
    print_error(ctx, e.what(), "see '" + command_path(deepest) + " --help'", "");
    return amlc::exit_code(amlc::ErrorKind::Usage);
  } catch (const amlc::Error& e) {
    print_error(ctx, e.what(), e.hint(), e.detail());
    return amlc::exit_code(e.kind());
  }

  amlc::install_interrupt_handlers();
  try {
    if (!ctx.action) return 0;
    return ctx.action();
  } catch (const amlc::Error& e) {
    print_error(ctx, e.what(), e.hint(), e.detail());
    return amlc::exit_code(e.kind());
  } catch (const std::exception& e) {
    print_error(ctx, e.what(), "this is a bug in amlc; rerun with --debug and report it", "");
    return 1;
  }
}
