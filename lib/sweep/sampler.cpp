#include "lib/sweep/sampler.hpp"

#include <stdexcept>

#include "lib/sweep/sobol.hpp"

namespace amlrun::sweep {

namespace {

constexpr std::uint64_t k_golden = 0x9E3779B97F4A7C15ULL;

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += k_golden);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The stream of trial k: far apart from trial k+1's for the same seed.
std::uint64_t trial_state(std::uint64_t seed, std::uint64_t k) {
  std::uint64_t state = seed;
  return splitmix64(state) ^ (k * k_golden);
}

}  // namespace

double next_uniform(std::uint64_t& state) {
  return static_cast<double>(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

Assignment random_trial(const SearchSpace& space, std::uint64_t seed, RandomRule rule,
                        std::uint64_t k) {
  const std::size_t dims = dimensions(space);
  std::vector<double> point;
  if (rule == RandomRule::sobol) {
    if (dims > k_sobol_max_dimensions) {
      throw std::invalid_argument("sobol sampling takes at most 32 distributions");
    }
    std::uint64_t state = seed;
    std::vector<std::uint32_t> shift(dims);
    for (std::uint32_t& word : shift) {
      word = static_cast<std::uint32_t>(splitmix64(state) >> 32);
    }
    point = sobol_point(k + 1, dims, shift);
  } else {
    std::uint64_t state = trial_state(seed, k);
    point.resize(dims);
    for (double& u : point) {
      u = next_uniform(state);
    }
  }
  return assignment_at(space, point);
}

std::uint64_t grid_size(const SearchSpace& space) {
  std::uint64_t size = 1;
  for (const Parameter& parameter : space.parameters) {
    const auto* choice = std::get_if<Choice>(&parameter.distribution);
    if (choice == nullptr) {
      throw std::invalid_argument("grid sampling takes only choice parameters");
    }
    size *= choice->options.size();
  }
  return size;
}

Assignment grid_trial(const SearchSpace& space, std::uint64_t k) {
  // The mixed-radix digits of k pick each parameter's option; the point's
  // coordinate for it is that option's middle. Coordinates of a nested map
  // (one-option choices: its fixed values) take any value.
  std::vector<double> point(dimensions(space), 0.5);
  std::vector<std::uint64_t> digits(space.parameters.size());
  for (std::size_t i = space.parameters.size(); i-- > 0;) {
    const auto& choice = std::get<Choice>(space.parameters[i].distribution);
    digits[i] = k % choice.options.size();
    k /= choice.options.size();
  }
  std::size_t offset = 0;
  for (std::size_t i = 0; i < space.parameters.size(); ++i) {
    const auto& choice = std::get<Choice>(space.parameters[i].distribution);
    point[offset] =
        (static_cast<double>(digits[i]) + 0.5) / static_cast<double>(choice.options.size());
    offset += dimensions(SearchSpace{{space.parameters[i]}});
  }
  return assignment_at(space, point);
}

}  // namespace amlrun::sweep
