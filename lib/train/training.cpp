#include "lib/train/training.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>

#include "lib/train/device.hpp"
#include "lib/train/gradients.hpp"
#include "lib/train/loader.hpp"
#include "lib/train/messages.hpp"
#include "lib/train/metrics.hpp"
#include "lib/train/models.hpp"
#include "lib/train/onnx_export.hpp"
#include "lib/train/outputs.hpp"
#include "lib/train/progress.hpp"
#include "lib/train/sampler.hpp"
#include "lib/train/schedule.hpp"
#include "lib/train/training_state.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

namespace {

// One epoch's running sums on this rank. The loss and the correct count stay
// on the device: reading them back each step would wait for the step.
struct EpochAccumulator {
  at::Tensor loss_sum;  // double
  at::Tensor correct;   // long
  double samples = 0;
  EpochSums carried;  // rank 0: the sums of a checkpoint written within this epoch
  double session_samples = 0;
  double wait_seconds = 0;

  // This rank's sums so far, the carried ones included.
  EpochSums sums() const {
    return {loss_sum.item<double>() + carried.loss,
            static_cast<double>(correct.item<std::int64_t>()) + carried.correct,
            samples + carried.samples};
  }
};

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
  double samples = 0;
};

// What caching the datasets did, for the start-up report.
struct DataReport {
  bool train_cached = false;
  bool validation_cached = false;
  double cache_seconds = 0;
};

class Trainer {
 public:
  Trainer(PreparedRun run, Communicator& comm) : m_run(std::move(run)), m_comm(comm) {}

  int train();

 private:
  const TrainConfig& config() const { return m_run.config; }
  bool is_root() const { return m_comm.rank() == 0; }

  void configure_compute();
  void build_model();
  void load_resume_state(const Checkpoint& checkpoint);
  DataReport load_data();
  void report_start(const DataReport& data);
  bool stopped_early() const;
  EpochTotals train_epoch(int epoch, double& train_seconds);
  StepFigures step_figures(int epoch, std::size_t steps_this_session, std::size_t step,
                           std::size_t steps_per_epoch, const EpochAccumulator& sums,
                           Clock::time_point train_start) const;
  void train_step(const std::shared_ptr<Batch>& batch, int epoch, std::size_t step,
                  std::size_t steps_per_epoch, EpochAccumulator& sums);
  bool gradients_finite() const;
  void checkpoint_within_epoch(int epoch, const EpochAccumulator& sums);
  void end_epoch(int epoch, const EpochTotals& totals, double train_seconds,
                 Clock::time_point epoch_start);
  void set_train_mode();
  Evaluation validate();
  Checkpoint snapshot(int epochs_done, std::int64_t step_in_epoch, const EpochSums& sums);
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
  std::optional<MetricsWriter> m_metrics;  // rank 0
  OutputPaths m_paths;
  int m_loader_threads = 1;
  int m_threads = 1;
  bool m_live_progress = false;

  RunPosition m_position;
  BestEpoch m_best;
  EpochSums m_resumed;  // rank 0: the sums of the epoch a checkpoint was written within
  LossScale m_loss_scale;
};

// The run as a table of contents: each step below is one member function.
int Trainer::train() {
  const TrainConfig& c = config();
  set_message_rank(m_comm.rank(), m_comm.world_size());
  m_paths = output_paths(c.output_dir);
  // Threads, device and precision of this process.
  configure_compute();
  // The model from the seed or the initial weights, the same on every rank.
  build_model();
  // Datasets decoded into memory when small, each with a readable image.
  DataReport data = load_data();
  if (is_root()) {
    m_metrics.emplace(default_metrics_path());
    report_start(data);
  }
  bool stop = stopped_early();
  for (int epoch = m_position.epochs_done; epoch < c.epochs && !stop; ++epoch) {
    const auto epoch_start = Clock::now();
    double train_seconds = 0;
    // The epoch's train steps, then its metrics reduced over the ranks.
    EpochTotals totals = train_epoch(epoch, train_seconds);
    // Validation, metrics, checkpoints, and whether to stop early.
    end_epoch(epoch, totals, train_seconds, epoch_start);
    stop = stopped_early();
  }
  if (is_root()) {
    export_model();
    print_line(fmt::format("model written to {}{}", display_path(m_paths.model),
                           m_best.epoch > 0
                               ? fmt::format(" (epoch {}: val loss {:.4f}, acc {})", m_best.epoch,
                                             m_best.val_loss, percent(m_best.val_acc))
                               : ""));
  }
  return 0;
}

