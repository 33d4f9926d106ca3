#pragma once
// `amlrun runs list` answers from the index alone; this keeps it honest about
// the runs it shows. Each listed row is compared with its run.json by stat
// (no read, no directory scan): a file that changed since it was indexed (a
// writer killed between run.json and the index) is read and shown as it is;
// a missing or corrupt one marks that row and no other.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/store/run_store.hpp"

namespace amlrun::store {

// The state a row shows when its run.json cannot be read.
inline constexpr const char* k_corrupt_state = "Corrupt";
inline constexpr const char* k_missing_state = "Missing";

void check_listed_runs(const RunStore& store, std::vector<IndexRow>& rows);

// `--param NAME=VALUE` (that value) or `--param NAME` (any value): the
// name is what MLflow's log_param accepts in length (1-250 characters) and
// has no control characters. Throws util::InputError saying what to write.
std::pair<std::string, std::optional<std::string>> parse_param_filter(std::string_view text);

// Whether run.json's stat still matches what the row recorded at indexing.
bool row_matches_record_file(const RunStore& store, const IndexRow& row);

}  // namespace amlrun::store
