#include "lib/train/trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/cuda.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>
#include <torch/version.h>
#include <unistd.h>

#include <fmt/format.h>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <numbers>
#include <sstream>

#include "lib/train/buckets.hpp"
#include "lib/train/comm.hpp"
#include "lib/train/confusion.hpp"
#include "lib/train/dataset.hpp"
#include "lib/train/loader.hpp"
#include "lib/train/messages.hpp"
#include "lib/train/metrics.hpp"
#include "lib/train/models.hpp"
#include "lib/train/sampler.hpp"
#include "lib/train/checkpoint.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---------------------------------------------------------------- devices

struct DeviceChoice {
  torch::Device device = torch::kCPU;
  bool cuda = false;
};

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

// Autocast for the forward pass. LibTorch 2.4 replaced the per-device setters
// (set_enabled / set_cpu_enabled, set_autocast_gpu_dtype /
// set_autocast_cpu_dtype) with ones that take the device type.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, const torch::Device& device, at::ScalarType dtype)
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

  ~AutocastGuard() {
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

  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool m_enabled;
  torch::Device m_device;
  bool m_previous_enabled = false;
  at::ScalarType m_previous_dtype = at::kFloat;
};

// ---------------------------------------------------------------- tensors

// Wraps a loader batch without copying; the batch lives as long as the tensor.
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

// Copies every tensor of rank 0 to the other ranks.
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

// ---------------------------------------------------------------- optimizer

