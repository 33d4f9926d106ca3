#pragma once
// The model registry: named, versioned sets of files registered from a run's
// outputs or a local folder (DESIGN.md vocabulary).
//
// Layout: .amlrun/models/<name>/<version>/manifest.json and files/...; the
// index (models table) lists every version with the sha256 of its manifest,
// and the manifest lists every file with its size and sha256, so a download
// can prove each byte is what was registered.
//
// Registration copies (and hashes) into models/.staging/ first, then, in one
// index transaction, picks the version, renames the staged folder into place
// and records it: concurrent registrations of one name get distinct,
// consecutive versions, and a registration killed half-way leaves no version
// behind (only a staging folder that `amlrun doctor --repair` removes).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/artifacts/tree_copy.hpp"
#include "lib/registry/model_ref.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/tags.hpp"

namespace amlrun::registry {

namespace fs = std::filesystem;

struct ModelFile {
  std::string path;  // relative to the model's root
  std::uint64_t size = 0;
  std::string sha256;
};

struct ModelVersion {
  std::string name;
  std::string version;
  std::string created_at;
  std::string description;
  std::vector<util::Tag> tags;
  std::string source_run;   // the run it came from, or ""
  std::string source_path;  // outputs/model (of the run), or the folder registered
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
  std::string manifest_sha256;
};

struct RegisterRequest {
  std::string name;
  std::optional<std::string> version;  // else the next number
  std::vector<util::Tag> tags;
  std::string description;
  // One source: a run's artifact path, or a local folder (or file).
  std::string run_id;  // resolved
  std::string run_path;
  fs::path from;
};

// The summary of a model name for `model list`.
struct ModelName {
  std::string name;
  std::string latest_version;
  std::int64_t versions = 0;
  std::string updated_at;
};

class ModelRegistry {
 public:
  // Creates or migrates the registry's tables in the store's index.
  explicit ModelRegistry(const store::RunStore& store);

  fs::path models_dir() const;
  fs::path version_dir(const std::string& name, const std::string& version) const;

  // Skipped source entries (links out of the source, FIFOs) are reported
  // through `on_skipped` before anything is copied.
  ModelVersion register_model(const RegisterRequest& request,
                              const std::function<void(const artifacts::Skipped&)>& on_skipped);

  std::vector<ModelName> names() const;
  // Every version of `name`, newest registration first.
  std::vector<ModelVersion> versions(const std::string& name) const;
  // InputError naming what exists when nothing matches.
  ModelVersion find(const ModelRef& ref) const;
  // The files of a version, from its manifest after checking the manifest
  // against the index (InfraError if it was changed).
  std::vector<ModelFile> manifest(const ModelVersion& version) const;
  // Checks every registered file without reading it: present, a regular
  // file (a link put in its place is named as one, never followed), of the
  // registered size. Throws InfraError naming the first that is not.
  void check_files(const ModelVersion& version) const;
  // check_files, then every file's sha256 against the manifest, so a run
  // uses the registered bytes (score_image_model's model:). InfraError
  // naming the first file that differs.
  void verify_files(const ModelVersion& version) const;
  // Where a version's files are: the model folder a job reads in place.
  fs::path files_dir(const std::string& name, const std::string& version) const;

  // Copies the files into `destination`, checking every size and sha256
  // against the manifest; a mismatch is an InfraError naming the file.
  std::vector<artifacts::CopiedFile> download(
      const ModelVersion& version, const fs::path& destination,
      const std::function<void(const artifacts::CopyProgress&)>& progress) const;

  void remove(const std::string& name, const std::string& version);

  // Rebuilds index rows from manifests (doctor --repair), in the order the
  // versions were registered; a version whose manifest cannot be read is
  // passed to `on_error` (name, version, message) and skipped.
  void reindex_from_manifests(const std::vector<std::pair<std::string, std::string>>& versions,
                              const std::function<void(const std::string&, const std::string&,
                                                       const std::string&)>& on_error);
  // Drops a version's index row (doctor --repair: its folder is gone).
  void unindex(const std::string& name, const std::string& version);

 private:
  const store::RunStore& m_store;
};

// The version after the highest numeric one ("1" for none).
std::string next_version(const std::vector<std::string>& existing);

}  // namespace amlrun::registry
