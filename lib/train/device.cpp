#include "lib/train/device.hpp"

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <thread>

#include "lib/train/config.hpp"
#include "lib/util/error.hpp"

namespace amlrun::train {

DeviceChoice choose_device(const std::string& choice, int local_rank) {
  bool available = torch::cuda::is_available();
  if (choice == "cuda" && !available) {
    throw util::InputError(
        "--device cuda: no CUDA device (this LibTorch is built without CUDA, or no GPU is "
        "visible)");
  }
  if (choice == "cpu" || !available) {
    return {};
  }
  // One GPU per process on a node, by local rank.
  auto count = static_cast<int>(torch::cuda::device_count());
  return {torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % count)), true};
}

at::ScalarType precision_dtype(const std::string& precision) {
  if (precision == "bf16") {
    return at::kBFloat16;
  }
  if (precision == "fp16") {
    return at::kHalf;
  }
  return at::kFloat;
}

AutocastGuard::AutocastGuard(bool enabled, const torch::Device& device, at::ScalarType dtype)
    : m_enabled(enabled), m_device(device) {
  if (!m_enabled) {
    return;
  }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  m_previous_enabled = at::autocast::is_autocast_enabled(device.type());
  m_previous_dtype = at::autocast::get_autocast_dtype(device.type());
  at::autocast::set_autocast_enabled(device.type(), true);
  at::autocast::set_autocast_dtype(device.type(), dtype);
#else
  if (device.is_cuda()) {
    m_previous_enabled = at::autocast::is_enabled();
    m_previous_dtype = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    m_previous_enabled = at::autocast::is_cpu_enabled();
    m_previous_dtype = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!m_enabled) {
    return;
  }
  // The cast weights are cached for the duration of the outermost region.
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(m_device.type(), m_previous_enabled);
  at::autocast::set_autocast_dtype(m_device.type(), m_previous_dtype);
#else
  if (m_device.is_cuda()) {
    at::autocast::set_enabled(m_previous_enabled);
    at::autocast::set_autocast_gpu_dtype(m_previous_dtype);
  } else {
    at::autocast::set_cpu_enabled(m_previous_enabled);
    at::autocast::set_autocast_cpu_dtype(m_previous_dtype);
  }
#endif
}

std::pair<torch::Tensor, torch::Tensor> batch_tensors(const std::shared_ptr<Batch>& batch,
                                                      const DeviceChoice& device) {
  auto count = static_cast<std::int64_t>(batch->count);
  torch::Tensor images = torch::from_blob(
      batch->pixels.get(), {count, 3, batch->image_size, batch->image_size}, [batch](void*) {},
      torch::TensorOptions().dtype(torch::kFloat));
  torch::Tensor labels = torch::from_blob(
      batch->labels.data(), {count}, [batch](void*) {}, torch::TensorOptions().dtype(torch::kLong));
  if (device.cuda) {
    // channels_last lets cuDNN pick its NHWC kernels (tensor cores for bf16).
    images =
        images.to(device.device, /*non_blocking=*/false).contiguous(at::MemoryFormat::ChannelsLast);
    labels = labels.to(device.device);
  }
  return {images, labels};
}

void configure_threads(int threads) {
  torch::set_num_threads(threads);
}

int resolve_threads(int requested, int processes_on_node) {
  if (requested > 0) {
    return requested;
  }
  int cores = available_cores();
  // A process bound to fewer cores than the machine has (mpirun binds each
  // rank to its own core(s) for small jobs) already has its share.
  if (cores < static_cast<int>(std::thread::hardware_concurrency())) {
    return cores;
  }
  return default_threads(cores, processes_on_node);
}

}  // namespace amlrun::train
