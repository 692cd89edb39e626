// Placeholder: filled in by the sweep work.
#include "context.hpp"

namespace amlc::cli {

void add_sweep_commands(CLI::App&, Context&) {}
void add_run_hyperdrive_command(CLI::App*, Context&) {}

}  // namespace amlc::cli
