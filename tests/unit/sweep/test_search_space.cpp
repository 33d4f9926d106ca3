#include <catch2/catch.hpp>

#include <cmath>

#include "lib/sweep/sampler.hpp"
#include "lib/sweep/search_space.hpp"

using namespace amlrun::sweep;

namespace {
Choice choice_of(std::initializer_list<Value> values) {
  Choice choice;
  for (const Value& v : values) {
    choice.options.push_back({v, nullptr});
  }
  return choice;
}

std::string text_of(const Assignment& assignment) {
  std::string out;
  for (const auto& [name, value] : assignment) {
    out += (out.empty() ? "" : " ") + name + "=" + value.str();
  }
  return out;
}
}  // namespace

TEST_CASE("values read as the command expects them", "[search_space]") {
  CHECK(Value::of_integer(64).str() == "64");
  CHECK(Value::of_real(0.001).str() == "0.001");
  CHECK(Value::of_real(1e-05).str() == "1e-05");
  CHECK(Value::of_real(0.1 + 0.2).str() == "0.30000000000000004");
  CHECK(Value::of_text("adam").str() == "adam");
  CHECK_FALSE(Value::of_text("1").number().has_value());
}

TEST_CASE("each distribution maps the unit interval as Azure defines it", "[search_space]") {
  auto one = [](Distribution d, double u) {
    SearchSpace space{{{"x", std::move(d)}}};
    return assignment_at(space, {u}).at(0).second;
  };
  CHECK(one(choice_of({Value::of_integer(16), Value::of_integer(32)}), 0.49).str() == "16");
  CHECK(one(choice_of({Value::of_integer(16), Value::of_integer(32)}), 0.5).str() == "32");
  CHECK(one(RandInt{5}, 0.999).str() == "4");
  CHECK(one(RandInt{5}, 0.0).str() == "0");
  CHECK(one(Uniform{1, 3}, 0.25).str() == "1.5");
  // loguniform's bounds are exponents.
  CHECK(one(LogUniform{0, 2}, 0.5).real == Approx(std::exp(1.0)));
  // quniform rounds to a multiple of q; an integral q gives an integer.
  CHECK(one(QUniform{16, 128, 16}, 0.4).str() == "64");  // 16 + 0.4 × 112 = 60.8
  CHECK(one(QUniform{16, 128, 16}, 0.4).kind == Value::Kind::integer);
  CHECK(one(QUniform{0, 1, 0.25}, 0.3).str() == "0.25");
  CHECK(one(QLogUniform{0, std::log(100.0), 10}, 0.5).str() == "10");
  CHECK(one(Normal{10, 2}, 0.5).real == Approx(10).margin(1e-12));
  CHECK(one(Normal{0, 1}, 0.975).real == Approx(1.959963984540054).epsilon(1e-12));
  CHECK(one(LogNormal{0, 1}, 0.5).real == Approx(1.0));
  CHECK(one(QNormal{0, 1, 1}, 0.975).str() == "2");
  CHECK(one(QLogNormal{0, 1, 1}, 0.975).str() == "7");  // e^1.96 = 7.1
  // A point on the edge still gives a finite normal value.
  CHECK(std::isfinite(one(Normal{0, 1}, 0.0).real));
  CHECK(normal_quantile(0.15865525393145707) == Approx(-1.0).epsilon(1e-12));
}

