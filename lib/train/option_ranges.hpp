#pragma once
// The ranges of `amlrun-worker train`'s numeric options: the one source that
// both the worker (lib/train/config.cpp) and the job-file dialect
// `type: train_pytorch_model` (lib/spec/dialect_trainer.cpp) check against,
// so a job that passes `amlrun validate` is a job the worker accepts.
// Header-only and free of LibTorch: lib/spec includes it without linking
// lib/train (which is not built with -DAMLRUN_WORKER=OFF).
#include <cstdint>
#include <limits>

namespace amlrun::train::option_ranges {

// min <= value <= max.
struct IntegerRange {
  std::int64_t min;
  std::int64_t max;
  constexpr bool contains(std::int64_t value) const { return value >= min && value <= max; }
};

// greater_than < value <= max (max may be infinite: no upper end).
struct NumberRange {
  double greater_than;
  double max;
  constexpr bool contains(double value) const { return value > greater_than && value <= max; }
};

// 0 epochs only writes the initial model (e.g. to convert a state dict).
inline constexpr IntegerRange k_epochs{0, 100'000};
// Per process.
inline constexpr IntegerRange k_batch_size{1, 1 << 20};
// A rate of 0 trains nothing; a huge one diverges, which is the user's call
// (the tests make a run diverge on purpose).
inline constexpr NumberRange k_learning_rate{0, std::numeric_limits<double>::infinity()};
inline constexpr IntegerRange k_seed{0, std::numeric_limits<std::int64_t>::max()};
// 0: never stop early.
inline constexpr IntegerRange k_patience{0, 100'000};
// The models reduce the image 32 times; 32 is the smallest side they take.
inline constexpr IntegerRange k_image_size{32, 4096};
// 0: chosen from the cores.
inline constexpr IntegerRange k_threads{0, 1024};
inline constexpr IntegerRange k_loader_threads{0, 256};
// Steps; 0: only at the end of each epoch.
inline constexpr IntegerRange k_checkpoint_every{0, std::numeric_limits<int>::max()};

}  // namespace amlrun::train::option_ranges
