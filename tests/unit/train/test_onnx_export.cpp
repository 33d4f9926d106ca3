// lib/train/onnx_export: the graph each architecture becomes, the BatchNorm
// fold (checked numerically against LibTorch), metadata, opsets, and the
// refusals. Running the exported files in another runtime is the e2e test's
// job (tests/e2e/test_worker_onnx.py, OpenCV DNN).
#include <onnx/onnx_pb.h>
#include <torch/torch.h>

// glog (through LibTorch) defines CHECK too; Catch's must win in this file.
#undef CHECK
#undef CHECK_FALSE
#include <catch2/catch.hpp>

#include <map>
#include <nlohmann/json.hpp>

#include "lib/train/models.hpp"
#include "lib/train/onnx_export.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "tests/unit/train/helpers.hpp"

using namespace amlrun;
using namespace amlrun::train;
using namespace train_test;

namespace {

// Running statistics away from (0, 1) and affine parameters away from
// (1, 0), so that a fold that ignored any of them would show.
void randomise_batch_norms(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(7);
  for (auto& module : model.modules()) {
    if (auto* bn = module->as<torch::nn::BatchNorm2d>()) {
      bn->running_mean.uniform_(-0.5, 0.5);
      bn->running_var.uniform_(0.5, 2.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.3, 0.3);
    }
  }
}

OnnxModelInfo info_for(const std::string& architecture, int image_size = 32) {
  OnnxModelInfo info;
  info.architecture = architecture;
  info.classes = {"cat", "dog", "emu"};
  info.image_size = image_size;
  return info;
}

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto model;
  REQUIRE(model.ParseFromString(bytes));
  return model;
}

std::map<std::string, int> op_counts(const onnx::ModelProto& model) {
  std::map<std::string, int> counts;
  for (const auto& node : model.graph().node()) {
    ++counts[node.op_type()];
  }
  return counts;
}

const onnx::TensorProto& initializer(const onnx::ModelProto& model, const std::string& name) {
  for (const auto& tensor : model.graph().initializer()) {
    if (tensor.name() == name) {
      return tensor;
    }
  }
  FAIL("no initializer " << name);
  throw std::logic_error("unreachable");
}

torch::Tensor to_tensor(const onnx::TensorProto& proto) {
  REQUIRE(proto.data_type() == onnx::TensorProto::FLOAT);
  std::vector<std::int64_t> dims(proto.dims().begin(), proto.dims().end());
  const std::string& raw = proto.raw_data();
  return torch::from_blob(const_cast<char*>(raw.data()), dims, torch::kFloat).clone();
}

std::map<std::string, std::string> metadata(const onnx::ModelProto& model) {
  std::map<std::string, std::string> values;
  for (const auto& entry : model.metadata_props()) {
    values[entry.key()] = entry.value();
  }
  return values;
}

}  // namespace

TEST_CASE("ResNet-18 exports with every BatchNorm folded into its convolution", "[onnx]") {
  auto model = make_model("resnet18", 3);
  randomise_batch_norms(*model);
  model->eval();
  onnx::ModelProto proto = parse(export_onnx(*model, info_for("resnet18"), 17));

  // 1 stem + 8 blocks × 2 + 3 downsamples; no BatchNormalization left.
  std::map<std::string, int> expected = {
      {"Conv", 20},   {"Relu", 17}, {"Add", 8}, {"MaxPool", 1}, {"GlobalAveragePool", 1},
      {"Flatten", 1}, {"Gemm", 1}};
  CHECK(op_counts(proto) == expected);
  // Weights are named after the torch parameters they come from.
  CHECK(to_tensor(initializer(proto, "layer2.0.downsample.0.weight")).sizes() ==
        torch::IntArrayRef({128, 64, 1, 1}));
  CHECK(to_tensor(initializer(proto, "fc.weight")).sizes() == torch::IntArrayRef({3, 512}));
}

TEST_CASE("a folded convolution computes what conv then BatchNorm compute in LibTorch", "[onnx]") {
  auto model = make_model("resnet50", 4);
  randomise_batch_norms(*model);
  model->eval();
  OnnxModelInfo info = info_for("resnet50");
  info.classes = {"a", "b", "c", "d"};
  onnx::ModelProto proto = parse(export_onnx(*model, info, 17));
  auto modules = model->named_modules();
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  // The stem (7×7, stride 2, padding 3), a bottleneck 3×3 and a downsample.
  for (auto [conv_name, bn_name, stride, padding, channels] :
       std::vector<std::tuple<std::string, std::string, int, int, int>>{
           {"conv1", "bn1", 2, 3, 3},
           {"layer2.0.conv2", "layer2.0.bn2", 2, 1, 128},
           {"layer3.0.downsample.0", "layer3.0.downsample.1", 2, 0, 512}}) {
    INFO(conv_name);
    torch::Tensor x = torch::randn({2, channels, 16, 16});
    auto& conv = *modules[conv_name]->as<torch::nn::Conv2d>();
    auto& bn = *modules[bn_name]->as<torch::nn::BatchNorm2d>();
    torch::Tensor reference = bn.forward(conv.forward(x));
    torch::Tensor folded = torch::conv2d(x, to_tensor(initializer(proto, conv_name + ".weight")),
                                         to_tensor(initializer(proto, conv_name + ".bias")),
                                         /*stride=*/stride, /*padding=*/padding);
    CHECK((folded - reference).abs().max().item<float>() < 1e-4);
  }
}

