#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "lib/sweep/sampler.hpp"
#include "lib/sweep/tpe.hpp"

using namespace amlrun::sweep;

namespace {
const SearchSpace k_square{{{"x", Uniform{0, 1}}, {"y", Uniform{0, 1}}}};

double bowl(const std::vector<double>& p) {
  return (p[0] - 0.3) * (p[0] - 0.3) + (p[1] - 0.7) * (p[1] - 0.7);
}

// The best value of `trials` sequential trials, proposed by TPE or at random.
double best_after(std::size_t trials, std::uint64_t seed, bool tpe) {
  std::vector<Observation> done;
  double best = INFINITY;
  for (std::uint64_t k = 0; k < trials; ++k) {
    std::vector<double> point;
    if (tpe) {
      point = tpe_propose(k_square, Goal::minimize, seed, k, done, {});
    } else {
      std::uint64_t state = seed * 1000 + k;
      point = {next_uniform(state), next_uniform(state)};
    }
    done.push_back({point, bowl(point)});
    best = std::min(best, done.back().value);
  }
  return best;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return 0.5 * (values[values.size() / 2 - 1] + values[values.size() / 2]);
}
}  // namespace

TEST_CASE("tpe starts with random points and repeats itself for the same trial", "[tpe]") {
  const auto first = tpe_propose(k_square, Goal::minimize, 5, 0, {}, {});
  REQUIRE(first.size() == 2);
  CHECK(first == tpe_propose(k_square, Goal::minimize, 5, 0, {}, {}));
  CHECK_FALSE(first == tpe_propose(k_square, Goal::minimize, 5, 1, {}, {}));
  for (double u : first) {
    CHECK(u >= 0);
    CHECK(u < 1);
  }
}

TEST_CASE("tpe finds a bowl's bottom better than random search on the same budget", "[tpe]") {
  // 40 trials, 10 seeds each: deterministic, so a regression shows every run.
  std::vector<double> tpe;
  std::vector<double> random;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    tpe.push_back(best_after(40, seed, true));
    random.push_back(best_after(40, seed, false));
  }
  INFO("median best: tpe " << median(tpe) << ", random " << median(random));
  CHECK(median(tpe) < median(random) / 2);
}

TEST_CASE("tpe learns which option of a choice is best", "[tpe]") {
  Choice options;
  for (int i = 0; i < 4; ++i) {
    options.options.push_back({Value::of_integer(i), nullptr});
  }
  SearchSpace space{{{"arm", options}}};
  std::vector<Observation> done;
  int best_arm_later = 0;
  for (std::uint64_t k = 0; k < 40; ++k) {
    auto point = tpe_propose(space, Goal::maximize, 3, k, done, {});
    const auto arm = static_cast<int>(point[0] * 4);
    done.push_back({point, arm == 2 ? 1.0 : 0.0});
    if (k >= 30 && arm == 2) ++best_arm_later;
  }
  CHECK(best_arm_later >= 7);
}

TEST_CASE("a running trial's point is avoided while it runs", "[tpe]") {
  std::vector<Observation> done;
  for (std::uint64_t k = 0; k < 20; ++k) {
    auto point = tpe_propose(k_square, Goal::minimize, 9, k, done, {});
    done.push_back({point, bowl(point)});
  }
  const auto alone = tpe_propose(k_square, Goal::minimize, 9, 20, done, {});
  const auto beside = tpe_propose(k_square, Goal::minimize, 9, 20, done, {alone});
  CHECK_FALSE(alone == beside);
  // A failed trial (NaN) does not count as an observation.
  done.push_back({{0.3, 0.7}, std::nan("")});
  CHECK(tpe_propose(k_square, Goal::minimize, 9, 20, done, {}) == alone);
}
