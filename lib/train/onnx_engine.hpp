#pragma once
// `predict --engine onnx`: runs model.onnx with OpenCV's DNN module
// (Debian's libopencv-dnn), an ONNX runtime amlrun did not write, so the
// exported file is what is scored — the same check a deployment makes.
// OpenCV stays out of this header.
#include <cstddef>
#include <filesystem>
#include <memory>
#include <vector>

namespace amlrun::train {

class OnnxEngine {
 public:
  // Reads the model; util::InputError when OpenCV cannot (the message is
  // OpenCV's first line). `threads` is OpenCV's thread count.
  OnnxEngine(const std::filesystem::path& model, int threads);
  ~OnnxEngine();
  OnnxEngine(const OnnxEngine&) = delete;
  OnnxEngine& operator=(const OnnxEngine&) = delete;

  // Logits of `count` images (count × 3 × size × size floats, NCHW,
  // normalised): count × classes floats into `logits`. Returns the class
  // count the model produced.
  std::size_t run(const float* pixels, std::size_t count, int size, std::vector<float>& logits);

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace amlrun::train
