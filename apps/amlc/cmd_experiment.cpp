// amlc experiment list
#include "amlc/runs/store.hpp"
#include "commands.hpp"
#include "context.hpp"

namespace amlc::cli {

void add_experiment_commands(CLI::App& app, Context& ctx) {
  CLI::App* group = add_group(app, "experiment", "Experiments (the folders runs are grouped in)",
                              {"amlc experiment list -o table"});
  CLI::App* sub = group->add_subcommand("list", "List experiments with their run counts");
  add_examples(sub, {"amlc experiment list", "amlc experiment list -o table"});
  on_run(sub, ctx, [](Context& c) {
    json rows = json::array();
    for (auto& e : runs::list_experiments(c.workspace())) rows.push_back(std::move(e));
    c.print(rows, {{"Name", "/name"}, {"Runs", "/runCount"}, {"LastRun", "/lastRunId"}});
    return 0;
  });
}

}  // namespace amlc::cli
