#pragma once
// What a run writes under --output-dir: the folder layout, its safe
// creation, and the model folder (model.pt, state_dict.pt, labels.json,
// config.json).
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/train/comm.hpp"

namespace amlrun::train {

class ImageClassifierImpl;

struct OutputPaths {
  std::filesystem::path root;
  std::filesystem::path checkpoints;
  std::filesystem::path model;
  std::filesystem::path last() const { return checkpoints / "last.pt"; }
  std::filesystem::path best() const { return checkpoints / "best.pt"; }
};

OutputPaths output_paths(const std::filesystem::path& root);

// Creates the output folders. Refuses sub-folders that are symbolic links
// (writing through one would leave --output-dir), and, for a new run, a
// folder that already holds a run's checkpoint (continue it instead).
void prepare_outputs(const OutputPaths& paths, bool fresh);

// The libraries this binary uses and what it found (MPI, CUDA), for config.json.
nlohmann::json library_versions(const Communicator& comm);

// Writes the four files of a model folder, each atomically.
void write_model_folder(const std::filesystem::path& folder, ImageClassifierImpl& model,
                        const std::vector<std::string>& classes, const nlohmann::json& config);

}  // namespace amlrun::train
