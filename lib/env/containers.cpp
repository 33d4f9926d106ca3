#include "lib/env/containers.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/process.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::env {

namespace {

constexpr auto k_timeout = std::chrono::seconds(30);

util::CaptureResult run(const std::vector<std::string>& argv) {
  util::SpawnOptions options;
  options.argv = argv;
  return util::run_capture(options, "", k_timeout);
}

}  // namespace

std::string container_name(const std::string& run_id, int rank) {
  return rank < 0 ? "amlrun-" + run_id : fmt::format("amlrun-{}-rank{}", run_id, rank);
}

std::vector<RunContainer> list_run_containers(const std::string& runtime,
                                              const std::string& workspace_root,
                                              const std::string& run_id) {
  std::vector<std::string> argv = {
      runtime,      "ps",       "--all",
      "--no-trunc", "--filter", fmt::format("label={}={}", k_workspace_label, workspace_root)};
  if (!run_id.empty()) {
    argv.insert(argv.end(), {"--filter", fmt::format("label={}={}", k_run_label, run_id)});
  }
  argv.insert(
      argv.end(),
      {"--format", fmt::format("{{{{.ID}}}}\t{{{{.Names}}}}\t{{{{.Label \"{}\"}}}}\t{{{{.State}}}}",
                               k_run_label)});
  auto result = run(argv);
  if (result.exit_code != 0 || result.timed_out) {
    throw util::InfraError(fmt::format(
        "'{}' failed: {}", util::join(argv, " "),
        result.timed_out ? "no answer within 30 s" : std::string(util::trim(result.err))));
  }
  std::vector<RunContainer> containers;
  for (const auto& line : util::split(result.out, '\n')) {
    auto fields = util::split(line, '\t');
    if (fields.size() != 4) continue;
    containers.push_back({fields[0], fields[1], fields[2], fields[3] == "running"});
  }
  return containers;
}

void remove_containers(const std::string& runtime, const std::vector<RunContainer>& containers) {
  if (containers.empty()) return;
  std::vector<std::string> ids;
  ids.reserve(containers.size());
  for (const auto& container : containers) ids.push_back(container.id);
  // kill first: `rm --force` alone would do, but kill says what happened in
  // the container's state (137) for anyone inspecting it in between. Both
  // may report containers that already went (--rm): that is the goal.
  std::vector<std::string> kill = {runtime, "kill"};
  kill.insert(kill.end(), ids.begin(), ids.end());
  run(kill);
  std::vector<std::string> remove = {runtime, "rm", "--force"};
  remove.insert(remove.end(), ids.begin(), ids.end());
  run(remove);
}

std::size_t end_run_containers(const std::string& runtime, const std::string& workspace_root,
                               const std::string& run_id) {
  auto containers = list_run_containers(runtime, workspace_root, run_id);
  remove_containers(runtime, containers);
  // A container that `--rm` was removing already makes `rm --force` return
  // before it is gone ("removal already in progress"): wait for it, so that
  // when the run's end is recorded no container of it is left.
  for (int attempt = 0; attempt < 100 && !containers.empty(); ++attempt) {
    auto left = list_run_containers(runtime, workspace_root, run_id);
    if (left.empty()) break;
    remove_containers(runtime, left);
    ::usleep(100000);
  }
  return containers.size();
}

}  // namespace amlrun::env
