#pragma once
// A trained model folder — model/ of a run, a download, or a registered
// model — as evaluate, export and predict read it: config.json says the
// architecture, image size and normalisation, labels.json the classes, and
// model.pt (or model.onnx) holds the weights. One reader, so the three
// commands accept the same folders and refuse them with the same words.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lib/train/transforms.hpp"

namespace amlrun::train {

class ImageClassifierImpl;

struct ModelFolder {
  std::filesystem::path dir;
  std::string what;  // "--model-dir DIR": how messages name the folder
  std::string architecture;
  std::vector<std::string> classes;
  int image_size = 224;
  Normalization normalization = k_imagenet_normalization;
};

// Checks that `dir` is a folder holding config.json, labels.json and every
// file of `weights` (e.g. {"model.pt"}), then reads the two JSON files.
// Throws util::InputError naming the folder and what is wrong with it.
ModelFolder read_model_folder(const std::filesystem::path& dir,
                              const std::vector<std::string>& weights);

// A fresh model of the folder's architecture with model.pt's weights, on
// the CPU, in evaluation mode. Throws util::InputError when model.pt is not
// such a model.
std::shared_ptr<ImageClassifierImpl> load_model(const ModelFolder& folder);

}  // namespace amlrun::train
