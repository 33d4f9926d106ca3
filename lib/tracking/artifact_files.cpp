#include "lib/tracking/artifact_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "lib/tracking/errors.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::tracking {

namespace {

std::string folder_of(const ArtifactLocation& where, const std::string& below) {
  return below.empty() ? where.outputs_relative
                       : fmt::format("{}/{}", where.outputs_relative, below);
}

// util::AtomicFile's temp files are ".<name>.tmp.<suffix>".
bool is_upload_in_progress(const std::string& name) {
  return name.starts_with('.') && name.find(".tmp.") != std::string::npos;
}

}  // namespace

void write_artifact(const ArtifactLocation& where, const BodyReader& read_body) {
  auto [parent, name] = util::split_parent(where.relative);
  std::optional<util::SafeDir> dir;
  std::optional<util::AtomicFile> file;
  try {
    dir = util::SafeDir::open(where.run_dir).make_dirs(folder_of(where, parent));
    struct stat existing {};
    if (::fstatat(dir->fd(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISREG(existing.st_mode)) {
      invalid_parameter(fmt::format("cannot store artifact {}: a {} of that name exists",
                                    where.relative, S_ISDIR(existing.st_mode) ? "folder" : "link"));
    }
    file.emplace(dir->fd(), name, where.run_dir / folder_of(where, parent) / name);
  } catch (const TrackingError&) {
    throw;
  } catch (const util::PathInTheWay& error) {
    invalid_parameter(fmt::format("cannot store artifact {}: {}", where.relative, error.what()));
  } catch (const std::exception& error) {
    cannot_store(fmt::format("cannot store artifact {}: {}", where.relative, error.what()));
  }
  std::string write_error;
  bool whole = read_body([&](const char* data, std::size_t size) {
    try {
      file->write(std::string_view(data, size));
      return true;
    } catch (const std::exception& error) {
      write_error = error.what();
      return false;
    }
  });
  if (!write_error.empty()) {
    cannot_store(fmt::format("cannot store artifact {}: {}", where.relative, write_error));
  }
  if (!whole) {
    invalid_parameter(fmt::format(
        "artifact {} was not stored: its body did not arrive whole (or is over the limit)",
        where.relative));
  }
  try {
    file->commit();
  } catch (const std::exception& error) {
    cannot_store(fmt::format("cannot store artifact {}: {}", where.relative, error.what()));
  }
}

util::UniqueFd open_artifact_file(const ArtifactLocation& where) {
  auto [parent, name] = util::split_parent(where.relative);
  try {
    auto dir = util::SafeDir::open(where.run_dir).find_dir(folder_of(where, parent));
    if (dir && !is_upload_in_progress(name)) {
      util::UniqueFd fd = dir->try_open_file(name, O_RDONLY | O_NONBLOCK);
      struct stat file {};
      if (fd && ::fstat(fd.get(), &file) == 0 && S_ISREG(file.st_mode)) return fd;
    }
  } catch (const util::PathInTheWay& error) {
    invalid_parameter(fmt::format("cannot read artifact {}: {}", where.relative, error.what()));
  } catch (const std::exception&) {
    // Unreadable is answered as absent, below.
  }
  does_not_exist(fmt::format("No artifact {} in the run's outputs", where.relative));
}

nlohmann::json list_artifact_folder(const ArtifactLocation& where) {
  using nlohmann::json;
  json files = json::array();
  try {
    auto dir = util::SafeDir::open(where.run_dir).find_dir(folder_of(where, where.relative));
    if (!dir) return json::object();
    auto entries = dir->list();
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& entry : entries) {
      if (is_upload_in_progress(entry.name)) continue;
      if (entry.type == S_IFDIR) {
        files.push_back({{"path", entry.name}, {"is_dir", true}});
      } else if (entry.type == S_IFREG) {
        struct stat file {};
        json item = {{"path", entry.name}, {"is_dir", false}};
        if (::fstatat(dir->fd(), entry.name.c_str(), &file, AT_SYMLINK_NOFOLLOW) == 0) {
          item["file_size"] = static_cast<std::int64_t>(file.st_size);
        }
        files.push_back(item);
      }
    }
  } catch (const util::PathInTheWay&) {
    return json::object();  // a link is not listed, as the seal does not follow it
  }
  return {{"files", files}};
}

}  // namespace amlrun::tracking
