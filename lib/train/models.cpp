#include "lib/train/models.hpp"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <stdexcept>

namespace amlrun::train {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

nn::Conv2d conv(int in, int out, int kernel, int stride, int padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

// A residual block; the ResNet iterates them in order.
class BlockImpl : public nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};

// torchvision.models.resnet.BasicBlock (expansion 1).
class BasicBlockImpl : public BlockImpl {
 public:
  BasicBlockImpl(int inplanes, int planes, int stride) {
    conv1 = register_module("conv1", conv(inplanes, planes, 3, stride, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    if (stride != 1 || inplanes != planes) {
      downsample = register_module(
          "downsample",
          nn::Sequential(conv(inplanes, planes, 1, stride, 0), nn::BatchNorm2d(planes)));
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    torch::Tensor identity = downsample ? downsample->forward(x) : x;
    torch::Tensor out = bn1->forward(conv1->forward(x)).relu_();
    out = bn2->forward(conv2->forward(out));
    return out.add_(identity).relu_();
  }

  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Sequential downsample{nullptr};
};

// torchvision.models.resnet.Bottleneck (expansion 4, stride on the 3×3
// convolution: "ResNet V1.5", as torchvision).
class BottleneckImpl : public BlockImpl {
 public:
  static constexpr int k_expansion = 4;

  BottleneckImpl(int inplanes, int planes, int stride) {
    const int width = planes;
    conv1 = register_module("conv1", conv(inplanes, width, 1, 1, 0));
    bn1 = register_module("bn1", nn::BatchNorm2d(width));
    conv2 = register_module("conv2", conv(width, width, 3, stride, 1));
    bn2 = register_module("bn2", nn::BatchNorm2d(width));
    conv3 = register_module("conv3", conv(width, planes * k_expansion, 1, 1, 0));
    bn3 = register_module("bn3", nn::BatchNorm2d(planes * k_expansion));
    if (stride != 1 || inplanes != planes * k_expansion) {
      downsample = register_module(
          "downsample", nn::Sequential(conv(inplanes, planes * k_expansion, 1, stride, 0),
                                       nn::BatchNorm2d(planes * k_expansion)));
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    torch::Tensor identity = downsample ? downsample->forward(x) : x;
    torch::Tensor out = bn1->forward(conv1->forward(x)).relu_();
    out = bn2->forward(conv2->forward(out)).relu_();
    out = bn3->forward(conv3->forward(out));
    return out.add_(identity).relu_();
  }

  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::Sequential downsample{nullptr};
};

class ResNetImpl : public ImageClassifierImpl {
 public:
  ResNetImpl(bool bottleneck, std::array<int, 4> layers, int classes) {
    const int expansion = bottleneck ? BottleneckImpl::k_expansion : 1;
    conv1 = register_module("conv1", conv(3, 64, 7, 2, 3));
    bn1 = register_module("bn1", nn::BatchNorm2d(64));
    int inplanes = 64;
    const int planes[4] = {64, 128, 256, 512};
    for (int stage = 0; stage < 4; ++stage) {
      auto list = nn::ModuleList();
      for (int block = 0; block < layers[stage]; ++block) {
        int stride = block == 0 && stage > 0 ? 2 : 1;
        std::shared_ptr<BlockImpl> module;
        if (bottleneck) {
          module = std::make_shared<BottleneckImpl>(inplanes, planes[stage], stride);
        } else {
          module = std::make_shared<BasicBlockImpl>(inplanes, planes[stage], stride);
        }
        inplanes = planes[stage] * expansion;
        list->push_back(module);
        m_blocks[stage].push_back(module);
      }
      register_module("layer" + std::to_string(stage + 1), list);
    }
    fc = register_module("fc", nn::Linear(512 * expansion, classes));
    // torchvision's initialisation; Linear keeps LibTorch's default, which is
    // PyTorch's default.
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* c = module->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight, /*a=*/0, torch::kFanOut, torch::kReLU);
      } else if (auto* b = module->as<nn::BatchNorm2d>()) {
        nn::init::ones_(b->weight);
        nn::init::zeros_(b->bias);
      }
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = bn1->forward(conv1->forward(x)).relu_();
    x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    for (auto& stage : m_blocks) {
      for (auto& block : stage) {
        x = block->forward(x);
      }
    }
    x = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
    return fc->forward(x);
  }

  std::string head_name() const override { return "fc"; }

  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::Linear fc{nullptr};

 private:
  std::array<std::vector<std::shared_ptr<BlockImpl>>, 4> m_blocks;
};

// torchvision.models.densenet._DenseLayer (memory_efficient off, drop_rate 0).
class DenseLayerImpl : public nn::Module {
 public:
  DenseLayerImpl(int input_features, int growth_rate, int bn_size) {
    norm1 = register_module("norm1", nn::BatchNorm2d(input_features));
    conv1 = register_module("conv1", conv(input_features, bn_size * growth_rate, 1, 1, 0));
    norm2 = register_module("norm2", nn::BatchNorm2d(bn_size * growth_rate));
    conv2 = register_module("conv2", conv(bn_size * growth_rate, growth_rate, 3, 1, 1));
  }

  torch::Tensor forward(const std::vector<torch::Tensor>& features) {
    torch::Tensor x = torch::cat(features, 1);
    x = conv1->forward(norm1->forward(x).relu_());
    return conv2->forward(norm2->forward(x).relu_());
  }

  nn::BatchNorm2d norm1{nullptr}, norm2{nullptr};
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
};

class DenseBlockImpl : public nn::Module {
 public:
  DenseBlockImpl(int layers, int input_features, int growth_rate, int bn_size) {
    for (int i = 0; i < layers; ++i) {
      m_layers.push_back(
          register_module("denselayer" + std::to_string(i + 1),
                          std::make_shared<DenseLayerImpl>(input_features + i * growth_rate,
                                                           growth_rate, bn_size)));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    std::vector<torch::Tensor> features = {x};
    for (auto& layer : m_layers) {
      features.push_back(layer->forward(features));
    }
    return torch::cat(features, 1);
  }

 private:
  std::vector<std::shared_ptr<DenseLayerImpl>> m_layers;
};

class TransitionImpl : public nn::Module {
 public:
  TransitionImpl(int input_features, int output_features) {
    norm = register_module("norm", nn::BatchNorm2d(input_features));
    conv = register_module("conv", train::conv(input_features, output_features, 1, 1, 0));
  }

  torch::Tensor forward(torch::Tensor x) {
    x = conv->forward(norm->forward(x).relu_());
    return F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2));
  }

  nn::BatchNorm2d norm{nullptr};
  nn::Conv2d conv{nullptr};
};

// torchvision's `features` Sequential, with its child names.
class DenseFeaturesImpl : public nn::Module {
 public:
  DenseFeaturesImpl(std::array<int, 4> block_config, int growth_rate, int initial_features,
                    int bn_size) {
    conv0 = register_module("conv0", conv(3, initial_features, 7, 2, 3));
    norm0 = register_module("norm0", nn::BatchNorm2d(initial_features));
    int features = initial_features;
    for (int i = 0; i < 4; ++i) {
      m_blocks.push_back(register_module(
          "denseblock" + std::to_string(i + 1),
          std::make_shared<DenseBlockImpl>(block_config[i], features, growth_rate, bn_size)));
      features += block_config[i] * growth_rate;
      if (i != 3) {
        m_transitions.push_back(
            register_module("transition" + std::to_string(i + 1),
                            std::make_shared<TransitionImpl>(features, features / 2)));
        features /= 2;
      }
    }
    norm5 = register_module("norm5", nn::BatchNorm2d(features));
    m_output_features = features;
  }

