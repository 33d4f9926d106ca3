#include "lib/spec/loader.hpp"

#include <fmt/format.h>

#include "lib/spec/dialects.hpp"
#include "lib/spec/overrides.hpp"
#include "lib/spec/yaml_tree.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::spec {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> k_command_markers = {"command", "code", "inputs", "outputs",
                                                    "environment"};
const std::vector<std::string> k_estimator_markers = {
    "entry_script",        "source_directory",
    "script_params",       "compute_target",
    "node_count",          "process_count_per_node",
    "distributed_backend", "conda_packages",
    "pip_packages",        "use_gpu",
    "custom_docker_image", "max_run_duration_seconds"};
const std::vector<std::string> k_trainer_markers = {"model",  "train_data", "validation_data",
                                                    "epochs", "batch_size", "learning_rate"};

Mark key_mark(const Node& root, const std::string& key) {
  for (const auto& [k, v] : root.entries) {
    if (k->value == key) return k->mark;
  }
  return root.mark;
}

std::vector<std::string> present(const Node& root, const std::vector<std::string>& keys) {
  std::vector<std::string> found;
  for (const auto& key : keys) {
    if (root.find(key)) found.push_back(key);
  }
  return found;
}

std::optional<Dialect> detect_dialect(const Node& root, Diagnostics& diagnostics) {
  auto type = root.find("type");
  auto command_keys = present(root, k_command_markers);
  auto estimator_keys = present(root, k_estimator_markers);
  if (type && type->is_scalar()) {
    if (type->value == "train_pytorch_model" || type->value == "score_image_model") {
      auto foreign = command_keys;
      foreign.insert(foreign.end(), estimator_keys.begin(), estimator_keys.end());
      if (!foreign.empty()) {
        diagnostics.error(key_mark(root, foreign[0]), foreign[0],
                          fmt::format("a {} job does not take {}; it runs "
                                      "amlrun-worker (remove {}, or write a command job)",
                                      type->value, util::join(foreign, ", "),
                                      foreign.size() == 1 ? "it" : "them"));
        return std::nullopt;
      }
      return type->value == "score_image_model" ? Dialect::score : Dialect::trainer;
    }
    if (type->value != "command") {
      static const std::vector<std::string> other = {"pipeline", "spark", "automl", "parallel"};
      std::string message =
          std::find(other.begin(), other.end(), type->value) != other.end()
              ? fmt::format(
                    "'{}' jobs are not supported; amlrun runs command jobs, estimator "
                    "jobs, type: train_pytorch_model, type: score_image_model and type: sweep",
                    type->value)
              : fmt::format(
                    "{} is not a job type amlrun knows (command, "
                    "train_pytorch_model, score_image_model or sweep){}",
                    util::printable(type->value),
                    util::did_you_mean_suffix(type->value, {"command", "train_pytorch_model",
                                                            "score_image_model", "sweep"}));
      diagnostics.error(type->mark, "type", message);
      return std::nullopt;
    }
  }
  if (!command_keys.empty() && !estimator_keys.empty()) {
    diagnostics.error(
        key_mark(root, estimator_keys[0]), estimator_keys[0],
        fmt::format("this file mixes the command-job dialect ({}) and the estimator dialect ({}); "
                    "use one of them",
                    util::join(command_keys, ", "), util::join(estimator_keys, ", ")));
    return std::nullopt;
  }
  if (!estimator_keys.empty()) return Dialect::estimator;
  if (!command_keys.empty() || (type && type->value == "command")) return Dialect::command;
  if (!present(root, k_trainer_markers).empty()) {
    diagnostics.error(root.mark, "type",
                      "missing 'type: train_pytorch_model' (model, train_data and the like belong "
                      "to a trainer job)");
    return std::nullopt;
  }
  diagnostics.error(root.mark, "",
                    "cannot tell what to run: give 'command' (a command job), 'entry_script' (an "
                    "estimator job) or 'type: train_pytorch_model'");
  return std::nullopt;
}

LoadedSpec load_from_source(const std::shared_ptr<Source>& source, const fs::path& base_dir,
                            const fs::path& spec_file, const LoadOptions& options) {
  Diagnostics diagnostics;
  diagnostics.set_primary_source(source);
  NodePtr root = parse_yaml(source, diagnostics);
  bool parsed = root && !diagnostics.has_errors();
  if (parsed) {
    // A broken override is reported, and the file is still checked with the
    // others applied, so the user sees everything at once.
    for (const auto& assignment : options.overrides) apply_override(root, assignment, diagnostics);
  }
  LoadedSpec loaded;
  loaded.spec.spec_file = spec_file;
  if (parsed) {
    if (root->is_null()) {
      diagnostics.error(root->mark, "",
                        "the file is empty; a job file is a YAML map with "
                        "command, code, environment and the like");
    } else if (!root->is_map()) {
      diagnostics.error(root->mark, "",
                        "a job file is a YAML map of keys such as command, code and environment; "
                        "got " +
                            root->describe());
    } else if (auto type = root->find("type");
               type && type->is_scalar() && type->value == "sweep") {
      detail::LoadContext context{diagnostics, base_dir};
      MapReader reader(root, "", diagnostics);
      detail::read_sweep(reader, context, loaded.spec);
      reader.finish();
    } else if (auto dialect = detect_dialect(*root, diagnostics)) {
      detail::LoadContext context{diagnostics, base_dir};
      context.resolve_model = &options.resolve_model;
      MapReader reader(root, "", diagnostics);
      switch (*dialect) {
        case Dialect::command:
          detail::read_command_job(reader, context, loaded.spec);
          break;
        case Dialect::estimator:
          detail::read_estimator(reader, context, loaded.spec);
          break;
        case Dialect::trainer:
          detail::read_trainer(reader, context, loaded.spec);
          break;
        case Dialect::score:
          detail::read_score(reader, context, loaded.spec);
          break;
      }
      reader.finish();
    }
  }
  if (diagnostics.has_errors()) {
    throw SpecError(source->name, diagnostics.errors_in_file_order(), diagnostics.warnings());
  }
  loaded.warnings = diagnostics.warnings();
  return loaded;
}

}  // namespace

LoadedSpec load_job_spec(const fs::path& file, const LoadOptions& options) {
  auto source = std::make_shared<Source>();
  source->name = file.string();
  source->text = util::read_user_file(file, k_max_job_file_bytes);
  fs::path absolute = fs::absolute(file).lexically_normal();
  return load_from_source(source, absolute.parent_path(), absolute, options);
}

LoadedSpec load_job_spec_text(const std::string& display_name, const std::string& text,
                              const fs::path& base_dir, const LoadOptions& options) {
  auto source = std::make_shared<Source>();
  source->name = display_name;
  source->text = text;
  return load_from_source(source, base_dir, base_dir / display_name, options);
}

}  // namespace amlrun::spec
