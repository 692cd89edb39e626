// amlc completion bash|zsh|fish (placeholder; generated from the CLI definition)
#include "context.hpp"

namespace amlc::cli {

void add_completion_command(CLI::App&, Context&) {}

}  // namespace amlc::cli
