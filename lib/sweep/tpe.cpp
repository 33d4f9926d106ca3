#include "lib/sweep/tpe.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "lib/sweep/sampler.hpp"

namespace amlrun::sweep {

namespace {

constexpr double k_sqrt2 = 1.4142135623730951;
constexpr double k_pi = 3.141592653589793;

double normal_cdf(double x) {
  return 0.5 * std::erfc(-x / k_sqrt2);
}

// A Parzen density on [0, 1): Gaussians truncated to the interval at each
// observed coordinate, plus a uniform prior with the weight of one of them.
struct Parzen {
  std::vector<double> centres;
  std::vector<double> widths;

  explicit Parzen(std::vector<double> xs) : centres(std::move(xs)) {
    std::vector<double> sorted = centres;
    std::sort(sorted.begin(), sorted.end());
    // Each width is the larger gap to a neighbour (the interval's ends
    // count), kept between 1/(10·(n+1)) and 1: narrow where points cluster.
    const double n = static_cast<double>(centres.size());
    for (double c : centres) {
      const auto at = std::lower_bound(sorted.begin(), sorted.end(), c);
      const double left = at == sorted.begin() ? c : c - *std::prev(at);
      const auto next = std::upper_bound(sorted.begin(), sorted.end(), c);
      const double right = next == sorted.end() ? 1.0 - c : *next - c;
      widths.push_back(std::clamp(std::max(left, right), 0.1 / (n + 1), 1.0));
    }
  }

  double density(double x) const {
    double sum = 1.0;  // the prior: uniform density 1 on [0, 1)
    for (std::size_t i = 0; i < centres.size(); ++i) {
      const double h = widths[i];
      const double mass = normal_cdf((1 - centres[i]) / h) - normal_cdf(-centres[i] / h);
      const double z = (x - centres[i]) / h;
      sum += std::exp(-0.5 * z * z) / (h * std::sqrt(2 * k_pi)) / std::max(mass, 1e-12);
    }
    return sum / static_cast<double>(centres.size() + 1);
  }

  double sample(std::uint64_t& state) const {
    const auto pick =
        static_cast<std::size_t>(next_uniform(state) * static_cast<double>(centres.size() + 1));
    if (pick >= centres.size()) return next_uniform(state);
    // Truncated to the interval by inversion of the normal's distribution.
    const double h = widths[pick];
    const double low = normal_cdf(-centres[pick] / h);
    const double high = normal_cdf((1 - centres[pick]) / h);
    const double u = low + next_uniform(state) * (high - low);
    const double x = centres[pick] + h * normal_quantile(std::clamp(u, 1e-15, 1 - 1e-15));
    return std::clamp(x, 0.0, std::nextafter(1.0, 0.0));
  }
};

// Category weights: counts plus a prior of one spread over the options.
struct Categorical {
  std::vector<double> weights;

  Categorical(const std::vector<double>& xs, std::size_t options)
      : weights(options, 1.0 / static_cast<double>(options)) {
    for (double x : xs) {
      weights[bin(x, options)] += 1.0;
    }
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    for (double& w : weights) w /= total;
  }

  static std::size_t bin(double x, std::size_t options) {
    return std::min(options - 1, static_cast<std::size_t>(x * static_cast<double>(options)));
  }

  double density(double x) const { return weights[bin(x, weights.size())]; }

  double sample(std::uint64_t& state) const {
    double u = next_uniform(state);
    for (std::size_t i = 0; i < weights.size(); ++i) {
      if (u < weights[i] || i + 1 == weights.size()) {
        return (static_cast<double>(i) + 0.5) / static_cast<double>(weights.size());
      }
      u -= weights[i];
    }
    return 0.5;
  }
};

}  // namespace

std::vector<double> tpe_propose(const SearchSpace& space, Goal goal, std::uint64_t seed,
                                std::uint64_t k, const std::vector<Observation>& done,
                                const std::vector<std::vector<double>>& pending,
                                const TpeOptions& options) {
  const std::vector<std::size_t> kinds = dimension_options(space);
  std::uint64_t state = seed ^ (0xD1B54A32D192ED03ULL * (k + 1));
  // The observations with a value, and the pending ones at the worst value.
  std::vector<Observation> seen;
  for (const Observation& o : done) {
    if (!std::isnan(o.value)) seen.push_back(o);
  }
  if (seen.size() < options.startup_trials) {
    std::vector<double> point(kinds.size());
    for (double& u : point) u = next_uniform(state);
    return point;
  }
  double worst = seen.front().value;
  for (const Observation& o : seen) {
    if (better(goal, worst, o.value)) worst = o.value;
  }
  for (const auto& p : pending) {
    seen.push_back({p, worst});
  }
  std::stable_sort(seen.begin(), seen.end(), [&](const Observation& a, const Observation& b) {
    return better(goal, a.value, b.value);
  });
  const auto good_count = std::clamp<std::size_t>(
      static_cast<std::size_t>(std::ceil(options.gamma * static_cast<double>(seen.size()))), 1,
      options.max_good);

  std::vector<std::vector<double>> candidates(options.candidates,
                                              std::vector<double>(kinds.size()));
  std::vector<double> score(options.candidates, 0.0);
  for (std::size_t d = 0; d < kinds.size(); ++d) {
    std::vector<double> good;
    std::vector<double> bad;
    for (std::size_t i = 0; i < seen.size(); ++i) {
      (i < good_count ? good : bad).push_back(seen[i].point.at(d));
    }
    // Each dimension independently: l(x) from the good, g(x) from the rest;
    // the candidate with the largest l/g (expected improvement's maximiser
    // under TPE) wins.
    auto draw = [&](const auto& l, const auto& g) {
      for (std::size_t c = 0; c < options.candidates; ++c) {
        candidates[c][d] = l.sample(state);
        score[c] += std::log(l.density(candidates[c][d])) - std::log(g.density(candidates[c][d]));
      }
    };
    if (kinds[d] > 0) {
      draw(Categorical(good, kinds[d]), Categorical(bad, kinds[d]));
    } else {
      draw(Parzen(good), Parzen(bad));
    }
  }
  const auto best = std::max_element(score.begin(), score.end()) - score.begin();
  return candidates[static_cast<std::size_t>(best)];
}

}  // namespace amlrun::sweep