// One SGD step for one parameter, as torch.optim.SGD(momentum, dampening=0,
// nesterov=False) computes it, with the gradient first multiplied by
// grad_scale (1 / processes, and 1 / loss scale under fp16):
//   d = grad * grad_scale + weight_decay * p;  m = momentum * m + d;  p -= lr * m
// On CPU this is one pass over the three arrays instead of the three passes
// (mul_, add_, add_) of torch.optim.SGD, which is memory bound.
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
    at::parallel_for(0, param.numel(), /*grain_size=*/32768,
                     [&](std::int64_t begin, std::int64_t end) {
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

// ---------------------------------------------------------------- allreduce

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
  GradientReducer(std::vector<torch::Tensor> parameters, Communicator& comm,
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
      std::shared_ptr<torch::autograd::Node> accumulator =
          torch::autograd::impl::grad_accumulator(m_parameters[i]);
      accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, i](const torch::autograd::variable_list& outputs,
                    const torch::autograd::variable_list& /*inputs*/) {
            gradient_ready(i);
            return outputs;
          }));
      // The parameter only holds its accumulator weakly; keeping it here
      // keeps the hook alive.
      m_accumulators.push_back(std::move(accumulator));
    }
  }

  std::size_t bucket_count() const { return m_buckets.size(); }

  // Before forward: gradients start undefined, so autograd hands each
  // parameter its gradient without an accumulate-add into old memory.
  void prepare() {
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

  // After backward: parameters that got no gradient (unused in this forward)
  // contribute zeros; then wait for every bucket. Returns the seconds waited.
  double finish() {
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

  // The summed gradient of parameter i (divide by the world size).
  const torch::Tensor& gradient(std::size_t i) const { return m_device_grads[i]; }

 private:
  void gradient_ready(std::size_t i) {
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

  // Caller holds m_mutex.
  void mark_ready(std::size_t i) {
    m_ready[i] = true;
    m_pending[m_bucket_of[i]] -= 1;
    while (m_next_to_issue < m_buckets.size() && m_pending[m_next_to_issue] == 0) {
      const Bucket& bucket = m_buckets[m_next_to_issue];
      m_comm.submit_allreduce(m_host.data_ptr<float>() + bucket.offset, bucket.numel,
                              fmt::format("gradient allreduce (bucket {} of {})",
                                          m_next_to_issue + 1, m_buckets.size()));
      m_next_to_issue += 1;
    }
  }

  std::vector<torch::Tensor> m_parameters;
  Communicator& m_comm;
  bool m_cuda;
  std::vector<Bucket> m_buckets;
  torch::Tensor m_host;
  torch::Tensor m_device;
  std::vector<torch::Tensor> m_host_slots;
  std::vector<torch::Tensor> m_device_grads;
  std::vector<std::size_t> m_bucket_of;
  std::vector<std::shared_ptr<torch::autograd::Node>> m_accumulators;

  std::mutex m_mutex;
  std::vector<bool> m_ready;
  std::vector<std::size_t> m_pending;
  std::size_t m_next_to_issue = 0;
  std::uint64_t m_base = 0;
};

// ---------------------------------------------------------------- outputs

struct OutputPaths {
  fs::path root;
  fs::path checkpoints;
  fs::path model;
  fs::path last() const { return checkpoints / "last.pt"; }
  fs::path best() const { return checkpoints / "best.pt"; }
};

OutputPaths output_paths(const fs::path& root) {
  return {root, root / "checkpoints", root / "model"};
}

// Creates the output folders. Refuses sub-folders that are symbolic links
// (writing through one would leave --output-dir), and, for a new run, a
// folder that already holds a run's checkpoint (continue it instead).
void prepare_outputs(const OutputPaths& paths, bool fresh) {
  std::error_code error;
  if (fs::exists(paths.root, error) && !fs::is_directory(paths.root, error)) {
    throw util::InputError(fmt::format("--output-dir {}: not a folder", paths.root.string()));
  }
  fs::create_directories(paths.root, error);
  if (error) {
    throw util::InputError(
        fmt::format("--output-dir {}: cannot create: {}", paths.root.string(), error.message()));
  }
  for (const fs::path& sub : {paths.checkpoints, paths.model}) {
    if (fs::is_symlink(fs::symlink_status(sub, error))) {
      throw util::InputError(fmt::format(
          "--output-dir {}: {} is a symbolic link; amlrun-worker only writes inside the output "
          "folder",
          paths.root.string(), sub.filename().string()));
    }
    fs::create_directories(sub, error);
    if (error) {
      throw util::InputError(fmt::format("--output-dir {}: cannot create {}: {}",
                                         paths.root.string(), sub.filename().string(),
                                         error.message()));
    }
  }
  if (fresh && fs::exists(paths.last(), error)) {
    throw util::InputError(
        fmt::format("--output-dir {}: already holds a run (checkpoints/last.pt); resume it with "
                    "'amlrun-worker continue {}' or choose another --output-dir",
                    paths.root.string(), paths.root.string()));
  }
  if (::access(paths.root.c_str(), W_OK) != 0) {
    throw util::InputError(
        util::errno_message("--output-dir " + paths.root.string() + ": cannot write", errno));
  }
}

nlohmann::json library_versions(const Communicator& comm) {
  return {
      {"amlrun_worker", AMLRUN_VERSION},
      {"libtorch", TORCH_VERSION},
      {"mpi", comm.uses_mpi() ? comm.library_version() : "not used (single process)"},
      {"mpi_thread_level", comm.thread_level()},
      {"jpeg", jpeg_library_version()},
      {"png", png_library_version()},
      {"cuda_available", torch::cuda::is_available()},
  };
}

void write_model_folder(const fs::path& folder, ImageClassifierImpl& model,
                        const std::vector<std::string>& classes, const nlohmann::json& config) {
  // The C++ module archive (torch::load into the same architecture).
  std::ostringstream archive_bytes;
  torch::serialize::OutputArchive archive;
  model.save(archive);
  archive.save_to(archive_bytes);
  util::write_file_atomic(folder / "model.pt", archive_bytes.str());
  util::write_file_atomic(folder / "state_dict.pt", pickle_state_dict(model_state_dict(model)));
  util::write_file_atomic(folder / "labels.json",
                          nlohmann::json{{"classes", classes}}.dump(2) + "\n");
  util::write_file_atomic(folder / "config.json", config.dump(2) + "\n");
}

// ---------------------------------------------------------------- progress

// The model folder as the user should look for it: relative to the working
// directory when it lies inside it. Under amlrun the run's working directory
// is gone once its outputs are sealed, so an absolute path there would
// point nowhere; amlrun prints where the sealed outputs are.
std::string display_path(const fs::path& path) {
  std::error_code error;
  fs::path cwd = fs::current_path(error);
  if (error) return path.string();
  fs::path relative = path.lexically_relative(cwd);
  if (relative.empty() || *relative.begin() == "..") return path.string();
  return relative.string();
}

std::string percent(double fraction) {
  return fmt::format("{:.2f}%", fraction * 100);
}

class LiveProgress {
 public:
  explicit LiveProgress(bool enabled) : m_enabled(enabled) {}

  void update(int epoch, int epochs, std::size_t step, std::size_t steps,
              const std::function<std::string()>& details) {
    if (!m_enabled || seconds_since(m_last) < 0.5) {
      return;
    }
    m_last = Clock::now();
    std::string line =
        fmt::format("\r\033[Kepoch {}/{}  step {}/{}  {}", epoch, epochs, step, steps, details());
    ssize_t ignored = ::write(1, line.data(), line.size());
    (void)ignored;
    m_shown = true;
  }

  void clear() {
    if (m_shown) {
      ssize_t ignored = ::write(1, "\r\033[K", 4);
      (void)ignored;
      m_shown = false;
    }
  }

 private:
  bool m_enabled;
  bool m_shown = false;
  // The first update is shown at once: even a short epoch shows its line.
  Clock::time_point m_last = Clock::now() - std::chrono::seconds(1);
};

void print_line(const std::string& text) {
  std::string line = text + "\n";
  ssize_t ignored = ::write(1, line.data(), line.size());
  (void)ignored;
}

// ---------------------------------------------------------------- threads

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

// ---------------------------------------------------------------- training

struct PreparedRun {
  TrainConfig config;
  ImageFolder train_folder;
  ImageFolder validation_folder;
  StateDict init_weights;  // empty unless --init-weights
  std::string init_weights_what;
  std::optional<Checkpoint> resume;
};

class Trainer {
 public:
  Trainer(PreparedRun run, Communicator& comm) : m_run(std::move(run)), m_comm(comm) {}

  int train();

 private:
  const TrainConfig& config() const { return m_run.config; }
  bool is_root() const { return m_comm.rank() == 0; }
  void set_train_mode();
  void load_resume_state(const Checkpoint& checkpoint);
  struct Evaluation {
    double loss = 0;
    double accuracy = 0;
    double samples = 0;
  };
  Evaluation validate();
  Checkpoint snapshot(int epochs_done, std::int64_t step_in_epoch, double loss_sum, double correct,
                      double samples);
  void export_model();

  PreparedRun m_run;
  Communicator& m_comm;
  DeviceChoice m_device;
  bool m_autocast = false;
  at::ScalarType m_autocast_dtype = at::kFloat;
  std::shared_ptr<ImageClassifierImpl> m_model;
  std::vector<std::string> m_parameter_names;  // trainable, in bucket order
  std::vector<torch::Tensor> m_parameters;
  std::vector<torch::Tensor> m_momentum;
  std::vector<torch::nn::BatchNorm2dImpl*> m_frozen_norms;
  std::unique_ptr<ImageDataset> m_train;
  std::unique_ptr<ImageDataset> m_validation;
  std::unique_ptr<GradientReducer> m_reducer;
  OutputPaths m_paths;
  int m_loader_threads = 1;
  int m_threads = 1;

  int m_epochs_done = 0;
  std::int64_t m_step_in_epoch = 0;
  std::int64_t m_global_step = 0;
  double m_best_val_loss = std::numeric_limits<double>::infinity();
  double m_best_val_acc = 0;
  int m_best_epoch = 0;
  int m_epochs_without_improvement = 0;
  double m_resumed_loss_sum = 0;
  double m_resumed_correct = 0;
  double m_resumed_samples = 0;
  double m_loss_scale = 1;
  int m_good_steps = 0;
};

void Trainer::set_train_mode() {
  m_model->train();
  for (auto* norm : m_frozen_norms) {
    norm->eval();
  }
}

void Trainer::load_resume_state(const Checkpoint& checkpoint) {
  std::unordered_map<std::string, const torch::Tensor*> momentum;
  for (const auto& [name, tensor] : checkpoint.momentum) {
    momentum[name] = &tensor;
  }
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < m_parameters.size(); ++i) {
    auto found = momentum.find(m_parameter_names[i]);
    if (found != momentum.end() && found->second->sizes() == m_momentum[i].sizes()) {
      m_momentum[i].copy_(*found->second);
    }
  }
  // Nothing in training draws from LibTorch's generator after the model is
  // built (data order and augmentation are counter-based), but a model with
  // dropout would; restoring it keeps `continue` exact for such models too.
  if (checkpoint.rng_state.defined() && checkpoint.rng_state.numel() > 0) {
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard generator_lock(generator.mutex());
    generator.set_state(checkpoint.rng_state);
  }
  m_epochs_done = checkpoint.epochs_done;
  m_global_step = checkpoint.global_step;
  m_best_val_loss = checkpoint.best_val_loss;
  m_best_val_acc = checkpoint.best_val_acc;
  m_best_epoch = checkpoint.best_epoch;
  m_epochs_without_improvement = checkpoint.epochs_without_improvement;
  m_loss_scale = checkpoint.loss_scale;
  if (checkpoint.world_size == m_comm.world_size()) {
    m_step_in_epoch = checkpoint.step_in_epoch;
    // The partial sums were reduced over all ranks when saved; rank 0 carries
    // them so the epoch's reduced totals come out the same.
    if (is_root()) {
      m_resumed_loss_sum = checkpoint.epoch_loss_sum;
      m_resumed_correct = checkpoint.epoch_correct;
      m_resumed_samples = checkpoint.epoch_samples;
    }
  } else if (checkpoint.step_in_epoch > 0) {
    if (is_root()) {
      worker_warning(
          fmt::format("the checkpoint was written by {} processes, this run has {}: the data order "
                      "differs, so epoch {} starts again from its beginning",
                      checkpoint.world_size, m_comm.world_size(), checkpoint.epochs_done + 1));
    }
  }
}

Trainer::Evaluation Trainer::validate() {
  const TrainConfig& c = config();
  m_model->eval();
  auto batches = split_batches(eval_shard(m_validation->size(), m_comm.rank(), m_comm.world_size()),
                               static_cast<std::size_t>(c.batch_size), /*drop_single_tail=*/false);
  LoaderOptions options;
  options.kind = TransformKind::eval;
  options.image_size = c.image_size;
  options.threads = m_loader_threads;
  options.prefetch_batches = 2 * m_loader_threads + 2;
  BatchLoader loader(*m_validation, std::move(batches), options);
  // Inference mode: no autograd records and no version counters.
  torch::InferenceMode inference;
  auto counter_options = torch::TensorOptions().device(m_device.device);
  torch::Tensor loss_sum = torch::zeros({}, counter_options.dtype(torch::kDouble));
  torch::Tensor correct = torch::zeros({}, counter_options.dtype(torch::kLong));
  double samples = 0;
  while (auto batch = loader.next()) {
    if (batch->count == 0) {
      continue;
    }
    auto [images, labels] = batch_tensors(batch, m_device);
    torch::Tensor logits;
    {
      AutocastGuard autocast(m_autocast, m_device.device, m_autocast_dtype);
      logits = m_model->forward(images);
    }
    logits = logits.to(torch::kFloat);
    loss_sum += at::cross_entropy_loss(logits, labels, /*weight=*/{}, at::Reduction::Sum);
    correct += logits.argmax(1).eq(labels).sum();
    samples += static_cast<double>(batch->count);
  }
  double totals[3] = {loss_sum.item<double>(), static_cast<double>(correct.item<std::int64_t>()),
                      samples};
  m_comm.allreduce_sum(totals, 3, "validation metrics reduction");
  Evaluation result;
  result.samples = totals[2];
  result.loss = totals[2] > 0 ? totals[0] / totals[2] : std::numeric_limits<double>::quiet_NaN();
  result.accuracy = totals[2] > 0 ? totals[1] / totals[2] : 0;
  return result;
}

Checkpoint Trainer::snapshot(int epochs_done, std::int64_t step_in_epoch, double loss_sum,
                             double correct, double samples) {
  Checkpoint checkpoint;
  checkpoint.config = config_to_json(config());
  checkpoint.classes = m_train->classes();
  checkpoint.world_size = m_comm.world_size();
  checkpoint.epochs_done = epochs_done;
  checkpoint.step_in_epoch = step_in_epoch;
  checkpoint.global_step = m_global_step;
  checkpoint.best_val_loss = m_best_val_loss;
  checkpoint.best_val_acc = m_best_val_acc;
  checkpoint.best_epoch = m_best_epoch;
  checkpoint.epochs_without_improvement = m_epochs_without_improvement;
  checkpoint.epoch_loss_sum = loss_sum;
  checkpoint.epoch_correct = correct;
  checkpoint.epoch_samples = samples;
  checkpoint.loss_scale = m_loss_scale;
  checkpoint.model = model_state_dict(*m_model);
  for (std::size_t i = 0; i < m_parameters.size(); ++i) {
    checkpoint.momentum.emplace_back(m_parameter_names[i], m_momentum[i]);
  }
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard generator_lock(generator.mutex());
    checkpoint.rng_state = generator.get_state();
  }
  return checkpoint;
}

