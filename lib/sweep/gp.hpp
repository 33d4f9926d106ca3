#pragma once
// Bayesian sampling by a Gaussian process (Matérn 5/2 kernel with a length
// scale per coordinate, fitted by maximising the marginal likelihood) and
// expected improvement, on the unit-cube coordinates every sampler shares.
// Used for search spaces of continuous parameters only, where it finds
// better points than the tree-structured Parzen estimator (tpe.hpp) in the
// same number of trials (tests/bench/bench_sweep_search.sh); a choice
// parameter keeps a space on TPE, which models categories natively.
//
// Trials still running count as observations at the worst value seen (the
// pessimistic "constant liar"), so concurrent proposals spread out. The
// linear algebra is a Cholesky factorisation of an n×n matrix, n the
// trials so far: milliseconds for the hundreds of trials a sweep runs.
#include <cstdint>
#include <vector>

#include "lib/sweep/policy.hpp"
#include "lib/sweep/search_space.hpp"
#include "lib/sweep/tpe.hpp"

namespace amlrun::sweep {

struct GpOptions {
  std::size_t startup_trials = 0;  // 0: one more than twice the dimensions
  std::size_t candidates = 2048;   // random points scored per proposal
  double xi = 0.01;                // EI's exploration margin (normalised units)
};

// The point for trial k: a pure function of its arguments.
std::vector<double> gp_propose(const SearchSpace& space, Goal goal, std::uint64_t seed,
                               std::uint64_t k, const std::vector<Observation>& done,
                               const std::vector<std::vector<double>>& pending,
                               const GpOptions& options = {});

// Bayesian sampling as the controller uses it: the GP for a space of
// continuous parameters, TPE when it has a choice.
std::vector<double> bayesian_propose(const SearchSpace& space, Goal goal, std::uint64_t seed,
                                     std::uint64_t k, const std::vector<Observation>& done,
                                     const std::vector<std::vector<double>>& pending);

}  // namespace amlrun::sweep
