#include "lib/artifacts/download.hpp"

#include <fmt/format.h>

#include "lib/artifacts/artifact_path.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::artifacts {

CopyPlan plan_download(const store::RunStore& store, const DownloadRequest& request) {
  check_destination_outside(request.destination, store.workspace().root());
  util::check_directory_path(request.destination, "the destination");
  auto record = store.load(request.run_id);
  fs::path run_dir = store.run_dir(request.run_id);
  fs::path sealed = run_dir / "artifacts";
  bool ended = store::is_terminal(record.state);
  if (!ended && !request.partial) {
    throw util::InputError(fmt::format(
        "run {} is {}: its outputs and logs are sealed when it ends; wait for it (amlrun stream "
        "{}), or add --partial to download what is there now",
        request.run_id, store::to_string(record.state), request.run_id));
  }
  // Until it is sealed, a run's files live in its working directory.
  fs::path root = ended || fs::exists(sealed / "outputs") ? sealed : run_dir / "wd";
  std::string root_name = fmt::format("run {}", request.run_id);
  CopyPlan plan;
  if (!request.prefix.empty()) {
    if (request.all) throw util::InputError("--prefix and --all: give one of them");
    auto path = resolve_artifact_path(root, request.prefix, "--prefix", request.run_id);
    plan_tree(plan, root, path.source, "artifacts/" + path.relative, root_name);
    return plan;
  }
  std::vector<std::string> parts = {"outputs"};
  if (request.all) parts.push_back("logs");
  for (const auto& part : parts) {
    std::error_code error;
    if (fs::is_directory(fs::symlink_status(root / part, error))) {
      plan_tree(plan, root, root / part, "artifacts/" + part, root_name);
    }
  }
  return plan;
}

}  // namespace amlrun::artifacts
