#pragma once
// Bayesian sampling for search spaces with a choice parameter: a
// tree-structured Parzen estimator (Bergstra et al., 2011), on the unit-cube
// coordinates every sampler shares. It models choices and continuous
// parameters natively and costs microseconds per proposal; a space of
// continuous parameters only goes to the Gaussian process (gp.hpp), which
// finds better points there (tests/bench/bench_sweep_search.sh compares
// both with Optuna's TPE).
//
// Trials still running are accounted for by the "constant liar": each counts
// as an observation with the worst value seen so far, so concurrent
// proposals spread out instead of piling onto the same point.
#include <cstdint>
#include <vector>

#include "lib/sweep/policy.hpp"
#include "lib/sweep/search_space.hpp"

namespace amlrun::sweep {

struct Observation {
  std::vector<double> point;  // unit-cube coordinates, dimensions(space)
  double value = 0;           // the objective; NaN: the trial gave none
};

struct TpeOptions {
  std::size_t startup_trials = 10;  // random points before the model is used
  std::size_t candidates = 24;      // drawn from the good density per proposal
  // The share of observations counted good, at most 25 of them (Optuna's
  // defaults). A larger share is worse than random search on a simple bowl
  // (measured: 0.25 gives a median best of 0.0056 after 40 trials against
  // random's 0.0072, 0.1 gives 0.0003): once most points lie near the
  // optimum, "bad" points crowd there too and l/g pushes proposals away.
  double gamma = 0.1;
  std::size_t max_good = 25;
};

// The point for trial k: a pure function of its arguments (seeded by seed
// and k), so a restarted controller proposes the same point again.
std::vector<double> tpe_propose(const SearchSpace& space, Goal goal, std::uint64_t seed,
                                std::uint64_t k, const std::vector<Observation>& done,
                                const std::vector<std::vector<double>>& pending,
                                const TpeOptions& options = {});

}  // namespace amlrun::sweep
