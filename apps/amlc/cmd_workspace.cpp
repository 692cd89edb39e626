// amlc workspace create|show|check
#include "amlc/core/error.hpp"
#include "amlc/workspace/check.hpp"
#include "context.hpp"

namespace amlc::cli {

namespace {

json workspace_json(const Workspace& ws) {
  json j = ws.info();
  j["root"] = ws.root().string();
  j["foundBy"] = ws.how_found();
  return j;
}

}  // namespace

void add_workspace_commands(CLI::App& app, Context& ctx) {
  CLI::App* group = add_group(app, "workspace", "Create, show and check the local workspace",
                              {"amlc workspace create .", "amlc workspace show", "amlc workspace check -o table"});

  {
    struct Opts {
      std::string path;
      std::string name;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("create", "Create a workspace (PATH/.amlc, PATH defaults to -w or '.')");
    sub->add_option("path", o->path, "Folder to create the workspace in");
    sub->add_option("-n,--name", o->name, "Workspace name (default: the folder's name)");
    add_examples(sub, {"amlc workspace create", "amlc workspace create ~/projects/churn --name churn"});
    on_run(sub, ctx, [o](Context& c) {
      std::string path = !o->path.empty() ? o->path : (!c.workspace_path.empty() ? c.workspace_path : ".");
      Workspace ws = Workspace::create(path, o->name);
      c.print(workspace_json(ws));
      return 0;
    });
  }
  {
    CLI::App* sub = group->add_subcommand("show", "Show the workspace in use and how it was found");
    add_examples(sub, {"amlc workspace show", "amlc -w /data/ws workspace show -o yaml"});
    on_run(sub, ctx, [](Context& c) {
      c.print(workspace_json(c.workspace()));
      return 0;
    });
  }
  {
    CLI::App* sub = group->add_subcommand(
        "check", "Verify every record and every stored file against its hash (exit 6 on damage)");
    add_examples(sub, {"amlc workspace check", "amlc workspace check -o none && echo intact"});
    on_run(sub, ctx, [](Context& c) {
      Workspace& ws = c.workspace();
      CheckReport report;
      {
        FileLock guard = ws.lock();  // a consistent view: no writer in between
        report = check_workspace(ws);
      }
      json j = report.to_json();
      j["root"] = ws.root().string();
      c.print(j);
      if (!report.ok()) {
        fail(ErrorKind::Damaged,
             "workspace " + ws.root().string() + " is damaged: " + std::to_string(report.problems.size()) +
                 " problem(s), first: " + report.problems.front(),
             "restore the named files from a backup, or delete the damaged records");
      }
      return 0;
    });
  }
}

}  // namespace amlc::cli
