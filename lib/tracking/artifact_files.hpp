#pragma once
// The files behind the mlflow-artifacts endpoints: an artifact is a file
// below a run's outputs folder, reached from the run directory one component
// at a time without following a link (the job can plant links in its working
// directory), and written whole or not at all.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

#include "lib/util/fs.hpp"

namespace amlrun::tracking {

// Where one artifact path lands: `relative` below `outputs_relative` below
// `run_dir` (relative already checked by check_artifact_path).
struct ArtifactLocation {
  std::filesystem::path run_dir;
  std::string outputs_relative;
  std::string relative;
};

// Receives a request body in pieces: `sink` takes each piece and returns
// false to stop; the reader returns false when the body did not arrive whole.
using BodySink = std::function<bool(const char*, std::size_t)>;
using BodyReader = std::function<bool(const BodySink&)>;

// Stores the body as the artifact (a util::AtomicFile: temp file, fsync,
// rename), replacing a file of that name. TrackingError: 400 when the body
// is cut off or a folder (or link) is in the way, 507 when it cannot be
// written.
void write_artifact(const ArtifactLocation& where, const BodyReader& read_body);
// The artifact open for reading; 404 when there is no such regular file.
util::UniqueFd open_artifact_file(const ArtifactLocation& where);
// MLflow's list-artifacts answer for the folder `relative` ("" = the
// outputs folder): {"files": [{path, is_dir, file_size}]}, sorted; temp
// files of uploads in progress are not listed; {} when there is none.
nlohmann::json list_artifact_folder(const ArtifactLocation& where);

}  // namespace amlrun::tracking
