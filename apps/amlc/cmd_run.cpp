// amlc run submit-script|submit-hyperdrive|list|show|logs|monitor-logs|cancel|update|download|download-logs|metrics
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "amlc/core/error.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/runs/executor.hpp"
#include "amlc/runs/metrics.hpp"
#include "amlc/runs/runconfig.hpp"
#include "amlc/runs/store.hpp"
#include "cmd_sweep.hpp"
#include "commands.hpp"
#include "context.hpp"

namespace amlc::cli {

namespace {

const std::vector<output::Column>& run_columns() {
  static const std::vector<output::Column> cols{{"RunId", "/runId"},         {"Experiment", "/experimentName"},
                                                {"Status", "/status"},       {"Target", "/target"},
                                                {"Created", "/createdUtc"},  {"ExitCode", "/exitCode"}};
  return cols;
}

// Prints the final record of a foreground run and turns its end into the exit code.
int finish_foreground(Context& c, const json& rec, bool interrupted_by_us) {
  c.print(rec, run_columns());
  std::string st = rec.value("status", "");
  std::string id = rec.value("runId", "");
  if (st == runs::kCompleted) return 0;
  if (st == runs::kCanceled && interrupted_by_us) {
    fail(ErrorKind::Interrupted, "run " + id + " canceled (interrupted)", "see its logs with 'amlc run logs -r " + id + "'");
  }
  std::string why = rec.value("error", json()).is_object() ? rec["error"].value("message", "") : "";
  fail(ErrorKind::General, "run " + id + " " + (st == runs::kCanceled ? std::string("was canceled") : "failed") +
                               (why.empty() ? "" : ": " + why),
       "see its logs with 'amlc run logs -r " + id + "'");
}

// run download / run download-logs: -r RUN -d DIR [--overwrite], the copy done by `fn`.
void add_download_command(CLI::App* group, Context& ctx, const std::string& name, const std::string& what,
                          const char* example,
                          json (*fn)(const Workspace&, const std::string&, const fs::path&, bool)) {
  struct Opts {
    std::string run;
    std::string dir;
    bool overwrite = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = group->add_subcommand(name, what);
  sub->add_option("-r,--run", o->run, "Run id")->required();
  sub->add_option("-d,--output-dir", o->dir, "Folder to copy the files into")->required();
  sub->add_flag("--overwrite", o->overwrite, "Replace files that exist");
  add_examples(sub, {example});
  on_run(sub, ctx, [o, fn](Context& c) {
    c.print(fn(c.workspace(), o->run, o->dir, o->overwrite), {{"RunId", "/runId"}, {"OutputDir", "/outputDir"}});
    return 0;
  });
}

// run logs / run monitor-logs: prints the run's log file, with `follow` until the run ends.
void print_run_logs(Context& c, const std::string& run, bool follow, const std::string& stream) {
  Workspace& ws = c.workspace();
  fs::path dir = runs::run_dir(ws, run);
  fs::path file = dir / "logs" / (stream == "all" ? "run.log" : stream + ".txt");
  runs::MetricsTail tail(file, 0);  // used as a plain incremental reader: a log line of any length is printed
  auto dump = [&] {
    for (const auto& line : tail.poll_lines()) {
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
    }
    std::fflush(stdout);
  };
  for (;;) {
    dump();
    if (!follow) break;
    json rec = runs::reconcile(ws, dir);
    if (runs::is_terminal(rec.value("status", ""))) {
      dump();
      break;
    }
    if (interrupted()) break;
    ::usleep(100000);
  }
  // A last line without '\n'.
  std::string rest;
  if (auto all = read_file_if_exists(file); all && tail.offset() < all->size() + 1) {
    size_t consumed = all->rfind('\n');
    rest = consumed == std::string::npos ? *all : all->substr(consumed + 1);
  }
  if (!rest.empty()) std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fflush(stdout);
}

// az ml's spelling of `amlc sweep submit` (cmd_sweep.cpp does the submitting).
void add_submit_hyperdrive_command(CLI::App* group, Context& ctx) {
  auto o = std::make_shared<SweepSubmitOpts>();
  CLI::App* sub = group->add_subcommand("submit-hyperdrive", "Submit a HyperDrive sweep (az ml's spelling of 'amlc sweep submit')");
  sub->add_option("--hyperdrive-configuration-name", o->config_file, "The HyperDrive YAML file")->required();
  sub->add_option("-c,--run-configuration-name", o->runconfig,
                  "Run configuration (required, as az): a file, or NAME for .azureml/NAME.runconfig")
      ->required();
  sub->add_option("--seed", o->seed, "Sampler seed (default: the file's seed, else random; recorded)");
  add_sweep_submit_options(sub, *o);
  add_examples(sub, {"amlc run submit-hyperdrive --hyperdrive-configuration-name hd.yml -c sklearn -e tune train.py",
                     "amlc run submit-hyperdrive --hyperdrive-configuration-name hd.yml -c .azureml/train.runconfig --async train.py --epochs 3"});
  on_run(sub, ctx, [o](Context& c) { return submit_sweep(c, *o, true); });
}

void add_run_subcommands(CLI::App* group, Context& ctx) {
  {
    struct Opts {
      std::string experiment = "default";
      std::string source_dir = ".";
      std::string runconfig;
      std::string target;
      std::string run_id;
      bool async = false;
      std::vector<std::string> tags;
      std::vector<std::string> script_and_args;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("submit-script", "Run a script (or any program) from a snapshot of its folder");
    sub->add_option("-e,--experiment-name", o->experiment, "Experiment (default: default)");
    sub->add_option("--source-directory", o->source_dir, "Folder to snapshot and run in (default: .)");
    sub->add_option("-c,--run-configuration-name", o->runconfig,
                    "Run configuration: a file, or NAME for .azureml/NAME.runconfig");
    sub->add_option("--target,--ct", o->target, "Where to run: local (default) or docker");
    sub->add_option("--run-id", o->run_id, "Run id (default: <experiment>_<unix time>_<8 hex>)");
    sub->add_flag("--async", o->async, "Return at once; the run continues in the background");
    sub->add_option("--tag,--tags", o->tags, "Tag key=value (repeatable)")->allow_extra_args(false);
    sub->add_option("script", o->script_and_args,
                    "SCRIPT [ARGS...]: everything after SCRIPT is passed to it verbatim");
    sub->positionals_at_end(true);
    add_examples(sub, {"amlc run submit-script -e mnist train.py --lr 0.1 --epochs 3",
                       "amlc run submit-script -c local --target docker --async train.py",
                       "amlc run submit-script --source-directory src -c .azureml/train.runconfig"});
    on_run(sub, ctx, [o](Context& c) {
      runs::RunRequest req;
      req.experiment = o->experiment;
      req.source_dir = o->source_dir;
      req.run_id = o->run_id;
      runs::apply_run_config(req, {o->runconfig, o->script_and_args, o->target});
      req.tags = parse_key_values(o->tags, "--tag");
      if (req.script.empty() && req.command.empty()) {
        usage_error("no script given", "amlc run submit-script [options] SCRIPT [ARGS...] (or 'script'/'command' in -c)");
      }
      Workspace& ws = c.workspace();
      json rec = runs::create_run(ws, req);
      std::string id = rec["runId"];
      if (o->async) {
        runs::spawn_supervisor(ws, id);
        c.info("amlc: run " + id + " submitted; follow it with 'amlc run logs -r " + id + " --follow'", true);
        c.print(runs::load_run(ws, id), run_columns());
        return 0;
      }
      c.info("amlc: run " + id + " (" + req.target + ")", true);
      auto ex = runs::Execution::start(ws, id, {.echo = true, .reuse_extracted = false});
      bool canceled = false;
      while (!ex->poll(200)) {
        if (interrupted() && !canceled) {
          c.info("amlc: canceling run " + id + " ...", true);
          ex->cancel(std::string("interrupted (") + (interrupt_signal() == SIGINT ? "SIGINT" : "SIGTERM") + ")");
          canceled = true;
        }
      }
      return finish_foreground(c, ex->record(), canceled);
    });
  }
  {
    auto id = std::make_shared<std::string>();
    CLI::App* sub = group->add_subcommand("_supervise", "Internal: supervise a run in the background");
    sub->group("");  // hidden
    sub->add_option("-r,--run", *id, "Run id")->required();
    on_run(sub, ctx, [id](Context& c) {
      json rec = runs::supervise(c.workspace(), *id, false);
      return rec.value("status", "") == runs::kCompleted ? 0 : 1;
    });
  }
  {
    struct Opts {
      std::string experiment;
      std::string status;
      size_t last = 10;
      std::vector<std::string> tags;
      std::string parent;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("list", "List runs, newest first");
    sub->add_option("-e,--experiment-name", o->experiment, "Only this experiment");
    sub->add_option("--status", o->status, "Only runs with this status")->check(CLI::IsMember(runs::status_names()));
    sub->add_option("--last", o->last, "How many (default 10; 0 = all)");
    sub->add_option("--tag,--tags", o->tags, "Only runs with tag key=value (or key) (repeatable)")->allow_extra_args(false);
    sub->add_option("--parent-run-id", o->parent, "Only children of this run");
    add_examples(sub, {"amlc run list -o table", "amlc run list -e mnist --status Failed --last 0"});
    on_run(sub, ctx, [o](Context& c) {
      runs::ListFilter f;
      f.experiment = o->experiment;
      f.status = o->status;
      f.last = o->last;
      f.parent_run_id = o->parent;
      for (const auto& t : o->tags) {
        bool had = true;
        auto kv = parse_key_value(t, "--tag", true, &had);
        f.tags[kv.first] = kv.second;
      }
      json rows = json::array();
      for (auto& r : runs::list_runs(c.workspace(), f)) rows.push_back(std::move(r));
      c.print(rows, run_columns());
      return 0;
    });
  }
  {
    struct Opts {
      std::string run;
      std::string experiment;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("show", "Show a run's record");
    sub->add_option("-r,--run", o->run, "Run id")->required();
    sub->add_option("-e,--experiment-name", o->experiment, "Experiment (checked if given)");
    add_examples(sub, {"amlc run show -r mnist_1763764800_1a2b3c4d", "amlc run show -r RUN_ID -o yaml"});
    on_run(sub, ctx, [o](Context& c) {
      Workspace& ws = c.workspace();
      json rec = runs::reconcile(ws, runs::run_dir(ws, o->run));
      if (!o->experiment.empty() && rec.value("experimentName", "") != o->experiment) {
        not_found("run '" + o->run + "' is not in experiment '" + o->experiment + "' (it is in '" +
                  rec.value("experimentName", "") + "')");
      }
      c.print(rec, run_columns());
      return 0;
    });
  }
  {
    struct Opts {
      std::string run;
      bool follow = false;
      std::string stream = "all";
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("logs", "Print a run's output (plain text on stdout)");
    sub->add_option("-r,--run", o->run, "Run id")->required();
    sub->add_flag("-f,--follow", o->follow, "Keep printing until the run ends");
    sub->add_option("--stream", o->stream, "all (both, as they came), stdout or stderr")
        ->check(CLI::IsMember({"all", "stdout", "stderr"}));
    add_examples(sub, {"amlc run logs -r RUN_ID", "amlc run logs -r RUN_ID --follow --stream stderr"});
    on_run(sub, ctx, [o](Context& c) {
      print_run_logs(c, o->run, o->follow, o->stream);
      return 0;
    });
  }
  {
    auto run = std::make_shared<std::string>();
    CLI::App* sub = group->add_subcommand("monitor-logs", "Follow a run's output until it ends (run logs --follow)");
    sub->add_option("-r,--run", *run, "Run id")->required();
    add_examples(sub, {"amlc run monitor-logs -r RUN_ID"});
    on_run(sub, ctx, [run](Context& c) {
      print_run_logs(c, *run, true, "all");
      return 0;
    });
  }
  {
    struct Opts {
      std::string run;
      std::string reason = "canceled by the user";
      double wait = 30;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("cancel", "Cancel a run (SIGTERM, then SIGKILL after the grace period)");
    sub->add_option("-r,--run", o->run, "Run id")->required();
    sub->add_option("--reason", o->reason, "Why (kept in the record)");
    sub->add_option("--wait", o->wait, "Seconds to wait for the run to end (default 30)");
    add_examples(sub, {"amlc run cancel -r RUN_ID", "amlc run cancel -r RUN_ID --reason 'wrong data'"});
    on_run(sub, ctx, [o](Context& c) {
      json rec = runs::cancel_run(c.workspace(), o->run, o->reason, o->wait);
      c.print(rec, run_columns());
      if (!runs::is_terminal(rec.value("status", ""))) {
        fail(ErrorKind::General, "run " + o->run + " has not ended after " + format_number(o->wait) + " s",
             "check it with 'amlc run show -r " + o->run + "'");
      }
      return 0;
    });
  }
  {
    struct Opts {
      std::string run;
      std::vector<std::string> add_tags, remove_tags;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("update", "Add, change or remove a run's tags (also while it runs)");
    sub->add_option("-r,--run", o->run, "Run id")->required();
    sub->add_option("--add-tag", o->add_tags, "Add or change a tag key=value (repeatable)")->allow_extra_args(false);
    sub->add_option("--remove-tag", o->remove_tags, "Remove a tag by key (repeatable)")->allow_extra_args(false);
    add_examples(sub, {"amlc run update -r RUN_ID --add-tag quality=good", "amlc run update -r RUN_ID --remove-tag draft"});
    on_run(sub, ctx, [o](Context& c) {
      auto add = parse_key_values(o->add_tags, "--add-tag");
      if (add.empty() && o->remove_tags.empty()) usage_error("nothing to update", "pass --add-tag key=value or --remove-tag key");
      c.print(runs::update_tags(c.workspace(), o->run, add, o->remove_tags), run_columns());
      return 0;
    });
  }
  add_download_command(group, ctx, "download", "Copy a run's outputs to a folder", "amlc run download -r RUN_ID -d ./results",
                       &runs::download_outputs);
  add_download_command(group, ctx, "download-logs", "Copy a run's log files (stdout, stderr, combined) to a folder",
                       "amlc run download-logs -r RUN_ID -d ./logs", &runs::download_logs);
  {
    struct Opts {
      std::string run;
      std::string name;
      bool records = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand(
        "metrics", "A run's metrics: {name: value, or the list of values if logged more than once}");
    sub->add_option("-r,--run", o->run, "Run id")->required();
    sub->add_option("-n,--name", o->name, "Only this metric");
    sub->add_flag("--records", o->records, "Every record with its step, time and source");
    add_examples(sub, {"amlc run metrics -r RUN_ID", "amlc run metrics -r RUN_ID --records -n loss -o table"});
    on_run(sub, ctx, [o](Context& c) {
      fs::path dir = runs::run_dir(c.workspace(), o->run);
      auto all = runs::read_metrics(dir / "metrics.jsonl");
      if (o->records) {
        json rows = json::array();
        for (const auto& m : all)
          if (o->name.empty() || m.name == o->name) rows.push_back(m.to_json());
        c.print(rows, {{"Name", "/name"}, {"Step", "/step"}, {"Value", "/value"}, {"Source", "/source"}});
        return 0;
      }
      std::map<std::string, std::vector<json>> by_name;
      for (const auto& m : all)
        if (o->name.empty() || m.name == o->name) by_name[m.name].push_back(m.value);
      json out = json::object();
      for (auto& [k, v] : by_name) out[k] = v.size() == 1 ? v[0] : json(v);
      c.print(out);
      return 0;
    });
  }
}

}  // namespace

void add_run_commands(CLI::App& app, Context& ctx) {
  CLI::App* run_group = add_group(app, "run", "Submit, watch and inspect runs",
                                  {"amlc run submit-script train.py --lr 0.1", "amlc run list -o table",
                                   "amlc run logs -r RUN_ID --follow"});
  add_submit_hyperdrive_command(run_group, ctx);
  add_run_subcommands(run_group, ctx);
}

}  // namespace amlc::cli