  torch::Tensor forward(torch::Tensor x) {
    x = norm0->forward(conv0->forward(x)).relu_();
    x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    for (std::size_t i = 0; i < m_blocks.size(); ++i) {
      x = m_blocks[i]->forward(x);
      if (i < m_transitions.size()) {
        x = m_transitions[i]->forward(x);
      }
    }
    return norm5->forward(x);
  }

  int output_features() const { return m_output_features; }

  nn::Conv2d conv0{nullptr};
  nn::BatchNorm2d norm0{nullptr}, norm5{nullptr};

 private:
  std::vector<std::shared_ptr<DenseBlockImpl>> m_blocks;
  std::vector<std::shared_ptr<TransitionImpl>> m_transitions;
  int m_output_features = 0;
};

class DenseNetImpl : public ImageClassifierImpl {
 public:
  DenseNetImpl(std::array<int, 4> block_config, int growth_rate, int initial_features,
               int classes) {
    features = register_module(
        "features", std::make_shared<DenseFeaturesImpl>(block_config, growth_rate, initial_features,
                                                        /*bn_size=*/4));
    classifier = register_module("classifier", nn::Linear(features->output_features(), classes));
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* c = module->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight);
      } else if (auto* b = module->as<nn::BatchNorm2d>()) {
        nn::init::ones_(b->weight);
        nn::init::zeros_(b->bias);
      } else if (auto* l = module->as<nn::Linear>()) {
        nn::init::zeros_(l->bias);
      }
    }
  }

  torch::Tensor forward(torch::Tensor x) override {
    x = features->forward(x).relu_();
    x = F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
    return classifier->forward(x);
  }

  std::string head_name() const override { return "classifier"; }

  std::shared_ptr<DenseFeaturesImpl> features;
  nn::Linear classifier{nullptr};
};

}  // namespace

std::shared_ptr<ImageClassifierImpl> make_model(const std::string& name, int classes) {
  if (name == "resnet18") {
    return std::make_shared<ResNetImpl>(/*bottleneck=*/false, std::array<int, 4>{2, 2, 2, 2},
                                        classes);
  }
  if (name == "resnet34") {
    return std::make_shared<ResNetImpl>(/*bottleneck=*/false, std::array<int, 4>{3, 4, 6, 3},
                                        classes);
  }
  if (name == "resnet50") {
    return std::make_shared<ResNetImpl>(/*bottleneck=*/true, std::array<int, 4>{3, 4, 6, 3},
                                        classes);
  }
  if (name == "densenet121") {
    return std::make_shared<DenseNetImpl>(std::array<int, 4>{6, 12, 24, 16}, /*growth_rate=*/32,
                                          /*initial_features=*/64, classes);
  }
  // The CLI checks the name first; reaching this is a programming error.
  throw std::invalid_argument("unknown model " + name);
}

}  // namespace amlrun::train
