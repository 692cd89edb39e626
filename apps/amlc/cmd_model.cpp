#include "context.hpp"
namespace amlc::cli {
void add_model_commands(CLI::App& app, Context& ctx) { add_model_deploy_commands(app.add_subcommand("model", "Register and manage models"), ctx); }
}  // namespace amlc::cli
