// A run request (what a run executes) as JSON: the one form, written into a run record's "runDefinition" and a
// sweep record's "runDefinition" (what every trial runs), and read back from both.
//
//   {script, arguments, command (the program and arguments resolve_command() gives), sourceDirectory (null when
//    the request reuses a stored snapshot), target,
//    environment {environmentVariables, python {interpreterPath}, docker {enabled, baseImage}},
//    metrics {regex, fromStdout}, cancelGracePeriodSeconds, maxRunDurationSeconds}
//
// request_from_json() also reads the flat form sweep records had before (script, arguments, command as given,
// interpreter, target, image, environmentVariables, metricsRegex, metricsRegexWhere, metricsFromStdout,
// cancelGracePeriodSeconds, maxRunDurationSeconds, sourceDirectory).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "amlc/runs/executor.hpp"

namespace amlc::runs {

// Throws Usage when the request has nothing to run (see resolve_command).
json request_to_json(const RunRequest& request);
// The request a definition describes (experiment set to `experiment`; run id, parent, tags, properties and snapshot
// are the caller's). What to_json() writes reads back to a request that runs the same program: the command is
// recovered from the resolved one. Damaged (naming `what`) when the definition is not one of the two forms.
RunRequest request_from_json(const json& definition, const std::string& experiment,
                             const std::string& what = "the run definition");

}  // namespace amlc::runs
