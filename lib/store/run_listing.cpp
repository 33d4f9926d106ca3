#include "lib/store/run_listing.hpp"

#include <sys/stat.h>

#include <fmt/format.h>
#include <cerrno>

#include "lib/util/error.hpp"

namespace amlrun::store {

bool row_matches_record_file(const RunStore& store, const IndexRow& row) {
  struct stat file {};
  if (::stat(store.record_path(row.id).c_str(), &file) != 0) return false;
  std::int64_t mtime_ns = file.st_mtim.tv_sec * 1000000000LL + file.st_mtim.tv_nsec;
  return mtime_ns == row.record_mtime_ns && file.st_size == row.record_size;
}

void check_listed_runs(const RunStore& store, std::vector<IndexRow>& rows) {
  for (auto& row : rows) {
    if (row_matches_record_file(store, row)) continue;
    try {
      RunRecord record = store.load(row.id);
      row.experiment = record.experiment;
      row.display_name = record.display_name;
      row.state = to_string(record.state);
      row.created_at = record.created_at;
      row.ended_at = record.ended_at;
      row.exit_code = record.exit_code;
      row.compute = record.compute;
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
