#include "lib/train/loader.hpp"

#include "lib/train/random.hpp"
#include "lib/train/transforms.hpp"

namespace amlrun::train {

bool build_sample(const ImageDataset& dataset, std::size_t index, const LoaderOptions& options,
                  Image& scratch, float* out) {
  const Image* image = dataset.image(index, scratch);
  if (image == nullptr) {
    return false;
  }
  if (options.kind == TransformKind::train) {
    SampleRandom random(derive_seed(options.seed, RandomStream::augment,
                                    static_cast<std::uint64_t>(options.epoch), index));
    train_transform(*image, options.image_size, options.min_crop_scale, random, out);
  } else {
    eval_transform(*image, options.image_size, out, options.normalization);
  }
  return true;
}

BatchLoader::BatchLoader(const ImageDataset& dataset, std::vector<std::vector<std::size_t>> batches,
                         LoaderOptions options)
    : m_dataset(dataset), m_batches(std::move(batches)), m_options(options) {
  for (int t = 0; t < m_options.threads; ++t) {
    m_threads.emplace_back([this] { work(); });
  }
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_changed.notify_all();
  for (std::thread& thread : m_threads) {
    thread.join();
  }
}

std::shared_ptr<Batch> BatchLoader::build(std::size_t batch_index) const {
  const std::vector<std::size_t>& indices = m_batches[batch_index];
  auto batch = std::make_shared<Batch>();
  batch->index = batch_index;
  batch->image_size = m_options.image_size;
  const std::size_t sample_floats =
      3 * static_cast<std::size_t>(m_options.image_size) * m_options.image_size;
  // Not value-initialised: every float is written by the transform.
  batch->pixels.reset(new float[indices.size() * sample_floats]);
  batch->labels.reserve(indices.size());
  batch->samples.reserve(indices.size());
  Image scratch;
  for (std::size_t index : indices) {
    float* out = batch->pixels.get() + batch->count * sample_floats;
    if (build_sample(m_dataset, index, m_options, scratch, out)) {
      batch->labels.push_back(m_dataset.label(index));
      batch->samples.push_back(index);
      batch->count += 1;
    }
  }
  return batch;
}

void BatchLoader::work() {
  while (true) {
    std::size_t batch_index;
    {
      std::unique_lock lock(m_mutex);
      // Claim the next batch once it is within the prefetch window.
      m_changed.wait(lock, [this] {
        return m_stopping || m_error || m_next_to_build >= m_batches.size() ||
               m_next_to_build < m_next_to_consume + static_cast<std::size_t>(
                                                         std::max(m_options.prefetch_batches, 1));
      });
      if (m_stopping || m_error || m_next_to_build >= m_batches.size()) {
        return;
      }
      batch_index = m_next_to_build++;
    }
    std::shared_ptr<Batch> batch;
    try {
      batch = build(batch_index);
    } catch (...) {
      std::lock_guard lock(m_mutex);
      m_error = std::current_exception();
      m_changed.notify_all();
      return;
    }
    {
      std::lock_guard lock(m_mutex);
      m_ready.emplace(batch_index, std::move(batch));
    }
    m_changed.notify_all();
  }
}

std::shared_ptr<Batch> BatchLoader::next() {
  if (m_next_to_consume >= m_batches.size()) {
    return nullptr;
  }
  if (m_threads.empty()) {
    return build(m_next_to_consume++);
  }
  std::unique_lock lock(m_mutex);
  m_changed.wait(lock, [this] { return m_error || m_ready.count(m_next_to_consume) > 0; });
  if (m_error) {
    std::rethrow_exception(m_error);
  }
  auto found = m_ready.find(m_next_to_consume);
  std::shared_ptr<Batch> batch = std::move(found->second);
  m_ready.erase(found);
  m_next_to_consume += 1;
  lock.unlock();
  m_changed.notify_all();
  return batch;
}

}  // namespace amlrun::train