void Trainer::configure_compute() {
  const TrainConfig& c = config();
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
    m_loss_scale = LossScale(LossScale::k_initial);
  }
  // Open MPI gives every rank a pseudo-terminal as stdout, so isatty says
  // nothing under mpirun: the live line is only for a plain terminal run.
  m_live_progress = is_root() && !m_comm.uses_mpi() && ::isatty(1) == 1;
}

// The model, initialised from the seed on every rank; rank 0's copy is
// broadcast at the end, so all ranks start from the same weights regardless.
void Trainer::build_model() {
  const TrainConfig& c = config();
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
    if (!report.replaced.empty() && is_root()) {
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
  std::vector<torch::Tensor> everything;
  for (auto& [name, tensor] : model_state_dict(*m_model)) {
    everything.push_back(tensor);
  }
  everything.insert(everything.end(), m_momentum.begin(), m_momentum.end());
  broadcast_tensors(m_comm, everything, "initial weights broadcast");
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
  m_position.epochs_done = checkpoint.epochs_done;
  m_position.global_step = checkpoint.global_step;
  m_best.val_loss = checkpoint.best_val_loss;
  m_best.val_acc = checkpoint.best_val_acc;
  m_best.epoch = checkpoint.best_epoch;
  m_best.epochs_without_improvement = checkpoint.epochs_without_improvement;
  m_loss_scale = LossScale(checkpoint.loss_scale);
  if (checkpoint.world_size == m_comm.world_size()) {
    m_position.step_in_epoch = checkpoint.step_in_epoch;
    // The partial sums were reduced over all ranks when saved; rank 0 carries
    // them so the epoch's reduced totals come out the same.
    if (is_root()) {
      m_resumed = {checkpoint.epoch_loss_sum, checkpoint.epoch_correct, checkpoint.epoch_samples};
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

DataReport Trainer::load_data() {
  const TrainConfig& c = config();
  auto cache_bytes = static_cast<std::uint64_t>(c.cache_size_mb * 1e6);
  m_train = std::make_unique<ImageDataset>(std::move(m_run.train_folder), c.strict);
  m_validation = std::make_unique<ImageDataset>(std::move(m_run.validation_folder), c.strict);
  DataReport report;
  auto cache_start = Clock::now();
  report.train_cached = m_train->cache_if_small(cache_bytes, m_threads + m_loader_threads);
  report.validation_cached = m_validation->cache_if_small(
      report.train_cached ? cache_bytes - std::min(cache_bytes, m_train->cache_bytes())
                          : cache_bytes,
      m_threads + m_loader_threads);
  report.cache_seconds = seconds_since(cache_start);
  m_train->require_readable_image("training");
  m_validation->require_readable_image("validation");
  if (m_comm.world_size() > 1) {
    m_reducer = std::make_unique<GradientReducer>(
        m_parameters, m_comm, static_cast<std::size_t>(c.bucket_size_mb * 1e6), m_device.cuda);
  }
  return report;
}

void Trainer::report_start(const DataReport& data) {
  const TrainConfig& c = config();
  const int world = m_comm.world_size();
  print_line(fmt::format(
      "{} on {}: {} process{} × {} thread{} (+{} loader), {} classes, {} training images{}, "
      "{} validation images{}, global batch {}",
      c.model, m_device.device.str(), world, world == 1 ? "" : "es", m_threads,
      m_threads == 1 ? "" : "s", m_loader_threads, m_train->classes().size(), m_train->size(),
      data.train_cached ? fmt::format(" (cached, {})", util::format_bytes(m_train->cache_bytes()))
                        : "",
      m_validation->size(), data.validation_cached ? " (cached)" : "", c.batch_size * world));
  std::size_t corrupt = m_train->corrupt_count() + m_validation->corrupt_count();
  if (corrupt > 0) {
    print_line(fmt::format("skipped {} corrupt image{} ({} training, {} validation)", corrupt,
                           corrupt == 1 ? "" : "s", m_train->corrupt_count(),
                           m_validation->corrupt_count()));
  }
  if (m_train->folder().ignored_files + m_validation->folder().ignored_files > 0) {
    print_line(fmt::format("ignored {} files that are not .jpg, .jpeg or .png",
                           m_train->folder().ignored_files + m_validation->folder().ignored_files));
  }
  if (data.train_cached) {
    print_line(fmt::format("decoded the images in {:.1f} s", data.cache_seconds));
  }
  if (m_train->classes().size() == 1) {
    worker_warning(fmt::format(
        "--train-data {} has a single class ({}): the model learns to predict it for every image",
        c.train_data, util::printable(m_train->classes().front())));
  }
  if (m_run.resume) {
    print_line(fmt::format("continuing after epoch {}{}", m_position.epochs_done,
                           m_position.step_in_epoch > 0
                               ? fmt::format(", step {} of epoch {}", m_position.step_in_epoch,
                                             m_position.epochs_done + 1)
                               : ""));
  }
  if (stopped_early()) {
    print_line(
        fmt::format("the run had already stopped early after epoch {}", m_position.epochs_done));
  }
}

bool Trainer::stopped_early() const {
  return m_best.stop_early(config().patience);
}

// This rank's shard of the epoch, from the step a continued run left off at;
// returns the epoch's totals reduced over the ranks.
EpochTotals Trainer::train_epoch(int epoch, double& train_seconds) {
  const TrainConfig& c = config();
  const int world = m_comm.world_size();
  const bool batch_norm_trains = !(c.freeze_batch_norm || c.freeze_backbone);
  auto batches = split_batches(train_shard(m_train->size(), c.seed, epoch, m_comm.rank(), world),
                               static_cast<std::size_t>(c.batch_size), batch_norm_trains);
  const std::size_t steps_per_epoch = batches.size();
  const auto first_step =
      std::min(static_cast<std::size_t>(m_position.step_in_epoch), steps_per_epoch);
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

  auto counter_options = torch::TensorOptions().device(m_device.device);
  EpochAccumulator sums;
  sums.loss_sum = torch::zeros({}, counter_options.dtype(torch::kDouble));
  sums.correct = torch::zeros({}, counter_options.dtype(torch::kLong));
  sums.carried = m_resumed;
  m_resumed = {};
  LiveProgress live(m_live_progress);
  ProgressLines lines(c.progress, is_root() && !m_live_progress, first_step, steps_per_epoch);
  const auto train_start = Clock::now();
  std::size_t step = first_step;
  while (auto batch = loader.next()) {
    train_step(batch, epoch, step, steps_per_epoch, sums);
    sums.samples += static_cast<double>(batch->count);
    sums.session_samples += static_cast<double>(batch->count);
    step += 1;
    m_position.global_step += 1;
    m_position.step_in_epoch = static_cast<std::int64_t>(step);
    live.update(epoch + 1, c.epochs, step, steps_per_epoch, [&] {
      EpochSums so_far = sums.sums();
      return fmt::format("loss {:.4f}  {:.0f} img/s", so_far.loss / so_far.samples,
                         sums.session_samples * world / seconds_since(train_start));
    });
    if (lines.due(step)) {
      print_line(progress_line(
          step_figures(epoch, step - first_step, step, steps_per_epoch, sums, train_start)));
    }
    if (c.checkpoint_every > 0 && m_position.global_step % c.checkpoint_every == 0 &&
        step < steps_per_epoch) {
      checkpoint_within_epoch(epoch, sums);
    }
  }
  live.clear();
  train_seconds = seconds_since(train_start);
  return reduce_over_ranks(m_comm, {sums.sums(), sums.session_samples, sums.wait_seconds});
}

StepFigures Trainer::step_figures(int epoch, std::size_t steps_this_session, std::size_t step,
                                  std::size_t steps_per_epoch, const EpochAccumulator& sums,
                                  Clock::time_point train_start) const {
  const EpochSums so_far = sums.sums();
  const double elapsed = seconds_since(train_start);
  StepFigures figures;
  figures.epoch = epoch + 1;
  figures.epochs = config().epochs;
  figures.step = step;
  figures.steps = steps_per_epoch;
  // A batch of only corrupt images adds no samples.
  figures.loss = so_far.samples > 0 ? so_far.loss / so_far.samples : 0;
  figures.accuracy = so_far.samples > 0 ? so_far.correct / so_far.samples : 0;
  figures.images_per_second =
      elapsed > 0 ? sums.session_samples * m_comm.world_size() / elapsed : 0;
  figures.eta_seconds = steps_this_session > 0 ? elapsed / static_cast<double>(steps_this_session) *
                                                     static_cast<double>(steps_per_epoch - step)
                                               : 0;
  return figures;
}

// Forward, backward, the gradients averaged over the ranks, and the SGD
// update at the step's learning rate (unless fp16 found inf or NaN).
void Trainer::train_step(const std::shared_ptr<Batch>& batch, int epoch, std::size_t step,
                         std::size_t steps_per_epoch, EpochAccumulator& sums) {
  const TrainConfig& c = config();
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
      (loss * m_loss_scale.value()).backward();
    } else {
      loss.backward();
    }
    torch::NoGradGuard no_grad;
    sums.loss_sum += loss.detach().to(torch::kDouble) * static_cast<double>(batch->count);
    sums.correct += logits.detach().argmax(1).eq(labels).sum();
  }
  if (m_reducer) {
    sums.wait_seconds += m_reducer->finish();
  }
  // The scale of the gradients this step was computed with (before the
  // loss scale is updated).
  const double grad_scale = 1.0 / m_comm.world_size() / m_loss_scale.value();
  if (m_autocast_dtype == at::kHalf && !m_loss_scale.update(gradients_finite())) {
    return;
  }
  const double learning_rate = learning_rate_at_step(c, epoch, step, steps_per_epoch);
  for (std::size_t i = 0; i < m_parameters.size(); ++i) {
    const torch::Tensor& g = m_reducer ? m_reducer->gradient(i) : m_parameters[i].grad();
    if (g.defined()) {
      sgd_update(m_parameters[i], g, m_momentum[i], learning_rate, c.momentum, c.weight_decay,
                 grad_scale);
    }
  }
}

// After the allreduce every rank sees the same sums, so every rank takes the
// same decision.
bool Trainer::gradients_finite() const {
  std::vector<torch::Tensor> checks;
  for (std::size_t i = 0; i < m_parameters.size(); ++i) {
    const torch::Tensor& g = m_reducer ? m_reducer->gradient(i) : m_parameters[i].grad();
    if (g.defined()) {
      checks.push_back(torch::isfinite(g).all());
    }
  }
  // One device-to-host transfer for all parameters.
  return checks.empty() || torch::stack(checks).all().item<bool>();
}

// --checkpoint-every within the epoch: the partial sums of all ranks go into
// the checkpoint, so a continued run reports the same epoch metrics.
void Trainer::checkpoint_within_epoch(int epoch, const EpochAccumulator& sums) {
  EpochSums partial = reduce_over_ranks(m_comm, sums.sums(), "checkpoint metrics reduction");
  if (is_root()) {
    save_checkpoint(m_paths.last(), snapshot(epoch, m_position.step_in_epoch, partial));
  }
}

void Trainer::end_epoch(int epoch, const EpochTotals& totals, double train_seconds,
                        Clock::time_point epoch_start) {
  const TrainConfig& c = config();
  const int world = m_comm.world_size();
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
  const EpochSums& sums = totals.sums;
  const double train_loss = sums.samples > 0 ? sums.loss / sums.samples : 0;
  const double train_acc = sums.samples > 0 ? sums.correct / sums.samples : 0;
  const double images_per_sec = train_seconds > 0 ? totals.session_samples / train_seconds : 0;
  const bool improved = m_best.record(epoch + 1, validation.loss, validation.accuracy);
  m_position.epochs_done = epoch + 1;
  m_position.step_in_epoch = 0;
  if (!is_root()) {
    return;
  }
  const auto step_number = static_cast<std::int64_t>(epoch + 1);
  m_metrics->write("train_loss", train_loss, step_number);
  m_metrics->write("train_acc", train_acc, step_number);
  m_metrics->write("val_loss", validation.loss, step_number);
  m_metrics->write("val_acc", validation.accuracy, step_number);
  m_metrics->write("images_per_sec", images_per_sec, step_number);
  m_metrics->write("epoch_seconds", epoch_seconds, step_number);
  std::string communication;
  if (world > 1) {
    // Mean over ranks of the time the training loop waited for allreduces
    // after backward, as a share of the training time.
    double share = train_seconds > 0 ? totals.wait_seconds / world / train_seconds : 0;
    m_metrics->write("comm_wait_share", share, step_number);
    communication = fmt::format(" | comm wait {}", percent(share));
  }
  print_line(fmt::format(
      "epoch {}/{}: train loss {:.4f}, acc {} | val loss {:.4f}, acc {} | {:.0f} img/s{} | "
      "{:.1f} s{}",
      epoch + 1, c.epochs, train_loss, percent(train_acc), validation.loss,
      percent(validation.accuracy), images_per_sec, communication, epoch_seconds,
      improved ? " | best" : ""));
  Checkpoint checkpoint = snapshot(m_position.epochs_done, 0, EpochSums{});
  save_checkpoint(m_paths.last(), checkpoint);
  if (improved) {
    save_checkpoint(m_paths.best(), checkpoint);
  }
  if (stopped_early()) {
    print_line(fmt::format(
        "stopping early: the validation loss has not improved for {} epoch{} (best {:.4f} "
        "after epoch {})",
        m_best.epochs_without_improvement, m_best.epochs_without_improvement == 1 ? "" : "s",
        m_best.val_loss, m_best.epoch));
  }
}

void Trainer::set_train_mode() {
  m_model->train();
  for (auto* norm : m_frozen_norms) {
    norm->eval();
  }
}

// This rank's shard of the validation set; loss and accuracy over all ranks.
Evaluation Trainer::validate() {
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
  EpochSums totals = reduce_over_ranks(
      m_comm, {loss_sum.item<double>(), static_cast<double>(correct.item<std::int64_t>()), samples},
      "validation metrics reduction");
  Evaluation result;
  result.samples = totals.samples;
  result.loss =
      totals.samples > 0 ? totals.loss / totals.samples : std::numeric_limits<double>::quiet_NaN();
  result.accuracy = totals.samples > 0 ? totals.correct / totals.samples : 0;
  return result;
}

Checkpoint Trainer::snapshot(int epochs_done, std::int64_t step_in_epoch, const EpochSums& sums) {
  Checkpoint checkpoint;
  checkpoint.config = config_to_json(config());
  checkpoint.classes = m_train->classes();
  checkpoint.world_size = m_comm.world_size();
  checkpoint.epochs_done = epochs_done;
  checkpoint.step_in_epoch = step_in_epoch;
  checkpoint.global_step = m_position.global_step;
  checkpoint.best_val_loss = m_best.val_loss;
  checkpoint.best_val_acc = m_best.val_acc;
  checkpoint.best_epoch = m_best.epoch;
  checkpoint.epochs_without_improvement = m_best.epochs_without_improvement;
  checkpoint.epoch_loss_sum = sums.loss;
  checkpoint.epoch_correct = sums.correct;
  checkpoint.epoch_samples = sums.samples;
  checkpoint.loss_scale = m_loss_scale.value();
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

// The model with the lowest validation loss, with the configuration and what
// it resolved to.
void Trainer::export_model() {
  const TrainConfig& c = config();
  if (m_best.epoch > 0 && fs::exists(m_paths.best())) {
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
        {"labels", m_train->classes()},
        {"image_size", c.image_size},
        {"normalization", {{"mean", {0.485, 0.456, 0.406}}, {"std", {0.229, 0.224, 0.225}}}},
        {"onnx", c.onnx ? nlohmann::json{{"file", "model.onnx"}, {"opset", k_onnx_default_opset}}
                        : nlohmann::json(nullptr)}}},
      {"training",
       {{"epochs_done", m_position.epochs_done},
        {"global_step", m_position.global_step},
        {"best_epoch", m_best.epoch},
        {"best_val_loss", std::isfinite(m_best.val_loss) ? nlohmann::json(m_best.val_loss)
                                                         : nlohmann::json(nullptr)},
        {"best_val_acc", m_best.val_acc}}},
      {"versions", library_versions(m_comm)},
  };
  write_model_folder(m_paths.model, *m_model, m_train->classes(), description);
  // The same weights in ONNX for inference elsewhere. A leftover model.onnx
  // of an earlier export would not match these weights, so --no-onnx
  // removes it.
  const fs::path onnx_file = m_paths.model / "model.onnx";
  if (c.onnx) {
    OnnxModelInfo info;
    info.architecture = c.model;
    info.classes = m_train->classes();
    info.image_size = c.image_size;
    m_model->eval();
    write_onnx(onnx_file, *m_model, info, k_onnx_default_opset);
  } else {
    std::error_code ignored;
    fs::remove(onnx_file, ignored);
  }
}

}  // namespace

int run_trainer(PreparedRun run, Communicator& comm) {
  Trainer trainer(std::move(run), comm);
  return trainer.train();
}

}  // namespace amlrun::train
