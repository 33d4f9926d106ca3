#include "lib/launch/inputs.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/http.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::launch {

bool enter_private_mount_namespace() {
  if (::unshare(CLONE_NEWNS) != 0) return false;
  // Without this, mounts made here would propagate back to the host's
  // namespace on systems where / is a shared mount (systemd's default).
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  return true;
}

static void bind_read_only(const fs::path& source, const fs::path& target) {
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    util::throw_errno(fmt::format("cannot bind-mount {} at {}", source.string(), target.string()));
  }
  if (::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    int saved = errno;
    ::umount2(target.c_str(), MNT_DETACH);
    throw util::InfraError(
        util::errno_message(fmt::format("cannot make {} read-only", target.string()), saved));
  }
}

static std::string make_local_input(const spec::InputSpec& input, const fs::path& inputs_dir,
                                    bool private_mounts, const Log& log) {
  fs::path source = input.path;
  fs::path target;
  if (input.kind == spec::InputSpec::Kind::folder) {
    target = inputs_dir / input.name;
  } else {
    fs::create_directories(inputs_dir / input.name);
    target = inputs_dir / input.name / source.filename();
  }
  if (private_mounts) {
    if (input.kind == spec::InputSpec::Kind::folder) {
      fs::create_directories(target);
    } else {
      util::UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0444));
      if (!fd) util::throw_errno(fmt::format("cannot create {}", target.string()));
    }
    bind_read_only(source, target);
    log(fmt::format("input '{}': {} mounted read-only at {}", input.name, source.string(),
                    target.string()));
  } else {
    fs::create_symlink(source, target);
    log(
        fmt::format("input '{}': {} linked at {} (read-only not enforced: no private mount "
                    "namespace for this user)",
                    input.name, source.string(), target.string()));
  }
  return target.string();
}

static std::string download_input(const spec::InputSpec& input, const fs::path& inputs_dir,
                                  const InputOptions& input_options) {
  const Log& log = input_options.log;
  fs::path directory = inputs_dir / input.name;
  fs::create_directories(directory);
  fs::path target = directory / util::file_name_from_url(input.url);
  util::DownloadOptions options;
  options.should_stop = input_options.should_stop;
  options.on_retry = [&](const std::string& message) {
    log(fmt::format("input '{}': {}", input.name, message));
  };
  auto start = util::monotonic_ms();
  try {
    auto result = util::http_download(input.url, target, options);
    log(fmt::format("input '{}': downloaded {} ({}) in {} ({} attempt{}{})", input.name, input.url,
                    util::format_bytes(result.bytes),
                    util::format_duration(static_cast<double>(util::monotonic_ms() - start) / 1000),
                    result.attempts, result.attempts == 1 ? "" : "s",
                    result.resumed ? fmt::format(", resumed {} time{}", result.resumed,
                                                 result.resumed == 1 ? "" : "s")
                                   : ""));
  } catch (const util::Error& error) {
    throw util::InfraError(fmt::format("input '{}': {}", input.name, error.what()));
  }
  return target.string();
}

std::vector<std::pair<std::string, std::string>> prepare_inputs(const spec::JobSpec& spec,
                                                                const fs::path& run_dir,
                                                                const InputOptions& options) {
  std::vector<std::pair<std::string, std::string>> prepared;
  fs::path inputs_dir = run_dir / "inputs";
  for (const auto& input : spec.inputs) {
    if (input.kind == spec::InputSpec::Kind::literal) {
      prepared.emplace_back(input.name, input.value);
      continue;
    }
    fs::create_directories(inputs_dir);
    if (!input.url.empty()) {
      if (input.mode == "direct") {
        prepared.emplace_back(input.name, input.url);  // the program reads the URL itself
      } else {
        prepared.emplace_back(input.name, download_input(input, inputs_dir, options));
      }
      continue;
    }
    std::error_code error;
    if (!fs::exists(input.path, error)) {
      throw util::InputError(
          fmt::format("input '{}': {} no longer exists", input.name, input.path));
    }
    prepared.emplace_back(input.name,
                          make_local_input(input, inputs_dir, options.private_mounts, options.log));
  }
  return prepared;
}

}  // namespace amlrun::launch