void Trainer::export_model() {
  const TrainConfig& c = config();
  // The exported model is the one with the lowest validation loss.
  if (m_best_epoch > 0 && fs::exists(m_paths.best())) {
    Checkpoint best = load_checkpoint(m_paths.best());
    load_state_dict(*m_model, best.model, /*head_prefix=*/"",
                    "checkpoint " + m_paths.best().string(), c.model);
  }
  m_model->to(torch::kCPU);
  nlohmann::json description = {
      {"config", config_to_json(c)},
      {"resolved",
       {{"device", m_device.device.str()},
        {"processes", m_comm.world_size()},
        {"global_batch_size", c.batch_size * m_comm.world_size()},
        {"threads", m_threads},
        {"loader_threads", m_loader_threads}}},
      {"model",
       {{"name", c.model},
        {"classes", m_train->classes().size()},
        {"image_size", c.image_size},
        {"normalization", {{"mean", {0.485, 0.456, 0.406}}, {"std", {0.229, 0.224, 0.225}}}}}},
      {"training",
       {{"epochs_done", m_epochs_done},
        {"global_step", m_global_step},
        {"best_epoch", m_best_epoch},
        {"best_val_loss", std::isfinite(m_best_val_loss) ? nlohmann::json(m_best_val_loss)
                                                         : nlohmann::json(nullptr)},
        {"best_val_acc", m_best_val_acc}}},
      {"versions", library_versions(m_comm)},
  };
  write_model_folder(m_paths.model, *m_model, m_train->classes(), description);
}

