#include "lib/train/onnx_export.hpp"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize/input-archive.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <type_traits>

#include "lib/train/config.hpp"
#include "lib/train/messages.hpp"
#include "lib/train/model_folder.hpp"
#include "lib/train/models.hpp"
#include "lib/train/progress.hpp"
#include "lib/train/trainer.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;
namespace nn = torch::nn;

namespace {

// A node's attributes, set one at a time by the builder's emitters.
onnx::AttributeProto int_attribute(const std::string& name, std::int64_t value) {
  onnx::AttributeProto attribute;
  attribute.set_name(name);
  attribute.set_type(onnx::AttributeProto::INT);
  attribute.set_i(value);
  return attribute;
}

onnx::AttributeProto ints_attribute(const std::string& name,
                                    const std::vector<std::int64_t>& values) {
  onnx::AttributeProto attribute;
  attribute.set_name(name);
  attribute.set_type(onnx::AttributeProto::INTS);
  for (std::int64_t value : values) {
    attribute.add_ints(value);
  }
  return attribute;
}

onnx::AttributeProto float_attribute(const std::string& name, float value) {
  onnx::AttributeProto attribute;
  attribute.set_name(name);
  attribute.set_type(onnx::AttributeProto::FLOAT);
  attribute.set_f(value);
  return attribute;
}

std::string type_name(const nn::Module& module) {
  // "torch::nn::DropoutImpl" → "Dropout"; our own classes are in an
  // anonymous namespace and read "(anonymous namespace)::DenseLayerImpl".
  std::string name = module.name();
  if (auto colon = name.rfind("::"); colon != std::string::npos) {
    name = name.substr(colon + 2);
  }
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0) {
    name.resize(name.size() - 4);
  }
  return name;
}

// Builds the inference graph of one model from its modules, looked up by
// their torchvision names. Every layer it reads is marked; a layer or tensor
// left unmarked at the end is one the export would silently drop, so it is
// refused instead.
class GraphBuilder {
 public:
  GraphBuilder(nn::Module& model, onnx::GraphProto& graph, std::string architecture)
      : m_graph(graph), m_architecture(std::move(architecture)) {
    for (const auto& item : model.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
      m_modules.emplace(item.key(), item.value());
    }
    for (const auto& item : model.named_parameters()) {
      m_tensors.push_back(item.key());
    }
    for (const auto& item : model.named_buffers()) {
      m_tensors.push_back(item.key());
    }
  }

  bool has(const std::string& layer) const { return m_modules.count(layer) > 0; }

  // Children of a container ("layer1" → its blocks), in registration order.
  std::size_t child_count(const std::string& layer) const {
    return module_at(layer).children().size();
  }

