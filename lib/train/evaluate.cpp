// `amlrun-worker evaluate`: a model folder's accuracy and confusion matrix
// on a labelled image folder.
#include <torch/serialize/input-archive.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include "lib/train/confusion.hpp"
#include "lib/train/dataset.hpp"
#include "lib/train/device.hpp"
#include "lib/train/loader.hpp"
#include "lib/train/models.hpp"
#include "lib/train/progress.hpp"
#include "lib/train/sampler.hpp"
#include "lib/train/trainer.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

int run_evaluation(const EvaluateOptions& options) {
  const std::string what = "--model-dir " + options.model_dir.string();
  std::error_code error;
  if (!fs::is_directory(options.model_dir, error)) {
    throw util::InputError(fmt::format("{}: no such folder", what));
  }
  for (const char* name : {"model.pt", "config.json", "labels.json"}) {
    if (!fs::exists(options.model_dir / name, error)) {
      throw util::InputError(fmt::format("{}: not a model folder ({} is missing)", what, name));
    }
  }
  nlohmann::json description;
  std::vector<std::string> classes;
  std::string model_name;
  int image_size = 0;
  try {
    description = nlohmann::json::parse(util::read_file(options.model_dir / "config.json"));
    model_name = description.at("model").at("name").get<std::string>();
    image_size = description.at("model").at("image_size").get<int>();
    classes = nlohmann::json::parse(util::read_file(options.model_dir / "labels.json"))
                  .at("classes")
                  .get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& failure) {
    throw util::InputError(
        fmt::format("{}: unreadable config.json or labels.json: {}", what, failure.what()));
  }
  parse_choice(what + ": model", model_name, model_names(), "model");
  ImageFolder folder = scan_image_folder(options.data, "--data");
  if (folder.classes != classes) {
    throw util::InputError(fmt::format(
        "--data {} has other classes than the model in {}: the model has {} ({}), the folder "
        "has {} ({})",
        options.data.string(), what, classes.size(), util::join(classes, ", "),
        folder.classes.size(), util::join(folder.classes, ", ")));
  }
  const int threads = resolve_threads(options.threads, /*processes_on_node=*/1);
  configure_threads(threads);
  const int loader_threads =
      options.loader_threads > 0
          ? options.loader_threads
          : default_loader_threads(available_cores(), /*processes_on_node=*/1);
  DeviceChoice device = choose_device(options.device, /*local_rank=*/0);
  auto model = make_model(model_name, static_cast<int>(classes.size()));
  try {
    torch::serialize::InputArchive archive;
    archive.load_from((options.model_dir / "model.pt").string(), torch::Device(torch::kCPU));
    model->load(archive);
  } catch (const c10::Error& failure) {
    std::string message = failure.what();
    throw util::InputError(
        fmt::format("{}: cannot read model.pt: {}", what, message.substr(0, message.find('\n'))));
  }
  model->to(device.device);
  model->eval();
  ImageDataset dataset(std::move(folder), /*strict=*/false);
  dataset.cache_if_small(static_cast<std::uint64_t>(options.cache_size_mb * 1e6),
                         threads + loader_threads);
  dataset.require_readable_image("");
  std::vector<std::size_t> all = eval_shard(dataset.size(), /*rank=*/0, /*world_size=*/1);
  LoaderOptions loader_options;
  loader_options.kind = TransformKind::eval;
  loader_options.image_size = image_size;
  loader_options.threads = loader_threads;
  loader_options.prefetch_batches = 2 * loader_threads + 2;
  BatchLoader loader(dataset,
                     split_batches(all, static_cast<std::size_t>(options.batch_size),
                                   /*drop_single_tail=*/false),
                     loader_options);
  ConfusionMatrix confusion(classes);
  torch::InferenceMode inference;
  while (auto batch = loader.next()) {
    if (batch->count == 0) {
      continue;
    }
    auto [images, labels] = batch_tensors(batch, device);
    torch::Tensor predicted = model->forward(images).argmax(1).to(torch::kCPU);
    auto* p = predicted.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < batch->count; ++i) {
      confusion.add(static_cast<std::size_t>(batch->labels[i]), static_cast<std::size_t>(p[i]));
    }
  }
  const std::int64_t total = confusion.total();
  const std::int64_t right = confusion.correct();
  print_line(fmt::format("accuracy {} ({}/{})",
                         percent(total > 0 ? static_cast<double>(right) / total : 0), right,
                         total));
  if (dataset.corrupt_count() > 0) {
    print_line(fmt::format("skipped {} corrupt images", dataset.corrupt_count()));
  }
  for (const std::string& line : confusion.lines()) {
    print_line(line);
  }
  return 0;
}

}  // namespace amlrun::train