int Trainer::train() {
  const TrainConfig& c = config();
  const int rank = m_comm.rank();
  const int world = m_comm.world_size();
  set_message_rank(rank, world);
  m_paths = output_paths(c.output_dir);
  m_threads = resolve_threads(c.threads, m_comm.local_size());
  configure_threads(m_threads);
  m_loader_threads = c.loader_threads > 0
                         ? c.loader_threads
                         : default_loader_threads(available_cores(), m_comm.local_size());
  m_device = choose_device(c.device, m_comm.local_rank());
  m_autocast = c.precision != "fp32";
  m_autocast_dtype = precision_dtype(c.precision);
  if (m_device.cuda) {
    at::globalContext().setBenchmarkCuDNN(true);
  }
  if (c.precision == "fp16") {
    m_loss_scale = 65536.0;  // torch.cuda.amp.GradScaler's initial scale
  }

  // The model, initialised from the seed on every rank; rank 0's copy is
  // broadcast below, so all ranks start from the same weights regardless.
  torch::manual_seed(c.seed);
  const std::vector<std::string> classes = m_run.train_folder.classes;
  m_model = make_model(c.model, static_cast<int>(classes.size()));
  const std::string head = m_model->head_name();
  if (m_run.resume) {
    load_state_dict(*m_model, m_run.resume->model, /*head_prefix=*/"",
                    "checkpoint " + m_paths.last().string(), c.model);
  } else if (!m_run.init_weights.empty()) {
    LoadReport report =
        load_state_dict(*m_model, m_run.init_weights, head + ".", m_run.init_weights_what, c.model);
    if (!report.replaced.empty() && rank == 0) {
      print_line(fmt::format(
          "final layer '{}' replaced: the initial weights are for another class count, the data "
          "has {} classes",
          head, classes.size()));
    }
  }
  m_run.init_weights.clear();
  for (auto& item : m_model->named_parameters()) {
    if (c.freeze_backbone && item.key().rfind(head + ".", 0) != 0) {
      item.value().set_requires_grad(false);
    }
  }
  for (auto& module : m_model->modules(/*include_self=*/false)) {
    if (auto* norm = module->as<torch::nn::BatchNorm2d>()) {
      if (c.freeze_batch_norm || c.freeze_backbone) {
        m_frozen_norms.push_back(norm);
      }
    }
  }
  m_model->to(m_device.device);
  if (m_device.cuda) {
    torch::NoGradGuard no_grad;
    for (auto& parameter : m_model->parameters()) {
      if (parameter.dim() == 4) {
        parameter.set_data(parameter.data().contiguous(at::MemoryFormat::ChannelsLast));
      }
    }
  }
  // Trainable parameters, last registered first: backward produces
  // gradients roughly in that order, so early buckets fill first.
  auto named = m_model->named_parameters();
  for (auto it = named.end(); it != named.begin();) {
    --it;
    if (it->value().requires_grad()) {
      m_parameter_names.push_back(it->key());
      m_parameters.push_back(it->value());
      m_momentum.push_back(torch::zeros_like(it->value()));
    }
  }
  if (m_parameters.empty()) {
    throw util::InputError("nothing to train: every parameter is frozen");
  }
  if (m_run.resume) {
    load_resume_state(*m_run.resume);
    m_run.resume->model.clear();
    m_run.resume->momentum.clear();
  }
  {
    std::vector<torch::Tensor> everything;
    for (auto& [name, tensor] : model_state_dict(*m_model)) {
      everything.push_back(tensor);
    }
    everything.insert(everything.end(), m_momentum.begin(), m_momentum.end());
    broadcast_tensors(m_comm, everything, "initial weights broadcast");
  }

  // Data: decoded once into memory when small enough.
  auto cache_bytes = static_cast<std::uint64_t>(c.cache_size_mb * 1e6);
  m_train = std::make_unique<ImageDataset>(std::move(m_run.train_folder), c.strict);
  m_validation = std::make_unique<ImageDataset>(std::move(m_run.validation_folder), c.strict);
  auto cache_start = Clock::now();
  bool train_cached = m_train->cache_if_small(cache_bytes, m_threads + m_loader_threads);
  bool validation_cached = m_validation->cache_if_small(
      train_cached ? cache_bytes - std::min(cache_bytes, m_train->cache_bytes()) : cache_bytes,
      m_threads + m_loader_threads);
  double cache_seconds = seconds_since(cache_start);
  m_train->require_readable_image("training");
  m_validation->require_readable_image("validation");
  if (world > 1) {
    m_reducer = std::make_unique<GradientReducer>(
        m_parameters, m_comm, static_cast<std::size_t>(c.bucket_size_mb * 1e6), m_device.cuda);
  }

  std::optional<MetricsWriter> metrics;
  if (rank == 0) {
    metrics.emplace(default_metrics_path());
    print_line(fmt::format(
        "{} on {}: {} process{} × {} thread{} (+{} loader), {} classes, {} training images{}, "
        "{} validation images{}, global batch {}",
        c.model, m_device.device.str(), world, world == 1 ? "" : "es", m_threads,
        m_threads == 1 ? "" : "s", m_loader_threads, m_train->classes().size(), m_train->size(),
        train_cached ? fmt::format(" (cached, {})", util::format_bytes(m_train->cache_bytes()))
                     : "",
        m_validation->size(), validation_cached ? " (cached)" : "", c.batch_size * world));
    std::size_t corrupt = m_train->corrupt_count() + m_validation->corrupt_count();
    if (corrupt > 0) {
      print_line(fmt::format("skipped {} corrupt image{} ({} training, {} validation)", corrupt,
                             corrupt == 1 ? "" : "s", m_train->corrupt_count(),
                             m_validation->corrupt_count()));
    }
    if (m_train->folder().ignored_files + m_validation->folder().ignored_files > 0) {
      print_line(
          fmt::format("ignored {} files that are not .jpg, .jpeg or .png",
                      m_train->folder().ignored_files + m_validation->folder().ignored_files));
    }
    if (train_cached) {
      print_line(fmt::format("decoded the images in {:.1f} s", cache_seconds));
    }
    if (m_train->classes().size() == 1) {
      worker_warning(fmt::format(
          "--train-data {} has a single class ({}): the model learns to predict it for every image",
          c.train_data, util::printable(m_train->classes().front())));
    }
    if (m_run.resume) {
      print_line(fmt::format("continuing after epoch {}{}", m_epochs_done,
                             m_step_in_epoch > 0 ? fmt::format(", step {} of epoch {}",
                                                               m_step_in_epoch, m_epochs_done + 1)
                                                 : ""));
    }
  }

  const bool batch_norm_trains = !(c.freeze_batch_norm || c.freeze_backbone);
  // Open MPI gives every rank a pseudo-terminal as stdout, so isatty says
  // nothing under mpirun: the live line is only for a plain terminal run.
  const bool live_enabled = rank == 0 && !m_comm.uses_mpi() && ::isatty(1) == 1;
  const double world_scale = 1.0 / world;
  bool stop = c.patience > 0 && m_epochs_without_improvement >= c.patience;
  if (stop && rank == 0) {
    print_line(fmt::format("the run had already stopped early after epoch {}", m_epochs_done));
  }
  auto counter_options = torch::TensorOptions().device(m_device.device);

  for (int epoch = m_epochs_done; epoch < c.epochs && !stop; ++epoch) {
    const auto epoch_start = Clock::now();
    auto batches = split_batches(train_shard(m_train->size(), c.seed, epoch, rank, world),
                                 static_cast<std::size_t>(c.batch_size), batch_norm_trains);
    const std::size_t total_steps = batches.size();
    const auto first_step = std::min(static_cast<std::size_t>(m_step_in_epoch), total_steps);
    batches.erase(batches.begin(), batches.begin() + static_cast<std::ptrdiff_t>(first_step));
    LoaderOptions options;
    options.kind = TransformKind::train;
    options.image_size = c.image_size;
    options.min_crop_scale = c.min_crop_scale;
    options.seed = c.seed;
    options.epoch = epoch;
    options.threads = m_loader_threads;
    options.prefetch_batches = 2 * m_loader_threads + 2;
    BatchLoader loader(*m_train, std::move(batches), options);
    set_train_mode();

    torch::Tensor loss_sum = torch::zeros({}, counter_options.dtype(torch::kDouble));
    torch::Tensor correct = torch::zeros({}, counter_options.dtype(torch::kLong));
    double samples = 0;
    double carried[3] = {m_resumed_loss_sum, m_resumed_correct, m_resumed_samples};
    m_resumed_loss_sum = m_resumed_correct = m_resumed_samples = 0;
    double session_samples = 0;
    double wait_seconds = 0;
    LiveProgress live(live_enabled);
    const auto train_start = Clock::now();
    std::size_t step = first_step;
    while (auto batch = loader.next()) {
      auto [images, labels] = batch_tensors(batch, m_device);
      if (m_reducer) {
        m_reducer->prepare();
      } else {
        for (torch::Tensor& p : m_parameters) {
          p.mutable_grad().reset();
        }
      }
      // A batch whose images were all corrupt still takes part in the
      // allreduce (with zero gradients), so every rank stays in step.
      if (batch->count > 0) {
        torch::Tensor logits;
        torch::Tensor loss;
        {
          AutocastGuard autocast(m_autocast, m_device.device, m_autocast_dtype);
          logits = m_model->forward(images);
          loss = at::cross_entropy_loss(logits, labels);
        }
        if (m_autocast_dtype == at::kHalf) {
          (loss * m_loss_scale).backward();
        } else {
          loss.backward();
        }
        torch::NoGradGuard no_grad;
        loss_sum += loss.detach().to(torch::kDouble) * static_cast<double>(batch->count);
        correct += logits.detach().argmax(1).eq(labels).sum();
      }
      if (m_reducer) {
        wait_seconds += m_reducer->finish();
      }
      double grad_scale = world_scale / m_loss_scale;
      bool apply = true;
      if (m_autocast_dtype == at::kHalf) {
        // torch.cuda.amp.GradScaler's rule: skip a step with inf/NaN
        // gradients and halve the scale; double it after 2000 good steps.
        // After the allreduce every rank sees the same sums, so every rank
        // takes the same decision.
        std::vector<torch::Tensor> checks;
        for (std::size_t i = 0; i < m_parameters.size(); ++i) {
          const torch::Tensor& g = m_reducer ? m_reducer->gradient(i) : m_parameters[i].grad();
          if (g.defined()) {
            checks.push_back(torch::isfinite(g).all());
          }
        }
        // One device-to-host transfer for all parameters.
        const bool finite = checks.empty() || torch::stack(checks).all().item<bool>();
        apply = finite;
        if (!finite) {
          m_loss_scale *= 0.5;
          m_good_steps = 0;
        } else if (++m_good_steps == 2000) {
          m_loss_scale *= 2.0;
          m_good_steps = 0;
        }
      }
      if (apply) {
        // The step's learning rate depends on the step counter alone, so a
        // continued run follows the same schedule.
        double learning_rate = c.learning_rate;
        if (c.lr_schedule == "cosine") {
          const double total = static_cast<double>(c.epochs) * static_cast<double>(total_steps);
          const double progress = (epoch * static_cast<double>(total_steps) + step) / total;
          learning_rate *= 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(progress, 1.0)));
        }
        for (std::size_t i = 0; i < m_parameters.size(); ++i) {
          const torch::Tensor& g = m_reducer ? m_reducer->gradient(i) : m_parameters[i].grad();
          if (g.defined()) {
            sgd_update(m_parameters[i], g, m_momentum[i], learning_rate, c.momentum, c.weight_decay,
                       grad_scale);
          }
        }
      }
      samples += static_cast<double>(batch->count);
      session_samples += static_cast<double>(batch->count);
      step += 1;
      m_global_step += 1;
      m_step_in_epoch = static_cast<std::int64_t>(step);
      live.update(epoch + 1, c.epochs, step, total_steps, [&] {
        return fmt::format("loss {:.4f}  {:.0f} img/s",
                           (loss_sum.item<double>() + carried[0]) / (samples + carried[2]),
                           session_samples * world / seconds_since(train_start));
      });
      if (c.checkpoint_every > 0 && m_global_step % c.checkpoint_every == 0 && step < total_steps) {
        // Within the epoch: the partial sums of all ranks go into the
        // checkpoint, so a continued run reports the same epoch metrics.
        double partial[3] = {loss_sum.item<double>() + carried[0],
                             static_cast<double>(correct.item<std::int64_t>()) + carried[1],
                             samples + carried[2]};
        m_comm.allreduce_sum(partial, 3, "checkpoint metrics reduction");
        if (rank == 0) {
          save_checkpoint(m_paths.last(),
                          snapshot(epoch, m_step_in_epoch, partial[0], partial[1], partial[2]));
        }
      }
    }
    live.clear();
    const double train_seconds = seconds_since(train_start);
    double totals[5] = {loss_sum.item<double>() + carried[0],
                        static_cast<double>(correct.item<std::int64_t>()) + carried[1],
                        samples + carried[2], session_samples, wait_seconds};
    m_comm.allreduce_sum(totals, 5, "training metrics reduction");
    // Validation (and the saved model) use rank 0's BatchNorm statistics on
    // every rank, as DistributedDataParallel's buffer broadcast does.
    if (world > 1) {
      std::vector<torch::Tensor> buffers;
      for (auto& buffer : m_model->buffers()) {
        buffers.push_back(buffer);
      }
      broadcast_tensors(m_comm, buffers, "BatchNorm statistics broadcast");
    }
    Evaluation validation = validate();
    const double epoch_seconds = seconds_since(epoch_start);
    const double train_loss = totals[2] > 0 ? totals[0] / totals[2] : 0;
    const double train_acc = totals[2] > 0 ? totals[1] / totals[2] : 0;
    const double images_per_sec = train_seconds > 0 ? totals[3] / train_seconds : 0;
    bool improved = validation.loss < m_best_val_loss;
    if (improved) {
      m_best_val_loss = validation.loss;
      m_best_val_acc = validation.accuracy;
      m_best_epoch = epoch + 1;
      m_epochs_without_improvement = 0;
    } else {
      m_epochs_without_improvement += 1;
    }
    m_epochs_done = epoch + 1;
    m_step_in_epoch = 0;
    stop = c.patience > 0 && m_epochs_without_improvement >= c.patience;
    if (rank == 0) {
      const auto step_number = static_cast<std::int64_t>(epoch + 1);
      metrics->write("train_loss", train_loss, step_number);
      metrics->write("train_acc", train_acc, step_number);
      metrics->write("val_loss", validation.loss, step_number);
      metrics->write("val_acc", validation.accuracy, step_number);
      metrics->write("images_per_sec", images_per_sec, step_number);
      metrics->write("epoch_seconds", epoch_seconds, step_number);
      std::string communication;
      if (world > 1) {
        // Mean over ranks of the time the training loop waited for
        // allreduces after backward, as a share of the training time.
        double share = train_seconds > 0 ? totals[4] / world / train_seconds : 0;
        metrics->write("comm_wait_share", share, step_number);
        communication = fmt::format(" | comm wait {}", percent(share));
      }
      print_line(fmt::format(
          "epoch {}/{}: train loss {:.4f}, acc {} | val loss {:.4f}, acc {} | {:.0f} img/s{} | "
          "{:.1f} s{}",
          epoch + 1, c.epochs, train_loss, percent(train_acc), validation.loss,
          percent(validation.accuracy), images_per_sec, communication, epoch_seconds,
          improved ? " | best" : ""));
      Checkpoint checkpoint = snapshot(m_epochs_done, 0, 0, 0, 0);
      save_checkpoint(m_paths.last(), checkpoint);
      if (improved) {
        save_checkpoint(m_paths.best(), checkpoint);
      }
      if (stop) {
        print_line(fmt::format(
            "stopping early: the validation loss has not improved for {} epoch{} (best {:.4f} "
            "after epoch {})",
            m_epochs_without_improvement, m_epochs_without_improvement == 1 ? "" : "s",
            m_best_val_loss, m_best_epoch));
      }
    }
  }

  if (rank == 0) {
    export_model();
    print_line(fmt::format("model written to {}{}", display_path(m_paths.model),
                           m_best_epoch > 0
                               ? fmt::format(" (epoch {}: val loss {:.4f}, acc {})", m_best_epoch,
                                             m_best_val_loss, percent(m_best_val_acc))
                               : ""));
  }
  return 0;
}

