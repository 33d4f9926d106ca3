#include "lib/sweep/gp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "lib/sweep/sampler.hpp"
#include "lib/sweep/sobol.hpp"

namespace amlrun::sweep {

namespace {

constexpr double k_noise = 1e-6;  // on normalised values: the functions are (nearly) exact

double matern52(const std::vector<double>& a, const std::vector<double>& b,
                const std::vector<double>& length) {
  double r2 = 0;
  for (std::size_t j = 0; j < a.size(); ++j) {
    const double d = (a[j] - b[j]) / length[j];
    r2 += d * d;
  }
  const double r = std::sqrt(5.0 * r2);
  return (1.0 + r + 5.0 * r2 / 3.0) * std::exp(-r);
}

// A lower-triangular Cholesky factor of a symmetric positive-definite
// matrix, row-major n×n; false when it is not (numerically) positive.
bool cholesky(std::vector<double>& a, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) {
    double diagonal = a[j * n + j];
    for (std::size_t k = 0; k < j; ++k) diagonal -= a[j * n + k] * a[j * n + k];
    if (diagonal <= 0) return false;
    const double root = std::sqrt(diagonal);
    a[j * n + j] = root;
    for (std::size_t i = j + 1; i < n; ++i) {
      double value = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) value -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = value / root;
    }
  }
  return true;
}

// Solves L x = b in place (forward substitution).
void solve_lower(const std::vector<double>& l, std::size_t n, std::vector<double>& b) {
  for (std::size_t i = 0; i < n; ++i) {
    double value = b[i];
    for (std::size_t k = 0; k < i; ++k) value -= l[i * n + k] * b[k];
    b[i] = value / l[i * n + i];
  }
}

// Solves Lᵀ x = b in place (back substitution).
void solve_upper(const std::vector<double>& l, std::size_t n, std::vector<double>& b) {
  for (std::size_t i = n; i-- > 0;) {
    double value = b[i];
    for (std::size_t k = i + 1; k < n; ++k) value -= l[k * n + i] * b[k];
    b[i] = value / l[i * n + i];
  }
}

struct Model {
  std::vector<std::vector<double>> x;
  std::vector<double> length;
  std::vector<double> factor;  // Cholesky of K + noise
  std::vector<double> alpha;   // (K + noise)⁻¹ y
  double log_likelihood = -std::numeric_limits<double>::infinity();
};

// Fits the model for these length scales; its log marginal likelihood is
// -inf when the matrix is not positive definite.
Model fit(const std::vector<std::vector<double>>& x, const std::vector<double>& y,
          const std::vector<double>& length) {
  Model model;
  model.x = x;
  model.length = length;
  const std::size_t n = x.size();
  model.factor.assign(n * n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      const double k = matern52(x[i], x[j], length);
      model.factor[i * n + j] = k;
      model.factor[j * n + i] = k;
    }
    model.factor[i * n + i] += k_noise;
  }
  if (!cholesky(model.factor, n)) return model;
  model.alpha = y;
  solve_lower(model.factor, n, model.alpha);
  double fit_term = 0;
  for (double v : model.alpha) fit_term += v * v;
  solve_upper(model.factor, n, model.alpha);
  double log_det = 0;
  for (std::size_t i = 0; i < n; ++i) log_det += 2 * std::log(model.factor[i * n + i]);
  model.log_likelihood = -0.5 * fit_term - 0.5 * log_det;
  return model;
}

// Posterior mean and standard deviation at x.
std::pair<double, double> predict(const Model& model, const std::vector<double>& x) {
  const std::size_t n = model.x.size();
  std::vector<double> k(n);
  for (std::size_t i = 0; i < n; ++i) k[i] = matern52(model.x[i], x, model.length);
  double mean = 0;
  for (std::size_t i = 0; i < n; ++i) mean += k[i] * model.alpha[i];
  solve_lower(model.factor, n, k);
  double explained = 0;
  for (double v : k) explained += v * v;
  return {mean, std::sqrt(std::max(1e-12, 1.0 - explained))};
}

// Expected improvement below `best` (values are minimised here).
double expected_improvement(double mean, double sigma, double best, double xi) {
  const double gap = best - mean - xi;
  const double z = gap / sigma;
  const double cdf = 0.5 * std::erfc(-z / std::sqrt(2.0));
  const double pdf = std::exp(-0.5 * z * z) / std::sqrt(2.0 * 3.141592653589793);
  return gap * cdf + sigma * pdf;
}

}  // namespace