  // conv → BatchNorm folded into one Conv: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε)
  // (computed in double, as the exporter of torch does in its own precision).
  std::string conv_bn(const std::string& conv_name, const std::string& bn_name,
                      const std::string& input) {
    auto& conv = module<nn::Conv2dImpl>(conv_name);
    auto& bn = module<nn::BatchNorm2dImpl>(bn_name);
    check_conv(conv_name, conv);
    check_batch_norm(bn_name, bn);
    torch::NoGradGuard no_grad;
    torch::Tensor scale = bn.weight.to(torch::kDouble) /
                          (bn.running_var.to(torch::kDouble) + bn.options.eps()).sqrt();
    torch::Tensor weight = conv.weight.to(torch::kDouble) * scale.reshape({-1, 1, 1, 1});
    torch::Tensor bias = bn.bias.to(torch::kDouble) - bn.running_mean.to(torch::kDouble) * scale;
    if (conv.bias.defined()) {
      bias = bias + conv.bias.to(torch::kDouble) * scale;
    }
    mark_tensors(conv_name, {"weight", "bias"});
    mark_tensors(bn_name, {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
    std::string w = initializer(conv_name + ".weight", weight);
    std::string b = initializer(conv_name + ".bias", bias);
    return conv_node(conv_name, conv, {input, w, b});
  }

  // A convolution on its own (DenseNet's conv2, a transition's conv).
  std::string conv(const std::string& conv_name, const std::string& input) {
    auto& conv = module<nn::Conv2dImpl>(conv_name);
    check_conv(conv_name, conv);
    mark_tensors(conv_name, {"weight", "bias"});
    std::vector<std::string> inputs = {input, initializer(conv_name + ".weight", conv.weight)};
    if (conv.bias.defined()) {
      inputs.push_back(initializer(conv_name + ".bias", conv.bias));
    }
    return conv_node(conv_name, conv, inputs);
  }

  // A BatchNorm that does not follow a convolution directly: ONNX
  // BatchNormalization in inference mode.
  std::string batch_norm(const std::string& bn_name, const std::string& input) {
    auto& bn = module<nn::BatchNorm2dImpl>(bn_name);
    check_batch_norm(bn_name, bn);
    mark_tensors(bn_name, {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
    return node("BatchNormalization", bn_name,
                {input, initializer(bn_name + ".weight", bn.weight),
                 initializer(bn_name + ".bias", bn.bias),
                 initializer(bn_name + ".running_mean", bn.running_mean),
                 initializer(bn_name + ".running_var", bn.running_var)},
                {float_attribute("epsilon", static_cast<float>(bn.options.eps()))});
  }

  // The final Linear: Gemm with the weight as stored ([out, in], transB).
  std::string linear(const std::string& name, const std::string& input, const std::string& output) {
    auto& linear = module<nn::LinearImpl>(name);
    mark_tensors(name, {"weight", "bias"});
    std::vector<std::string> inputs = {input, initializer(name + ".weight", linear.weight)};
    if (linear.bias.defined()) {
      inputs.push_back(initializer(name + ".bias", linear.bias));
    }
    return node("Gemm", name, inputs, {int_attribute("transB", 1)}, output);
  }

  std::string relu(const std::string& input) { return node("Relu", input + "/relu", {input}); }

  std::string add(const std::string& name, const std::string& a, const std::string& b) {
    return node("Add", name, {a, b});
  }

  std::string concat(const std::string& name, const std::vector<std::string>& inputs) {
    if (inputs.size() == 1) {
      return inputs.front();  // torch.cat of one tensor is that tensor
    }
    return node("Concat", name, inputs, {int_attribute("axis", 1)});
  }

  std::string max_pool(const std::string& name, const std::string& input, int kernel, int stride,
                       int padding) {
    return node("MaxPool", name, {input},
                {ints_attribute("kernel_shape", {kernel, kernel}),
                 ints_attribute("strides", {stride, stride}),
                 ints_attribute("pads", {padding, padding, padding, padding})});
  }

  std::string average_pool(const std::string& name, const std::string& input, int kernel,
                           int stride) {
    return node("AveragePool", name, {input},
                {ints_attribute("kernel_shape", {kernel, kernel}),
                 ints_attribute("strides", {stride, stride})});
  }

  // adaptive_avg_pool2d(1) then flatten(1).
  std::string global_average_flatten(const std::string& input) {
    std::string pooled = node("GlobalAveragePool", "avgpool", {input});
    return node("Flatten", "flatten", {pooled}, {int_attribute("axis", 1)});
  }

  // Refuses what the walk did not read: a layer added to a model class that
  // the exporter does not know would otherwise vanish from the graph.
  void check_everything_exported() const {
    for (const auto& [name, module] : m_modules) {
      if (module->children().empty() && m_used_modules.count(name) == 0) {
        throw util::InputError(fmt::format(
            "cannot export layer '{}' ({}) to ONNX: the {} exporter does not know where it "
            "goes; it knows torchvision's {} layers only",
            name, type_name(*module), m_architecture, m_architecture));
      }
    }
    for (const std::string& tensor : m_tensors) {
      if (m_used_tensors.count(tensor) == 0) {
        throw util::InputError(
            fmt::format("cannot export '{}' to ONNX: the {} exporter has no place for this tensor",
                        tensor, m_architecture));
      }
    }
  }

 private:
  nn::Module& module_at(const std::string& layer) const {
    auto found = m_modules.find(layer);
    if (found == m_modules.end()) {
      throw util::InputError(fmt::format(
          "cannot export to ONNX: layer '{}' of torchvision's {} is missing from the model", layer,
          m_architecture));
    }
    return *found->second;
  }

  template <class Module>
  Module& module(const std::string& layer) {
    nn::Module& found = module_at(layer);
    auto* typed = found.as<Module>();
    if (typed == nullptr) {
      throw util::InputError(fmt::format("cannot export layer '{}' ({}) to ONNX: {} has a {} there",
                                         layer, type_name(found), m_architecture,
                                         std::is_same_v<Module, nn::Conv2dImpl> ? "Conv2d"
                                         : std::is_same_v<Module, nn::BatchNorm2dImpl>
                                             ? "BatchNorm2d"
                                             : "Linear"));
    }
    m_used_modules.insert(layer);
    return *typed;
  }

  static void check_conv(const std::string& name, const nn::Conv2dImpl& conv) {
    const auto& options = conv.options;
    // holds_alternative and get unqualified: found by argument-dependent
    // lookup in c10 for LibTorch 1.13's c10::variant, in std for 2.x's.
    const bool explicit_padding = holds_alternative<torch::ExpandingArray<2>>(options.padding());
    const auto& dilation = options.dilation();
    if (options.groups() != 1 || dilation->at(0) != 1 || dilation->at(1) != 1 ||
        !explicit_padding || !holds_alternative<torch::enumtype::kZeros>(options.padding_mode())) {
      throw util::InputError(fmt::format(
          "cannot export layer '{}' (Conv2d) to ONNX: only ungrouped, undilated convolutions "
          "with explicit zero padding are exported",
          name));
    }
  }

  static void check_batch_norm(const std::string& name, const nn::BatchNorm2dImpl& bn) {
    if (!bn.options.affine() || !bn.options.track_running_stats() || !bn.running_mean.defined() ||
        !bn.running_var.defined()) {
      throw util::InputError(fmt::format(
          "cannot export layer '{}' (BatchNorm2d) to ONNX: it has no running statistics or no "
          "affine parameters, so it has no inference form",
          name));
    }
  }

  void mark_tensors(const std::string& layer, std::initializer_list<const char*> names) {
    for (const char* name : names) {
      m_used_tensors.insert(layer + "." + name);
    }
  }

  std::string conv_node(const std::string& name, const nn::Conv2dImpl& conv,
                        const std::vector<std::string>& inputs) {
    const auto& options = conv.options;
    const auto& padding = get<torch::ExpandingArray<2>>(options.padding());
    return node(
        "Conv", name, inputs,
        {ints_attribute("kernel_shape",
                        {options.kernel_size()->at(0), options.kernel_size()->at(1)}),
         ints_attribute("strides", {options.stride()->at(0), options.stride()->at(1)}),
         ints_attribute("pads", {padding->at(0), padding->at(1), padding->at(0), padding->at(1)}),
         ints_attribute("dilations", {1, 1}), int_attribute("group", 1)});
  }

  // A float32 initializer named after the torch tensor it comes from.
  std::string initializer(const std::string& name, const torch::Tensor& tensor) {
    torch::Tensor data = tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
    onnx::TensorProto* proto = m_graph.add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx::TensorProto::FLOAT);
    for (std::int64_t size : data.sizes()) {
      proto->add_dims(size);
    }
    // raw_data is little-endian, as this machine's floats.
    proto->set_raw_data(data.data_ptr(), static_cast<std::size_t>(data.nbytes()));
    return name;
  }

  // One node; its output value is named after the node unless given.
  std::string node(const std::string& op, const std::string& name,
                   const std::vector<std::string>& inputs,
                   const std::vector<onnx::AttributeProto>& attributes = {},
                   std::string output = "") {
    std::string node_name = unique(name + "/" + op);
    if (output.empty()) {
      output = node_name;
    }
    onnx::NodeProto* proto = m_graph.add_node();
    proto->set_op_type(op);
    proto->set_name(node_name);
    for (const std::string& input : inputs) {
      proto->add_input(input);
    }
    proto->add_output(output);
    for (const onnx::AttributeProto& attribute : attributes) {
      *proto->add_attribute() = attribute;
    }
    return output;
  }

  // Value names are assigned once (SSA); a repeated name gets ":2", ":3", ...
  std::string unique(const std::string& name) {
    int& count = m_name_counts[name];
    ++count;
    return count == 1 ? name : fmt::format("{}:{}", name, count);
  }

  onnx::GraphProto& m_graph;
  std::string m_architecture;
  std::map<std::string, std::shared_ptr<nn::Module>> m_modules;
  std::vector<std::string> m_tensors;
  std::set<std::string> m_used_modules;
  std::set<std::string> m_used_tensors;
  std::map<std::string, int> m_name_counts;
};

// torchvision.models.resnet: conv1/bn1/relu/maxpool, layer1..4 of basic or
// bottleneck blocks (downsample = conv + BatchNorm), avgpool, fc.
std::string build_resnet(GraphBuilder& g, const std::string& input) {
  std::string x = g.relu(g.conv_bn("conv1", "bn1", input));
  x = g.max_pool("maxpool", x, /*kernel=*/3, /*stride=*/2, /*padding=*/1);
  for (int stage = 1; stage <= 4; ++stage) {
    const std::string layer = fmt::format("layer{}", stage);
    const std::size_t blocks = g.child_count(layer);
    for (std::size_t block = 0; block < blocks; ++block) {
      const std::string p = fmt::format("{}.{}", layer, block);
      const bool bottleneck = g.has(p + ".conv3");
      std::string identity =
          g.has(p + ".downsample") ? g.conv_bn(p + ".downsample.0", p + ".downsample.1", x) : x;
      std::string out = g.relu(g.conv_bn(p + ".conv1", p + ".bn1", x));
      out = g.conv_bn(p + ".conv2", p + ".bn2", out);
      if (bottleneck) {
        out = g.conv_bn(p + ".conv3", p + ".bn3", g.relu(out));
      }
      x = g.relu(g.add(p + ".add", out, identity));
    }
  }
  return g.global_average_flatten(x);
}

// torchvision.models.densenet: features (conv0/norm0/relu0/pool0, dense
// blocks with transitions between them, norm5), relu, avgpool, classifier.
// Each dense layer is norm1 → relu → conv1 → norm2 → relu → conv2 on the
// concatenation of all earlier outputs: norm2 follows conv1 and folds into
// it; norm1, a transition's norm and norm5 follow a concatenation and stay
// BatchNormalization.
std::string build_densenet(GraphBuilder& g, const std::string& input) {
  std::string x = g.relu(g.conv_bn("features.conv0", "features.norm0", input));
  x = g.max_pool("features.pool0", x, /*kernel=*/3, /*stride=*/2, /*padding=*/1);
  for (int b = 1; g.has(fmt::format("features.denseblock{}", b)); ++b) {
    const std::string block = fmt::format("features.denseblock{}", b);
    std::vector<std::string> features = {x};
    const std::size_t layers = g.child_count(block);
    for (std::size_t l = 1; l <= layers; ++l) {
      const std::string p = fmt::format("{}.denselayer{}", block, l);
      std::string y = g.concat(p + ".cat", features);
      y = g.relu(g.batch_norm(p + ".norm1", y));
      y = g.relu(g.conv_bn(p + ".conv1", p + ".norm2", y));
      features.push_back(g.conv(p + ".conv2", y));
    }
    x = g.concat(block + ".cat", features);
    const std::string transition = fmt::format("features.transition{}", b);
    if (g.has(transition)) {
      x = g.conv(transition + ".conv", g.relu(g.batch_norm(transition + ".norm", x)));
      x = g.average_pool(transition + ".pool", x, /*kernel=*/2, /*stride=*/2);
    }
  }
  x = g.relu(g.batch_norm("features.norm5", x));
  return g.global_average_flatten(x);
}

std::string float_list(const std::array<float, 3>& values) {
  return nlohmann::json(std::vector<double>(values.begin(), values.end())).dump();
}

void add_metadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* entry = model.add_metadata_props();
  entry->set_key(key);
  entry->set_value(value);
}

void set_tensor_type(onnx::ValueInfoProto& value, const std::string& name,
                     const std::vector<std::int64_t>& dims) {
  value.set_name(name);
  onnx::TypeProto_Tensor* tensor = value.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = tensor->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (std::int64_t dim : dims) {
    shape->add_dim()->set_dim_value(dim);
  }
}

// ONNX's own checks: the checker (nodes, attributes, opset, graph order),
// then strict shape inference, which proves the shapes line up from input
// to logits and agree with the declared output [batch, classes].
void check_onnx(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model);
    onnx::ModelProto inferred = model;
    onnx::shape_inference::InferShapes(
        inferred, onnx::OpSchemaRegistry::Instance(),
        onnx::ShapeInferenceOptions(/*check_type_val=*/true, /*strict_mode_val=*/1));
  } catch (const std::exception& failure) {
    // The exporter's own mistake, not the user's: exit 1, and no file.
    throw std::runtime_error(
        fmt::format("the ONNX checker refused the exported graph: {}", failure.what()));
  }
}

}  // namespace

