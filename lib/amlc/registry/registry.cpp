#include "amlc/registry/registry.hpp"

namespace amlc::registry {

void check(const Workspace&, std::vector<std::string>&, json&) {}

}  // namespace amlc::registry
