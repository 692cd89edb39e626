// Placeholder: filled in by the deploy work.
#include "context.hpp"

namespace amlc::cli {

void add_model_deploy_commands(CLI::App*, Context&) {}

}  // namespace amlc::cli
