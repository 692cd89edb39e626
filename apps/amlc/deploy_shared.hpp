// What the deploy commands share: model deploy|package (cmd_model.cpp) and service (cmd_service.cpp).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "amlc/deploy/deploy.hpp"
#include "context.hpp"

namespace amlc::cli {

// The inline inference and deployment flags (model deploy takes both, model package the inference ones,
// service update both).
struct DeployCliFlags {
  std::string entry_script, source_directory, conda_file, base_image, runtime, extra_steps, compute_type;
  int port = 0;
  bool auth_enabled = false;
  long long scoring_timeout_ms = 0;
  int worker_count = 0;
  double cpu_cores = 0, memory_gb = 0;
  CLI::Option *o_es = nullptr, *o_sd = nullptr, *o_cf = nullptr, *o_bi = nullptr, *o_rt = nullptr, *o_ds = nullptr,
              *o_po = nullptr, *o_ae = nullptr, *o_tm = nullptr, *o_wc = nullptr, *o_cc = nullptr, *o_gb = nullptr,
              *o_cp = nullptr;

  // The values of the flags given on the command line (the others stay unset: the config files' or defaults).
  deploy::InferenceFlags inference() const;
  deploy::DeployFlags deployment() const;
};

// --es --sd --cf --bi --rt --ds: override the inference config.
void add_inference_flags(CLI::App* sub, DeployCliFlags& f);
// --po --ae --tm --wc --cc --gb --cp: override the deployment config.
void add_deploy_flags(CLI::App* sub, DeployCliFlags& f);

// Prints deploy warnings on stderr.
void print_notes(const Context& c, const deploy::Notes& notes);
// Runs fn with a notes list and prints its warnings on stderr, whether fn succeeds or throws.
json with_notes(const Context& c, const std::function<json(deploy::Notes&)>& fn);
// Build and health-wait progress: stderr with --verbose.
deploy::Progress progress_for(const Context& c);
// The table and tsv columns of a service record.
const std::vector<output::Column>& service_columns();

}  // namespace amlc::cli