TEST_CASE("a nested choice keeps a coordinate for every option's distributions", "[search_space]") {
  auto sgd = std::make_shared<SearchSpace>();
  sgd->parameters = {{"name", choice_of({Value::of_text("sgd")})}, {"momentum", Uniform{0.5, 1.0}}};
  auto adam = std::make_shared<SearchSpace>();
  adam->parameters = {{"name", choice_of({Value::of_text("adam")})}, {"beta", Uniform{0.9, 1.0}}};
  Choice optimizer;
  optimizer.options = {{std::nullopt, sgd}, {std::nullopt, adam}};
  SearchSpace space{{{"lr", Uniform{0, 1}}, {"optimizer", optimizer}}};
  // lr, optimizer, sgd.name, sgd.momentum, adam.name, adam.beta
  REQUIRE(dimensions(space) == 6);
  CHECK(text_of(assignment_at(space, {0.25, 0.1, 0.5, 0.5, 0.5, 0.5})) ==
        "lr=0.25 optimizer.name=sgd optimizer.momentum=0.75");
  CHECK(text_of(assignment_at(space, {0.25, 0.9, 0.5, 0.5, 0.5, 0.5})) ==
        "lr=0.25 optimizer.name=adam optimizer.beta=0.95");
}

TEST_CASE("grid enumerates the product in file order, the last parameter fastest", "[sampler]") {
  SearchSpace space{
      {{"lr", choice_of({Value::of_real(0.001), Value::of_real(0.01), Value::of_real(0.1)})},
       {"optimizer", choice_of({Value::of_text("sgd"), Value::of_text("adam")})}}};
  REQUIRE(grid_size(space) == 6);
  std::vector<std::string> trials;
  for (std::uint64_t k = 0; k < 6; ++k) {
    trials.push_back(text_of(grid_trial(space, k)));
  }
  CHECK(trials == std::vector<std::string>{"lr=0.001 optimizer=sgd", "lr=0.001 optimizer=adam",
                                           "lr=0.01 optimizer=sgd", "lr=0.01 optimizer=adam",
                                           "lr=0.1 optimizer=sgd", "lr=0.1 optimizer=adam"});
  SearchSpace continuous{{{"lr", Uniform{0, 1}}}};
  CHECK_THROWS_AS(grid_size(continuous), std::invalid_argument);
}

TEST_CASE("random trials depend only on the seed and the trial's number", "[sampler]") {
  SearchSpace space{{{"lr", LogUniform{-9.2, -1.6}},
                     {"batch", choice_of({Value::of_integer(16), Value::of_integer(32),
                                          Value::of_integer(64), Value::of_integer(128)})}}};
  for (RandomRule rule : {RandomRule::random, RandomRule::sobol}) {
    CHECK(random_trial(space, 42, rule, 7) == random_trial(space, 42, rule, 7));
    CHECK_FALSE(random_trial(space, 42, rule, 7) == random_trial(space, 43, rule, 7));
    CHECK_FALSE(random_trial(space, 42, rule, 7) == random_trial(space, 42, rule, 8));
    for (std::uint64_t k = 0; k < 200; ++k) {
      const Assignment trial = random_trial(space, 42, rule, k);
      REQUIRE(trial.size() == 2);
      CHECK(trial[0].second.real >= std::exp(-9.2));
      CHECK(trial[0].second.real <= std::exp(-1.6));
    }
  }
}

TEST_CASE("sobol spreads the first trials more evenly than random", "[sampler]") {
  // 16 trials of one uniform parameter: sobol puts one in each sixteenth.
  SearchSpace space{{{"x", Uniform{0, 1}}}};
  std::vector<int> cells(16, 0);
  for (std::uint64_t k = 0; k < 16; ++k) {
    // Trials 0..14 are points 1..15; with point 16 they cover every cell.
    const double x = random_trial(space, 7, RandomRule::sobol, k).at(0).second.real;
    cells.at(static_cast<std::size_t>(x * 16)) += 1;
  }
  // Points 1..16 are the first 16 points but the origin, plus point 16,
  // which lies in the origin's cell: every cell but one has exactly one.
  int ones = 0;
  for (int count : cells) {
    ones += count == 1 ? 1 : 0;
  }
  CHECK(ones >= 14);
  SearchSpace wide;
  for (int i = 0; i < 33; ++i) {
    wide.parameters.push_back({"p" + std::to_string(i), Uniform{0, 1}});
  }
  CHECK_THROWS_AS(random_trial(wide, 1, RandomRule::sobol, 0), std::invalid_argument);
}
