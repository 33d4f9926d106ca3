#pragma once
// State dicts: a model's named tensors, read from Python's or our files,
// written for Python's torch.load, and copied into a model with checks.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>

namespace torch::nn {
class Module;
}

namespace amlrun::train {

// Names and tensors in the order Python's Module.state_dict() uses:
// per module, its parameters then its buffers, then its children.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

StateDict model_state_dict(torch::nn::Module& module);

// A state dict from a Python or C++ file: a dict (or OrderedDict) of names to
// tensors, also when wrapped as {"state_dict": ...} or {"model": ...} (common
// checkpoint layouts). A "module." prefix on every name (saved from
// DistributedDataParallel) is removed.
StateDict read_state_dict(const std::filesystem::path& path, const std::string& what);

// Bytes of a state dict file for Python's torch.load (contiguous CPU copies).
std::string pickle_state_dict(const StateDict& state);

struct LoadReport {
  std::vector<std::string> replaced;  // head tensors whose shape differs: kept as initialised
};

// Copies `state` into the module. Names and shapes must match, except for the
// tensors under `head_prefix` ("fc." / "classifier."), which are skipped when
// their shape differs (another class count: transfer learning); an empty
// head_prefix allows no such difference. Anything else
// that does not match throws util::InputError naming `what`, the model, and
// the first differences.
LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state,
                           const std::string& head_prefix, const std::string& what,
                           const std::string& model_name);

}  // namespace amlrun::train
