#include "lib/train/state_dict.hpp"

#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/nn/module.h>

#include <fmt/format.h>
#include <unordered_map>
#include <unordered_set>

#include "lib/train/pickle_reader.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;
using Ref = std::shared_ptr<PickleValue>;

StateDict model_state_dict(torch::nn::Module& module) {
  StateDict state;
  // Module::named_modules lists a module before its children, depth first,
  // which is the order of Python's state_dict().
  for (const auto& item : module.named_modules(/*name_prefix=*/"", /*include_self=*/true)) {
    std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& parameter : item.value()->named_parameters(/*recurse=*/false)) {
      state.emplace_back(prefix + parameter.key(), parameter.value());
    }
    for (const auto& buffer : item.value()->named_buffers(/*recurse=*/false)) {
      if (buffer.value().defined()) {
        state.emplace_back(prefix + buffer.key(), buffer.value());
      }
    }
  }
  return state;
}

StateDict read_state_dict(const fs::path& path, const std::string& what) {
  Ref root = read_torch_file(path, what);
  const PickleValue* dict = root.get();
  for (const char* wrapper : {"state_dict", "model_state_dict", "model"}) {
    const PickleValue* inner = dict->get(wrapper);
    if (inner != nullptr && inner->kind == PickleValue::Kind::dict) {
      dict = inner;
      break;
    }
  }
  if (dict->kind != PickleValue::Kind::dict) {
    throw util::InputError(fmt::format("{}: does not hold a state dict (a dict of tensors)", what));
  }
  StateDict state;
  for (const auto& [key, value] : dict->entries) {
    if (key->kind != PickleValue::Kind::string) {
      throw util::InputError(fmt::format("{}: a state dict key is not a string", what));
    }
    if (value->kind != PickleValue::Kind::tensor) {
      throw util::InputError(
          fmt::format("{}: '{}' is not a tensor ({})", what, key->text,
                      value->kind == PickleValue::Kind::object ? value->text : "a plain value"));
    }
    state.emplace_back(key->text, value->tensor);
  }
  bool all_prefixed = !state.empty();
  for (const auto& [name, tensor] : state) {
    all_prefixed = all_prefixed && name.rfind("module.", 0) == 0;
  }
  if (all_prefixed) {
    for (auto& [name, tensor] : state) {
      name = name.substr(7);
    }
  }
  return state;
}

std::string pickle_state_dict(const StateDict& state) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : state) {
    // Contiguous CPU copies: a view would make the file hold its whole base storage.
    dict.insert(name, tensor.detach().to(at::kCPU).contiguous().clone());
  }
  std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
  return std::string(bytes.begin(), bytes.end());
}

namespace {

std::string describe_names(const std::vector<std::string>& names) {
  std::vector<std::string> shown(
      names.begin(),
      names.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(names.size(), 5)));
  std::string text = util::join(shown, ", ");
  if (names.size() > 5) {
    text += fmt::format(" and {} more", names.size() - 5);
  }
  return text;
}

std::string shape_text(const at::Tensor& tensor) {
  std::vector<std::string> sizes;
  for (auto size : tensor.sizes()) {
    sizes.push_back(std::to_string(size));
  }
  return "[" + util::join(sizes, ", ") + "]";
}

}  // namespace

LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state,
                           const std::string& head_prefix, const std::string& what,
                           const std::string& model_name) {
  StateDict own = model_state_dict(module);
  std::unordered_map<std::string, const at::Tensor*> given;
  for (const auto& [name, tensor] : state) {
    given[name] = &tensor;
  }
  std::vector<std::string> missing;
  std::vector<std::string> wrong_shape;
  LoadReport report;
  std::unordered_set<std::string> used;
  for (const auto& [name, tensor] : own) {
    auto found = given.find(name);
    if (found == given.end()) {
      missing.push_back(name);
      continue;
    }
    used.insert(name);
    if (found->second->sizes() != tensor.sizes()) {
      if (!head_prefix.empty() && name.rfind(head_prefix, 0) == 0) {
        report.replaced.push_back(name);
      } else {
        wrong_shape.push_back(fmt::format("{} is {} in the file, {} in {}", name,
                                          shape_text(*found->second), shape_text(tensor),
                                          model_name));
      }
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, tensor] : state) {
    if (used.count(name) == 0) {
      unexpected.push_back(name);
    }
  }
  // num_batches_tracked is absent from very old torchvision files; it only
  // matters with momentum=None, so its absence alone is no error.
  std::erase_if(missing, [](const std::string& name) {
    return name.size() > 20 && name.ends_with(".num_batches_tracked");
  });
  if (!missing.empty() || !unexpected.empty() || !wrong_shape.empty()) {
    std::vector<std::string> parts;
    if (!missing.empty()) {
      parts.push_back(fmt::format("missing {}", describe_names(missing)));
    }
    if (!unexpected.empty()) {
      parts.push_back(fmt::format("not in {}: {}", model_name, describe_names(unexpected)));
    }
    if (!wrong_shape.empty()) {
      parts.push_back(fmt::format("shapes differ: {}", describe_names(wrong_shape)));
    }
    throw util::InputError(
        fmt::format("{}: does not fit {} ({})", what, model_name, util::join(parts, "; ")));
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : own) {
    auto found = given.find(name);
    if (found == given.end() || found->second->sizes() != tensor.sizes()) {
      continue;
    }
    tensor.copy_(*found->second);
  }
  return report;
}

}  // namespace amlrun::train
