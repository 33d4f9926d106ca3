// The LibTorch side of lib/train: model architectures against torchvision,
// state dict files written by Python, and checkpoints. The only test file
// that includes torch headers (each such file costs ~40 s to compile).
#include <torch/torch.h>

// glog (through LibTorch) defines CHECK too; Catch's must win in this file.
#undef CHECK
#undef CHECK_FALSE
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lib/train/checkpoint.hpp"
#include "lib/train/config.hpp"
#include "lib/train/models.hpp"
#include "lib/train/pickle_reader.hpp"
#include "lib/train/state_dict.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "tests/unit/train/helpers.hpp"

using namespace amlrun;
using namespace amlrun::train;
using namespace train_test;

namespace {

const std::filesystem::path k_fixtures = std::filesystem::path(AMLRUN_TEST_DATA) / "train";

nlohmann::json read_json(const std::string& name) {
  return nlohmann::json::parse(util::read_file(k_fixtures / name));
}

// make_fixtures.py's fill(): deterministic values per tensor, computed with
// the same LibTorch kernels Python uses.
torch::Tensor fill_like(const std::string& name, const torch::Tensor& like, int index) {
  std::vector<std::int64_t> shape(like.sizes().begin(), like.sizes().end());
  if (name.ends_with("num_batches_tracked")) {
    return torch::zeros(shape, torch::kLong);
  }
  torch::Tensor base = torch::sin(torch::arange(like.numel(), torch::kDouble) * 0.37 + index * 1.3);
  torch::Tensor value;
  if (name.ends_with("running_var")) {
    value = 1.0 + 0.5 * base * base;
  } else if (name.ends_with("running_mean") || name.ends_with("bias")) {
    value = 0.1 * base;
  } else if (like.dim() >= 2) {
    value = base / std::sqrt(static_cast<double>(like.numel() / like.size(0)));
  } else {
    value = 1.0 + 0.1 * base;
  }
  return value.reshape(shape).to(torch::kFloat);
}

std::string names_of(const StateDict& state) {
  std::string out;
  for (const auto& [name, tensor] : state) {
    out += name + ",";
  }
  return out;
}

}  // namespace

TEST_CASE("every model has torchvision's state dict names and shapes, in its order", "[models]") {
  nlohmann::json expected = read_json("model_names.json");
  for (const std::string& name : model_names()) {
    INFO(name);
    auto model = make_model(name, 10);
    StateDict state = model_state_dict(*model);
    const nlohmann::json& entries = expected.at(name);
    REQUIRE(state.size() == entries.size());
    for (std::size_t i = 0; i < state.size(); ++i) {
      INFO(i);
      CHECK(state[i].first == entries[i][0].get<std::string>());
      std::vector<std::int64_t> shape(state[i].second.sizes().begin(),
                                      state[i].second.sizes().end());
      CHECK(shape == entries[i][1].get<std::vector<std::int64_t>>());
    }
  }
}

TEST_CASE("every model computes what torchvision computes for the same weights", "[models]") {
  nlohmann::json expected = read_json("model_forward.json");
  torch::Tensor input = torch::sin(torch::arange(2 * 3 * 32 * 32, torch::kDouble) * 0.01)
                            .reshape({2, 3, 32, 32})
                            .to(torch::kFloat);
  for (const std::string& name : model_names()) {
    INFO(name);
    auto model = make_model(name, 10);
    StateDict filled;
    int index = 0;
    for (const auto& [key, tensor] : model_state_dict(*model)) {
      filled.emplace_back(key, fill_like(key, tensor, index++));
    }
    load_state_dict(*model, filled, "", "fixture", name);
    model->eval();
    torch::NoGradGuard no_grad;
    torch::Tensor logits = model->forward(input);
    std::vector<std::vector<double>> want =
        expected.at(name).get<std::vector<std::vector<double>>>();
    REQUIRE(logits.size(0) == 2);
    REQUIRE(logits.size(1) == 10);
    for (int row = 0; row < 2; ++row) {
      for (int c = 0; c < 10; ++c) {
        CHECK(logits[row][c].item<double>() == Approx(want[row][c]).epsilon(1e-4).margin(1e-4));
      }
    }
  }
}

TEST_CASE("models are initialised from the LibTorch seed", "[models]") {
  torch::manual_seed(3);
  auto a = make_model("resnet18", 4);
  torch::manual_seed(3);
  auto b = make_model("resnet18", 4);
  torch::manual_seed(4);
  auto c = make_model("resnet18", 4);
  CHECK(torch::equal(a->named_parameters()["layer1.0.conv1.weight"],
                     b->named_parameters()["layer1.0.conv1.weight"]));
  CHECK_FALSE(torch::equal(a->named_parameters()["layer1.0.conv1.weight"],
                           c->named_parameters()["layer1.0.conv1.weight"]));
}

