#include "lib/train/sampler.hpp"

#include <numeric>
#include <utility>

#include "lib/train/random.hpp"

namespace amlrun::train {

std::vector<std::size_t> epoch_permutation(std::size_t size, std::uint64_t seed, int epoch) {
  std::vector<std::size_t> order(size);
  std::iota(order.begin(), order.end(), std::size_t{0});
  SampleRandom random(derive_seed(seed, RandomStream::shuffle, static_cast<std::uint64_t>(epoch)));
  for (std::size_t i = size; i > 1; --i) {
    auto j = static_cast<std::size_t>(random.integer(0, static_cast<std::int64_t>(i)));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

std::vector<std::size_t> train_shard(std::size_t size, std::uint64_t seed, int epoch, int rank,
                                     int world_size) {
  std::vector<std::size_t> order = epoch_permutation(size, seed, epoch);
  const auto world = static_cast<std::size_t>(world_size);
  const std::size_t padded = (size + world - 1) / world * world;
  // Like DistributedSampler, the padding repeats the permutation from its start
  // (more than once when the dataset is smaller than the world).
  for (std::size_t i = size; i < padded && size > 0; ++i) {
    order.push_back(order[i % size]);
  }
  std::vector<std::size_t> shard;
  shard.reserve(padded / world);
  for (std::size_t i = static_cast<std::size_t>(rank); i < order.size(); i += world) {
    shard.push_back(order[i]);
  }
  return shard;
}

std::vector<std::size_t> eval_shard(std::size_t size, int rank, int world_size) {
  std::vector<std::size_t> shard;
  for (std::size_t i = static_cast<std::size_t>(rank); i < size;
       i += static_cast<std::size_t>(world_size)) {
    shard.push_back(i);
  }
  return shard;
}

std::vector<std::vector<std::size_t>> split_batches(const std::vector<std::size_t>& indices,
                                                    std::size_t batch_size, bool drop_single_tail) {
  std::vector<std::vector<std::size_t>> batches;
  for (std::size_t start = 0; start < indices.size(); start += batch_size) {
    std::size_t end = std::min(start + batch_size, indices.size());
    if (drop_single_tail && end - start == 1 && start > 0) {
      break;
    }
    batches.emplace_back(indices.begin() + static_cast<std::ptrdiff_t>(start),
                         indices.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

}  // namespace amlrun::train
