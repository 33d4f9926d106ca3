#include "lib/store/run_listing.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/utf8.hpp"

namespace amlrun::store {

namespace {

// `runs_fd`: the runs/ directory, so each stat walks two path components
// instead of the whole workspace path (a full listing stats every row).
bool matches(int runs_fd, const IndexRow& row) {
  if (!util::is_valid_name(row.id)) return false;
  struct stat file {};
  std::string relative = row.id + "/run.json";
  if (::fstatat(runs_fd, relative.c_str(), &file, 0) != 0) return false;
  std::int64_t mtime_ns = file.st_mtim.tv_sec * 1000000000LL + file.st_mtim.tv_nsec;
  return mtime_ns == row.record_mtime_ns && file.st_size == row.record_size &&
         static_cast<std::int64_t>(file.st_ino) == row.record_inode;
}

util::UniqueFd open_runs_dir(const RunStore& store) {
  return util::UniqueFd(
      ::open(store.workspace().runs_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

}  // namespace

std::pair<std::string, std::optional<std::string>> parse_param_filter(std::string_view text) {
  std::size_t equals = text.find('=');
  std::string_view name = text.substr(0, equals);
  bool control = std::any_of(name.begin(), name.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (name.empty() || util::utf8_length(name) > 250 || control ||
      util::first_invalid_utf8(name) != std::string_view::npos) {
    throw util::InputError(fmt::format(
        "invalid param filter {}: write name=value, or name for any value (a name of 1-250 "
        "characters, without control characters)",
        util::printable(text)));
  }
  if (equals == std::string_view::npos) return {std::string(name), std::nullopt};
  return {std::string(name), std::string(text.substr(equals + 1))};
}

bool row_matches_record_file(const RunStore& store, const IndexRow& row) {
  auto runs_fd = open_runs_dir(store);
  return runs_fd && matches(runs_fd.get(), row);
}

void check_listed_runs(const RunStore& store, std::vector<IndexRow>& rows) {
  auto runs_fd = open_runs_dir(store);
  for (auto& row : rows) {
    if (runs_fd && matches(runs_fd.get(), row)) continue;
    try {
      RunRecord record = store.load(row.id);
      row.experiment = record.experiment;
      row.display_name = record.display_name;
      row.state = to_string(record.state);
      row.created_at = record.created_at;
      row.ended_at = record.ended_at;
      row.exit_code = record.exit_code;
      row.compute = record.compute;
      row.tags = record.tags;
    } catch (const util::InputError&) {
      row.state = k_missing_state;
      row.problem = fmt::format("{} is missing", store.record_path(row.id).string());
    } catch (const util::Error& error) {
      row.state = k_corrupt_state;
      row.problem = error.what();
    }
  }
}

}  // namespace amlrun::store
