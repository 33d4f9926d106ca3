#pragma once
// What happens to gradients between backward and the next forward: averaged
// across ranks while backward runs (GradientReducer) and applied by SGD
// (sgd_update); and the broadcast that starts every rank from rank 0's
// tensors.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "lib/train/buckets.hpp"
#include "lib/train/comm.hpp"

namespace amlrun::train {

// Copies every tensor of rank 0 to the other ranks.
void broadcast_tensors(Communicator& comm, const std::vector<at::Tensor>& tensors,
                       const std::string& what);

// One SGD step for one parameter, as torch.optim.SGD(momentum, dampening=0,
// nesterov=False) computes it, with the gradient first multiplied by
// grad_scale (1 / processes, and 1 / loss scale under fp16):
//   d = grad * grad_scale + weight_decay * p;  m = momentum * m + d;  p -= lr * m
// On CPU this is one pass over the three arrays instead of the three passes
// (mul_, add_, add_) of torch.optim.SGD, which is memory bound.
void sgd_update(at::Tensor& param, const at::Tensor& grad, at::Tensor& buffer, double learning_rate,
                double momentum, double weight_decay, double grad_scale);

// Averages gradients across ranks while backward runs. Each trainable
// parameter has a slot in one flat float buffer; consecutive slots form
// buckets (assign_buckets). A post hook on a parameter's gradient accumulator
// copies the finished gradient into its slot; when a bucket's last slot is
// filled, the bucket goes to the communication thread — always in bucket
// order, so every rank issues the same allreduces in the same order even if
// backward finishes parameters in a different order. On CUDA the flat buffer
// is pinned host memory (Debian's Open MPI is not CUDA-aware) and reduced
// buckets are copied back to a device buffer for the optimizer.
class GradientReducer {
 public:
  GradientReducer(std::vector<at::Tensor> parameters, Communicator& comm, std::size_t bucket_bytes,
                  bool cuda);

  std::size_t bucket_count() const { return m_buckets.size(); }

  // Before forward: gradients start undefined, so autograd hands each
  // parameter its gradient without an accumulate-add into old memory.
  void prepare();

  // After backward: parameters that got no gradient (unused in this forward)
  // contribute zeros; then wait for every bucket. Returns the seconds waited.
  double finish();

  // The summed gradient of parameter i (divide by the world size).
  const at::Tensor& gradient(std::size_t i) const { return m_device_grads[i]; }

 private:
  void gradient_ready(std::size_t i);

  // Caller holds m_mutex.
  void mark_ready(std::size_t i);

  std::vector<at::Tensor> m_parameters;
  Communicator& m_comm;
  bool m_cuda;
  std::vector<Bucket> m_buckets;
  at::Tensor m_host;
  at::Tensor m_device;
  std::vector<at::Tensor> m_host_slots;
  std::vector<at::Tensor> m_device_grads;
  std::vector<std::size_t> m_bucket_of;
  // The gradient accumulators the hooks hang on, kept alive. Type-erased:
  // LibTorch 1.13 hands out std::shared_ptr<Node>, 2.x c10::intrusive_ptr.
  std::vector<std::shared_ptr<void>> m_accumulators;

  std::mutex m_mutex;
  std::vector<bool> m_ready;
  std::vector<std::size_t> m_pending;
  std::size_t m_next_to_issue = 0;
  std::uint64_t m_base = 0;
};

}  // namespace amlrun::train