// Checks everything a user can get wrong before MPI starts, so that a
// mistake ends every rank the same way: exit 2 and a one-line message.
PreparedRun prepare_run(TrainConfig config, std::optional<Checkpoint> resume) {
  check_required(config);
  resolve_paths(config);
  PreparedRun run;
  run.train_folder = scan_image_folder(config.train_data, "--train-data");
  run.validation_folder = scan_image_folder(config.validation_data, "--validation-data");
  check_same_classes(run.train_folder, "--train-data", run.validation_folder, "--validation-data");
  if (resume && resume->classes != run.train_folder.classes) {
    throw util::InputError(
        fmt::format("continue {}: the classes of --train-data {} changed since the checkpoint: the "
                    "checkpoint has {} ({}), the folder has {} ({})",
                    config.output_dir, config.train_data, resume->classes.size(),
                    util::join(resume->classes, ", "), run.train_folder.classes.size(),
                    util::join(run.train_folder.classes, ", ")));
  }
  if (!config.init_weights.empty() && !resume) {
    fs::path file = config.init_weights;
    run.init_weights_what = "--init-weights " + config.init_weights;
    std::error_code error;
    if (fs::is_directory(file, error)) {
      file /= "state_dict.pt";
      if (!fs::exists(file, error)) {
        throw util::InputError(
            fmt::format("{}: not a model folder (no state_dict.pt)", run.init_weights_what));
      }
      run.init_weights_what = "--init-weights " + file.string();
    }
    run.init_weights = read_state_dict(file, run.init_weights_what);
  }
  DeviceChoice device = choose_device(config.device, /*local_rank=*/0);
  if (config.precision == "fp16" && !device.cuda) {
    throw util::InputError(
        "--precision fp16: needs a CUDA device (on CPU, autocast supports bf16 only)");
  }
  if (launcher_rank() == 0) {
    prepare_outputs(output_paths(config.output_dir), /*fresh=*/!resume);
  }
  run.config = std::move(config);
  run.resume = std::move(resume);
  return run;
}

