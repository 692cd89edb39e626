// Placeholder: filled in by the service work.
#include "context.hpp"

namespace amlc::cli {

void add_service_commands(CLI::App&, Context&) {}

}  // namespace amlc::cli
