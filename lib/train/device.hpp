#pragma once
// Where the tensors live and how compute runs: the device (the CPU, or one
// GPU per process), autocast for --precision bf16/fp16, the intra-op thread
// count, and a loader batch as tensors on the device.
#include <memory>
#include <string>
#include <utility>

#include <ATen/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "lib/train/loader.hpp"

namespace amlrun::train {

struct DeviceChoice {
  c10::Device device = c10::kCPU;
  bool cuda = false;
};

// --device auto|cpu|cuda for the process with this local rank; throws
// util::InputError for cuda without a CUDA device.
DeviceChoice choose_device(const std::string& choice, int local_rank);

// The autocast dtype of --precision (float for fp32).
at::ScalarType precision_dtype(const std::string& precision);

// Autocast for the forward pass. LibTorch 2.4 replaced the per-device setters
// (set_enabled / set_cpu_enabled, set_autocast_gpu_dtype /
// set_autocast_cpu_dtype) with ones that take the device type.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, const c10::Device& device, at::ScalarType dtype);

  ~AutocastGuard();

  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool m_enabled;
  c10::Device m_device;
  bool m_previous_enabled = false;
  at::ScalarType m_previous_dtype = at::kFloat;
};

// Wraps a loader batch without copying; the batch lives as long as the tensor.
std::pair<at::Tensor, at::Tensor> batch_tensors(const std::shared_ptr<Batch>& batch,
                                                const DeviceChoice& device);

void configure_threads(int threads);
// --threads, or (0) this process's share of the cores it may run on.
int resolve_threads(int requested, int processes_on_node);

}  // namespace amlrun::train
