// amlc service list|show|logs|run|get-keys|regen-key|update|reload|delete
#include <cstdio>
#include <functional>

#include "amlc/core/error.hpp"
#include "amlc/core/fs.hpp"
#include "amlc/core/json.hpp"
#include "amlc/deploy/deploy.hpp"
#include "amlc/deploy/services.hpp"
#include "commands.hpp"
#include "context.hpp"
#include "deploy_shared.hpp"

namespace amlc::cli {

void add_service_commands(CLI::App& app, Context& ctx) {
  CLI::App* group = add_group(app, "service", "Manage local web services deployed with 'model deploy'",
                              {"amlc service list -o table", "amlc service run -n mysvc -d '{\"data\": [[1, 2]]}'"});
  {
    CLI::App* sub = group->add_subcommand("list", "List services with their state reconciled with the Docker engine");
    auto f = std::make_shared<deploy::ServiceFilter>();
    sub->add_option("--model-name", f->model_name, "Only services serving some version of this model");
    sub->add_option("--model-id", f->model_id, "Only services serving this model version (NAME:VERSION)");
    sub->add_option("--compute-type", f->compute_type, "Only services of this compute type (amlc deploys 'local')");
    sub->add_option("--state", f->state, "Only services in this state (Healthy, Unhealthy, Failed, Stopped, Missing, Unknown, ...)");
    add_examples(sub, {"amlc service list", "amlc service list -o table", "amlc service list --model-name churn --state Healthy"});
    on_run(sub, ctx, [f](Context& c) {
      deploy::Notes notes;
      json out = deploy::list(c.workspace(), notes, *f);
      print_notes(c, notes);
      c.print(out, service_columns());
      return 0;
    });
  }
  {
    auto name = std::make_shared<std::string>();
    CLI::App* sub = group->add_subcommand("show", "Show a service: state, scoringUri, swaggerUri, models, image, port");
    sub->add_option("-n,--name", *name, "Service name")->required();
    add_examples(sub, {"amlc service show -n mysvc", "amlc service show -n mysvc -o yaml"});
    on_run(sub, ctx, [name](Context& c) {
      c.print(deploy::show(c.workspace(), *name), service_columns());
      return 0;
    });
  }
  {
    struct Opts {
      std::string name;
      int tail = 0;
      bool follow = false;
      CLI::Option* o_tail = nullptr;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("logs", "Print the service container's output (raw text, like docker logs)");
    sub->alias("get-logs");
    sub->add_option("-n,--name", o->name, "Service name")->required();
    o->o_tail = sub->add_option("-l,--tail,--num-lines", o->tail, "Only the last N lines");
    sub->add_flag("-f,--follow", o->follow, "Keep printing until the container stops (Ctrl-C to stop)");
    add_examples(sub, {"amlc service logs -n mysvc --tail 50", "amlc service logs -n mysvc --follow"});
    on_run(sub, ctx, [o](Context& c) {
      std::optional<int> tail;
      if (o->o_tail->count()) tail = o->tail;
      try {
        deploy::logs(c.workspace(), o->name, tail, o->follow, [](std::string_view d) {
          std::fwrite(d.data(), 1, d.size(), stdout);
          std::fflush(stdout);
        });
      } catch (const Error& e) {
        if (!(o->follow && e.kind() == ErrorKind::Interrupted)) throw;  // Ctrl-C ends --follow normally
      }
      return 0;
    });
  }
  {
    struct Opts {
      std::string name, data;
      double timeout = 60;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("run", "Send one scoring request (POST /score) and print the answer");
    sub->add_option("-n,--name", o->name, "Service name")->required();
    sub->add_option("-d,--input-data", o->data, "Request body (JSON), or @FILE to read it from a file")->required();
    sub->add_option("--timeout", o->timeout, "Seconds to wait for the answer (default 60)");
    add_examples(sub, {"amlc service run -n mysvc -d '{\"data\": [[1, 2, 3]]}'", "amlc service run -n mysvc -d @input.json"});
    on_run(sub, ctx, [o](Context& c) {
      std::string body = o->data;
      if (!body.empty() && body[0] == '@') body = read_input_file(body.substr(1), deploy::kMaxRequestBytes, "request body file");
      deploy::ScoreResult r = deploy::score(c.workspace(), o->name, body, o->timeout);
      json parsed = try_parse_json(r.body);
      if (r.status < 200 || r.status >= 300) {
        std::string msg = parsed.is_object() && parsed.contains("message") ? parsed["message"].dump() : r.body;
        fail(ErrorKind::General, "service '" + o->name + "' answered HTTP " + std::to_string(r.status) + ": " + msg,
             r.status == 401 ? "the service requires a key: see 'amlc service get-keys -n " + o->name + "'"
                             : "see 'amlc service logs -n " + o->name + "'");
      }
      c.print(parsed.is_discarded() ? json(r.body) : parsed);
      return 0;
    });
  }
  {
    auto name = std::make_shared<std::string>();
    CLI::App* sub = group->add_subcommand("get-keys", "Print the service's primary and secondary keys");
    sub->add_option("-n,--name", *name, "Service name")->required();
    add_examples(sub, {"amlc service get-keys -n mysvc"});
    on_run(sub, ctx, [name](Context& c) {
      c.print(deploy::get_keys(c.workspace(), *name));
      return 0;
    });
  }
  {
    struct Opts {
      std::string name, key, value;
      double timeout = 60;
      CLI::Option* o_value = nullptr;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("regen-key", "Regenerate (or set) the primary or secondary key; the running service switches to it without a restart");
    sub->add_option("-n,--name", o->name, "Service name")->required();
    sub->add_option("-k,--key", o->key, "Primary or Secondary")->required();
    o->o_value = sub->add_option("-s,--set-key", o->value, "Use this value instead of a random key");
    sub->add_option("--timeout", o->timeout, "Seconds to wait for the running service to accept the new key (default 60)");
    add_examples(sub, {"amlc service regen-key -n mysvc --key Primary", "amlc service regen-key -n mysvc -k Secondary -s s3cret-value"});
    on_run(sub, ctx, [o](Context& c) {
      std::optional<std::string> v;
      if (o->o_value->count()) v = o->value;
      c.print(deploy::regen_key(c.workspace(), o->name, o->key, v, o->timeout, progress_for(c)));
      return 0;
    });
  }
  {
    struct Opts {
      std::string name;
      std::vector<std::string> models;
      std::string ic, dc;
      double timeout = 120;
      DeployCliFlags flags;
      CLI::Option *o_ic = nullptr, *o_dc = nullptr;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand(
        "update", "Change a service's models or configuration (rebuilds only if the image content changed)");
    sub->add_option("-n,--name", o->name, "Service name")->required();
    sub->add_option("-m,--model", o->models, "Model ids replacing the current ones; repeatable");
    o->o_ic = sub->add_option("--ic,--inference-config-file", o->ic, "New inference config");
    o->o_dc = sub->add_option("--dc,--deploy-config-file", o->dc, "New deployment config");
    sub->add_option("--timeout", o->timeout, "Seconds to wait for health (default 120)");
    add_inference_flags(sub, o->flags);
    add_deploy_flags(sub, o->flags);
    add_examples(sub, {"amlc service update -n mysvc -m mymodel:3", "amlc service update -n mysvc --ic inferenceconfig.json --wc 2"});
    on_run(sub, ctx, [o](Context& c) {
      deploy::UpdateRequest req;
      req.service = o->name;
      req.model_ids = o->models;
      if (o->o_ic->count()) req.inference_config_file = fs::path(o->ic);
      if (o->o_dc->count()) req.deploy_config_file = fs::path(o->dc);
      req.inference_flags = o->flags.inference();
      req.deploy_flags = o->flags.deployment();
      req.timeout_seconds = o->timeout;
      json rec = with_notes(c, [&](deploy::Notes& notes) { return deploy::update(c.workspace(), req, notes, progress_for(c)); });
      c.info("amlc: " + deploy::how_to_call(rec), true);
      c.print(rec, service_columns());
      return 0;
    });
  }
  {
    struct Opts {
      std::string name;
      double timeout = 120;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("reload", "Recreate the service's container from the same image (no build)");
    sub->add_option("-n,--name", o->name, "Service name")->required();
    sub->add_option("--timeout", o->timeout, "Seconds to wait for health (default 120)");
    add_examples(sub, {"amlc service reload -n mysvc"});
    on_run(sub, ctx, [o](Context& c) {
      c.print(deploy::reload(c.workspace(), o->name, o->timeout, progress_for(c)), service_columns());
      return 0;
    });
  }
  {
    struct Opts {
      std::string name;
      bool delete_image = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand(
        "delete", "Delete a service: container, keys and record (exit 0 with \"deleted\": false if there is none)");
    sub->add_option("-n,--name", o->name, "Service name")->required();
    sub->add_flag("--delete-image", o->delete_image, "Also remove its image when no other service uses it");
    add_examples(sub, {"amlc service delete -n mysvc", "amlc service delete -n mysvc --delete-image"});
    on_run(sub, ctx, [o](Context& c) {
      c.print(deploy::remove(c.workspace(), o->name, o->delete_image));
      return 0;
    });
  }
}

}  // namespace amlc::cli
