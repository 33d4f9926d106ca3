#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>

#include "lib/train/config.hpp"
#include "lib/train/schedule.hpp"

using namespace amlrun::train;

TEST_CASE("a constant schedule keeps the learning rate at every step", "[schedule]") {
  TrainConfig config;
  config.learning_rate = 0.05;
  config.epochs = 3;
  CHECK(learning_rate_at_step(config, 0, 0, 10) == 0.05);
  CHECK(learning_rate_at_step(config, 2, 9, 10) == 0.05);
  CHECK(learning_rate_at_step(config, 7, 0, 10) == 0.05);  // a continued run past --epochs
}

TEST_CASE("a cosine schedule anneals per step from the rate to 0 over all epochs", "[schedule]") {
  TrainConfig config;
  config.learning_rate = 0.1;
  config.epochs = 2;
  config.lr_schedule = "cosine";
  // 2 epochs of 4 steps: progress = (epoch * 4 + step) / 8.
  CHECK(learning_rate_at_step(config, 0, 0, 4) == 0.1);
  CHECK(learning_rate_at_step(config, 0, 2, 4) ==
        Approx(0.1 * 0.5 * (1 + std::cos(std::numbers::pi / 4))));
  CHECK(learning_rate_at_step(config, 1, 0, 4) == Approx(0.05));  // halfway
  CHECK(learning_rate_at_step(config, 1, 3, 4) ==
        Approx(0.1 * 0.5 * (1 + std::cos(std::numbers::pi * 7 / 8))));
  CHECK(learning_rate_at_step(config, 2, 0, 4) == Approx(0).margin(1e-18));
  // Past the last epoch (continue with more epochs than planned) it stays 0.
  CHECK(learning_rate_at_step(config, 3, 1, 4) == Approx(0).margin(1e-18));
  // The same step of the same epoch gives the same rate, whatever came before.
  CHECK(learning_rate_at_step(config, 1, 2, 4) == learning_rate_at_step(config, 1, 2, 4));
}

TEST_CASE("the loss scale halves on a bad step and doubles after 2000 good ones", "[schedule]") {
  LossScale scale(LossScale::k_initial);
  CHECK(scale.value() == 65536.0);
  CHECK_FALSE(scale.update(/*gradients_finite=*/false));
  CHECK(scale.value() == 32768.0);
  for (int i = 0; i < 1999; ++i) {
    REQUIRE(scale.update(true));
  }
  CHECK(scale.value() == 32768.0);
  CHECK(scale.update(true));
  CHECK(scale.value() == 65536.0);
  // A bad step restarts the count of good ones.
  for (int i = 0; i < 1000; ++i) {
    scale.update(true);
  }
  scale.update(false);
  for (int i = 0; i < 1999; ++i) {
    scale.update(true);
  }
  CHECK(scale.value() == 32768.0);
  CHECK(LossScale().value() == 1.0);
}
