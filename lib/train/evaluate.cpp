// `amlrun-worker evaluate`: a model folder's accuracy and confusion matrix
// on a labelled image folder.
#include <torch/types.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include "lib/train/confusion.hpp"
#include "lib/train/dataset.hpp"
#include "lib/train/device.hpp"
#include "lib/train/loader.hpp"
#include "lib/train/model_folder.hpp"
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
  const ModelFolder model_folder = read_model_folder(options.model_dir, {"model.pt"});
  const std::string& what = model_folder.what;
  const std::vector<std::string>& classes = model_folder.classes;
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
  auto model = load_model(model_folder);
  model->to(device.device);
  ImageDataset dataset(std::move(folder), /*strict=*/false);
  dataset.cache_if_small(static_cast<std::uint64_t>(options.cache_size_mb * 1e6),
                         threads + loader_threads);
  dataset.require_readable_image("");
  std::vector<std::size_t> all = eval_shard(dataset.size(), /*rank=*/0, /*world_size=*/1);
  LoaderOptions loader_options;
  loader_options.kind = TransformKind::eval;
  loader_options.image_size = model_folder.image_size;
  loader_options.normalization = model_folder.normalization;
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
