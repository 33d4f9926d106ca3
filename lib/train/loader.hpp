#pragma once
// The input pipeline: native threads decode (or take from the cache),
// transform and batch images ahead of the training loop. No GIL and no worker
// processes: a batch is built in place in one buffer that the training loop
// hands to LibTorch without a copy.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "lib/train/dataset.hpp"
#include "lib/train/transforms.hpp"

namespace amlrun::train {

struct Batch {
  std::size_t index = 0;  // position in the epoch
  int image_size = 0;
  std::size_t count = 0;            // samples in the batch (corrupt ones are left out)
  std::unique_ptr<float[]> pixels;  // count × 3 × image_size × image_size, NCHW
  std::vector<std::int64_t> labels;
  std::vector<std::size_t> samples;  // the dataset index of each sample in the batch
};

enum class TransformKind { train, eval };

struct LoaderOptions {
  TransformKind kind = TransformKind::train;
  int image_size = 224;
  // The eval transform's; a model folder's config.json may name its own.
  Normalization normalization = k_imagenet_normalization;
  double min_crop_scale = 0.08;
  std::uint64_t seed = 1;
  int epoch = 0;
  int threads = 2;           // 0: build batches on the caller's thread
  int prefetch_batches = 4;  // batches built ahead of the consumer
};

class BatchLoader {
 public:
  // `batches` lists dataset indices per batch, in the order they are consumed.
  BatchLoader(const ImageDataset& dataset, std::vector<std::vector<std::size_t>> batches,
              LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in order, or nullptr after the last one. An exception
  // thrown while building a batch (--strict) is rethrown here.
  std::shared_ptr<Batch> next();

  std::size_t batch_count() const { return m_batches.size(); }

 private:
  std::shared_ptr<Batch> build(std::size_t batch_index) const;
  void work();

  const ImageDataset& m_dataset;
  std::vector<std::vector<std::size_t>> m_batches;
  LoaderOptions m_options;

  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::size_t m_next_to_build = 0;
  std::size_t m_next_to_consume = 0;
  std::map<std::size_t, std::shared_ptr<Batch>> m_ready;
  std::exception_ptr m_error;
  bool m_stopping = false;
  std::vector<std::thread> m_threads;
};

// Builds one sample's transformed pixels (3 × size × size floats) into `out`;
// returns false for a corrupt image. The augmentation is keyed on
// (seed, epoch, dataset index), so it is the same whichever thread or rank
// builds it.
bool build_sample(const ImageDataset& dataset, std::size_t index, const LoaderOptions& options,
                  Image& scratch, float* out);

}  // namespace amlrun::train
