// amlc sweep submit|resume|list|show|best|cancel; the submit that run submit-hyperdrive (cmd_run.cpp) shares.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "amlc/core/error.hpp"
#include "amlc/core/signals.hpp"
#include "amlc/core/util.hpp"
#include "amlc/output/progress.hpp"
#include "amlc/registry/registry.hpp"
#include "amlc/runs/executor.hpp"
#include "amlc/runs/runconfig.hpp"
#include "amlc/runs/register.hpp"
#include "amlc/runs/store.hpp"
#include "amlc/sweep/config.hpp"
#include "amlc/sweep/control.hpp"
#include "amlc/sweep/scheduler.hpp"
#include "amlc/sweep/store.hpp"
#include "amlc/sweep/summary.hpp"
#include "cmd_sweep.hpp"
#include "commands.hpp"
#include "context.hpp"

namespace amlc::cli {

namespace {

const std::vector<output::Column>& sweep_columns() {
  static const std::vector<output::Column> cols{{"SweepId", "/sweepId"},       {"Experiment", "/experimentName"},
                                                {"Status", "/status"},         {"Trials", "/trials/total"},
                                                {"Completed", "/trials/completed"}, {"BestRunId", "/bestRunId"},
                                                {"BestMetric", "/bestMetric"}};
  return cols;
}

// HyperDrive's lookup: FILE as a path if it exists, else a file of that name under the source directory's
// .azureml/ or ./.azureml/.
fs::path find_hyperdrive_file(const std::string& name, const fs::path& source_dir) {
  std::error_code ec;
  std::vector<fs::path> tried = {name, source_dir / ".azureml" / name, fs::path(".azureml") / name};
  for (const auto& p : tried)
    if (fs::is_regular_file(p, ec)) return p;
  std::vector<std::string> shown;
  for (const auto& p : tried) shown.push_back(p.string());
  not_found("HyperDrive configuration '" + name + "' not found (looked at " + join(shown, ", ") + ")",
            "pass the path of the sweep YAML file");
}

// The scheduler's callbacks: `progress` redrawn on a TTY, a line per finished trial with --verbose. A warning erases
// the progress line (it is drawn again below the warning at the next change).
sweep::ScheduleOptions schedule_options(Context& c, const std::string& id, output::ProgressLine& progress) {
  sweep::ScheduleOptions so;
  const bool tty = progress.enabled();
  if (tty) {
    so.on_progress = [id, &progress](const sweep::Progress& p) {
      int done = p.completed + p.failed + p.canceled;
      std::string line = "sweep " + id + ": " + std::to_string(done) + "/" + std::to_string(p.total) + " done (" +
                         std::to_string(p.completed) + " completed, " + std::to_string(p.failed) + " failed, " +
                         std::to_string(p.canceled) + " canceled), " + std::to_string(p.running) + " running" +
                         (p.best ? ", best " + format_number(*p.best) + " (" + p.best_run_id + ")" : "");
      progress.show(line);
    };
  }
  so.on_trial_finished = [&c, tty](const json& t) {
    if (tty || !c.verbose) return;
    std::string line = "amlc: trial " + t.value("runId", std::string()) + " " + t.value("status", std::string()) +
                       " " + t["parameters"].dump() +
                       (t["bestMetric"].is_number() ? " best=" + format_number(t["bestMetric"].get<double>()) : "");
    if (t.contains("canceledReason")) line += " (" + t["canceledReason"].get<std::string>() + ")";
    c.info(line, true);
  };
  so.on_warning = [&c, &progress](const std::string& w) {
    progress.clear();
    c.info("amlc: warning: " + w, true);
  };
  return so;
}

// Runs the sweep in this process with a progress line on a TTY, prints the final summary and turns the sweep's end
// into the exit code. The progress line is ended before the summary, and before an error's message.
int run_and_finish(Context& c, const std::string& sweep_id) {
  output::ProgressLine progress(c.stderr_tty);
  json summary = sweep::run_sweep(c.workspace(), sweep_id, schedule_options(c, sweep_id, progress));
  progress.end();
  bool interrupted_here = summary.value("interrupted", false);
  summary.erase("interrupted");
  c.print(summary, sweep_columns());
  std::string id = summary.value("sweepId", "");
  std::string status = summary.value("status", "");
  if (status == sweep::kSweepCompleted) return 0;
  json err = summary.value("error", json());
  std::string msg = err.is_object() ? err.value("message", std::string()) : std::string();
  std::string details = err.is_object() && err.value("details", json()).is_string() ? err["details"].get<std::string>() : "";
  if (interrupted_here) fail(ErrorKind::Interrupted, "sweep " + id + " canceled (interrupted)", "its record: 'amlc sweep show " + id + "'");
  fail(ErrorKind::General, "sweep " + id + " " + (status == sweep::kSweepCanceled ? "was canceled" : "failed") +
                               (msg.empty() ? "" : ": " + msg) + (details.empty() ? "" : "\n" + details),
       "see the trials with 'amlc sweep show " + id + "'");
}

}  // namespace

int submit_sweep(Context& c, const SweepSubmitOpts& o, bool az_spelling) {
  // 1. Everything validated before anything is written.
  runs::check_script_arguments(o.script_and_args);
  fs::path cfg_path = az_spelling ? find_hyperdrive_file(o.config_file, o.source_dir) : fs::path(o.config_file);
  sweep::SubmitRequest req;
  req.config = sweep::load_config(cfg_path);
  req.config_file = cfg_path.string();
  runs::RunRequest& r = req.run;
  r.experiment = o.experiment;
  r.source_dir = o.source_dir;
  req.runconfig_file = runs::apply_run_config(r, {o.runconfig, o.script_and_args, o.target}).string();
  if (r.script.empty() && r.command.empty()) {
    usage_error("no script given", az_spelling ? "amlc run submit-hyperdrive --hyperdrive-configuration-name FILE -c RUNCONFIG SCRIPT [ARGS...]"
                                               : "amlc sweep submit -f sweep.yml [options] SCRIPT [ARGS...]");
  }
  if (o.seed >= 0) req.seed = static_cast<std::uint64_t>(o.seed);
  for (const auto& w : req.config.warnings) c.info("amlc: warning: " + w, true);

  // 2. Write.
  Workspace& ws = c.workspace();
  json rec = sweep::create_sweep(ws, req);
  std::string id = rec["sweepId"];
  if (o.async) {
    sweep::spawn_sweep_supervisor(ws, id);
    c.info("amlc: sweep " + id + " submitted; follow it with 'amlc sweep show " + id + "'", true);
    c.print(sweep::sweep_summary(ws, id), sweep_columns());
    return 0;
  }
  c.info("amlc: sweep " + id + " (" + std::to_string(req.config.max_total_runs) + " trials, " +
             std::to_string(req.config.max_concurrent_runs) + " at a time)",
         true);
  return run_and_finish(c, id);
}

void add_sweep_submit_options(CLI::App* sub, SweepSubmitOpts& o) {
  sub->add_option("--source-directory", o.source_dir, "Folder to snapshot and run the trials in (default: .)");
  sub->add_option("-e,--experiment-name", o.experiment, "Experiment (default: default)");
  sub->add_option("--target,--ct", o.target, "Where the trials run: local (default) or docker");
  sub->add_flag("--async", o.async, "Return at once; a background process runs the sweep");
  sub->add_option("script", o.script_and_args,
                  "SCRIPT [ARGS...]: passed to every trial verbatim, followed by the trial's --name value pairs");
  sub->positionals_at_end(true);
}

void add_sweep_commands(CLI::App& app, Context& ctx) {
  CLI::App* group = add_group(app, "sweep", "Hyperparameter sweeps (HyperDrive-compatible)",
                              {"amlc sweep submit -f sweep.yml train.py --epochs 3", "amlc sweep list -o table",
                               "amlc sweep best SWEEP_ID --register-model churn --asset-path outputs/model.pkl"});
  {
    auto o = std::make_shared<SweepSubmitOpts>();
    CLI::App* sub = group->add_subcommand("submit", "Run a sweep: trials of SCRIPT with sampled parameters");
    sub->add_option("-f,--file", o->config_file, "Sweep configuration (az HyperDrive YAML or amlc's native form)")->required();
    sub->add_option("-c,--run-configuration-name", o->runconfig, "Run configuration: a file, or NAME for .azureml/NAME.runconfig");
    sub->add_option("--seed", o->seed, "Sampler seed (default: the file's seed, else random; recorded)");
    add_sweep_submit_options(sub, *o);
    add_examples(sub, {"amlc sweep submit -f sweep.yml train.py --epochs 3",
                       "amlc sweep submit -f sweep.yml -e tune --seed 7 --async --source-directory src train.py"});
    on_run(sub, ctx, [o](Context& c) { return submit_sweep(c, *o, false); });
  }
  {
    auto id = std::make_shared<std::string>();
    CLI::App* sub = group->add_subcommand("resume", "Continue a sweep whose amlc process ended (crash, kill, reboot)");
    sub->add_option("id", *id, "Sweep id")->required();
    add_examples(sub, {"amlc sweep resume default_sweep_1763764800_1a2b3c4d"});
    on_run(sub, ctx, [id](Context& c) { return run_and_finish(c, *id); });
  }
  {
    auto id = std::make_shared<std::string>();
    CLI::App* sub = group->add_subcommand("_supervise", "Internal: run a sweep in the background");
    sub->group("");  // hidden
    sub->add_option("id", *id, "Sweep id")->required();
    on_run(sub, ctx, [id](Context& c) {
      sweep::ScheduleOptions so;
      so.on_warning = [&c](const std::string& w) { c.info("amlc: warning: " + w, true); };
      json s = sweep::run_sweep(c.workspace(), *id, so);
      return s.value("status", "") == sweep::kSweepCompleted ? 0 : 1;
    });
  }
  {
    auto exp = std::make_shared<std::string>();
    CLI::App* sub = group->add_subcommand("list", "List sweeps, newest first");
    sub->add_option("-e,--experiment-name", *exp, "Only this experiment");
    add_examples(sub, {"amlc sweep list -o table", "amlc sweep list -e tune"});
    on_run(sub, ctx, [exp](Context& c) {
      json rows = json::array();
      for (auto& s : sweep::list_sweeps(c.workspace(), *exp)) {
        s.erase("config");
        s.erase("runDefinition");
        rows.push_back(std::move(s));
      }
      c.print(rows, sweep_columns());
      return 0;
    });
  }
  {
    auto id = std::make_shared<std::string>();
    CLI::App* sub = group->add_subcommand("show", "A sweep with its trials, best first (goal-aware)");
    sub->add_option("id", *id, "Sweep id")->required();
    add_examples(sub, {"amlc sweep show SWEEP_ID", "amlc sweep show SWEEP_ID -o table"});
    on_run(sub, ctx, [id](Context& c) {
      Workspace& ws = c.workspace();
      json s = sweep::sweep_summary(ws, *id, true);
      // Trials whose process is gone must not look Running.
      for (auto& t : s["trialRuns"]) {
        if (t["status"] != "Running" || !t["runId"].is_string()) continue;
        if (auto d = runs::find_run_dir(ws, t["runId"].get<std::string>())) t["runStatus"] = runs::reconcile(ws, *d).value("status", "");
      }
      if (c.format() == output::Format::Table || c.format() == output::Format::Tsv) {
        json rows = json::array();
        for (const auto& t : s["trialRuns"]) {
          json row = t;
          row["parameters"] = t["parameters"].dump();
          rows.push_back(row);
        }
        c.print(rows, {{"RunId", "/runId"},
                       {"Status", "/status"},
                       {"BestMetric", "/bestMetric"},
                       {"Parameters", "/parameters"},
                       {"CanceledReason", "/canceledReason"}});
        return 0;
      }
      c.print(s);
      return 0;
    });
  }
  {
    struct Opts {
      std::string id;
      std::string model;
      std::string asset_path;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand(
        "best", "The best trial (each trial's best logged primary-metric value, as az's get_best_run_by_primary_metric)");
    sub->add_option("id", o->id, "Sweep id")->required();
    sub->add_option("--register-model", o->model, "Register the best trial's file as this model (with --asset-path)");
    sub->add_option("--asset-path", o->asset_path, "Path inside the best run, e.g. outputs/model.pkl");
    add_examples(sub, {"amlc sweep best SWEEP_ID",
                       "amlc sweep best SWEEP_ID --register-model churn --asset-path outputs/model.pkl"});
    on_run(sub, ctx, [o](Context& c) {
      if (!o->model.empty() && o->asset_path.empty()) usage_error("--register-model needs --asset-path", "e.g. --asset-path outputs/model.pkl");
      if (o->model.empty() && !o->asset_path.empty()) usage_error("--asset-path needs --register-model NAME");
      if (!o->model.empty()) validate_model_name(o->model);
      Workspace& ws = c.workspace();
      json best = sweep::best_trial(ws, o->id);
      if (!o->model.empty()) {
        std::string run_id = best["runId"];
        registry::RegisterRequest rr;
        rr.name = o->model;
        rr.properties["sweepId"] = o->id;
        rr.properties["hyperparameters"] = best["parameters"].dump();
        if (best["metric"]["value"].is_number()) rr.properties[best["metric"].value("name", "metric")] = format_number(best["metric"]["value"].get<double>());
        best["model"] = runs::register_from_run(ws, rr, run_id, o->asset_path);
      }
      c.print(best, {{"RunId", "/runId"}, {"Metric", "/metric/value"}, {"Status", "/status"}});
      return 0;
    });
  }
  {
    struct Opts {
      std::string id;
      std::string reason = "canceled by the user";
      double wait = 60;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("cancel", "Cancel a sweep: its running trials are canceled, no new ones start");
    sub->add_option("id", o->id, "Sweep id")->required();
    sub->add_option("--reason", o->reason, "Why (kept in the record)");
    sub->add_option("--wait", o->wait, "Seconds to wait for the sweep to end (default 60)");
    add_examples(sub, {"amlc sweep cancel SWEEP_ID", "amlc sweep cancel SWEEP_ID --reason 'wrong data'"});
    on_run(sub, ctx, [o](Context& c) {
      json s = sweep::cancel_sweep(c.workspace(), o->id, o->reason, o->wait);
      c.print(s, sweep_columns());
      if (!sweep::sweep_status_terminal(s.value("status", ""))) {
        fail(ErrorKind::General, "sweep " + o->id + " has not ended after " + format_number(o->wait) + " s",
             "check it with 'amlc sweep show " + o->id + "'");
      }
      return 0;
    });
  }
}

}  // namespace amlc::cli
