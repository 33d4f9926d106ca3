// The Gaussian-process sampler: deterministic, inside the cube, and better
// than random search on a smooth function.
#include <catch2/catch.hpp>

#include <cmath>

#include "lib/sweep/gp.hpp"
#include "lib/sweep/sampler.hpp"

using namespace amlrun::sweep;

namespace {

SearchSpace cube(int dims) {
  SearchSpace space;
  for (int j = 0; j < dims; ++j)
    space.parameters.push_back({"x" + std::to_string(j), Uniform{0, 1}});
  return space;
}

// A bowl with its minimum 0 at (0.3, 0.7, 0.2).
double bowl(const std::vector<double>& x) {
  const double centre[3] = {0.3, 0.7, 0.2};
  double sum = 0;
  for (std::size_t j = 0; j < x.size(); ++j) sum += (x[j] - centre[j]) * (x[j] - centre[j]);
  return sum;
}

}  // namespace

TEST_CASE("a GP proposal is a pure function of its arguments, inside the cube", "[sweep]") {
  const auto space = cube(3);
  std::vector<Observation> done;
  for (std::uint64_t k = 0; k < 12; ++k) {
    auto point = gp_propose(space, Goal::minimize, 7, k, done, {});
    REQUIRE(point.size() == 3);
    for (double u : point) {
      CHECK(u >= 0);
      CHECK(u < 1);
    }
    CHECK(gp_propose(space, Goal::minimize, 7, k, done, {}) == point);
    done.push_back({point, bowl(point)});
  }
  // A running trial changes the proposal: it is not proposed twice.
  auto alone = gp_propose(space, Goal::minimize, 7, 12, done, {});
  auto beside = gp_propose(space, Goal::minimize, 7, 12, done, {alone});
  CHECK(beside != alone);
}

TEST_CASE("the GP finds a bowl's minimum better than random search", "[sweep]") {
  const auto space = cube(3);
  int gp_wins = 0;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    std::vector<Observation> done;
    double gp_best = INFINITY;
    double random_best = INFINITY;
    for (std::uint64_t k = 0; k < 25; ++k) {
      auto point = gp_propose(space, Goal::minimize, seed, k, done, {});
      done.push_back({point, bowl(point)});
      gp_best = std::min(gp_best, bowl(point));
      std::vector<double> x;
      for (const auto& [name, value] : random_trial(space, seed, RandomRule::random, k)) {
        x.push_back(value.real);
      }
      random_best = std::min(random_best, bowl(x));
    }
    CHECK(gp_best < 0.01);
    gp_wins += gp_best < random_best ? 1 : 0;
  }
  CHECK(gp_wins == 5);
}

TEST_CASE("with a trial always running, the GP still closes in on the optimum", "[sweep]") {
  // As a sweep at concurrency 2 of fast trials: each proposal is made while
  // the previous one runs. The second parameter does not matter.
  SearchSpace space = cube(2);
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    std::vector<Observation> done;
    std::vector<std::vector<double>> points;
    for (std::uint64_t k = 0; k < 12; ++k) {
      std::vector<std::vector<double>> pending;
      if (k > 0) pending.push_back(points[k - 1]);
      if (k > 1) done.push_back({points[k - 2], std::pow(points[k - 2][0] - 0.3, 2) + 0.5});
      points.push_back(gp_propose(space, Goal::minimize, seed, k, done, pending));
    }
    double start = 0;
    double model = 0;
    for (std::uint64_t k = 0; k < 5; ++k) start += std::abs(points[k][0] - 0.3) / 5;
    for (std::uint64_t k = 7; k < 12; ++k) model += std::abs(points[k][0] - 0.3) / 5;
    INFO("seed " << seed);
    CHECK(model < start / 2);
  }
}

TEST_CASE("maximising and failed trials are handled", "[sweep]") {
  const auto space = cube(2);
  std::vector<Observation> done;
  for (std::uint64_t k = 0; k < 20; ++k) {
    auto point = gp_propose(space, Goal::maximize, 3, k, done, {});
    // A failed trial (NaN) every fourth: ignored by the model.
    done.push_back({point, k % 4 == 3 ? NAN : -bowl({point[0], point[1], 0.2})});
  }
  double best = -INFINITY;
  for (const auto& o : done) {
    if (!std::isnan(o.value)) best = std::max(best, o.value);
  }
  CHECK(best > -0.01);
}

TEST_CASE("a space with a choice is proposed by TPE", "[sweep]") {
  SearchSpace space = cube(1);
  space.parameters.push_back(
      {"opt", Choice{{{Value::of_text("sgd"), nullptr}, {Value::of_text("adam"), nullptr}}}});
  std::vector<Observation> done;
  for (std::uint64_t k = 0; k < 15; ++k) {
    auto point = bayesian_propose(space, Goal::minimize, 1, k, done, {});
    CHECK(point == tpe_propose(space, Goal::minimize, 1, k, done, {}));
    done.push_back({point, point[0]});
  }
}
