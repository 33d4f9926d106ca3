#include "lib/train/model_folder.hpp"

#include <torch/serialize/input-archive.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/train/config.hpp"
#include "lib/train/models.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

ModelFolder read_model_folder(const fs::path& dir, const std::vector<std::string>& weights) {
  ModelFolder folder;
  folder.dir = dir;
  folder.what = "--model-dir " + dir.string();
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    throw util::InputError(fmt::format("{}: no such folder", folder.what));
  }
  std::vector<std::string> required = weights;
  required.insert(required.end(), {"config.json", "labels.json"});
  for (const std::string& name : required) {
    if (!fs::exists(dir / name, error)) {
      std::string hint =
          name == "model.onnx"
              ? fmt::format("; 'amlrun-worker export --model-dir {}' writes it", dir.string())
              : "";
      throw util::InputError(
          fmt::format("{}: not a model folder ({} is missing{})", folder.what, name, hint));
    }
  }
  try {
    nlohmann::json description = nlohmann::json::parse(util::read_file(dir / "config.json"));
    const nlohmann::json& model = description.at("model");
    folder.architecture = model.at("name").get<std::string>();
    folder.image_size = model.at("image_size").get<int>();
    if (model.contains("normalization")) {
      folder.normalization.mean = model.at("normalization").at("mean").get<std::array<float, 3>>();
      folder.normalization.std = model.at("normalization").at("std").get<std::array<float, 3>>();
    }
    folder.classes = nlohmann::json::parse(util::read_file(dir / "labels.json"))
                         .at("classes")
                         .get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& failure) {
    throw util::InputError(
        fmt::format("{}: unreadable config.json or labels.json: {}", folder.what, failure.what()));
  }
  parse_choice(folder.what + ": model", folder.architecture, model_names(), "model");
  if (folder.classes.empty()) {
    throw util::InputError(fmt::format("{}: labels.json lists no classes", folder.what));
  }
  if (folder.image_size < 8 || folder.image_size > 4096) {
    throw util::InputError(fmt::format("{}: config.json: model.image_size {} is not 8 to 4096",
                                       folder.what, folder.image_size));
  }
  return folder;
}

std::shared_ptr<ImageClassifierImpl> load_model(const ModelFolder& folder) {
  auto model = make_model(folder.architecture, static_cast<int>(folder.classes.size()));
  try {
    torch::serialize::InputArchive archive;
    archive.load_from((folder.dir / "model.pt").string(), torch::Device(torch::kCPU));
    model->load(archive);
  } catch (const c10::Error& failure) {
    std::string message = failure.what();
    throw util::InputError(fmt::format("{}: cannot read model.pt as a {} with {} classes: {}",
                                       folder.what, folder.architecture, folder.classes.size(),
                                       message.substr(0, message.find('\n'))));
  }
  model->eval();
  return model;
}

}  // namespace amlrun::train
