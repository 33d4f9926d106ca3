// The trainer job dialect (lib/spec) and amlrun-worker (lib/train) check the
// numeric options against the same table: a job that validates is a job the
// worker runs, and a value the worker refuses is refused by `amlrun
// validate` already.
#include <catch2/catch.hpp>

#include <algorithm>
#include <charconv>
#include <functional>
#include <limits>
#include <tuple>

#include "lib/train/config.hpp"
#include "lib/train/option_ranges.hpp"
#include "tests/unit/spec/spec_test_support.hpp"
#include "tests/unit/train/helpers.hpp"

using namespace amlrun::train;
using train_test::message_of;

namespace {

// "" when amlrun-worker accepts `option value`, else its message.
std::string worker_error(const std::string& option, const std::string& value) {
  for (const TrainOption& entry : train_options()) {
    if (entry.name == option) {
      TrainConfig config;
      std::string message = message_of([&] { entry.set(config, value); });
      return message == "<no error>" ? "" : message;
    }
  }
  FAIL("amlrun-worker has no option " << option);
  return "";
}

struct JobResult {
  std::string error;              // "" when the job validates
  std::vector<std::string> argv;  // the worker's command line
};

JobResult load_trainer_job(const spec_test::JobDir& dir, const std::string& key,
                           const std::string& value) {
  std::string text = "type: train_pytorch_model\ntrain_data: images\nvalidation_data: images\n" +
                     key + ": " + value + "\n";
  JobResult result;
  result.error = spec_test::errors_of(dir, text);
  if (result.error.empty()) {
    result.argv = spec_test::load(dir, text).spec.argv;
  }
  return result;
}

// Just outside, at, and just inside both ends.
std::vector<std::string> probes(const option_ranges::IntegerRange& range) {
  std::vector<std::string> values = {std::to_string(range.min - 1), std::to_string(range.min),
                                     std::to_string(range.min + 1), std::to_string(range.max - 1),
                                     std::to_string(range.max)};
  values.push_back(range.max == std::numeric_limits<std::int64_t>::max()
                       ? "9223372036854775808"
                       : std::to_string(range.max + 1));
  return values;
}

void check_same_range(const spec_test::JobDir& dir, const std::string& key,
                      const std::string& option, const std::vector<std::string>& values,
                      const std::function<bool(const std::string&)>& in_range) {
  for (const std::string& value : values) {
    INFO(key << ": " << value << " / " << option << " " << value);
    JobResult job = load_trainer_job(dir, key, value);
    std::string worker = worker_error(option, value);
    CHECK(job.error.empty() == worker.empty());
    CHECK(worker.empty() == in_range(value));
    if (job.error.empty()) {
      // What the job hands the worker is accepted too.
      auto found = std::find(job.argv.begin(), job.argv.end(), option);
      REQUIRE(found != job.argv.end());
      REQUIRE(found + 1 != job.argv.end());
      CHECK(worker_error(option, *(found + 1)) == "");
    }
  }
}

}  // namespace

TEST_CASE("trainer jobs and amlrun-worker accept the same range for every option", "[ranges]") {
  spec_test::JobDir dir;
  std::filesystem::create_directories(dir.path / "images" / "cat");
  const std::vector<std::tuple<std::string, std::string, option_ranges::IntegerRange>> integers = {
      {"epochs", "--epochs", option_ranges::k_epochs},
      {"batch_size", "--batch-size", option_ranges::k_batch_size},
      {"random_seed", "--seed", option_ranges::k_seed},
      {"patience", "--patience", option_ranges::k_patience},
      {"image_size", "--image-size", option_ranges::k_image_size},
      {"threads", "--threads", option_ranges::k_threads},
  };
  for (const auto& [key, option, range] : integers) {
    check_same_range(dir, key, option, probes(range), [&range = range](const std::string& text) {
      std::int64_t value = 0;
      auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      return error == std::errc() && range.contains(value);  // beyond int64: out of range
    });
  }
  const option_ranges::NumberRange rate = option_ranges::k_learning_rate;
  check_same_range(dir, "learning_rate", "--learning-rate",
                   {"-1", "0", "1e-09", "0.001", "100", "1e+300"},
                   [&](const std::string& text) { return rate.contains(std::stod(text)); });
  CHECK(worker_error("--image-size", "16") == "--image-size 16: must be at least 32");
}