TEST_CASE("DenseNet-121 keeps the BatchNorms that follow a concatenation", "[onnx]") {
  auto model = make_model("densenet121", 3);
  model->eval();
  onnx::ModelProto proto = parse(export_onnx(*model, info_for("densenet121"), 17));
  std::map<std::string, int> counts = op_counts(proto);
  // 58 dense layers (6 + 12 + 24 + 16): norm1 stays, norm2 folds into conv1;
  // each of 3 transitions keeps its norm; norm5 stays; norm0 folds into conv0.
  CHECK(counts["BatchNormalization"] == 58 + 3 + 1);
  CHECK(counts["Conv"] == 1 + 58 * 2 + 3);
  CHECK(counts["AveragePool"] == 3);
  CHECK(counts["Gemm"] == 1);
  // The kept norms carry their statistics under their torch names.
  CHECK(to_tensor(initializer(proto, "features.norm5.running_var")).sizes() ==
        torch::IntArrayRef({1024}));
}

TEST_CASE("the graph has a dynamic batch and named input and output and carries the metadata",
          "[onnx]") {
  auto model = make_model("resnet34", 3);
  model->eval();
  onnx::ModelProto proto = parse(export_onnx(*model, info_for("resnet34", 64), 17));
  REQUIRE(proto.graph().input_size() == 1);
  const auto& input = proto.graph().input(0);
  CHECK(input.name() == "input");
  CHECK(input.type().tensor_type().elem_type() == onnx::TensorProto::FLOAT);
  const auto& in_shape = input.type().tensor_type().shape();
  REQUIRE(in_shape.dim_size() == 4);
  CHECK(in_shape.dim(0).dim_param() == "batch");
  CHECK(in_shape.dim(1).dim_value() == 3);
  CHECK(in_shape.dim(2).dim_value() == 64);
  CHECK(in_shape.dim(3).dim_value() == 64);
  REQUIRE(proto.graph().output_size() == 1);
  const auto& output = proto.graph().output(0);
  CHECK(output.name() == "logits");
  CHECK(output.type().tensor_type().shape().dim(0).dim_param() == "batch");
  CHECK(output.type().tensor_type().shape().dim(1).dim_value() == 3);
  REQUIRE(proto.opset_import_size() == 1);
  CHECK(proto.opset_import(0).version() == 17);
  CHECK(proto.ir_version() == 8);
  std::map<std::string, std::string> values = metadata(proto);
  CHECK(values["architecture"] == "resnet34");
  CHECK(values["labels"] == R"(["cat","dog","emu"])");
  CHECK(values["image_size"] == "64");
  CHECK(nlohmann::json::parse(values["mean"]).get<std::vector<double>>().size() == 3);
  CHECK(std::abs(nlohmann::json::parse(values["std"])[2].get<double>() - 0.225) < 1e-6);
}

TEST_CASE("opsets 13 to 17 are accepted and others refused", "[onnx]") {
  auto model = make_model("resnet18", 3);
  model->eval();
  onnx::ModelProto proto = parse(export_onnx(*model, info_for("resnet18"), 13));
  CHECK(proto.opset_import(0).version() == 13);
  CHECK(proto.ir_version() == 7);
  CHECK(message_of([&] { export_onnx(*model, info_for("resnet18"), 12); }) ==
        "ONNX opset 12: must be 13 to 17");
  CHECK(message_of([&] { export_onnx(*model, info_for("resnet18"), 18); }) ==
        "ONNX opset 18: must be 13 to 17");
}

TEST_CASE("a layer the exporter does not know is refused by name and no file is written",
          "[onnx]") {
  TempDir dir;
  auto model = make_model("resnet18", 3);
  model->named_modules()["layer1.0"]->register_module("dropout", torch::nn::Dropout(0.5));
  model->eval();
  const fs::path file = dir.path / "model.onnx";
  std::string message = message_of([&] { write_onnx(file, *model, info_for("resnet18"), 17); });
  CHECK(message.find("layer 'layer1.0.dropout' (Dropout)") != std::string::npos);
  CHECK(!fs::exists(file));
  // An earlier export stays as it was.
  amlrun::util::write_file_atomic(file, "earlier");
  CHECK_THROWS_AS(write_onnx(file, *model, info_for("resnet18"), 17), util::InputError);
  CHECK(amlrun::util::read_file(file) == "earlier");
  CHECK(fs::directory_iterator(dir.path)->path() == file);  // no temp file left
}

TEST_CASE("a layer of the wrong kind is refused by name", "[onnx]") {
  auto model = make_model("resnet18", 3);
  // A dilated convolution where torchvision has a plain one.
  model->replace_module(
      "conv1",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).dilation(2).bias(false)));
  model->eval();
  CHECK(message_of([&] { export_onnx(*model, info_for("resnet18"), 17); }) ==
        "cannot export layer 'conv1' (Conv2d) to ONNX: only ungrouped, undilated convolutions "
        "with explicit zero padding are exported");
}