std::vector<double> gp_propose(const SearchSpace& space, Goal goal, std::uint64_t seed,
                               std::uint64_t k, const std::vector<Observation>& done,
                               const std::vector<std::vector<double>>& pending,
                               const GpOptions& options) {
  const std::size_t dims = dimensions(space);
  std::uint64_t state = seed ^ (0x9E3779B97F4A7C15ULL * (k + 1));
  const std::size_t startup = options.startup_trials ? options.startup_trials : 2 * dims + 1;
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (const Observation& o : done) {
    if (std::isnan(o.value)) continue;
    x.push_back(o.point);
    // Minimised internally.
    y.push_back(goal == Goal::minimize ? o.value : -o.value);
  }
  if (x.size() < startup || dims > k_sobol_max_dimensions) {
    // A space-filling start: Sobol points, shifted by the seed.
    std::vector<std::uint32_t> shift(dims);
    std::uint64_t shift_state = seed;
    for (auto& word : shift)
      word = static_cast<std::uint32_t>(next_uniform(shift_state) * 4294967296.0);
    if (dims > k_sobol_max_dimensions) {
      std::vector<double> point(dims);
      for (double& u : point) u = next_uniform(state);
      return point;
    }
    return sobol_point(k + 1, dims, shift);
  }
  const double mean = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(y.size());
  double variance = 0;
  for (double v : y) variance += (v - mean) * (v - mean);
  const double scale = std::sqrt(variance / static_cast<double>(y.size()));
  for (double& v : y) v = scale > 0 ? (v - mean) / scale : 0;
  const std::size_t observed = y.size();
  const double best = *std::min_element(y.begin(), y.end());

  // Length scales: the most likely of a seeded random search (log-uniform
  // in [0.03, 3] per coordinate, and shared ones), refined per coordinate.
  Model model;
  auto consider = [&](const std::vector<double>& length) {
    Model candidate = fit(x, y, length);
    if (candidate.log_likelihood > model.log_likelihood) model = std::move(candidate);
  };
  for (double shared : {0.1, 0.2, 0.4, 0.8}) consider(std::vector<double>(dims, shared));
  for (int i = 0; i < 48; ++i) {
    std::vector<double> length(dims);
    for (double& l : length) l = std::exp(std::log(0.03) + next_uniform(state) * std::log(100.0));
    consider(length);
  }
  for (int round = 0; round < 2; ++round) {
    for (std::size_t j = 0; j < dims; ++j) {
      for (double factor : {0.5, 0.7, 1.4, 2.0}) {
        std::vector<double> length = model.length;
        length[j] = std::clamp(length[j] * factor, 0.01, 10.0);
        consider(length);
      }
    }
  }
  if (model.alpha.empty()) {
    std::vector<double> point(dims);
    for (double& u : point) u = next_uniform(state);
    return point;
  }
  // Running trials as the model believes they will end (its mean there):
  // the uncertainty at their points goes, so proposals spread out, without
  // the "worst value" liar's false hole that would push them off a good
  // region for as long as a trial there runs.
  if (!pending.empty()) {
    for (const auto& p : pending) {
      x.push_back(p);
      y.push_back(predict(model, p).first);
    }
    Model believed = fit(x, y, model.length);
    if (!believed.alpha.empty()) model = std::move(believed);
  }

  // Expected improvement over random points and points near the best ones,
  // then the best few polished by a shrinking coordinate search.
  std::vector<std::pair<double, std::vector<double>>> scored;
  auto score = [&](std::vector<double> point) {
    for (double& u : point) u = std::clamp(u, 0.0, 1.0 - 1e-12);
    auto [mu, sigma] = predict(model, point);
    scored.emplace_back(expected_improvement(mu, sigma, best, options.xi), std::move(point));
  };
  for (std::size_t i = 0; i < options.candidates; ++i) {
    std::vector<double> point(dims);
    for (double& u : point) u = next_uniform(state);
    score(std::move(point));
  }
  std::vector<std::pair<double, std::size_t>> ranked;
  for (std::size_t i = 0; i < observed; ++i) ranked.emplace_back(y[i], i);
  std::sort(ranked.begin(), ranked.end());
  for (std::size_t r = 0; r < std::min<std::size_t>(5, ranked.size()); ++r) {
    for (int i = 0; i < 64; ++i) {
      std::vector<double> point = x[ranked[r].second];
      for (double& u : point) {
        // A Gaussian step from the Box–Muller transform.
        const double a = std::max(1e-12, next_uniform(state));
        const double b = next_uniform(state);
        u += 0.05 * std::sqrt(-2 * std::log(a)) * std::cos(2 * 3.141592653589793 * b);
      }
      score(std::move(point));
    }
  }
  std::partial_sort(scored.begin(),
                    scored.begin() + std::min<long>(5, static_cast<long>(scored.size())),
                    scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  auto top = scored.front();
  for (std::size_t s = 0; s < std::min<std::size_t>(5, scored.size()); ++s) {
    auto current = scored[s];
    // Steps of 0.05, 0.025, ... down to 0.003.
    for (int halving = 0; halving < 5; ++halving) {
      const double step = 0.05 / static_cast<double>(1 << halving);
      bool moved = true;
      while (moved) {
        moved = false;
        for (std::size_t j = 0; j < dims; ++j) {
          for (double direction : {-1.0, 1.0}) {
            std::vector<double> point = current.second;
            point[j] = std::clamp(point[j] + direction * step, 0.0, 1.0 - 1e-12);
            auto [mu, sigma] = predict(model, point);
            const double value = expected_improvement(mu, sigma, best, options.xi);
            if (value > current.first) {
              current = {value, std::move(point)};
              moved = true;
            }
          }
        }
      }
    }
    if (current.first > top.first) top = current;
  }
  return top.second;
}

std::vector<double> bayesian_propose(const SearchSpace& space, Goal goal, std::uint64_t seed,
                                     std::uint64_t k, const std::vector<Observation>& done,
                                     const std::vector<std::vector<double>>& pending) {
  const auto options = dimension_options(space);
  const bool has_choice =
      std::any_of(options.begin(), options.end(), [](std::size_t count) { return count > 0; });
  if (has_choice) return tpe_propose(space, goal, seed, k, done, pending);
  return gp_propose(space, goal, seed, k, done, pending);
}

}  // namespace amlrun::sweep
