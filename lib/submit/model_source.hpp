#pragma once
// score_image_model's `model:` when it names something in the workspace
// rather than a folder: a registered model (NAME:VERSION, NAME@latest),
// every file checked against its registered sha256 before the run may use
// it, or a finished run's output (runs:/ID/outputs/model), reached without
// following a link out of the run.
#include "lib/spec/loader.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::submit {

// A resolver for spec::LoadOptions that opens the workspace on first use
// (a job without such a reference never opens it for this).
spec::ModelResolver workspace_model_resolver(workspace::OpenOptions options);

}  // namespace amlrun::submit
