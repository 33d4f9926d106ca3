#include "lib/train/onnx_engine.hpp"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <fmt/format.h>
#include <stdexcept>

#include "lib/util/error.hpp"

namespace amlrun::train {

struct OnnxEngine::State {
  cv::dnn::Net net;
};

namespace {

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

}  // namespace

OnnxEngine::OnnxEngine(const std::filesystem::path& model, int threads)
    : m_state(std::make_unique<State>()) {
  cv::setNumThreads(threads);
  try {
    m_state->net = cv::dnn::readNetFromONNX(model.string());
  } catch (const cv::Exception& failure) {
    throw util::InputError(fmt::format("{}: OpenCV's DNN module cannot read it: {}", model.string(),
                                       first_line(failure.what())));
  }
  if (m_state->net.empty()) {
    throw util::InputError(
        fmt::format("{}: OpenCV's DNN module read no network from it", model.string()));
  }
  m_state->net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  m_state->net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
}

OnnxEngine::~OnnxEngine() = default;

std::size_t OnnxEngine::run(const float* pixels, std::size_t count, int size,
                            std::vector<float>& logits) {
  const int shape[] = {static_cast<int>(count), 3, size, size};
  // A header over the batch's buffer: OpenCV reads it without a copy.
  cv::Mat blob(4, shape, CV_32F, const_cast<float*>(pixels));
  cv::Mat out;
  try {
    m_state->net.setInput(blob, "input");
    out = m_state->net.forward("logits");
  } catch (const cv::Exception& failure) {
    // A failed run (exit 1), as a failing forward pass of LibTorch is.
    throw std::runtime_error(
        fmt::format("OpenCV's DNN module failed on the model: {}", first_line(failure.what())));
  }
  out = out.reshape(1, static_cast<int>(count));
  if (!out.isContinuous()) out = out.clone();
  const auto classes = static_cast<std::size_t>(out.cols);
  logits.assign(out.ptr<float>(), out.ptr<float>() + count * classes);
  return classes;
}

}  // namespace amlrun::train
