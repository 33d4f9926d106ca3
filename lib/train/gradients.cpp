#include "lib/train/gradients.hpp"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <algorithm>

#include "lib/train/progress.hpp"

namespace amlrun::train {

void broadcast_tensors(Communicator& comm, const std::vector<torch::Tensor>& tensors,
                       const std::string& what) {
  if (comm.world_size() == 1) {
    return;
  }
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& tensor : tensors) {
    bool direct = tensor.is_cpu() && tensor.is_contiguous();
    torch::Tensor host = direct ? tensor : tensor.to(torch::kCPU).contiguous();
    comm.broadcast(host.data_ptr(), host.nbytes(), /*root=*/0, what);
    if (!direct) {
      const_cast<torch::Tensor&>(tensor).copy_(host);
    }
  }
}

void sgd_update(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& buffer,
                double learning_rate, double momentum, double weight_decay, double grad_scale) {
  if (param.is_cpu() && param.scalar_type() == torch::kFloat &&
      grad.scalar_type() == torch::kFloat && param.is_contiguous() && grad.is_contiguous() &&
      buffer.is_contiguous()) {
    float* p = param.data_ptr<float>();
    const float* g = grad.data_ptr<float>();
    float* m = buffer.data_ptr<float>();
    const auto lr = static_cast<float>(learning_rate);
    const auto mu = static_cast<float>(momentum);
    const auto wd = static_cast<float>(weight_decay);
    const auto scale = static_cast<float>(grad_scale);
    // parallel_for needs -fopenmp (lib/train/CMakeLists.txt); omp simd: the
    // three tensors never overlap, which GCC cannot prove, so without it
    // the loop stays scalar.
    at::parallel_for(0, param.numel(), /*grain_size=*/32768,
                     [&](std::int64_t begin, std::int64_t end) {
#pragma omp simd
                       for (std::int64_t i = begin; i < end; ++i) {
                         float d = g[i] * scale + wd * p[i];
                         m[i] = mu * m[i] + d;
                         p[i] -= lr * m[i];
                       }
                     });
    return;
  }
  torch::NoGradGuard no_grad;
  torch::Tensor d = grad * grad_scale;
  if (weight_decay != 0) {
    d.add_(param, weight_decay);
  }
  buffer.mul_(momentum).add_(d);
  param.add_(buffer, -learning_rate);
}

GradientReducer::GradientReducer(std::vector<torch::Tensor> parameters, Communicator& comm,
                                 std::size_t bucket_bytes, bool cuda)
    : m_parameters(std::move(parameters)), m_comm(comm), m_cuda(cuda) {
  std::vector<std::size_t> numels;
  for (const torch::Tensor& p : m_parameters) {
    numels.push_back(static_cast<std::size_t>(p.numel()));
  }
  constexpr std::size_t k_first_bucket_bytes = std::size_t{1} << 20;
  m_buckets = assign_buckets(numels, sizeof(float), std::min(k_first_bucket_bytes, bucket_bytes),
                             bucket_bytes);
  std::size_t total = 0;
  for (std::size_t n : numels) {
    total += n;
  }
  auto host_options = torch::TensorOptions().dtype(torch::kFloat);
  if (m_cuda) {
    host_options = host_options.pinned_memory(true);
  }
  m_host = torch::zeros({static_cast<std::int64_t>(total)}, host_options);
  m_device = m_cuda ? torch::zeros_like(m_host, m_parameters.front().options()) : m_host;
  m_bucket_of.resize(m_parameters.size());
  for (std::size_t b = 0; b < m_buckets.size(); ++b) {
    const Bucket& bucket = m_buckets[b];
    std::size_t offset = bucket.offset;
    for (std::size_t i = bucket.first; i < bucket.first + bucket.count; ++i) {
      const torch::Tensor& p = m_parameters[i];
      // Slots have the parameter's strides (channels_last included), so a
      // gradient is copied with a plain memcpy and the optimizer sees the
      // same element order in parameter, gradient and momentum.
      auto offset64 = static_cast<std::int64_t>(offset);
      m_host_slots.push_back(m_host.as_strided(p.sizes(), p.strides(), offset64));
      m_device_grads.push_back(m_device.as_strided(p.sizes(), p.strides(), offset64));
      m_bucket_of[i] = b;
      offset += static_cast<std::size_t>(p.numel());
    }
  }
  m_ready.assign(m_parameters.size(), false);
  m_pending.resize(m_buckets.size());
  for (std::size_t i = 0; i < m_parameters.size(); ++i) {
    // std::shared_ptr<Node> in LibTorch 1.13, c10::intrusive_ptr<Node> in 2.x.
    auto accumulator = torch::autograd::impl::grad_accumulator(m_parameters[i]);
    accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, i](const torch::autograd::variable_list& outputs,
                  const torch::autograd::variable_list& /*inputs*/) {
          gradient_ready(i);
          return outputs;
        }));
    // The parameter only holds its accumulator weakly; keeping it here
    // keeps the hook alive.
    m_accumulators.push_back(std::make_shared<decltype(accumulator)>(std::move(accumulator)));
  }
}

void GradientReducer::prepare() {
  std::lock_guard lock(m_mutex);
  for (torch::Tensor& p : m_parameters) {
    p.mutable_grad().reset();
  }
  std::fill(m_ready.begin(), m_ready.end(), false);
  for (std::size_t b = 0; b < m_buckets.size(); ++b) {
    m_pending[b] = m_buckets[b].count;
  }
  m_next_to_issue = 0;
  m_base = m_comm.completed();
}

double GradientReducer::finish() {
  {
    std::lock_guard lock(m_mutex);
    for (std::size_t i = 0; i < m_parameters.size(); ++i) {
      if (!m_ready[i]) {
        m_host_slots[i].zero_();
        mark_ready(i);
      }
    }
  }
  auto start = Clock::now();
  for (std::size_t b = 0; b < m_buckets.size(); ++b) {
    m_comm.wait_completed(m_base + b + 1);
    if (m_cuda) {
      const Bucket& bucket = m_buckets[b];
      auto offset = static_cast<std::int64_t>(bucket.offset);
      auto numel = static_cast<std::int64_t>(bucket.numel);
      m_device.narrow(0, offset, numel)
          .copy_(m_host.narrow(0, offset, numel), /*non_blocking=*/true);
    }
  }
  return seconds_since(start);
}

void GradientReducer::gradient_ready(std::size_t i) {
  std::lock_guard lock(m_mutex);
  if (m_ready[i]) {
    return;
  }
  const torch::Tensor& grad = m_parameters[i].grad();
  if (grad.defined()) {
    m_host_slots[i].copy_(grad);
  } else {
    m_host_slots[i].zero_();
  }
  mark_ready(i);
}

void GradientReducer::mark_ready(std::size_t i) {
  m_ready[i] = true;
  m_pending[m_bucket_of[i]] -= 1;
  while (m_next_to_issue < m_buckets.size() && m_pending[m_next_to_issue] == 0) {
    const Bucket& bucket = m_buckets[m_next_to_issue];
    m_comm.submit_allreduce(
        m_host.data_ptr<float>() + bucket.offset, bucket.numel,
        fmt::format("gradient allreduce (bucket {} of {})", m_next_to_issue + 1, m_buckets.size()));
    m_next_to_issue += 1;
  }
}

}  // namespace amlrun::train
