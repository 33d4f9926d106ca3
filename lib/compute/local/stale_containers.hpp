#pragma once
// `amlrun doctor` for containers whose run no longer runs: a supervisor
// killed outright, on a machine where nothing read the run since, leaves
// its container running. Every container labelled with this workspace
// (env/containers.hpp) whose run has no live owner is a finding; --repair
// kills and removes it. Only with environments.runtime docker or podman.
#include "lib/store/doctor.hpp"
#include "lib/store/run_store.hpp"

namespace amlrun::compute {

void check_run_containers(store::RunStore& store, bool repair, store::DoctorReport& report);

}  // namespace amlrun::compute
