#pragma once
// load + validate a job file: pass 1 of `amlrun submit` (DESIGN.md). Every
// error of the file is collected and thrown at once as a SpecError.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "lib/spec/diagnostics.hpp"
#include "lib/spec/job_spec.hpp"

namespace amlrun::spec {

// Job files are a few kilobytes; anything near this is a mistake or an attack.
constexpr std::uint64_t k_max_job_file_bytes = 4ull << 20;

// A model a scoring job names that lives in the workspace, not at a path:
// a registered model ("NAME:VERSION", "NAME@latest") or a run's output
// ("runs:/ID/PATH").
struct ModelReference {
  enum class Kind { registered, run };
  Kind kind = Kind::registered;
  std::string text;    // as written, without an "azureml:" prefix
  std::string run_id;  // run: the run and the path in its artifacts
  std::string path;
};

struct ResolvedModel {
  std::filesystem::path folder;  // the model folder to use, absolute
  std::string description;       // "resnet:3", "run R's outputs/model"
};

// Looks a reference up in the workspace (the caller knows it; spec does
// not). Throws util::InputError with what to show at the key's position.
using ModelResolver = std::function<ResolvedModel(const ModelReference&)>;

struct LoadOptions {
  // "key.path=value" overrides (--set), applied to the YAML before validation.
  std::vector<std::string> overrides;
  // Unset where there is no workspace: such a reference is then an error.
  ModelResolver resolve_model;
};

struct LoadedSpec {
  JobSpec spec;
  std::vector<Diagnostic> warnings;  // non-fatal: Azure-only keys that are ignored, ...
};

// `file` is shown in messages as given; relative paths inside the job are
// resolved against its directory.
LoadedSpec load_job_spec(const std::filesystem::path& file, const LoadOptions& options = {});

// The same from text, for tests and stdin: `display_name` names it in
// messages and `base_dir` anchors relative paths.
LoadedSpec load_job_spec_text(const std::string& display_name, const std::string& text,
                              const std::filesystem::path& base_dir,
                              const LoadOptions& options = {});

}  // namespace amlrun::spec
