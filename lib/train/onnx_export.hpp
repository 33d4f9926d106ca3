#pragma once
// ONNX export of a trained model in inference form, written with Debian's
// ONNX library (the protobuf classes LibTorch already links). The exporter
// walks the worker's own model classes (models.cpp) by their torchvision
// layer names rather than tracing a forward pass: the graph is known, so
// every node is placed on purpose, BatchNorm is folded where it directly
// follows a convolution, and a layer the walk does not expect is refused by
// name instead of being silently dropped. Neither LibTorch nor ONNX is in
// this header, so cli/worker stays quick to compile.
#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace amlrun::train {

class ImageClassifierImpl;

inline constexpr int k_onnx_min_opset = 13;
inline constexpr int k_onnx_max_opset = 17;
inline constexpr int k_onnx_default_opset = 17;

// What a consumer needs to preprocess and label images; stored in the
// model's metadata_props.
struct OnnxModelInfo {
  std::string architecture;  // one of model_names()
  std::vector<std::string> classes;
  int image_size = 224;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

// The model (on the CPU) as serialised ONNX ModelProto bytes: input "input"
// [batch, 3, image_size, image_size] float32 with a dynamic batch, output
// "logits" [batch, classes], opset `opset` (k_onnx_min_opset ..
// k_onnx_max_opset). Passed through onnx::checker::check_model and strict
// shape inference before it is returned. Throws util::InputError naming the
// layer for a model the exporter cannot express.
std::string export_onnx(ImageClassifierImpl& model, const OnnxModelInfo& info, int opset);

// export_onnx, then the bytes written atomically to `path` (temp file,
// fsync, rename): a refused or failed export leaves no file behind.
void write_onnx(const std::filesystem::path& path, ImageClassifierImpl& model,
                const OnnxModelInfo& info, int opset);

}  // namespace amlrun::train
