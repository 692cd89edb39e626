// amlc model register|list|show|update|download|delete|alias|deploy|package
#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/util.hpp"
#include "amlc/deploy/deploy.hpp"
#include "amlc/registry/registry.hpp"
#include "amlc/storage/storage.hpp"
#include "amlc/runs/register.hpp"
#include "amlc/runs/store.hpp"
#include "commands.hpp"
#include "context.hpp"
#include "deploy_shared.hpp"

namespace amlc::cli {

namespace {

const std::vector<output::Column> kModelColumns = {{"Name", "/name"},       {"Version", "/version"},
                                                   {"Framework", "/framework"}, {"CreatedTime", "/createdTime"},
                                                   {"Tags", "/tags"},       {"Aliases", "/aliases"}};

// The model id from -i, or from a metadata file written by `model register -t`.
std::string model_id_from(const std::string& id, const std::string& metadata_file) {
  if (!id.empty() && !metadata_file.empty()) usage_error("give either -i/--model-id or -f/--model-metadata-file, not both");
  if (!id.empty()) return id;
  if (metadata_file.empty()) usage_error("a model is required", "pass -i NAME:VERSION (or NAME@ALIAS, NAME:latest)");
  return registry::model_id_from_metadata_file(metadata_file);
}

void add_model_id_options(CLI::App* sub, std::string& id, std::string& file) {
  sub->add_option("-i,--model-id", id, "Model id: NAME:VERSION, NAME:latest or NAME@ALIAS");
  sub->add_option("-f,--model-metadata-file", file, "JSON file written by 'model register -t' naming the model");
}

// -m ids plus the ids named by -f metadata files (az ml's --model-metadata-file), in that order.
std::vector<std::string> with_metadata_files(std::vector<std::string> ids, const std::vector<std::string>& files) {
  for (const auto& f : files) ids.push_back(registry::model_id_from_metadata_file(f));
  return ids;
}

}  // namespace

void add_model_commands(CLI::App& app, Context& ctx) {
  CLI::App* group = add_group(app, "model", "Register, find, download and deploy models (az ml model)",
                              {"amlc model register -n churn -p outputs/model.pkl --tag stage=dev",
                               "amlc model list -n churn -o table", "amlc model show -i churn@prod"});

  {
    struct Opts {
      registry::RegisterRequest req;
      std::string path, metadata_file, run_id, asset_path, experiment;
      std::vector<std::string> tags, properties;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("register", "Register a file or folder as the next version of a model");
    sub->add_option("-n,--name", o->req.name, "Model name (letters, digits, '-', '.', '_')")->required();
    sub->add_option("-p,--model-path", o->path, "File or folder to register");
    sub->add_option("-r,--run-id", o->run_id, "Register from this run's files (with --asset-path)");
    sub->add_option("--asset-path", o->asset_path, "Path inside the run, e.g. outputs/model.pkl (with --run-id)");
    sub->add_option("--experiment-name", o->experiment, "The run's experiment (checked if given)");
    sub->add_option("--tag", o->tags, "Tag key=value (repeatable; can be changed later)");
    sub->add_option("--property", o->properties, "Property key=value (repeatable; immutable)");
    sub->add_option("-d,--description", o->req.description, "Description");
    sub->add_option("--model-framework", o->req.framework, "Framework: TensorFlow, ScikitLearn, Onnx, Custom, Multi, ...");
    sub->add_option("--model-framework-version", o->req.framework_version, "Framework version");
    sub->add_option("-t,--output-metadata-file", o->metadata_file, "Write {\"modelId\": ...} to this JSON file");
    add_examples(sub, {"amlc model register -n churn -p model.pkl",
                       "amlc model register -n churn -p ./model_dir --tag stage=dev --property data=v3 -t model.json",
                       "amlc model register -n churn --model-framework ScikitLearn --model-framework-version 1.2 -p model.pkl",
                       "amlc model register -n churn --run-id churn_1732230000_1a2b3c4d --asset-path outputs/model.json"});
    on_run(sub, ctx, [o](Context& c) {
      o->req.tags = parse_key_values(o->tags, "--tag");
      o->req.properties = parse_key_values(o->properties, "--property");
      validate_model_name(o->req.name);
      Workspace& ws = c.workspace();
      const bool from_run = !o->run_id.empty() || !o->asset_path.empty();
      if (from_run) {
        if (!o->path.empty()) usage_error("give either -p/--model-path or --run-id with --asset-path, not both");
        if (o->run_id.empty()) usage_error("--asset-path needs --run-id");
        if (o->asset_path.empty()) usage_error("--run-id needs --asset-path", "e.g. --asset-path outputs/model.pkl");
      } else {
        if (o->path.empty()) usage_error("a model path is required", "pass -p/--model-path FILE_OR_FOLDER (or --run-id with --asset-path)");
        o->req.path = o->path;
      }
      if (!o->metadata_file.empty()) {
        std::string t = describe_file_type(o->metadata_file);
        if (t != "missing" && t != "file") usage_error("--output-metadata-file " + o->metadata_file + " is a " + t);
        fs::path parent = fs::absolute(o->metadata_file).parent_path();
        if (!fs::is_directory(parent)) not_found("folder " + parent.string() + " for --output-metadata-file does not exist");
      }
      json rec = from_run ? runs::register_from_run(ws, o->req, o->run_id, o->asset_path, o->experiment)
                          : registry::register_model(ws, o->req);
      if (!o->metadata_file.empty()) {
        json meta = {{"modelId", rec["id"]}, {"name", rec["name"]}, {"version", rec["version"]},
                     {"workspaceName", ws.name()}, {"workspacePath", ws.root().string()}};
        write_file_atomic(o->metadata_file, meta.dump(2) + "\n");
      }
      c.print(rec, kModelColumns);
      return 0;
    });
  }
  {
    struct Opts {
      registry::ListFilter f;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("list", "List model versions (newest first), with filters");
    sub->add_option("-n,--model-name", o->f.name, "Only this model");
    sub->add_option("--tag", o->f.tags, "Only versions with this tag: key or key=value (repeatable)");
    sub->add_option("--property", o->f.properties, "Only versions with this property: key or key=value (repeatable)");
    sub->add_option("--run-id", o->f.run_id, "Only versions registered from this run");
    sub->add_flag("-l,--latest", o->f.latest, "Only the latest version of each model");
    add_examples(sub, {"amlc model list -o table", "amlc model list -n churn --tag stage=prod --latest",
                       "amlc model list --property data -o tsv"});
    on_run(sub, ctx, [o](Context& c) {
      json arr = json::array();
      for (auto& m : registry::list(c.workspace(), o->f)) arr.push_back(std::move(m));
      c.print(arr, kModelColumns);
      return 0;
    });
  }
  {
    struct Opts {
      std::string id, file, name;
      int version = 0;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("show", "Show one model version (-i ID, or -n NAME [--version V])");
    add_model_id_options(sub, o->id, o->file);
    sub->add_option("-n,--model-name", o->name, "Model name (latest version unless --version)");
    sub->add_option("--version", o->version, "Version, with -n");
    add_examples(sub, {"amlc model show -i churn:3", "amlc model show -n churn", "amlc model show -i churn@prod -o yaml",
                       "amlc model show -f model.json"});
    on_run(sub, ctx, [o](Context& c) {
      json rec;
      if (!o->name.empty()) {
        if (!o->id.empty() || !o->file.empty()) usage_error("give either -n/--model-name or -i/--model-id, not both");
        rec = registry::show(c.workspace(), o->name, o->version > 0 ? std::optional<int>(o->version) : std::nullopt);
      } else {
        if (o->version) usage_error("--version goes with -n/--model-name");
        rec = registry::resolve(c.workspace(), model_id_from(o->id, o->file));
      }
      c.print(rec, kModelColumns);
      return 0;
    });
  }
  {
    struct Opts {
      std::string id, file, description;
      std::vector<std::string> add_tags, remove_tags, add_properties;
      bool has_description = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("update", "Change tags, add properties or set the description of a version");
    add_model_id_options(sub, o->id, o->file);
    sub->add_option("--add-tag", o->add_tags, "Add or change a tag key=value (repeatable)");
    sub->add_option("--remove-tag", o->remove_tags, "Remove a tag by key (repeatable)");
    sub->add_option("--add-property", o->add_properties, "Add a property key=value (repeatable; existing ones cannot change)");
    auto* d = sub->add_option("--description", o->description, "Replace the description");
    add_examples(sub, {"amlc model update -i churn:3 --add-tag stage=prod --remove-tag candidate",
                       "amlc model update -i churn@prod --description 'retrained on March data'"});
    on_run(sub, ctx, [o, d](Context& c) {
      registry::UpdateRequest req;
      req.add_tags = parse_key_values(o->add_tags, "--add-tag");
      req.remove_tags = o->remove_tags;
      req.add_properties = parse_key_values(o->add_properties, "--add-property");
      if (d->count()) req.description = o->description;
      if (req.add_tags.empty() && req.remove_tags.empty() && req.add_properties.empty() && !req.description) {
        usage_error("nothing to update", "pass --add-tag, --remove-tag, --add-property or --description");
      }
      c.print(registry::update(c.workspace(), model_id_from(o->id, o->file), req), kModelColumns);
      return 0;
    });
  }
  {
    struct Opts {
      std::string id, file, target;
      bool overwrite = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("download", "Write a model version's files to a folder, byte-identical");
    add_model_id_options(sub, o->id, o->file);
    sub->add_option("-t,--target-dir", o->target, "Folder to write the files into")->required();
    sub->add_flag("--overwrite", o->overwrite, "Replace files that already exist");
    add_examples(sub, {"amlc model download -i churn:3 -t ./model", "amlc model download -i churn@prod -t /srv/model --overwrite"});
    on_run(sub, ctx, [o](Context& c) {
      c.print(registry::download(c.workspace(), model_id_from(o->id, o->file), o->target, o->overwrite));
      return 0;
    });
  }
  {
    struct Opts {
      std::string id, file;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("delete", "Delete a model version (refused while a service uses it)");
    add_model_id_options(sub, o->id, o->file);
    add_examples(sub, {"amlc model delete -i churn:1"});
    on_run(sub, ctx, [o](Context& c) {
      c.print(storage::delete_model(c.workspace(), model_id_from(o->id, o->file)));
      return 0;
    });
  }
  {
    CLI::App* alias = add_group(*group, "alias", "Name versions (NAME@ALIAS works wherever a model id does)",
                                {"amlc model alias set churn prod 3", "amlc model show -i churn@prod",
                                 "amlc model alias delete churn prod"});
    struct Opts {
      std::string name, alias;
      int version = 0;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* set = alias->add_subcommand("set", "Point ALIAS of model NAME at VERSION (moves it if it exists)");
    set->add_option("name", o->name, "Model name")->required();
    set->add_option("alias", o->alias, "Alias")->required();
    set->add_option("version", o->version, "Version")->required();
    add_examples(set, {"amlc model alias set churn prod 3"});
    on_run(set, ctx, [o](Context& c) {
      if (o->version < 1) usage_error("version must be a positive number");
      c.print(registry::set_alias(c.workspace(), o->name, o->alias, o->version));
      return 0;
    });
    auto d = std::make_shared<Opts>();
    CLI::App* del = alias->add_subcommand("delete", "Remove ALIAS from model NAME");
    del->add_option("name", d->name, "Model name")->required();
    del->add_option("alias", d->alias, "Alias")->required();
    add_examples(del, {"amlc model alias delete churn prod"});
    on_run(del, ctx, [d](Context& c) {
      c.print(registry::delete_alias(c.workspace(), d->name, d->alias));
      return 0;
    });
  }
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
    CLI::App* sub = group->add_subcommand(
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
    CLI::App* sub = group->add_subcommand(
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
