// The trainer dialect: `type: train_pytorch_model`, the "Train PyTorch Model"
// module. It becomes a run of amlrun-worker with the job's resources.
#include <fmt/format.h>
#include <cmath>
#include <limits>

#include "lib/spec/dialects.hpp"
#include "lib/spec/placeholders.hpp"
#include "lib/train/option_ranges.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::spec::detail {

namespace {

// True when the folder has a sub-folder not starting with '.' (amlrun-worker
// skips hidden ones, as torchvision's ImageFolder does).
bool has_class_folder(const std::filesystem::path& folder) {
  std::error_code error;
  for (std::filesystem::directory_iterator it(folder, error), end; !error && it != end;
       it.increment(error)) {
    if (it->path().filename().string().starts_with(".")) continue;
    if (it->is_directory(error)) return true;
  }
  return false;
}

void read_data_folder(MapReader& root, const std::string& key, LoadContext& context, JobSpec& spec,
                      bool required) {
  auto node = root.node(key);
  if (!node || node->is_null()) {
    if (required) {
      context.diagnostics.error(root.mark(), "",
                                fmt::format("missing '{}' (a labelled image folder: one "
                                            "sub-folder per class)",
                                            key));
    }
    return;
  }
  NodePtr path_node = path_value(node, key, context);
  if (!path_node) return;
  if (auto path =
          resolve_local_path(*path_node, key, PathKind::directory,
                             key == "train_data" ? "training data" : "validation data", context)) {
    // Caught here, the mistake points at the job file's line and the user's
    // own path; caught by amlrun-worker, it would name the run's copy.
    if (!has_class_folder(*path)) {
      context.diagnostics.error(path_node->mark, key,
                                fmt::format("{} is not a labelled image folder: it has no class "
                                            "sub-folders (one sub-folder of images per class)",
                                            util::printable(path_node->value)));
      return;
    }
    InputSpec input;
    input.name = key;
    input.kind = InputSpec::Kind::folder;
    input.type = "uri_folder";
    input.path = path->string();
    input.mode = "ro_mount";
    spec.inputs.push_back(input);
  }
}

std::optional<std::int64_t> read_in_range(MapReader& root, std::string_view key,
                                          const train::option_ranges::IntegerRange& range) {
  return root.integer(key, range.min, range.max);
}

// The lower end is exclusive, which MapReader::number does not express: it
// only checks that the value is a finite number here.
std::optional<double> read_in_range(MapReader& root, std::string_view key,
                                    const train::option_ranges::NumberRange& range,
                                    LoadContext& context) {
  constexpr double k_largest = std::numeric_limits<double>::max();
  auto value = root.number(key, -k_largest, k_largest);
  if (value && !range.contains(*value)) {
    std::string upper = std::isinf(range.max) ? "" : fmt::format(" and at most {}", range.max);
    context.diagnostics.error(root.node(key)->mark, std::string(key),
                              fmt::format("must be greater than {}{}, got {}", range.greater_than,
                                          upper, root.node(key)->value));
    return std::nullopt;
  }
  return value;
}

// A setting a sweep's trial takes from its search space, written
// `learning_rate: ${{search_space.lr}}`: the placeholder goes into the
// worker's arguments as written, and each trial's value replaces it (the
// worker checks its range, as for any argument). Only the whole value may
// be a placeholder.
std::optional<std::string> swept_setting(MapReader& root, std::string_view key,
                                         LoadContext& context) {
  if (!root.has(key)) return std::nullopt;
  NodePtr node = root.node(key);
  if (!node->is_scalar()) return std::nullopt;
  auto placeholders = find_placeholders(node->value);
  if (placeholders.empty()) return std::nullopt;
  const std::string written = node->value;
  const auto& p = placeholders[0];
  if (placeholders.size() != 1 || p.offset != 0 || p.length != written.size() ||
      p.scope != "search_space") {
    // Meant for a parameter all the same: not also "never used".
    if (p.scope == "search_space" && context.used_parameters != nullptr) {
      context.used_parameters->push_back(p.name);
    }
    context.diagnostics.error(node->mark, root.key_path(key),
                              fmt::format("{} is not a value of {}; in a sweep's trial the whole "
                                          "value may be ${{{{search_space.NAME}}}}",
                                          util::printable(written), key));
    return "";
  }
  if (!check_search_space_reference(node->mark, root.key_path(key), written, p.name, context)) {
    return "";
  }
  return p.text();
}

std::string format_number(double value) {
  std::string text = fmt::format("{}", value);
  return text;
}

}  // namespace

