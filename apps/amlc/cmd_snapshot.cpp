// amlc snapshot create|list-files
#include <memory>
#include <string>

#include "amlc/archive/snapshot.hpp"
#include "commands.hpp"
#include "context.hpp"

namespace amlc::cli {

void add_snapshot_commands(CLI::App& app, Context& ctx) {
  CLI::App* group = add_group(app, "snapshot", "Package a source directory the way a run does",
                              {"amlc snapshot create . -f /tmp/src.tar.gz", "amlc snapshot list-files src -o table"});
  {
    struct Opts {
      std::string dir = ".";
      std::string file;
      int level = 1;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand(
        "create", "Write a deterministic .tar.gz of DIR (.amlignore/.gitignore applied) and print its sha256");
    sub->add_option("dir", o->dir, "Source directory (default: .)");
    sub->add_option("-f,--output-file", o->file, "Archive to write")->required();
    sub->add_option("--level", o->level, "gzip level 1..9 (default 1: fast)")->check(CLI::Range(1, 9));
    add_examples(sub, {"amlc snapshot create . -f /tmp/src.tar.gz",
                       "AMLC_SNAPSHOT_MAX_FILES=10000 amlc snapshot create data -f data.tar.gz --level 6"});
    on_run(sub, ctx, [o](Context& c) {
      archive::SnapshotOptions so;
      so.limits = archive::SnapshotLimits::from_env();
      so.compression_level = o->level;
      auto info = archive::create_snapshot(o->dir, o->file, so);
      c.print(json{{"path", fs::absolute(info.path).lexically_normal().string()},
                   {"sha256", info.sha256},
                   {"files", info.files},
                   {"bytes", info.bytes},
                   {"archiveBytes", info.archive_bytes},
                   {"excluded", info.excluded}});
      return 0;
    });
  }
  {
    struct Opts {
      std::string dir = ".";
      bool excluded = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* sub = group->add_subcommand("list-files", "List what a snapshot of DIR would hold");
    sub->add_option("dir", o->dir, "Source directory (default: .)");
    sub->add_flag("--excluded", o->excluded, "List what is left out instead");
    add_examples(sub, {"amlc snapshot list-files", "amlc snapshot list-files src --excluded -o tsv"});
    on_run(sub, ctx, [o](Context& c) {
      auto listing = archive::list_source(o->dir);
      for (const auto& w : listing.warnings) c.info("amlc: warning: " + w, true);
      json rows = json::array();
      if (o->excluded) {
        for (const auto& p : listing.excluded_paths) rows.push_back({{"path", p}});
        c.print(rows, {{"Path", "/path"}});
        return 0;
      }
      for (const auto& e : listing.entries) {
        if (e.type == archive::SourceEntry::Type::Dir) continue;
        json row{{"path", e.path}, {"bytes", e.size}};
        if (e.type == archive::SourceEntry::Type::Symlink) row["symlink"] = e.link_target;
        rows.push_back(row);
      }
      c.print(rows, {{"Path", "/path"}, {"Bytes", "/bytes"}});
      return 0;
    });
  }
}

}  // namespace amlc::cli
