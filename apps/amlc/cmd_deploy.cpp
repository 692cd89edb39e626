// amlc model deploy|package
#include "amlc/core/error.hpp"
#include "amlc/deploy/deploy.hpp"
#include "amlc/registry/registry.hpp"
#include "commands.hpp"
#include "context.hpp"

namespace amlc::cli {

// Shared with cmd_service.cpp (service update): the inline inference and deployment flags.
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

  deploy::InferenceFlags inference() const {
    deploy::InferenceFlags f;
    if (o_es && o_es->count()) f.entry_script = entry_script;
    if (o_sd && o_sd->count()) f.source_directory = source_directory;
    if (o_cf && o_cf->count()) f.conda_file = conda_file;
    if (o_bi && o_bi->count()) f.base_image = base_image;
    if (o_rt && o_rt->count()) f.runtime = runtime;
    if (o_ds && o_ds->count()) f.extra_docker_file_steps = extra_steps;
    return f;
  }
  deploy::DeployFlags deployment() const {
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
};

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

// For cmd_service.cpp (service update): adds the flags and returns a reader for their values.
std::function<std::pair<deploy::InferenceFlags, deploy::DeployFlags>()> add_update_flags(CLI::App* sub) {
  auto f = std::make_shared<DeployCliFlags>();
  add_inference_flags(sub, *f);
  add_deploy_flags(sub, *f);
  return [f] { return std::make_pair(f->inference(), f->deployment()); };
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

// -m ids plus the ids named by -f metadata files (az ml's --model-metadata-file), in that order.
std::vector<std::string> with_metadata_files(std::vector<std::string> ids, const std::vector<std::string>& files) {
  for (const auto& f : files) ids.push_back(registry::model_id_from_metadata_file(f));
  return ids;
}

void add_model_deploy_commands(CLI::App* model_group, Context& ctx) {
  {
    struct Opts {
      std::string name;
      std::vector<std::string> models, metadata_files;
      std::string ic, dc;
      bool overwrite = false;
      double timeout = 120;
      DeployCliFlags flags;
      CLI::Option *o_ic = nullptr, *o_dc = nullptr;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = model_group->add_subcommand(
        "deploy", "Deploy registered models as a web service on the local Docker engine (computeType local)");
    sub->add_option("-n,--name", o->name, "Service name (3-32 chars: a-z, 0-9, '-')")->required();
    sub->add_option("-m,--model", o->models, "Model id NAME:VERSION (or NAME@ALIAS, NAME:latest); repeatable");
    sub->add_option("-f,--model-metadata-file", o->metadata_files, "JSON file written by 'model register -t' naming a model; repeatable");
    o->o_ic = sub->add_option("--ic,--inference-config-file", o->ic, "Inference config (JSON or YAML)");
    o->o_dc = sub->add_option("--dc,--deploy-config-file", o->dc, "Deployment config (JSON or YAML; computeType local)");
    sub->add_flag("--overwrite", o->overwrite, "Replace the service if it exists");
    sub->add_option("--timeout", o->timeout, "Seconds to wait for the service to become healthy (default 120)");
    add_inference_flags(sub, o->flags);
    add_deploy_flags(sub, o->flags);
    add_examples(sub, {"amlc model deploy -n mysvc -m mymodel:1 --ic inferenceconfig.json --dc deploymentconfig.json",
                       "amlc model deploy -n mysvc -f model.json --ic inferenceconfig.json   # model.json from 'model register -t'",
                       "amlc model deploy -n mysvc -m mymodel:2 --es score.py --po 8890 --ae --overwrite   # key auth"});
    on_run(sub, ctx, [o](Context& c) {
      deploy::DeployRequest req;
      req.service = o->name;
      req.model_ids = with_metadata_files(o->models, o->metadata_files);
      if (o->o_ic->count()) req.inference_config_file = fs::path(o->ic);
      if (o->o_dc->count()) req.deploy_config_file = fs::path(o->dc);
      req.inference_flags = o->flags.inference();
      req.deploy_flags = o->flags.deployment();
      req.overwrite = o->overwrite;
      req.timeout_seconds = o->timeout;
      json rec = with_notes(c, [&](deploy::Notes& notes) { return deploy::deploy(c.workspace(), req, notes, progress_for(c)); });
      c.info("amlc: " + deploy::how_to_call(rec), true);
      c.print(rec, service_columns());
      return 0;
    });
  }
  {
    struct Opts {
      std::vector<std::string> models, metadata_files;
      std::string ic, image_name, output_path;
      DeployCliFlags flags;
      CLI::Option *o_ic = nullptr, *o_out = nullptr;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = model_group->add_subcommand(
        "package", "Build a self-contained scoring image with the models baked in (or write its Dockerfile and context)");
    sub->add_option("-m,--model", o->models, "Model id NAME:VERSION; repeatable");
    sub->add_option("-f,--model-metadata-file", o->metadata_files, "JSON file written by 'model register -t' naming a model; repeatable");
    o->o_ic = sub->add_option("--ic,--inference-config-file", o->ic, "Inference config (JSON or YAML)");
    sub->add_option("--in,--image-name", o->image_name, "Image name[:tag] (default amlc-pkg:<content hash>)");
    o->o_out = sub->add_option("--output-path", o->output_path, "Write Dockerfile + context to this (new or empty) folder instead");
    add_inference_flags(sub, o->flags);
    add_examples(sub, {"amlc model package -m mymodel:1 --ic inferenceconfig.json --image-name mymodel-svc:1",
                       "amlc model package -m mymodel:1 --es score.py --output-path ./pkg && docker build -t m ./pkg"});
    on_run(sub, ctx, [o](Context& c) {
      deploy::PackageRequest req;
      req.model_ids = with_metadata_files(o->models, o->metadata_files);
      if (o->o_ic->count()) req.inference_config_file = fs::path(o->ic);
      req.inference_flags = o->flags.inference();
      req.image_name = o->image_name;
      if (o->o_out->count()) req.output_path = fs::path(o->output_path);
      json out = with_notes(c, [&](deploy::Notes& notes) { return deploy::package(c.workspace(), req, notes, progress_for(c)); });
      c.print(out);
      return 0;
    });
  }
}

}  // namespace amlc::cli
