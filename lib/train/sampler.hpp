#pragma once
// Which samples each process sees in each epoch, and in which batches.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace amlrun::train {

// A seeded shuffle of 0..size-1 for one epoch (Fisher-Yates driven by a
// counter-based generator keyed on seed and epoch).
std::vector<std::size_t> epoch_permutation(std::size_t size, std::uint64_t seed, int epoch);

// torch.utils.data.DistributedSampler(shuffle=True, drop_last=False) with
// our permutation: the epoch's permutation, padded by repeating its head to a
// multiple of world_size, then every world_size-th index starting at rank.
// Every rank gets the same number of samples, so every rank runs the same
// number of steps (each step is a collective).
std::vector<std::size_t> train_shard(std::size_t size, std::uint64_t seed, int epoch, int rank,
                                     int world_size);

// Evaluation: no shuffle and no padding (rank r takes r, r + world, ...): the
// metrics are reduced as sums and counts, so uneven shards are exact.
std::vector<std::size_t> eval_shard(std::size_t size, int rank, int world_size);

// Consecutive batches of batch_size; the last one may be shorter. A final
// batch of one sample is dropped when drop_single_tail is set, because
// BatchNorm cannot compute batch statistics from a single sample.
std::vector<std::vector<std::size_t>> split_batches(const std::vector<std::size_t>& indices,
                                                    std::size_t batch_size, bool drop_single_tail);

}  // namespace amlrun::train
