#pragma once
// Counter-based randomness for data order and augmentation. Every random
// choice is derived from (seed, epoch, sample index) alone, never from a
// generator that advances as work happens, so the result does not depend on
// the number of loader threads, on which rank loads a sample, or on whether a
// run was interrupted and continued: `continue` needs no generator state to
// reproduce an uninterrupted run.
#include <cmath>
#include <cstdint>

namespace amlrun::train {

// SplitMix64's output function: a bijective mix of 64 bits.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Distinct streams for different purposes, so that the shuffle of epoch 3 is
// unrelated to the augmentation of sample 3.
enum class RandomStream : std::uint64_t { shuffle = 1, augment = 2 };

constexpr std::uint64_t derive_seed(std::uint64_t seed, RandomStream stream, std::uint64_t a,
                                    std::uint64_t b = 0) {
  return mix64(mix64(mix64(seed ^ (static_cast<std::uint64_t>(stream) << 56)) ^ a) ^ b);
}

// A SplitMix64 sequence: tiny state, good statistical quality for this use.
class SampleRandom {
 public:
  explicit SampleRandom(std::uint64_t seed) : m_state(seed) {}

  std::uint64_t next() {
    m_state += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = m_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }

  // Uniform integer in [low, high_exclusive); high_exclusive > low.
  std::int64_t integer(std::int64_t low, std::int64_t high_exclusive) {
    auto range = static_cast<std::uint64_t>(high_exclusive - low);
    // Lemire's multiply-shift; the bias for ranges this small is < 2^-40.
    auto product = static_cast<unsigned __int128>(next()) * range;
    return low + static_cast<std::int64_t>(product >> 64);
  }

 private:
  std::uint64_t m_state;
};

}  // namespace amlrun::train
