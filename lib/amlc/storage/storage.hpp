// Storage: what may be freed, and freeing it.
//
// One rule, in one place: a blob (<ws>/blobs/sha256/...) is freed only when no record of any kind refers to it:
// model versions (their files), runs and sweeps (their snapshots). referenced_blobs() is the one list of record
// kinds that hold blobs; a new kind (environments, images, datasets) adds its references there, and nothing frees
// a blob any other way. Deciding and freeing happen under the blob store's exclusive pin, while every writer that
// adds a reference holds the shared pin from storing (or finding) the blob until its record is written
// (BlobStore::pin), so a blob can never be freed between being stored and being referenced.
//
// Leftovers are what interrupted commands (kill -9, power loss, a full disk) leave behind and no reader sees:
// temp files and folders whose writer died, blobs no record refers to, cache entries of content no record refers
// to, aliases left pointing at a deleted version, runs whose index entry is missing. `workspace check` lists them; `workspace gc` (or
// `workspace check --repair`) removes them, safely while other amlc processes run.
//
// This module is the top of the library's dependency order: it alone knows every owner of references (model users,
// blob references) and every checker; the modules below it know nothing of each other's records.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/workspace/check.hpp"
#include "amlc/workspace/workspace.hpp"

namespace amlc::storage {

using json = nlohmann::json;

// Every blob some record refers to. Damaged (exit 6) if a record cannot be read: then nobody can tell what is
// unreferenced, and nothing may be freed.
std::set<std::string> referenced_blobs(const Workspace& ws);

struct Freed {
  uint64_t blobs = 0;
  uint64_t bytes = 0;
};
// Removes those of `candidates` that no record refers to (under the exclusive pin).
Freed free_unreferenced(const Workspace& ws, const std::set<std::string>& candidates);

// Every user of model version NAME:VERSION that forbids deleting it: the services deploying it (their models or
// pendingModels). The one list of a model's users; a new kind (pipelines, batch endpoints) adds itself here.
// Caller holds ws.lock() for an answer that stays true (deploys claim their models under it).
std::vector<std::string> model_users(const Workspace& ws, const std::string& name, int version);

// model delete: the version's record (registry::remove; refused with a Conflict while model_users names a user,
// decided under the same ws.lock() as the delete), then the blobs only it used. If another record is damaged the
// blobs are kept (and reported): the delete itself still holds.
json delete_model(const Workspace& ws, const std::string& model_id);

struct Leftover {
  fs::path path;
  std::string kind;  // "temp", "blob", "cache", "alias", "index" (a run's missing index entry: restored)
  uint64_t bytes = 0;
  std::string what;  // e.g. the alias "churn@prod"
  json to_json() const;
};
// Finds leftovers. Temp files are found in the folders amlc writes records to (never inside a run's outputs or a
// user's files, whose names are theirs).
std::vector<Leftover> find_leftovers(const Workspace& ws);

// `workspace check`: the one list of everything checked, each module asked in turn: workspace.json and every blob's
// hash (without a lock: blobs never change), then under Workspace::read_lock() the registry, runs, sweeps and
// services records and, if none is damaged, the leftovers.
struct WorkspaceCheck {
  CheckReport report;
  std::vector<Leftover> leftovers;  // looked for only when the report is ok
  // {"ok", "problems", "stats", "leftovers": {"count", "bytes", "items"}}
  json to_json() const;
};
WorkspaceCheck check_workspace(const Workspace& ws);

// workspace gc: removes every leftover (dry_run: lists them). Returns {"removed"|"found": [...], "count", "bytes"}.
json collect_garbage(const Workspace& ws, bool dry_run);

}  // namespace amlc::storage
