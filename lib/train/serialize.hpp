#pragma once
// State dicts and checkpoints on disk.
//
// Writing uses torch::pickle_save, whose files Python's torch.load reads.
// Reading uses our own reader of the torch.save zip format (pickle protocol 2
// to 5 plus the tensor records): LibTorch 1.13's torch::pickle_load aborts the
// process on the file everybody has, torch.save(model.state_dict(), f),
// because that is a collections.OrderedDict carrying a _metadata attribute,
// which its unpickler turns into None. Ours reads OrderedDicts as dicts,
// ignores _metadata, and refuses what it does not understand with an error.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

namespace torch::nn {
class Module;
}

namespace amlrun::train {

// Names and tensors in the order Python's Module.state_dict() uses:
// per module, its parameters then its buffers, then its children.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

StateDict model_state_dict(torch::nn::Module& module);

// A value read from a pickle: enough of Python's object model for state
// dicts and our checkpoints.
struct PickleValue {
  enum class Kind {
    none,
    boolean,
    integer,
    floating,
    string,
    bytes,
    tuple,
    list,
    dict,
    global,
    tensor,
    object
  };
  Kind kind = Kind::none;
  bool boolean = false;
  std::int64_t integer = 0;
  double floating = 0;
  std::string text;  // string, bytes, global ("module.name"), object (its class)
  std::vector<std::shared_ptr<PickleValue>> items;  // tuple, list
  std::vector<std::pair<std::shared_ptr<PickleValue>, std::shared_ptr<PickleValue>>>
      entries;  // dict
  at::Tensor tensor;

  // Lookup in a dict with string keys; nullptr when absent or not a dict.
  const PickleValue* get(const std::string& key) const;
};

// Reads a torch.save / torch::pickle_save zip file. Throws util::InputError
// naming `what` (e.g. "--init-weights /x/y.pt") for anything that is not such
// a file: a missing file, PyTorch's legacy pre-1.6 format, a TorchScript
// archive, a corrupt zip, or objects other than tensors and plain values.
std::shared_ptr<PickleValue> read_torch_file(const std::filesystem::path& path,
                                             const std::string& what);

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

// Everything `continue` needs to go on exactly where a run stopped.
struct Checkpoint {
  static constexpr int k_format_version = 1;
  nlohmann::json config;  // config_to_json of the run
  std::vector<std::string> classes;
  int world_size = 1;
  int epochs_done = 0;             // completed epochs
  std::int64_t step_in_epoch = 0;  // steps done in the current epoch
  std::int64_t global_step = 0;    // optimizer steps since the start
  double best_val_loss = 0;        // +inf before the first validation
  double best_val_acc = 0;
  int best_epoch = 0;  // 0: none yet
  int epochs_without_improvement = 0;
  // Sums of the current epoch's training so far (for its train_loss/acc).
  double epoch_loss_sum = 0;
  double epoch_correct = 0;
  double epoch_samples = 0;
  double loss_scale = 1;  // fp16's dynamic loss scale
  StateDict model;
  StateDict momentum;    // SGD momentum buffers, by parameter name
  at::Tensor rng_state;  // LibTorch's CPU generator
};

// Written atomically (temp file, fsync, rename, fsync of the folder): a kill
// at any moment leaves the previous checkpoint or the new one.
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);
// Throws util::InputError for a missing or foreign file or another format version.
Checkpoint load_checkpoint(const std::filesystem::path& path);

}  // namespace amlrun::train
