// Placeholder: filled in by the run work.
#include "context.hpp"

namespace amlc::cli {

void add_run_commands(CLI::App&, Context&) {}

}  // namespace amlc::cli
