#include "lib/train/checkpoint.hpp"

#include <ATen/ops/empty.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <fmt/format.h>

#include "lib/train/pickle_reader.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;
using Ref = std::shared_ptr<PickleValue>;

namespace {

c10::Dict<std::string, at::Tensor> to_dict(const StateDict& state) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : state) {
    dict.insert(name, tensor.detach().to(at::kCPU).contiguous().clone());
  }
  return dict;
}

StateDict from_pickled(const PickleValue* value, const std::string& what, const char* field) {
  if (value == nullptr || value->kind != PickleValue::Kind::dict) {
    throw util::InputError(fmt::format("{}: '{}' is missing", what, field));
  }
  StateDict state;
  for (const auto& [key, tensor] : value->entries) {
    if (key->kind != PickleValue::Kind::string || tensor->kind != PickleValue::Kind::tensor) {
      throw util::InputError(fmt::format("{}: '{}' is not a dict of tensors", what, field));
    }
    state.emplace_back(key->text, tensor->tensor);
  }
  return state;
}

}  // namespace

void save_checkpoint(const fs::path& path, const Checkpoint& checkpoint) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert("format", "amlrun-worker checkpoint");
  dict.insert("format_version", static_cast<std::int64_t>(Checkpoint::k_format_version));
  dict.insert("config", checkpoint.config.dump());
  c10::List<std::string> classes;
  for (const std::string& name : checkpoint.classes) {
    classes.push_back(name);
  }
  dict.insert("classes", classes);
  dict.insert("world_size", static_cast<std::int64_t>(checkpoint.world_size));
  dict.insert("epochs_done", static_cast<std::int64_t>(checkpoint.epochs_done));
  dict.insert("step_in_epoch", checkpoint.step_in_epoch);
  dict.insert("global_step", checkpoint.global_step);
  dict.insert("best_val_loss", checkpoint.best_val_loss);
  dict.insert("best_val_acc", checkpoint.best_val_acc);
  dict.insert("best_epoch", static_cast<std::int64_t>(checkpoint.best_epoch));
  dict.insert("epochs_without_improvement",
              static_cast<std::int64_t>(checkpoint.epochs_without_improvement));
  dict.insert("epoch_loss_sum", checkpoint.epoch_loss_sum);
  dict.insert("epoch_correct", checkpoint.epoch_correct);
  dict.insert("epoch_samples", checkpoint.epoch_samples);
  dict.insert("loss_scale", checkpoint.loss_scale);
  dict.insert("model", to_dict(checkpoint.model));
  dict.insert("momentum", to_dict(checkpoint.momentum));
  dict.insert("rng_state", checkpoint.rng_state.defined()
                               ? checkpoint.rng_state.contiguous().clone()
                               : at::empty({0}, at::kByte));
  std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
  util::write_file_atomic(path, std::string_view(bytes.data(), bytes.size()));
}

Checkpoint load_checkpoint(const fs::path& path) {
  const std::string what = "checkpoint " + path.string();
  Ref root = read_torch_file(path, what);
  const PickleValue* format = root->get("format");
  if (format == nullptr || format->text != "amlrun-worker checkpoint") {
    throw util::InputError(fmt::format("{}: not an amlrun-worker checkpoint", what));
  }
  auto integer = [&](const char* key) -> std::int64_t {
    const PickleValue* value = root->get(key);
    if (value == nullptr || value->kind != PickleValue::Kind::integer) {
      throw util::InputError(fmt::format("{}: '{}' is missing", what, key));
    }
    return value->integer;
  };
  auto number = [&](const char* key) -> double {
    const PickleValue* value = root->get(key);
    if (value == nullptr || value->kind != PickleValue::Kind::floating) {
      throw util::InputError(fmt::format("{}: '{}' is missing", what, key));
    }
    return value->floating;
  };
  std::int64_t version = integer("format_version");
  if (version != Checkpoint::k_format_version) {
    throw util::InputError(fmt::format("{}: format version {}, this amlrun-worker reads version {}",
                                       what, version, Checkpoint::k_format_version));
  }
  Checkpoint checkpoint;
  const PickleValue* config = root->get("config");
  if (config == nullptr || config->kind != PickleValue::Kind::string) {
    throw util::InputError(fmt::format("{}: 'config' is missing", what));
  }
  try {
    checkpoint.config = nlohmann::json::parse(config->text);
  } catch (const nlohmann::json::exception& error) {
    throw util::InputError(fmt::format("{}: 'config' is not JSON: {}", what, error.what()));
  }
  const PickleValue* classes = root->get("classes");
  if (classes == nullptr || classes->kind != PickleValue::Kind::list) {
    throw util::InputError(fmt::format("{}: 'classes' is missing", what));
  }
  for (const auto& name : classes->items) {
    checkpoint.classes.push_back(name->text);
  }
  checkpoint.world_size = static_cast<int>(integer("world_size"));
  checkpoint.epochs_done = static_cast<int>(integer("epochs_done"));
  checkpoint.step_in_epoch = integer("step_in_epoch");
  checkpoint.global_step = integer("global_step");
  checkpoint.best_val_loss = number("best_val_loss");
  checkpoint.best_val_acc = number("best_val_acc");
  checkpoint.best_epoch = static_cast<int>(integer("best_epoch"));
  checkpoint.epochs_without_improvement = static_cast<int>(integer("epochs_without_improvement"));
  checkpoint.epoch_loss_sum = number("epoch_loss_sum");
  checkpoint.epoch_correct = number("epoch_correct");
  checkpoint.epoch_samples = number("epoch_samples");
  checkpoint.loss_scale = number("loss_scale");
  checkpoint.model = from_pickled(root->get("model"), what, "model");
  checkpoint.momentum = from_pickled(root->get("momentum"), what, "momentum");
  const PickleValue* rng = root->get("rng_state");
  if (rng != nullptr && rng->kind == PickleValue::Kind::tensor) {
    checkpoint.rng_state = rng->tensor;
  }
  return checkpoint;
}

}  // namespace amlrun::train
