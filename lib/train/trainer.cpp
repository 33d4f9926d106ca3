#include "lib/train/trainer.hpp"

#include <fmt/format.h>

#include "lib/train/checkpoint.hpp"
#include "lib/train/comm.hpp"
#include "lib/train/dataset.hpp"
#include "lib/train/device.hpp"
#include "lib/train/messages.hpp"
#include "lib/train/outputs.hpp"
#include "lib/train/state_dict.hpp"
#include "lib/train/training.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

namespace {

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
    return run_trainer(std::move(run), comm);
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

}  // namespace amlrun::train
