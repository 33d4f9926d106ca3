#include <catch2/catch.hpp>

#include <cmath>

#include "lib/train/training_state.hpp"

using amlrun::train::BestEpoch;

TEST_CASE("the best epoch is the one with the lowest validation loss", "[training_state]") {
  BestEpoch best;
  CHECK(best.epoch == 0);
  CHECK(best.record(1, 2.0, 0.3));
  CHECK(best.epoch == 1);
  CHECK_FALSE(best.record(2, 2.0, 0.9));  // equal is no improvement
  CHECK(best.record(3, 1.5, 0.5));
  CHECK(best.epoch == 3);
  CHECK(best.val_loss == 1.5);
  CHECK(best.val_acc == 0.5);
  CHECK(best.epochs_without_improvement == 0);
  CHECK_FALSE(best.record(4, std::nan(""), 1.0));  // a NaN loss never is the best
  CHECK(best.epoch == 3);
  CHECK(best.epochs_without_improvement == 1);
}

TEST_CASE("early stopping after --patience epochs without improvement, never with 0",
          "[training_state]") {
  BestEpoch best;
  best.record(1, 1.0, 0.5);
  best.record(2, 1.1, 0.5);
  CHECK_FALSE(best.stop_early(2));
  best.record(3, 1.2, 0.5);
  CHECK(best.stop_early(2));
  CHECK(best.stop_early(1));
  CHECK_FALSE(best.stop_early(0));
  CHECK_FALSE(best.stop_early(3));
}
