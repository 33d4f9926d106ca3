#pragma once
// Our reader of the files torch.save writes: a zip holding a pickle
// (protocols 2 to 5) and the tensors' records.
//
// Writing (state_dict.cpp, checkpoint.cpp) uses torch::pickle_save, whose
// files Python's torch.load reads. Reading cannot use torch::pickle_load:
// LibTorch 1.13's aborts the process on the file everybody has,
// torch.save(model.state_dict(), f), because that is a
// collections.OrderedDict carrying a _metadata attribute, which its
// unpickler turns into None. Ours reads OrderedDicts as dicts, ignores
// _metadata, and refuses what it does not understand with an error.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>

namespace amlrun::train {

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

}  // namespace amlrun::train