void read_trainer(MapReader& root, LoadContext& context, JobSpec& spec) {
  spec.dialect = Dialect::trainer;
  root.accept({"type"});
  read_common(root, context, spec);
  TrainerSpec trainer;
  // A sweep's trial may take these from its search space; their argument is
  // then the placeholder, which each trial's value replaces.
  std::vector<std::pair<std::string, std::string>> swept;
  auto take_swept = [&](std::string_view key) {
    if (auto placeholder = swept_setting(root, key, context)) {
      swept.emplace_back(std::string(key), *placeholder);
      return true;
    }
    return false;
  };
  if (!take_swept("model")) {
    trainer.model = root.choice("model", {"resnet18", "resnet34", "resnet50", "densenet121"})
                        .value_or("resnet18");
  }
  read_data_folder(root, "train_data", context, spec, /*required=*/true);
  read_data_folder(root, "validation_data", context, spec, /*required=*/true);
  // The worker's own ranges: a job that validates is one the worker runs.
  namespace ranges = train::option_ranges;
  if (!take_swept("epochs")) {
    if (auto v = read_in_range(root, "epochs", ranges::k_epochs)) {
      trainer.epochs = static_cast<int>(*v);
    }
  }
  if (!take_swept("batch_size")) {
    if (auto v = read_in_range(root, "batch_size", ranges::k_batch_size)) {
      trainer.batch_size = static_cast<int>(*v);
    }
  }
  if (!take_swept("learning_rate")) {
    if (auto v = read_in_range(root, "learning_rate", ranges::k_learning_rate, context)) {
      trainer.learning_rate = *v;
    }
  }
  if (!take_swept("random_seed")) {
    if (auto v = read_in_range(root, "random_seed", ranges::k_seed)) {
      trainer.random_seed = *v;
    }
  }
  if (!take_swept("patience")) {
    if (auto v = read_in_range(root, "patience", ranges::k_patience)) {
      trainer.patience = static_cast<int>(*v);
    }
  }
  if (!take_swept("image_size")) {
    if (auto v = read_in_range(root, "image_size", ranges::k_image_size)) {
      trainer.image_size = static_cast<int>(*v);
    }
  }
  if (auto v = read_in_range(root, "threads", ranges::k_threads)) {
    trainer.threads = static_cast<int>(*v);
  }
  trainer.device = root.choice("device", {"auto", "cpu", "cuda"}).value_or("");
  trainer.precision = root.choice("precision", {"fp32", "bf16", "fp16"}).value_or("");
  if (auto v = root.boolean("freeze_backbone")) trainer.freeze_backbone = *v;
  if (auto v = root.boolean("onnx")) trainer.onnx = *v;
  if (auto weights = root.node("init_weights"); weights && !weights->is_null()) {
    if (auto path = resolve_local_path(*weights, "init_weights", PathKind::either,
                                       "initial weights", context)) {
      InputSpec input;
      input.name = "init_weights";
      input.kind =
          std::filesystem::is_directory(*path) ? InputSpec::Kind::folder : InputSpec::Kind::file;
      input.type = input.kind == InputSpec::Kind::folder ? "uri_folder" : "uri_file";
      input.path = path->string();
      input.mode = "ro_mount";
      spec.inputs.push_back(input);
    }
  }
  read_compute(root, "compute", context, spec);
  read_resources_distribution_limits(root, context, spec);
  if (spec.distribution.type == DistributionType::pytorch ||
      spec.distribution.type == DistributionType::tensorflow) {
    context.diagnostics.error(root.key_mark("distribution"), "distribution.type",
                              "train_pytorch_model jobs scale with MPI allreduce; use "
                              "distribution type mpi");
  }
  if (auto resources = root.node("resources"); resources && resources->is_map()) {
    check_distribution_needed(resources->key_mark("instance_count"), "resources.instance_count",
                              context, spec);
  }

  auto argument = [&](const std::string& key, const std::string& value) {
    for (const auto& [name, placeholder] : swept) {
      if (name == key) return placeholder;
    }
    return value;
  };
  spec.argv = {"amlrun-worker",
               "train",
               "--model",
               argument("model", trainer.model),
               "--train-data",
               "${{inputs.train_data}}",
               "--validation-data",
               "${{inputs.validation_data}}",
               "--epochs",
               argument("epochs", std::to_string(trainer.epochs)),
               "--batch-size",
               argument("batch_size", std::to_string(trainer.batch_size)),
               "--learning-rate",
               argument("learning_rate", format_number(trainer.learning_rate)),
               "--seed",
               argument("random_seed", std::to_string(trainer.random_seed)),
               "--patience",
               argument("patience", std::to_string(trainer.patience)),
               "--output-dir",
               "outputs"};
  if (std::string size = argument("image_size", ""); !size.empty()) {
    spec.argv.insert(spec.argv.end(), {"--image-size", size});
  } else if (trainer.image_size) {
    spec.argv.insert(spec.argv.end(), {"--image-size", std::to_string(*trainer.image_size)});
  }
  if (trainer.threads)
    spec.argv.insert(spec.argv.end(), {"--threads", std::to_string(*trainer.threads)});
  if (!trainer.device.empty()) spec.argv.insert(spec.argv.end(), {"--device", trainer.device});
  if (!trainer.precision.empty())
    spec.argv.insert(spec.argv.end(), {"--precision", trainer.precision});
  if (trainer.freeze_backbone) spec.argv.push_back("--freeze-backbone");
  if (!trainer.onnx) spec.argv.push_back("--no-onnx");
  if (spec.find_input("init_weights")) {
    spec.argv.insert(spec.argv.end(), {"--init-weights", "${{inputs.init_weights}}"});
  }
  spec.trainer = trainer;
}

}  // namespace amlrun::spec::detail
