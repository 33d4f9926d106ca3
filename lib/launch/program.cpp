#include "lib/launch/program.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include "lib/launch/command_script.hpp"
#include "lib/spec/placeholders.hpp"
#include "lib/util/error.hpp"
#include "lib/util/process.hpp"

namespace amlrun::launch {

std::filesystem::path amlrun_executable() {
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) throw util::InfraError("cannot find the amlrun executable (/proc/self/exe)");
  return path;
}

std::filesystem::path python_shim_dir(const std::filesystem::path& executable) {
  auto bin = executable.parent_path();
  for (const auto& candidate :
       {bin / "python", bin.parent_path() / "share" / "amlrun" / "python"}) {
    std::error_code error;
    if (std::filesystem::is_regular_file(candidate / "azureml" / "__init__.py", error)) {
      return candidate;
    }
  }
  return {};
}

static std::string resolve_python(const std::vector<std::string>& environment) {
  auto path = util::get_env(environment, "PATH");
  for (const char* name : {"python", "python3"}) {
    if (auto found = util::find_executable(name, path ? path->c_str() : nullptr))
      return found->string();
  }
  throw util::InputError(
      "neither python nor python3 is in PATH; an estimator job runs its "
      "entry_script with python");
}

static std::string resolve_worker() {
  auto beside = amlrun_executable().parent_path() / "amlrun-worker";
  if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  if (auto found = util::find_executable("amlrun-worker")) return found->string();
  throw util::InputError(
      fmt::format("amlrun-worker is not installed (looked beside amlrun in {} "
                  "and in PATH); a train_pytorch_model job runs it",
                  beside.parent_path().string()));
}

std::vector<std::string> user_program(
    const spec::JobSpec& spec, const std::vector<std::pair<std::string, std::string>>& inputs,
    const std::vector<std::string>& environment, bool resolve) {
  if (spec.dialect == spec::Dialect::command) {
    // $0 names the script in bash's own error messages.
    return {"bash", "-c", render_command_script(spec.command), "amlrun-command"};
  }
  std::vector<std::string> argv;
  for (const auto& argument : spec.argv) {
    argv.push_back(spec::substitute_placeholders(argument, [&](const spec::Placeholder& p) {
      for (const auto& [name, value] : inputs) {
        if (p.scope == "inputs" && name == p.name) return value;
      }
      return p.text();
    }));
  }
  if (!resolve) return argv;
  if (!argv.empty() && argv[0] == "python") argv[0] = resolve_python(environment);
  if (!argv.empty() && argv[0] == "amlrun-worker") argv[0] = resolve_worker();
  return argv;
}

std::vector<std::string> mpirun_command(const MpiLaunch& launch) {
  auto mpirun = util::find_executable("mpirun");
  if (!mpirun) {
    throw util::InputError(
        "mpirun is not in PATH; distribution type mpi needs Open MPI "
        "(apt-get install openmpi-bin)");
  }
  std::vector<std::string> argv = {mpirun->string()};
  if (::geteuid() == 0) argv.push_back("--allow-run-as-root");
  long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (launch.processes > cores) argv.push_back("--oversubscribe");
  argv.insert(argv.end(), {"--bind-to", "none", "-np", std::to_string(launch.processes)});
  argv.insert(argv.end(), launch.rank_command.begin(), launch.rank_command.end());
  return argv;
}

}  // namespace amlrun::launch
