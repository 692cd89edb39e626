// amlc workspace create|show|check|gc
#include "amlc/core/error.hpp"
#include "amlc/storage/storage.hpp"
#include "commands.hpp"
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
  CLI::App* group = add_group(app, "workspace", "Create, show, check and clean up the local workspace",
                              {"amlc workspace create .", "amlc workspace show", "amlc workspace check -o table",
                               "amlc workspace gc"});

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
    struct Opts {
      bool repair = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand(
        "check",
        "Verify every record and every stored file against its hash (exit 6 on damage); list leftovers of interrupted "
        "commands");
    sub->add_flag("--repair", o->repair, "Remove the leftovers first (as 'workspace gc'), then check");
    add_examples(sub, {"amlc workspace check", "amlc workspace check -o none && echo intact",
                       "amlc workspace check --repair"});
    on_run(sub, ctx, [o](Context& c) {
      Workspace& ws = c.workspace();
      json removed;
      if (o->repair) removed = storage::collect_garbage(ws, false);
      storage::WorkspaceCheck check = storage::check_workspace(ws);
      const CheckReport& report = check.report;
      json j = check.to_json();
      j["root"] = ws.root().string();
      if (o->repair) j["repaired"] = removed;
      c.print(j);
      if (!report.ok()) {
        fail(ErrorKind::Damaged,
             "workspace " + ws.root().string() + " is damaged: " + std::to_string(report.problems.size()) +
                 " problem(s), first: " + report.problems.front(),
             "restore the named files from a backup, or delete the damaged records");
      }
      if (!check.leftovers.empty()) {
        c.info(std::to_string(check.leftovers.size()) + " leftover(s) of interrupted commands (" +
                   j["leftovers"]["bytes"].dump() +
                   " bytes): remove them with 'amlc workspace gc'",
               true);
      }
      return 0;
    });
  }
  {
    struct Opts {
      bool dry_run = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand(
        "gc",
        "Remove what interrupted commands left behind: temp files whose writer died, contents and caches no record "
        "uses, aliases of deleted versions (safe while other amlc commands run)");
    sub->add_flag("--dry-run", o->dry_run, "Only list what would be removed");
    add_examples(sub, {"amlc workspace gc", "amlc workspace gc --dry-run -o table"});
    on_run(sub, ctx, [o](Context& c) {
      c.print(storage::collect_garbage(c.workspace(), o->dry_run));
      return 0;
    });
  }
}

}  // namespace amlc::cli
