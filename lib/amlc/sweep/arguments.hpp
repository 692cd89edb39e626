// A trial's parameters as script arguments: every trial runs the sweep's script with its base arguments, minus
// those that name a sweep parameter, followed by "--name value" for each of its parameters (HyperDrive's
// parameter_space overrides the runconfig's arguments).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/sweep/config.hpp"

namespace amlc::sweep {

std::string argument_name(const std::string& name);  // "lr" -> "--lr", "-x" -> "-x"

// Value formatting: integers as integers; floats as the shortest string that round-trips, with ".0"
// added to whole numbers (Python repr: 1.0, 0.1, 1e-05 -> "1e-05"); strings verbatim; true/false/null as
// Python's True/False/None; lists and mappings as compact JSON.
std::string format_value(const json& v);

// Script arguments for one trial's parameters, in the config's parameter order:
// "--name" (or the name verbatim when it already starts with '-') followed by the formatted value.
std::vector<std::string> script_arguments(const SweepConfig& cfg, const json& params);
// Same, in the object's own key order.
std::vector<std::string> script_arguments(const json& params);

// Drops from `args` every "--name value" / "--name=value" whose bare name is a sweep parameter's; the dropped
// options ("--name") are added to *dropped.
std::vector<std::string> remove_parameter_arguments(const SweepConfig& cfg, const std::vector<std::string>& args,
                                                    std::vector<std::string>* dropped = nullptr);

}  // namespace amlc::sweep
