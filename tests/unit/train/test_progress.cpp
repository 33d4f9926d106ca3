#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <vector>

#include "lib/train/config.hpp"
#include "lib/train/progress.hpp"
#include "lib/util/error.hpp"
#include "tests/unit/train/helpers.hpp"

using namespace amlrun;
using namespace amlrun::train;
using namespace train_test;

namespace {
// The steps after which a line is due over one epoch of `steps` steps.
std::vector<std::size_t> lines_due(const ProgressCadence& cadence, std::size_t first_step,
                                   std::size_t steps) {
  ProgressLines lines(cadence, /*enabled=*/true, first_step, steps);
  std::vector<std::size_t> due;
  for (std::size_t step = first_step + 1; step <= steps; ++step) {
    if (lines.due(step)) {
      due.push_back(step);
    }
  }
  return due;
}
}  // namespace

TEST_CASE("--progress-interval takes seconds or a percentage of the epoch", "[progress]") {
  CHECK(parse_progress_cadence("--progress-interval", "30").seconds == 30);
  CHECK(parse_progress_cadence("--progress-interval", "2.5").seconds == 2.5);
  ProgressCadence tenth = parse_progress_cadence("--progress-interval", "10%");
  CHECK(tenth.percent == 10);
  CHECK(tenth.seconds == 0);
  CHECK_FALSE(parse_progress_cadence("--progress-interval", "0").enabled());
  CHECK_FALSE(parse_progress_cadence("--progress-interval", "0%").enabled());
  CHECK(cadence_text(tenth) == "10%");
  CHECK(cadence_text(ProgressCadence{}) == "30");
  CHECK(message_of([] { parse_progress_cadence("--progress-interval", "soon"); }) ==
        "--progress-interval 'soon': not a number of seconds or a percentage (e.g. 30 or 10%)");
  CHECK(message_of([] { parse_progress_cadence("--progress-interval", "%"); }) ==
        "--progress-interval '%': not a number of seconds or a percentage (e.g. 30 or 10%)");
  CHECK(message_of([] { parse_progress_cadence("--progress-interval", "-1"); }) ==
        "--progress-interval -1: must be at least 0");
  CHECK(message_of([] { parse_progress_cadence("--progress-interval", "150%"); }) ==
        "--progress-interval 150%: must be at most 100%");
}

TEST_CASE("a stored configuration keeps the cadence; an older one without it gets the default",
          "[progress]") {
  TrainConfig config;
  config.train_data = "/data/train";
  config.validation_data = "/data/val";
  config.progress = ProgressCadence{0, 25};
  nlohmann::json json = config_to_json(config);
  CHECK(json.at("progress_interval") == "25%");
  CHECK(config_from_json(json).progress.percent == 25);
  json.erase("progress_interval");
  CHECK(config_from_json(json).progress.seconds == 30);
  json["progress_interval"] = "often";
  CHECK(message_of([&] { config_from_json(json); }) ==
        "checkpoint configuration: progress_interval 'often': not a number of seconds or a "
        "percentage (e.g. 30 or 10%)");
}

TEST_CASE("percentage marks fall on the same steps every run, never on the last", "[progress]") {
  CHECK(lines_due({0, 20}, 0, 25) == std::vector<std::size_t>{5, 10, 15, 20});
  CHECK(lines_due({0, 10}, 0, 25) == std::vector<std::size_t>{3, 5, 8, 10, 13, 15, 18, 20, 23});
  // Finer than a step: every step but the last.
  CHECK(lines_due({0, 1}, 0, 5) == std::vector<std::size_t>{1, 2, 3, 4});
  CHECK(lines_due({0, 100}, 0, 25).empty());
  // Resumed at step 12: the marks after it, as if it had not stopped.
  CHECK(lines_due({0, 20}, 12, 25) == std::vector<std::size_t>{15, 20});
  CHECK(lines_due({0, 0}, 0, 25).empty());
  ProgressLines off({0, 20}, /*enabled=*/false, 0, 25);
  CHECK_FALSE(off.due(5));
}

TEST_CASE("a time cadence gives a line once the interval has passed, then waits again",
          "[progress]") {
  // Half a second: far longer than the calls between the checks take.
  ProgressLines lines({0.5, 0}, /*enabled=*/true, 0, 100);
  CHECK_FALSE(lines.due(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  CHECK(lines.due(2));
  CHECK_FALSE(lines.due(3));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  CHECK_FALSE(lines.due(100));  // the last step: the epoch's summary follows
}

TEST_CASE("the progress line has every field in one exact format", "[progress]") {
  StepFigures figures;
  figures.epoch = 1;
  figures.epochs = 5;
  figures.step = 300;
  figures.steps = 1875;
  figures.loss = 0.61234;
  figures.accuracy = 0.78125;
  figures.images_per_second = 412.4;
  figures.eta_seconds = 185;
  CHECK(progress_line(figures) ==
        "epoch 1/5  step 300/1875 (16%)  loss 0.6123  acc 78.12%  412 img/s  eta 3m 05s");
  figures.eta_seconds = 4.04;
  figures.step = 1874;
  CHECK(progress_line(figures) ==
        "epoch 1/5  step 1874/1875 (99%)  loss 0.6123  acc 78.12%  412 img/s  eta 4.0s");
}
