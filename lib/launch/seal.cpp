#include "lib/launch/seal.hpp"

#include <fmt/format.h>

namespace amlrun::launch {

namespace fs = std::filesystem;

void seal_working_directory(const fs::path& working_dir, const fs::path& artifacts_dir,
                            const std::function<void(const std::string&)>& log) {
  std::error_code error;
  for (const char* name : {"outputs", "logs"}) {
    fs::path source = working_dir / name;
    auto status = fs::symlink_status(source, error);
    if (fs::is_directory(status)) {
      fs::rename(source, artifacts_dir / name, error);
      if (error) log(fmt::format("cannot move {} into artifacts: {}", name, error.message()));
    } else if (fs::exists(status)) {
      log(fmt::format("./{} was replaced by something that is not a directory; it is not kept",
                      name));
    }
    fs::create_directories(artifacts_dir / name, error);
  }
  fs::remove_all(working_dir, error);
  if (error) log(fmt::format("cannot remove the working directory: {}", error.message()));
}

}  // namespace amlrun::launch
