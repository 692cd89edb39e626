// What cmd_sweep.cpp shares with cmd_run.cpp: submitting a sweep, as `sweep submit` and as az ml's spelling
// `run submit-hyperdrive`.
#pragma once

#include <string>
#include <vector>

#include "context.hpp"

namespace amlc::cli {

struct SweepSubmitOpts {
  std::string config_file;
  std::string source_dir = ".";
  std::string experiment = "default";
  std::string runconfig;
  std::string target;
  long long seed = -1;
  bool async = false;
  std::vector<std::string> script_and_args;
};

// The options both spellings share: --source-directory, -e, --target, --async and SCRIPT [ARGS...].
void add_sweep_submit_options(CLI::App* sub, SweepSubmitOpts& o);

// Validates everything, writes the sweep, then runs it in the foreground (or hands it to a background process
// with --async). az_spelling: the HyperDrive file is looked up as az does, and hints name run submit-hyperdrive.
int submit_sweep(Context& c, const SweepSubmitOpts& o, bool az_spelling);

}  // namespace amlc::cli