std::string export_onnx(ImageClassifierImpl& model, const OnnxModelInfo& info, int opset) {
  if (opset < k_onnx_min_opset || opset > k_onnx_max_opset) {
    throw util::InputError(
        fmt::format("ONNX opset {}: must be {} to {}", opset, k_onnx_min_opset, k_onnx_max_opset));
  }
  onnx::ModelProto proto;
  // IR version 8 came with opset 15 (ONNX 1.10); older opsets get the IR
  // version of their time so that older runtimes accept the file.
  proto.set_ir_version(opset >= 15 ? 8 : 7);
  proto.set_producer_name("amlrun-worker");
  proto.set_producer_version(AMLRUN_VERSION);
  proto.set_model_version(1);
  proto.set_doc_string(
      fmt::format("{} image classifier trained by amlrun-worker", info.architecture));
  onnx::OperatorSetIdProto* opset_id = proto.add_opset_import();
  opset_id->set_domain("");
  opset_id->set_version(opset);

  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name(info.architecture);
  set_tensor_type(*graph->add_input(), "input", {3, info.image_size, info.image_size});
  set_tensor_type(*graph->add_output(), "logits", {static_cast<std::int64_t>(info.classes.size())});

  GraphBuilder builder(model, *graph, info.architecture);
  std::string features;
  if (info.architecture.rfind("resnet", 0) == 0) {
    features = build_resnet(builder, "input");
    builder.linear("fc", features, "logits");
  } else if (info.architecture.rfind("densenet", 0) == 0) {
    features = build_densenet(builder, "input");
    builder.linear("classifier", features, "logits");
  } else {
    throw util::InputError(fmt::format("cannot export model '{}' to ONNX: not a ResNet or DenseNet",
                                       info.architecture));
  }
  builder.check_everything_exported();

  add_metadata(proto, "architecture", info.architecture);
  add_metadata(proto, "labels", nlohmann::json(info.classes).dump());
  add_metadata(proto, "image_size", std::to_string(info.image_size));
  add_metadata(proto, "mean", float_list(info.mean));
  add_metadata(proto, "std", float_list(info.std));
  add_metadata(proto, "preprocessing",
               "RGB, NCHW float32: resize the shorter side to image_size/0.875, centre-crop "
               "image_size, scale pixels to [0, 1], then (x - mean) / std per channel");

  check_onnx(proto);
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) {
    throw std::runtime_error("cannot serialise the ONNX model (over protobuf's 2 GiB limit?)");
  }
  return bytes;
}

void write_onnx(const fs::path& path, ImageClassifierImpl& model, const OnnxModelInfo& info,
                int opset) {
  util::write_file_atomic(path, export_onnx(model, info, opset));
}

int run_export(const ExportOptions& options) {
  const ModelFolder folder = read_model_folder(options.model_dir, {"model.pt"});
  OnnxModelInfo info;
  info.architecture = folder.architecture;
  info.classes = folder.classes;
  info.image_size = folder.image_size;
  info.mean = folder.normalization.mean;
  info.std = folder.normalization.std;
  auto model = load_model(folder);
  const fs::path output =
      options.output.empty() ? options.model_dir / "model.onnx" : options.output;
  const auto start = std::chrono::steady_clock::now();
  write_onnx(output, *model, info, options.opset);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_line(fmt::format("wrote {} ({}, opset {}, {:.1f} MB) in {:.2f} s", output.string(),
                         info.architecture, options.opset,
                         static_cast<double>(fs::file_size(output)) / 1e6, seconds));
  return 0;
}

}  // namespace amlrun::train
