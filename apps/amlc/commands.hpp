// Every command group of amlc, in the order `amlc --help` lists them. Each group lives in the file named after
// it: `amlc NAME ...` is wired in cmd_NAME.cpp by add_NAME_commands.
#pragma once

#include "context.hpp"

namespace amlc::cli {

void add_workspace_commands(CLI::App& app, Context& ctx);   // cmd_workspace.cpp
void add_model_commands(CLI::App& app, Context& ctx);       // cmd_model.cpp (deploy and package included)
void add_run_commands(CLI::App& app, Context& ctx);         // cmd_run.cpp (submit-hyperdrive included)
void add_experiment_commands(CLI::App& app, Context& ctx);  // cmd_experiment.cpp
void add_snapshot_commands(CLI::App& app, Context& ctx);    // cmd_snapshot.cpp
void add_sweep_commands(CLI::App& app, Context& ctx);       // cmd_sweep.cpp
void add_service_commands(CLI::App& app, Context& ctx);     // cmd_service.cpp
void add_completion_command(CLI::App& app, Context& ctx);   // cmd_completion.cpp

}  // namespace amlc::cli
