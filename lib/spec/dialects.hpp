#pragma once
// Internal to lib/spec: the readers of the three dialects and what they share.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/spec/diagnostics.hpp"
#include "lib/spec/job_spec.hpp"
#include "lib/spec/loader.hpp"
#include "lib/spec/reader.hpp"
#include "lib/sweep/search_space.hpp"

namespace amlrun::spec::detail {

struct LoadContext {
  Diagnostics& diagnostics;
  std::filesystem::path base_dir;  // the job file's directory, absolute
  // Reading a sweep's trial: the parameters ${{search_space.NAME}} may name,
  // and the names the trial used (a parameter never used is an error).
  // A trial whose sweep settings have errors (already reported) reads with
  // `in_sweep_trial` and no search space: its references go unchecked.
  const sweep::SearchSpace* search_space = nullptr;
  bool in_sweep_trial = false;
  std::vector<std::string>* used_parameters = nullptr;
  // Registered models and run outputs (score_image_model's model:).
  const ModelResolver* resolve_model = nullptr;
};

enum class PathKind { file, directory, either };

// Resolves a local path as a job file writes it (relative to the file,
// absolute, or file://). Azure ML references and cloud URIs are refused with a
// message saying what to use instead; `what` names the thing ("source
// directory", "input 'data'"). Checks existence and kind.
// `hint` says what to write instead of a remote reference (default: the data hint).
std::optional<std::filesystem::path> resolve_local_path(const Node& node,
                                                        const std::string& key_path, PathKind kind,
                                                        const std::string& what,
                                                        LoadContext& context,
                                                        const std::string& hint = "");

inline const std::string k_local_data_hint = "give a local path, a file:// URI or an http(s) URL";

// True for "azureml:x", "azureml://...", wasbs://, abfss://, s3:// ...; adds
// the explaining error, ending with `hint` (what to write instead).
bool refuse_remote_reference(const Node& node, const std::string& key_path, const std::string& hint,
                             LoadContext& context);

// experiment_name, display_name, description, tags, environment_variables, $schema.
void read_common(MapReader& root, LoadContext& context, JobSpec& spec);
// name: the job's name (a valid name), its display name unless one is given.
void read_job_name(MapReader& root, LoadContext& context, JobSpec& spec);
// compute (command and trainer), with Azure compute references refused.
void read_compute(MapReader& root, const std::string& key, LoadContext& context, JobSpec& spec);
// resources, distribution, limits (command and trainer).
void read_resources_distribution_limits(MapReader& root, LoadContext& context, JobSpec& spec);
// "more than one process needs a distribution".
void check_distribution_needed(const Mark& mark, const std::string& key_path, LoadContext& context,
                               const JobSpec& spec);

// inputs and outputs of a command job (and of a sweep, for its trial).
void read_inputs_outputs(MapReader& root, LoadContext& context, JobSpec& spec);

// `${{search_space.NAME}}` at `mark`: an error unless reading a trial whose
// search space has NAME; records the use. Returns whether it is known.
bool check_search_space_reference(const Mark& mark, const std::string& key_path,
                                  const std::string& written, const std::string& name,
                                  LoadContext& context);

void read_command_job(MapReader& root, LoadContext& context, JobSpec& spec);
void read_estimator(MapReader& root, LoadContext& context, JobSpec& spec);
void read_trainer(MapReader& root, LoadContext& context, JobSpec& spec);
// A path written as a value or as {path: ..., type: ..., mode: ...} like a
// command job's input (trainer and scoring keys): the node holding the path,
// or nullptr after reporting a map without 'path'.
NodePtr path_value(NodePtr node, const std::string& key, LoadContext& context);
// type: score_image_model (dialect_score.cpp).
void read_score(MapReader& root, LoadContext& context, JobSpec& spec);
// type: sweep: the sweep's keys, its trial (inline or a file) read into
// `spec` as a command or trainer job, and spec.sweep.
void read_sweep(MapReader& root, LoadContext& context, JobSpec& spec);

}  // namespace amlrun::spec::detail