int run_prepared(PreparedRun run) {
  Communicator comm(run.config.collective_timeout);
  try {
    Trainer trainer(std::move(run), comm);
    return trainer.train();
  } catch (const util::Error& error) {
    if (comm.world_size() > 1) {
      // Other ranks may be waiting in a collective: end them all now.
      worker_error(error.what());
      comm.abort(static_cast<int>(error.code()));
    }
    throw;
  } catch (const std::exception& error) {
    if (comm.world_size() > 1) {
      std::string message = error.what();
      worker_error(message.substr(0, message.find('\n')));
      comm.abort(static_cast<int>(ExitCode::run_failed));
    }
    throw;
  }
}

}  // namespace

int run_training(TrainConfig config) {
  return run_prepared(prepare_run(std::move(config), std::nullopt));
}

int continue_training(const fs::path& output_dir, std::optional<int> epochs) {
  const fs::path root = fs::absolute(output_dir).lexically_normal();
  const std::string what = "continue " + output_dir.string();
  std::error_code error;
  if (!fs::is_directory(root, error)) {
    throw util::InputError(fmt::format("{}: no such folder", what));
  }
  const fs::path last = output_paths(root).last();
  if (!fs::exists(last, error)) {
    throw util::InputError(
        fmt::format("{}: no checkpoint to continue from (checkpoints/last.pt is missing)", what));
  }
  Checkpoint checkpoint = load_checkpoint(last);
  TrainConfig config = config_from_json(checkpoint.config);
  config.output_dir = root.string();
  if (epochs) {
    config.epochs = *epochs;
  }
  return run_prepared(prepare_run(std::move(config), std::move(checkpoint)));
}

