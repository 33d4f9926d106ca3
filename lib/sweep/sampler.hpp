#pragma once
// Random, sobol and grid sampling: trial k's parameters as a pure function
// of the space, the settings and k. A controller that restarts after a
// crash recomputes the trials it already started instead of keeping a
// generator's state, and a sweep repeated with the same seed is the same.
#include <cstdint>

#include "lib/sweep/search_space.hpp"

namespace amlrun::sweep {

enum class RandomRule { random, sobol };

// Random: every coordinate of trial k from a SplitMix64 stream seeded by
// (seed, k). Sobol: point k + 1 of the Sobol sequence (the origin is
// skipped: it is every parameter's lowest value at once), digitally shifted
// by words drawn from the seed. At most k_sobol_max_dimensions coordinates
// (dimensions(space)); more throws std::invalid_argument.
Assignment random_trial(const SearchSpace& space, std::uint64_t seed, RandomRule rule,
                        std::uint64_t k);

// Grid: every parameter a choice (of values, or of maps of values). The
// Cartesian product in file order, the last parameter changing fastest, the
// options of each in file order.
std::uint64_t grid_size(const SearchSpace& space);
// k < grid_size(space).
Assignment grid_trial(const SearchSpace& space, std::uint64_t k);

// A uniform double in [0, 1) from the SplitMix64 stream at `state`
// (advanced); the random rule's and the Bayesian sampler's source.
double next_uniform(std::uint64_t& state);

}  // namespace amlrun::sweep
