// The sweep dialect (`type: sweep`, Azure ML CLI v2's sweep job): the
// sweep's own keys and its trial, inline or in a file. The trial is read as
// a command job or a trainer job into the JobSpec itself, so a sweep is the
// job each trial runs plus spec.sweep; a trial is that job with its values.
#include <fmt/format.h>

#include <algorithm>

#include "lib/spec/dialects.hpp"
#include "lib/spec/loader.hpp"
#include "lib/spec/sweep_settings.hpp"
#include "lib/spec/yaml_tree.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::spec::detail {

namespace {

namespace fs = std::filesystem;

constexpr const char* k_trial_hint =
    "an inline command job (trial: {code: src, command: python train.py --lr "
    "${{search_space.lr}}}), a trainer job (trial: {type: train_pytorch_model, ...}) or the "
    "path of a command-job file (trial: ./trial.yml)";

// The trial's map, read as the job it is. `path` is "trial" inline and ""
// in a file of its own.
void read_trial_map(const NodePtr& map, const std::string& path, LoadContext& context,
                    JobSpec& trial) {
  if (!map->is_map()) {
    context.diagnostics.error(map->mark, path.empty() ? "trial" : path,
                              fmt::format("expected {}, got {}", k_trial_hint, map->describe()));
    return;
  }
  MapReader reader(map, path, context.diagnostics);
  auto type = map->find("type");
  if (type && type->is_scalar() && type->value == "train_pytorch_model") {
    read_trainer(reader, context, trial);
  } else if (type && type->is_scalar() && type->value != "command") {
    context.diagnostics.error(
        type->mark, join_key_path(path, "type"),
        fmt::format("a trial is a command job or a train_pytorch_model job, not {}",
                    util::printable(type->value)));
    reader.accept({"type"});
    return;
  } else if (map->find("entry_script") || map->find("source_directory")) {
    auto key = map->find("entry_script") ? "entry_script" : "source_directory";
    context.diagnostics.error(map->key_mark(key), join_key_path(path, key),
                              "a trial is written in the command-job dialect (code and "
                              "command), not as an estimator");
    return;
  } else {
    read_command_job(reader, context, trial);
  }
  reader.finish();
}

void read_trial_file(const Node& node, LoadContext& context, JobSpec& trial) {
  auto file = resolve_local_path(node, "trial", PathKind::file, "trial job file", context,
                                 "give the trial inline or as a local command-job file");
  if (!file) return;
  auto source = std::make_shared<Source>();
  // Named by its path: "./trial.yml" would read as relative to wherever the
  // user stands, not to the sweep file.
  source->name = file->string();
  try {
    source->text = util::read_user_file(*file, k_max_job_file_bytes);
  } catch (const util::Error& error) {
    context.diagnostics.error(node.mark, "trial", error.what());
    return;
  }
  NodePtr root = parse_yaml(source, context.diagnostics);
  if (!root) return;
  LoadContext file_context = context;
  file_context.base_dir = file->parent_path();
  read_trial_map(root, "", file_context, trial);
}

// Each parameter must reach the trial: one it never uses is a mistake (a
// typo in the command, or a dimension searched for nothing).
void check_unused(const Node& space_node, const sweep::SearchSpace& space,
                  const std::vector<std::string>& used, LoadContext& context) {
  const auto names = sweep::parameter_names(space);
  // A reference to no parameter is reported already, with the parameter it
  // may have meant: "never used" would say the same twice.
  for (const auto& name : used) {
    if (std::find(names.begin(), names.end(), name) == names.end()) return;
  }
  for (const auto& name : names) {
    if (std::find(used.begin(), used.end(), name) != used.end()) continue;
    // A nested name counts as used when its outer choice is.
    const std::string outer = name.substr(0, name.find('.'));
    if (std::find(used.begin(), used.end(), outer) != used.end()) continue;
    context.diagnostics.error(
        space_node.key_mark(outer), join_key_path("search_space", name),
        fmt::format("the parameter is never used: the trial has no ${{{{search_space.{}}}}}; "
                    "pass it to the trial (e.g. --{} ${{{{search_space.{}}}}} in its command) or "
                    "remove it",
                    name, name, name));
  }
}

}  // namespace

void read_sweep(MapReader& root, LoadContext& context, JobSpec& spec) {
  root.choice("type", {"sweep"});
  read_common(root, context, spec);
  read_job_name(root, context, spec);
  auto settings = read_sweep_settings(root, context.diagnostics);
  // The sweep's inputs and outputs come first: the trial's command names them.
  JobSpec trial;
  read_inputs_outputs(root, context, trial);
  const bool sweep_compute = root.has("compute");
  if (sweep_compute) read_compute(root, "compute", context, spec);

  std::vector<std::string> used;
  LoadContext trial_context = context;
  trial_context.used_parameters = &used;
  // With broken sweep settings the trial is still read, so its own errors
  // show too; its references to parameters are then not checked.
  trial_context.search_space = settings ? &settings->search_space : nullptr;
  trial_context.in_sweep_trial = true;
  NodePtr trial_node = root.node("trial");
  if (!trial_node || trial_node->is_null()) {
    context.diagnostics.error(root.mark(), "trial",
                              fmt::format("missing: the job each trial runs, as {}", k_trial_hint));
  } else if (trial_node->is_scalar()) {
    read_trial_file(*trial_node, trial_context, trial);
  } else {
    read_trial_map(trial_node, "trial", trial_context, trial);
  }
  root.ignore_with_warning("identity",
                           "identity is an Azure ML credential setting; ignored (the job runs "
                           "with the credentials of the compute target)");
  root.accept({"properties"});

  // Only a trial that was read can tell which parameters it uses.
  const bool trial_read = !trial.command.empty() || !trial.argv.empty();
  if (settings && trial_read) {
    if (auto space_node = root.node("search_space")) {
      check_unused(*space_node, settings->search_space, used, context);
    }
  }

  // The sweep's own settings win over what a trial file says.
  const JobSpec sweep_level = spec;
  spec = std::move(trial);
  spec.spec_file = sweep_level.spec_file;
  if (!sweep_level.experiment_name.empty()) spec.experiment_name = sweep_level.experiment_name;
  if (!sweep_level.display_name.empty()) spec.display_name = sweep_level.display_name;
  if (!sweep_level.description.empty()) spec.description = sweep_level.description;
  for (const auto& tag : sweep_level.tags) {
    auto same = std::find_if(spec.tags.begin(), spec.tags.end(),
                             [&](const auto& t) { return t.first == tag.first; });
    if (same != spec.tags.end()) {
      same->second = tag.second;
    } else {
      spec.tags.push_back(tag);
    }
  }
  for (const auto& variable : sweep_level.environment_variables) {
    spec.environment_variables.push_back(variable);
  }
  if (sweep_compute) spec.compute = sweep_level.compute;
  if (settings) spec.sweep = std::move(*settings);
}

}  // namespace amlrun::spec::detail
