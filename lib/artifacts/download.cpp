#include "lib/artifacts/download.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::artifacts {

namespace {

// Names in the directory holding `missing`, for a "did you mean".
std::vector<std::string> siblings_of(const fs::path& root, const std::string& missing) {
  std::vector<std::string> names;
  fs::path relative(missing);
  fs::path parent = root / relative.parent_path();
  std::error_code error;
  for (fs::directory_iterator it(parent, error), end; !error && it != end; it.increment(error)) {
    names.push_back((relative.parent_path() / it->path().filename()).string());
  }
  return names;
}

}  // namespace

CopyPlan plan_download(const store::RunStore& store, const DownloadRequest& request) {
  check_destination_outside(request.destination, store.workspace().root());
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
    fs::path source = util::safe_join(root, request.prefix, "--prefix");
    fs::path relative = fs::relative(source, root);
    std::string first = relative.empty() ? "" : relative.begin()->string();
    if (first != "outputs" && first != "logs") {
      throw util::InputError(fmt::format(
          "--prefix {}: start with outputs/ or logs/ (a run's artifacts are its outputs and logs)",
          request.prefix));
    }
    std::error_code error;
    if (!fs::exists(fs::symlink_status(source, error))) {
      throw util::InputError(fmt::format(
          "--prefix {}: run {} has no such file or folder{}", request.prefix, request.run_id,
          util::did_you_mean_suffix(relative.string(), siblings_of(root, relative.string()))));
    }
    plan_tree(plan, root, source, "artifacts/" + relative.string(), root_name);
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
