#pragma once
// `amlrun runs list` answers from the index alone; this keeps it honest about
// the runs it shows. Each listed row is compared with its run.json by stat
// (no read, no directory scan): a file that changed since it was indexed (a
// writer killed between run.json and the index) is read and shown as it is;
// a missing or corrupt one marks that row and no other.
#include <vector>

#include "lib/store/run_store.hpp"

namespace amlrun::store {

// The state a row shows when its run.json cannot be read.
inline constexpr const char* k_corrupt_state = "Corrupt";
inline constexpr const char* k_missing_state = "Missing";

void check_listed_runs(const RunStore& store, std::vector<IndexRow>& rows);

// Whether run.json's stat still matches what the row recorded at indexing.
bool row_matches_record_file(const RunStore& store, const IndexRow& row);

}  // namespace amlrun::store