TEST_CASE("Python's usual state dict (an OrderedDict with _metadata) is read", "[serialize]") {
  StateDict ordered = read_state_dict(k_fixtures / "state_dict_ordered.pt", "x");
  CHECK(names_of(ordered) ==
        "0.weight,0.bias,1.weight,1.bias,1.running_mean,1.running_var,1.num_batches_tracked,"
        "2.weight,2.bias,");
  CHECK(ordered[0].second.sizes() == torch::IntArrayRef({4, 3, 3, 3}));
  CHECK(ordered[6].second.scalar_type() == torch::kLong);
  CHECK(ordered[5].second.allclose(torch::ones({4})));
  for (const char* file : {"state_dict_plain.pt", "state_dict_wrapped.pt", "state_dict_ddp.pt"}) {
    INFO(file);
    StateDict other = read_state_dict(k_fixtures / file, "x");
    REQUIRE(names_of(other) == names_of(ordered));
    for (std::size_t i = 0; i < ordered.size(); ++i) {
      CHECK(torch::equal(other[i].second, ordered[i].second));
    }
  }
}

TEST_CASE("views, half, bfloat16, integer and bool tensors come back as saved", "[serialize]") {
  StateDict state = read_state_dict(k_fixtures / "state_dict_dtypes.pt", "x");
  std::map<std::string, torch::Tensor> by_name(state.begin(), state.end());
  torch::Tensor base = torch::arange(12, torch::kFloat).reshape({3, 4});
  CHECK(torch::equal(by_name["transposed"], base.t()));
  CHECK(torch::equal(by_name["row"], base[1]));
  CHECK(by_name["half"].scalar_type() == torch::kHalf);
  CHECK(by_name["half"].to(torch::kFloat).equal(torch::tensor({1.5f, -2.0f})));
  CHECK(by_name["bf16"].scalar_type() == torch::kBFloat16);
  CHECK(by_name["bf16"].to(torch::kFloat).item<float>() == 0.25f);
  CHECK(torch::equal(by_name["long"], torch::tensor({7, -9}, torch::kLong)));
  CHECK(by_name["flag"].scalar_type() == torch::kBool);
}

TEST_CASE("files that are not state dicts are refused with a message, never an abort",
          "[serialize]") {
  TempDir dir;
  const std::string legacy = (k_fixtures / "state_dict_legacy.pt").string();
  CHECK(message_of([&] { read_state_dict(legacy, "--init-weights " + legacy); }) ==
        "--init-weights " + legacy +
            ": saved in PyTorch's legacy format (before 1.6); load it in Python and save it "
            "again with torch.save(state_dict, path)");
  CHECK(message_of([&] { read_state_dict(k_fixtures / "torchscript.pt", "W"); }) ==
        "W: a TorchScript or C++ module archive, not a state dict; pass a file written by "
        "torch.save(model.state_dict(), path), or a model folder");
  CHECK(message_of([&] { read_state_dict(k_fixtures / "state_dict_mixed.pt", "W"); }) ==
        "W: 'note' is not a tensor (a plain value)");
  write_bytes(dir.path / "text.pt", "hello, not a zip");
  CHECK(message_of([&] { read_state_dict(dir.path / "text.pt", "W"); }) ==
        "W: not a PyTorch file (torch.save writes a zip archive)");
  std::string zip = util::read_file(k_fixtures / "state_dict_plain.pt");
  write_bytes(dir.path / "cut.pt", zip.substr(0, zip.size() / 2));
  CHECK(message_of([&] {
          read_state_dict(dir.path / "cut.pt", "W");
        }).rfind("W: cannot read: ", 0) == 0);
  CHECK(message_of([&] { read_state_dict(dir.path / "missing.pt", "W"); }) == "W: no such file");
  CHECK(message_of([&] { read_state_dict(dir.path, "W"); }) == "W: not a file");
  CHECK_THROWS_AS(read_state_dict(dir.path / "text.pt", "W"), util::InputError);
}

TEST_CASE("our state_dict.pt reads back with every tensor equal", "[serialize]") {
  TempDir dir;
  auto model = make_model("resnet18", 3);
  StateDict state = model_state_dict(*model);
  util::write_file_atomic(dir.path / "state_dict.pt", pickle_state_dict(state));
  StateDict back = read_state_dict(dir.path / "state_dict.pt", "x");
  REQUIRE(names_of(back) == names_of(state));
  for (std::size_t i = 0; i < state.size(); ++i) {
    CHECK(torch::equal(back[i].second, state[i].second));
  }
}

