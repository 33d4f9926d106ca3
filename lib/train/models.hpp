#pragma once
// ResNet-18/34/50 and DenseNet-121 with torchvision's architecture and its
// parameter and buffer names ("layer1.0.conv1.weight",
// "features.denseblock1.denselayer1.norm1.running_mean"), so that state dicts
// move between this trainer and torchvision.models in both directions.
#include <memory>
#include <string>

#include <torch/nn/module.h>

namespace amlrun::train {

class ImageClassifierImpl : public torch::nn::Module {
 public:
  // Images (N, 3, H, W), normalised → logits (N, classes).
  virtual torch::Tensor forward(torch::Tensor images) = 0;
  // The final layer: "fc" for ResNets, "classifier" for DenseNet. It is
  // replaced when --init-weights has another class count, and it is what
  // --freeze-backbone leaves trainable.
  virtual std::string head_name() const = 0;
};

// Initialised as torchvision initialises it, from the current LibTorch seed.
// `name` is one of model_names() (config.hpp).
std::shared_ptr<ImageClassifierImpl> make_model(const std::string& name, int classes);

}  // namespace amlrun::train
