// The trainer dialect checks the numeric fields against amlrun-worker's own
// ranges (lib/train/option_ranges.hpp); tests/unit/train/test_option_ranges
// checks that both sides agree on every field.
#include <catch2/catch.hpp>

#include "spec_test_support.hpp"

using namespace spec_test;

namespace {
std::string trainer_errors(const JobDir& dir, const std::string& line) {
  return errors_of(dir, "type: train_pytorch_model\ntrain_data: images\nvalidation_data: images\n" +
                            line + "\n");
}
}  // namespace

TEST_CASE("a trainer job is held to the worker's ranges") {
  JobDir dir;
  fs::create_directories(dir.path / "images" / "cat");
  // 16 once passed validation and then failed in the worker.
  CHECK(trainer_errors(dir, "image_size: 16") ==
        "job.yml:4:13: image_size: must be between 32 and 4096, got 16\n"
        "    4 | image_size: 16\n"
        "      |             ^\n"
        "1 error in job.yml");
  CHECK(trainer_errors(dir, "image_size: 32") == "");
  CHECK(trainer_errors(dir, "learning_rate: 0") ==
        "job.yml:4:16: learning_rate: must be greater than 0, got 0\n"
        "    4 | learning_rate: 0\n"
        "      |                ^\n"
        "1 error in job.yml");
  CHECK(trainer_errors(dir, "learning_rate: -0.5")
            .starts_with("job.yml:4:16: learning_rate: must be greater than 0, got -0.5\n"));
  CHECK(trainer_errors(dir, "learning_rate: 1000") == "");  // diverges, as the user asked
  CHECK(trainer_errors(dir, "learning_rate: 1e-9") == "");
  // The worker takes 0 epochs (only the initial model) and any 64-bit seed.
  CHECK(trainer_errors(dir, "epochs: 0") == "");
  CHECK(trainer_errors(dir, "random_seed: 9223372036854775807") == "");
  CHECK(trainer_errors(dir, "batch_size: 1048577")
            .starts_with("job.yml:4:13: batch_size: must be between 1 and 1048576, got 1048577\n"));
}