TEST_CASE("loading a state dict replaces only a final layer of another class count",
          "[serialize]") {
  auto source = make_model("resnet18", 1000);
  auto target = make_model("resnet18", 10);
  StateDict state = model_state_dict(*source);
  LoadReport report = load_state_dict(*target, state, "fc.", "W", "resnet18");
  CHECK(report.replaced == std::vector<std::string>{"fc.weight", "fc.bias"});
  CHECK(torch::equal(target->named_parameters()["layer4.1.conv2.weight"],
                     source->named_parameters()["layer4.1.conv2.weight"]));
  CHECK(target->named_parameters()["fc.weight"].size(0) == 10);
  // Without a head prefix the same difference is an error.
  CHECK(message_of([&] { load_state_dict(*target, state, "", "W", "resnet18"); }) ==
        "W: does not fit resnet18 (shapes differ: fc.weight is [1000, 512] in the file, [10, 512] "
        "in resnet18, fc.bias is [1000] in the file, [10] in resnet18)");
}

TEST_CASE("a state dict of another architecture is refused naming the differences", "[serialize]") {
  auto target = make_model("resnet18", 10);
  StateDict other = model_state_dict(*make_model("resnet34", 10));
  std::string message =
      message_of([&] { load_state_dict(*target, other, "fc.", "W", "resnet18"); });
  CHECK(message ==
        "W: does not fit resnet18 (not in resnet18: layer1.2.conv1.weight, layer1.2.bn1.weight, "
        "layer1.2.bn1.bias, layer1.2.bn1.running_mean, layer1.2.bn1.running_var and 91 more)");
  StateDict partial = model_state_dict(*make_model("resnet18", 10));
  partial.erase(partial.begin());
  CHECK(message_of([&] { load_state_dict(*target, partial, "fc.", "W", "resnet18"); }) ==
        "W: does not fit resnet18 (missing conv1.weight)");
}

TEST_CASE("a checkpoint round-trips every field", "[checkpoint]") {
  TempDir dir;
  torch::manual_seed(11);
  auto model = make_model("resnet18", 4);
  Checkpoint checkpoint;
  TrainConfig config;
  config.train_data = "/t";
  config.validation_data = "/v";
  checkpoint.config = config_to_json(config);
  checkpoint.classes = {"a", "b", "c", "d"};
  checkpoint.world_size = 2;
  checkpoint.epochs_done = 3;
  checkpoint.step_in_epoch = 17;
  checkpoint.global_step = 123456789012LL;
  checkpoint.best_val_loss = std::numeric_limits<double>::infinity();
  checkpoint.best_val_acc = 0.25;
  checkpoint.best_epoch = 2;
  checkpoint.epochs_without_improvement = 1;
  checkpoint.epoch_loss_sum = 12.5;
  checkpoint.epoch_correct = 40;
  checkpoint.epoch_samples = 64;
  checkpoint.loss_scale = 32768;
  checkpoint.model = model_state_dict(*model);
  checkpoint.momentum = {{"fc.weight", torch::randn({4, 512})}, {"fc.bias", torch::randn({4})}};
  checkpoint.rng_state = at::detail::getDefaultCPUGenerator().get_state();
  save_checkpoint(dir.path / "last.pt", checkpoint);
  // Atomic write: only the checkpoint itself is left.
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path),
                      std::filesystem::directory_iterator()) == 1);
  Checkpoint back = load_checkpoint(dir.path / "last.pt");
  CHECK(back.config == checkpoint.config);
  CHECK(back.classes == checkpoint.classes);
  CHECK(back.world_size == 2);
  CHECK(back.epochs_done == 3);
  CHECK(back.step_in_epoch == 17);
  CHECK(back.global_step == 123456789012LL);
  CHECK(std::isinf(back.best_val_loss));
  CHECK(back.best_val_acc == 0.25);
  CHECK(back.best_epoch == 2);
  CHECK(back.epochs_without_improvement == 1);
  CHECK(back.epoch_loss_sum == 12.5);
  CHECK(back.epoch_correct == 40);
  CHECK(back.epoch_samples == 64);
  CHECK(back.loss_scale == 32768);
  REQUIRE(names_of(back.model) == names_of(checkpoint.model));
  for (std::size_t i = 0; i < back.model.size(); ++i) {
    CHECK(torch::equal(back.model[i].second, checkpoint.model[i].second));
  }
  REQUIRE(back.momentum.size() == 2);
  CHECK(torch::equal(back.momentum[0].second, checkpoint.momentum[0].second));
  CHECK(torch::equal(back.rng_state, checkpoint.rng_state));
}

TEST_CASE("a file that is not a checkpoint is refused", "[checkpoint]") {
  const auto path = k_fixtures / "state_dict_plain.pt";
  CHECK(message_of([&] { load_checkpoint(path); }) ==
        "checkpoint " + path.string() + ": not an amlrun-worker checkpoint");
}
