// `amlrun-worker loader-benchmark`: the input pipeline alone, without a
// model. No LibTorch here.
#include <fmt/format.h>
#include <algorithm>
#include <limits>

#include "lib/train/dataset.hpp"
#include "lib/train/loader.hpp"
#include "lib/train/progress.hpp"
#include "lib/train/sampler.hpp"
#include "lib/train/trainer.hpp"

namespace amlrun::train {

int run_loader_benchmark(const LoaderBenchmarkOptions& options) {
  ImageDataset dataset(scan_image_folder(options.data, "--data"), /*strict=*/false);
  auto cache_start = Clock::now();
  bool cached = options.cache && dataset.cache_if_small(std::numeric_limits<std::uint64_t>::max(),
                                                        std::max(1, options.loader_threads));
  double cache_seconds = seconds_since(cache_start);
  std::size_t images = 0;
  auto start = Clock::now();
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    LoaderOptions loader_options;
    loader_options.kind = options.eval_transform ? TransformKind::eval : TransformKind::train;
    loader_options.image_size = options.image_size;
    loader_options.epoch = epoch;
    loader_options.threads = options.loader_threads;
    loader_options.prefetch_batches = 2 * options.loader_threads + 2;
    BatchLoader loader(dataset,
                       split_batches(train_shard(dataset.size(), /*seed=*/1, epoch, /*rank=*/0,
                                                 /*world_size=*/1),
                                     static_cast<std::size_t>(options.batch_size),
                                     /*drop_single_tail=*/false),
                       loader_options);
    while (auto batch = loader.next()) {
      images += batch->count;
    }
  }
  double seconds = seconds_since(start);
  print_line(fmt::format("{} images in {:.2f} s with {} loader thread{}{}", images, seconds,
                         options.loader_threads, options.loader_threads == 1 ? "" : "s",
                         cached
                             ? fmt::format(" (decoded once into memory in {:.2f} s)", cache_seconds)
                             : " (decoded every epoch)"));
  print_line(fmt::format("images_per_sec {:.1f}", seconds > 0 ? images / seconds : 0.0));
  return 0;
}

}  // namespace amlrun::train
