#pragma once
// `amlrun doctor` for runs whose owner is gone without sealing them: a local
// supervisor killed outright (SIGKILL, the OOM killer, a full disk) leaves
// the job's outputs and logs in runs/<id>/wd, where `show`, `download` and
// `model register` do not look. Reading such a run (`show`, `runs list`)
// already seals it; doctor names every one it finds and, with --repair, has
// its target settle it (seal what it left, record how it ended). Lives in
// compute, not store, because settling a run is its target's job.
#include "lib/store/doctor.hpp"
#include "lib/store/run_store.hpp"

namespace amlrun::compute {

void check_unsealed_runs(store::RunStore& store, bool repair, store::DoctorReport& report);

}  // namespace amlrun::compute