int run_evaluation(const EvaluateOptions& options) {
  const std::string what = "--model-dir " + options.model_dir.string();
  std::error_code error;
  if (!fs::is_directory(options.model_dir, error)) {
    throw util::InputError(fmt::format("{}: no such folder", what));
  }
  for (const char* name : {"model.pt", "config.json", "labels.json"}) {
    if (!fs::exists(options.model_dir / name, error)) {
      throw util::InputError(fmt::format("{}: not a model folder ({} is missing)", what, name));
    }
  }
  nlohmann::json description;
  std::vector<std::string> classes;
  std::string model_name;
  int image_size = 0;
  try {
    description = nlohmann::json::parse(util::read_file(options.model_dir / "config.json"));
    model_name = description.at("model").at("name").get<std::string>();
    image_size = description.at("model").at("image_size").get<int>();
    classes = nlohmann::json::parse(util::read_file(options.model_dir / "labels.json"))
                  .at("classes")
                  .get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& failure) {
    throw util::InputError(
        fmt::format("{}: unreadable config.json or labels.json: {}", what, failure.what()));
  }
  parse_choice(what + ": model", model_name, model_names(), "model");
  ImageFolder folder = scan_image_folder(options.data, "--data");
  if (folder.classes != classes) {
    throw util::InputError(fmt::format(
        "--data {} has other classes than the model in {}: the model has {} ({}), the folder "
        "has {} ({})",
        options.data.string(), what, classes.size(), util::join(classes, ", "),
        folder.classes.size(), util::join(folder.classes, ", ")));
  }
  const int threads = resolve_threads(options.threads, /*processes_on_node=*/1);
  configure_threads(threads);
  const int loader_threads =
      options.loader_threads > 0
          ? options.loader_threads
          : default_loader_threads(available_cores(), /*processes_on_node=*/1);
  DeviceChoice device = choose_device(options.device, /*local_rank=*/0);
  auto model = make_model(model_name, static_cast<int>(classes.size()));
  try {
    torch::serialize::InputArchive archive;
    archive.load_from((options.model_dir / "model.pt").string(), torch::Device(torch::kCPU));
    model->load(archive);
  } catch (const c10::Error& failure) {
    std::string message = failure.what();
    throw util::InputError(
        fmt::format("{}: cannot read model.pt: {}", what, message.substr(0, message.find('\n'))));
  }
  model->to(device.device);
  model->eval();
  ImageDataset dataset(std::move(folder), /*strict=*/false);
  dataset.cache_if_small(static_cast<std::uint64_t>(options.cache_size_mb * 1e6),
                         threads + loader_threads);
  dataset.require_readable_image("");
  std::vector<std::size_t> all = eval_shard(dataset.size(), /*rank=*/0, /*world_size=*/1);
  LoaderOptions loader_options;
  loader_options.kind = TransformKind::eval;
  loader_options.image_size = image_size;
  loader_options.threads = loader_threads;
  loader_options.prefetch_batches = 2 * loader_threads + 2;
  BatchLoader loader(dataset,
                     split_batches(all, static_cast<std::size_t>(options.batch_size),
                                   /*drop_single_tail=*/false),
                     loader_options);
  ConfusionMatrix confusion(classes);
  torch::InferenceMode inference;
  while (auto batch = loader.next()) {
    if (batch->count == 0) {
      continue;
    }
    auto [images, labels] = batch_tensors(batch, device);
    torch::Tensor predicted = model->forward(images).argmax(1).to(torch::kCPU);
    auto* p = predicted.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < batch->count; ++i) {
      confusion.add(static_cast<std::size_t>(batch->labels[i]), static_cast<std::size_t>(p[i]));
    }
  }
  const std::int64_t total = confusion.total();
  const std::int64_t right = confusion.correct();
  print_line(fmt::format("accuracy {} ({}/{})",
                         percent(total > 0 ? static_cast<double>(right) / total : 0), right,
                         total));
  if (dataset.corrupt_count() > 0) {
    print_line(fmt::format("skipped {} corrupt images", dataset.corrupt_count()));
  }
  for (const std::string& line : confusion.lines()) {
    print_line(line);
  }
  return 0;
}

