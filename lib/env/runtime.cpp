#include "lib/env/runtime.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cstdlib>

#include "lib/env/engine_api.hpp"
#include "lib/util/error.hpp"
#include "lib/util/process.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::env {

RuntimeProbe probe_runtime(const std::string& name) {
  RuntimeProbe probe{name, false, ""};
  if (!util::find_executable(name)) {
    probe.detail = "not installed";
    return probe;
  }
  // The engine's own answer on its socket, when it can be asked that way.
  if (name == "docker" && docker_engine_status("/_ping") == 200) {
    probe.works = true;
    return probe;
  }
  util::SpawnOptions options;
  options.argv = name == "apptainer" ? std::vector<std::string>{name, "--version"}
                                     : std::vector<std::string>{name, "info"};
  auto result = util::run_capture(options, "", std::chrono::seconds(20));
  if (result.timed_out) {
    probe.detail = fmt::format("'{}' did not answer within 20 s", util::join(options.argv, " "));
  } else if (result.exit_code != 0) {
    std::string said(util::trim(result.err.empty() ? result.out : result.err));
    std::string first_line = said.substr(0, said.find('\n'));
    probe.detail = fmt::format(
        "'{}' failed: {}", util::join(options.argv, " "),
        first_line.empty() ? fmt::format("exit code {}", result.exit_code) : first_line);
  } else {
    probe.works = true;
  }
  return probe;
}

std::string choose_runtime(const std::string& preferred) {
  std::vector<std::string> candidates =
      preferred.empty() ? std::vector<std::string>{"docker", "podman", "apptainer"}
                        : std::vector<std::string>{preferred};
  std::vector<std::string> reasons;
  for (const auto& name : candidates) {
    auto probe = probe_runtime(name);
    if (probe.works) return name;
    reasons.push_back(fmt::format("{}: {}", name, probe.detail));
  }
  throw util::InfraError(fmt::format(
      "no container runtime can build or run images on this machine ({}); write the build "
      "context with 'amlrun env context' and build it where a runtime works",
      util::join(reasons, "; ")));
}

std::string image_tag(const std::string& hash) {
  return "amlrun-env:" + hash.substr(0, 16);
}
std::string sif_name(const std::string& hash) {
  return "amlrun-env-" + hash.substr(0, 16) + ".sif";
}

std::vector<std::string> build_command(const std::string& runtime,
                                       const std::filesystem::path& context_dir,
                                       const std::string& hash,
                                       const std::filesystem::path& sif_dir) {
  if (runtime == "apptainer") {
    return {"apptainer", "build", "--fakeroot", (sif_dir / sif_name(hash)).string(),
            (context_dir / "amlrun.def").string()};
  }
  // --force-rm: a failed step's container goes too (the legacy builder keeps it).
  std::vector<std::string> argv = {runtime,      "build", "--network",    "host",
                                   "--force-rm", "--tag", image_tag(hash)};
  for (const char* name :
       {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}) {
    // "--build-arg NAME" takes the value from the runtime's environment.
    if (::getenv(name)) argv.insert(argv.end(), {"--build-arg", name});
  }
  argv.push_back(context_dir.string());
  return argv;
}

std::vector<std::string> run_command(const ContainerRun& run) {
  std::vector<std::string> argv;
  if (run.runtime == "apptainer") {
    // Apptainer passes the caller's environment into the container unless
    // told --cleanenv, so the variables need no flags at all.
    argv = {"apptainer", "exec", "--pwd", run.working_dir.string()};
    if (run.gpu) argv.push_back("--nv");
    for (const auto& [path, read_only] : run.mounts) {
      argv.insert(argv.end(),
                  {"--bind", fmt::format("{0}:{0}:{1}", path.string(), read_only ? "ro" : "rw")});
    }
    argv.push_back(run.image);
  } else {
    // Host networking: ranks reach MASTER_ADDR:MASTER_PORT as on the host.
    argv = {run.runtime, "run",        "--rm",       "--init",    "--network",
            "host",      "--shm-size", run.shm_size, "--workdir", run.working_dir.string()};
    if (run.gpu) argv.insert(argv.end(), {"--gpus", "all"});
    if (!run.name.empty()) argv.insert(argv.end(), {"--name", run.name});
    if (!run.user.empty()) argv.insert(argv.end(), {"--user", run.user});
    for (const auto& [key, value] : run.labels) {
      argv.insert(argv.end(), {"--label", fmt::format("{}={}", key, value)});
    }
    for (const auto& [path, read_only] : run.mounts) {
      argv.insert(argv.end(),
                  {"--volume", fmt::format("{0}:{0}:{1}", path.string(), read_only ? "ro" : "rw")});
    }
    // "--env NAME" without a value takes the value from the runtime's own
    // environment, which the caller sets.
    for (const auto& name : run.variables) argv.insert(argv.end(), {"--env", name});
    argv.push_back(run.image);
  }
  argv.insert(argv.end(), run.program.begin(), run.program.end());
  return argv;
}

std::vector<std::string> start_command(const ContainerRun& run) {
  ContainerRun idle = run;
  idle.variables.clear();
  // It ignores SIGTERM, so that `kill -TERM -1` inside (terminate_command)
  // reaches the ranks and leaves the container up while they end.
  idle.program = {"sh", "-c", "trap '' TERM INT HUP; exec sleep infinity"};
  auto argv = run_command(idle);
  // Removed by whoever ends it (`rm --force` waits for the removal), not by
  // the engine in the background: a removal still in progress is listed.
  argv.erase(std::find(argv.begin(), argv.end(), "--rm"));
  argv.insert(argv.begin() + 2, "--detach");
  return argv;
}

std::vector<std::string> exec_command(const ContainerRun& run) {
  std::vector<std::string> argv = {run.runtime, "exec", "--workdir", run.working_dir.string()};
  if (!run.user.empty()) argv.insert(argv.end(), {"--user", run.user});
  for (const auto& name : run.variables) argv.insert(argv.end(), {"--env", name});
  argv.push_back(run.name);
  argv.insert(argv.end(), run.program.begin(), run.program.end());
  return argv;
}

}  // namespace amlrun::env
