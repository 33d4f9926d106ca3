#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "lib/train/config.hpp"
#include "lib/train/metrics.hpp"
#include "lib/util/error.hpp"
#include "tests/unit/train/helpers.hpp"

using namespace amlrun;
using namespace amlrun::train;
using namespace train_test;

namespace {
TrainConfig with(const std::string& option, const std::string& value) {
  TrainConfig config;
  for (const TrainOption& entry : train_options()) {
    if (entry.name == option) {
      entry.set(config, value);
      return config;
    }
  }
  throw std::runtime_error("no option " + option);
}
}  // namespace

TEST_CASE("the defaults are the Train PyTorch Model module's", "[config]") {
  TrainConfig config;
  CHECK(config.epochs == 5);
  CHECK(config.batch_size == 16);
  CHECK(config.learning_rate == 0.001);
  CHECK(config.seed == 1);
  CHECK(config.patience == 3);
  CHECK(config.momentum == 0.9);
}

TEST_CASE("option values are parsed and checked with exact messages", "[config]") {
  CHECK(with("--epochs", "7").epochs == 7);
  CHECK(with("--learning-rate", "1e-2").learning_rate == 0.01);
  CHECK(with("--model", "densenet121").model == "densenet121");
  CHECK(with("--freeze-backbone", "").freeze_backbone);
  CHECK(message_of([] { with("--epochs", "abc"); }) == "--epochs 'abc': not a whole number");
  CHECK(message_of([] { with("--epochs", "3.5"); }) == "--epochs '3.5': not a whole number");
  CHECK(message_of([] { with("--epochs", ""); }) == "--epochs '': not a whole number");
  CHECK(message_of([] { with("--epochs", "-1"); }) == "--epochs -1: must be at least 0");
  CHECK(message_of([] { with("--batch-size", "0"); }) == "--batch-size 0: must be at least 1");
  CHECK(message_of([] { with("--batch-size", "99999999999999999999"); }) ==
        "--batch-size 99999999999999999999: must be at most 1048576");
  CHECK(message_of([] { with("--learning-rate", "fast"); }) ==
        "--learning-rate 'fast': not a number");
  CHECK(message_of([] { with("--learning-rate", "0"); }) ==
        "--learning-rate 0: must be greater than 0");
  CHECK(message_of([] { with("--learning-rate", "nan"); }) ==
        "--learning-rate 'nan': not a number");
  CHECK(message_of([] { with("--image-size", "16"); }) == "--image-size 16: must be at least 32");
  CHECK(message_of([] { with("--momentum", "1"); }) == "--momentum 1: must be less than 1");
  CHECK(message_of([] { with("--model", "resnet19"); }) ==
        "--model 'resnet19': not a known model (did you mean 'resnet18'?); choose one of "
        "resnet18, resnet34, resnet50, densenet121");
  CHECK(message_of([] { with("--precision", "int8"); }) ==
        "--precision 'int8': not a known precision; choose one of fp32, bf16, fp16");
  CHECK(message_of([] { with("--output-dir", ""); }) == "--output-dir: must not be empty");
  CHECK(with("--lr-schedule", "cosine").lr_schedule == "cosine");
  CHECK(message_of([] { with("--lr-schedule", "step"); }) ==
        "--lr-schedule 'step': not a known learning rate schedule; choose one of constant, cosine");
  CHECK_THROWS_AS(with("--epochs", "x"), util::InputError);
}

TEST_CASE("both data folders are required", "[config]") {
  TrainConfig config;
  CHECK(message_of([&] { check_required(config); }) ==
        "--train-data is required (a labelled image folder)");
  config.train_data = "t";
  CHECK(message_of([&] { check_required(config); }) ==
        "--validation-data is required (a labelled image folder)");
}

TEST_CASE("the configuration survives JSON, as a checkpoint stores it", "[config]") {
  TrainConfig config = with("--model", "resnet50");
  config.train_data = "/data/train";
  config.validation_data = "/data/val";
  config.seed = 12345678901234ULL;
  config.freeze_batch_norm = true;
  config.init_weights = "/models/x.pt";
  config.lr_schedule = "cosine";
  TrainConfig back = config_from_json(nlohmann::json::parse(config_to_json(config).dump()));
  CHECK(config_to_json(back) == config_to_json(config));
  nlohmann::json broken = config_to_json(config);
  broken.erase("epochs");
  CHECK(message_of([&] { config_from_json(broken); }) ==
        "checkpoint configuration: 'epochs' is missing");
}

TEST_CASE("paths become absolute and lose trailing slashes", "[config]") {
  TrainConfig config;
  config.train_data = "data/train/";
  config.validation_data = "/abs/val";
  config.output_dir = "out";
  resolve_paths(config);
  CHECK(config.train_data == (std::filesystem::current_path() / "data/train").string());
  CHECK(config.validation_data == "/abs/val");
  CHECK(config.output_dir == (std::filesystem::current_path() / "out").string());
  CHECK(config.init_weights.empty());
}

TEST_CASE("thread defaults share the cores between the processes of a node", "[config]") {
  CHECK(default_threads(16, 1) == 16);
  CHECK(default_threads(16, 4) == 4);
  CHECK(default_threads(2, 4) == 1);
  CHECK(default_loader_threads(2, 1) == 1);
  CHECK(default_loader_threads(64, 1) == 8);
  CHECK(available_cores() >= 1);
}

TEST_CASE("metric lines follow the amlrun protocol, NaN and infinities as strings", "[metrics]") {
  CHECK(metric_json_line("train_loss", 0.31, 3) ==
        R"({"name": "train_loss", "value": 0.31, "step": 3})");
  CHECK(metric_json_line("val_acc", 1, 1) == R"({"name": "val_acc", "value": 1, "step": 1})");
  CHECK(metric_json_line("val_loss", std::nan(""), 2) ==
        R"({"name": "val_loss", "value": "NaN", "step": 2})");
  CHECK(metric_json_line("x", std::numeric_limits<double>::infinity(), 2) ==
        R"({"name": "x", "value": "Infinity", "step": 2})");
  CHECK(metric_json_line("x", -std::numeric_limits<double>::infinity(), 2) ==
        R"({"name": "x", "value": "-Infinity", "step": 2})");
  CHECK(metric_json_line("a \"quoted\" name", 2.5, 0) ==
        R"({"name": "a \"quoted\" name", "value": 2.5, "step": 0})");
}

TEST_CASE("the metrics file is appended to, one line per metric", "[metrics]") {
  TempDir dir;
  {
    MetricsWriter writer(dir.path / "logs" / "metrics.jsonl");
    writer.write("a", 1.5, 1);
  }
  {
    MetricsWriter writer(dir.path / "logs" / "metrics.jsonl");
    writer.write("b", 2, 2);
  }
  std::ifstream in(dir.path / "logs" / "metrics.jsonl");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text ==
        "{\"name\": \"a\", \"value\": 1.5, \"step\": 1}\n{\"name\": \"b\", \"value\": 2, \"step\": "
        "2}\n");
}

TEST_CASE("AMLRUN_METRICS_FILE chooses the metrics file", "[metrics]") {
  ::setenv("AMLRUN_METRICS_FILE", "/tmp/somewhere.jsonl", 1);
  CHECK(default_metrics_path() == "/tmp/somewhere.jsonl");
  ::setenv("AMLRUN_METRICS_FILE", "", 1);
  CHECK(default_metrics_path() == "logs/metrics.jsonl");
  ::unsetenv("AMLRUN_METRICS_FILE");
  CHECK(default_metrics_path() == "logs/metrics.jsonl");
}