int run_loader_benchmark(const LoaderBenchmarkOptions& options) {
  ImageDataset dataset(scan_image_folder(options.data, "--data"), /*strict=*/false);
  auto cache_start = Clock::now();
  bool cached = options.cache && dataset.cache_if_small(std::numeric_limits<std::uint64_t>::max(),
                                                        std::max(1, options.loader_threads));
  double cache_seconds = seconds_since(cache_start);
  std::size_t images = 0;
  auto start = Clock::now();
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    LoaderOptions loader_options;
    loader_options.kind = options.eval_transform ? TransformKind::eval : TransformKind::train;
    loader_options.image_size = options.image_size;
    loader_options.epoch = epoch;
    loader_options.threads = options.loader_threads;
    loader_options.prefetch_batches = 2 * options.loader_threads + 2;
    BatchLoader loader(dataset,
                       split_batches(train_shard(dataset.size(), /*seed=*/1, epoch, /*rank=*/0,
                                                 /*world_size=*/1),
                                     static_cast<std::size_t>(options.batch_size),
                                     /*drop_single_tail=*/false),
                       loader_options);
    while (auto batch = loader.next()) {
      images += batch->count;
    }
  }
  double seconds = seconds_since(start);
  print_line(fmt::format("{} images in {:.2f} s with {} loader thread{}{}", images, seconds,
                         options.loader_threads, options.loader_threads == 1 ? "" : "s",
                         cached
                             ? fmt::format(" (decoded once into memory in {:.2f} s)", cache_seconds)
                             : " (decoded every epoch)"));
  print_line(fmt::format("images_per_sec {:.1f}", seconds > 0 ? images / seconds : 0.0));
  return 0;
}

}  // namespace amlrun::train
