// Benchmark driver for sweep sampling: runs whole searches of a test
// function with known optimum through lib/sweep, as a sweep controller
// would (a trial's values from the sampler, its objective reported back),
// and prints the regret (best found - optimum) of each seed.
//   sweep_search_driver branin|hartmann6 random|sobol|bayesian|tpe|gp TRIALS SEEDS
// (bayesian: what sweeps use, bayesian_propose; tpe and gp: each alone)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "lib/sweep/gp.hpp"
#include "lib/sweep/sampler.hpp"
#include "lib/sweep/tpe.hpp"

using namespace amlrun::sweep;

namespace {

constexpr double k_pi = 3.141592653589793;

// Branin on x1 in [-5, 10], x2 in [0, 15]; minimum 0.397887 (three places).
double branin(const std::vector<double>& x) {
  const double b = 5.1 / (4 * k_pi * k_pi);
  const double c = 5 / k_pi;
  const double t = 1 / (8 * k_pi);
  const double r = x[1] - b * x[0] * x[0] + c * x[0] - 6;
  return r * r + 10 * (1 - t) * std::cos(x[0]) + 10;
}

// Hartmann-6 on [0, 1]^6; minimum -3.32237.
double hartmann6(const std::vector<double>& x) {
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  static const double a[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                 {0.05, 10, 17, 0.1, 8, 14},
                                 {3, 3.5, 1.7, 10, 17, 8},
                                 {17, 8, 0.05, 10, 0.1, 14}};
  static const double p[4][6] = {{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
                                 {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
                                 {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
                                 {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) {
      inner += a[i][j] * (x[j] - p[i][j]) * (x[j] - p[i][j]);
    }
    sum += alpha[i] * std::exp(-inner);
  }
  return -sum;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(
        stderr, "usage: sweep_search_driver branin|hartmann6 random|sobol|bayesian TRIALS SEEDS\n");
    return 2;
  }
  const std::string function = argv[1];
  const std::string sampler = argv[2];
  const auto trials = std::strtoull(argv[3], nullptr, 10);
  const auto seeds = std::strtoull(argv[4], nullptr, 10);
  SearchSpace space;
  double optimum = 0;
  if (function == "branin") {
    space.parameters = {{"x1", Uniform{-5, 10}}, {"x2", Uniform{0, 15}}};
    optimum = 0.397887357729739;
  } else {
    for (int j = 0; j < 6; ++j) {
      space.parameters.push_back({"x" + std::to_string(j + 1), Uniform{0, 1}});
    }
    optimum = -3.32236801141551;
  }
  auto objective = [&](const Assignment& values) {
    std::vector<double> x;
    for (const auto& [name, value] : values) x.push_back(value.real);
    return function == "branin" ? branin(x) : hartmann6(x);
  };
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    std::vector<Observation> done;
    double best = INFINITY;
    for (std::uint64_t k = 0; k < trials; ++k) {
      double value = 0;
      if (sampler == "bayesian" || sampler == "tpe" || sampler == "gp") {
        std::vector<double> point =
            sampler == "tpe"  ? tpe_propose(space, Goal::minimize, seed, k, done, {})
            : sampler == "gp" ? gp_propose(space, Goal::minimize, seed, k, done, {})
                              : bayesian_propose(space, Goal::minimize, seed, k, done, {});
        value = objective(assignment_at(space, point));
        done.push_back({point, value});
      } else {
        value = objective(random_trial(
            space, seed, sampler == "sobol" ? RandomRule::sobol : RandomRule::random, k));
      }
      best = std::min(best, value);
    }
    std::printf("%.6g\n", best - optimum);
  }
  return 0;
}
