#include "context.hpp"
namespace amlc::cli {
void add_model_commands(CLI::App&, Context&) {}
}  // namespace amlc::cli
