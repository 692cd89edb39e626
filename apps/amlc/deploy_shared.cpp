#include "deploy_shared.hpp"

namespace amlc::cli {

deploy::InferenceFlags DeployCliFlags::inference() const {
  deploy::InferenceFlags f;
  if (o_es && o_es->count()) f.entry_script = entry_script;
  if (o_sd && o_sd->count()) f.source_directory = source_directory;
  if (o_cf && o_cf->count()) f.conda_file = conda_file;
  if (o_bi && o_bi->count()) f.base_image = base_image;
  if (o_rt && o_rt->count()) f.runtime = runtime;
  if (o_ds && o_ds->count()) f.extra_docker_file_steps = extra_steps;
  return f;
}

deploy::DeployFlags DeployCliFlags::deployment() const {
  deploy::DeployFlags f;
  if (o_po && o_po->count()) f.port = port;
  // --ae alone (no value) means true.
  if (o_ae && o_ae->count()) f.auth_enabled = o_ae->results().empty() || o_ae->results()[0].empty() || auth_enabled;
  if (o_tm && o_tm->count()) f.scoring_timeout_ms = scoring_timeout_ms;
  if (o_wc && o_wc->count()) f.worker_count = worker_count;
  if (o_cc && o_cc->count()) f.cpu_cores = cpu_cores;
  if (o_gb && o_gb->count()) f.memory_gb = memory_gb;
  if (o_cp && o_cp->count()) f.compute_type = compute_type;
  return f;
}

void add_inference_flags(CLI::App* sub, DeployCliFlags& f) {
  f.o_es = sub->add_option("--es,--entry-script", f.entry_script, "Scoring script (init() and run()); overrides entryScript");
  f.o_sd = sub->add_option("--sd,--source-directory", f.source_directory, "Folder copied to /var/azureml-app in the image");
  f.o_cf = sub->add_option("--cf,--conda-file", f.conda_file, "Conda YAML (recorded; the base image must provide the packages)");
  f.o_bi = sub->add_option("--bi,--base-image", f.base_image, "Base image in the local engine (default amlc/python:3-bookworm)");
  f.o_rt = sub->add_option("--rt,--runtime", f.runtime, "Runtime: python");
  f.o_ds = sub->add_option("--ds,--extra-docker-file-steps", f.extra_steps, "File of extra Dockerfile lines");
}

void add_deploy_flags(CLI::App* sub, DeployCliFlags& f) {
  f.o_po = sub->add_option("--po,--port", f.port, "Host port on 127.0.0.1 (default: a free one)");
  f.o_ae = sub->add_option("--ae,--auth-enabled", f.auth_enabled,
                           "Require a key (Authorization: Bearer KEY): --ae alone or --ae true; --ae false turns it off "
                           "(default off; on for an AKS deployment config)")
               ->expected(0, 1)
               ->type_name("[BOOLEAN]")
               ->default_str("");  // no captured default: a bare --ae must leave an empty value (read as true)
  f.o_tm = sub->add_option("--tm,--scoring-timeout-ms", f.scoring_timeout_ms, "Scoring timeout in milliseconds");
  f.o_wc = sub->add_option("--wc,--worker-count", f.worker_count, "Scoring server worker processes (amlc extra; default 1)");
  f.o_cc = sub->add_option("--cc,--cpu-cores", f.cpu_cores, "CPU limit for the container");
  f.o_gb = sub->add_option("--gb,--memory-gb", f.memory_gb, "Memory limit for the container, in GB");
  f.o_cp = sub->add_option("--cp,--compute-type", f.compute_type,
                           "Compute type: local (default), aci or aks: all deploy locally; aks turns key auth on as az does");
}

void print_notes(const Context& c, const deploy::Notes& notes) {
  for (const auto& n : notes) c.info("amlc: warning: " + n, true);
}

json with_notes(const Context& c, const std::function<json(deploy::Notes&)>& fn) {
  deploy::Notes notes;
  try {
    json out = fn(notes);
    print_notes(c, notes);
    return out;
  } catch (...) {
    print_notes(c, notes);  // warnings explain failures too
    throw;
  }
}

deploy::Progress progress_for(const Context& c) {
  return [&c](const std::string& line) { c.info(line, false); };
}

const std::vector<output::Column>& service_columns() {
  static const std::vector<output::Column> cols = {{"Name", "/name"},         {"State", "/state"},
                                                   {"ScoringUri", "/scoringUri"}, {"Models", "/models"},
                                                   {"Image", "/imageTag"},     {"Updated", "/updatedTime"}};
  return cols;
}

}  // namespace amlc::cli
