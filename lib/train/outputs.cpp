#include "lib/train/outputs.hpp"

#include <torch/cuda.h>
#include <torch/serialize/output-archive.h>
#include <torch/version.h>
#include <unistd.h>

#include <fmt/format.h>
#include <sstream>

#include "lib/train/image.hpp"
#include "lib/train/models.hpp"
#include "lib/train/state_dict.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

OutputPaths output_paths(const fs::path& root) {
  return {root, root / "checkpoints", root / "model"};
}

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

}  // namespace amlrun::train
