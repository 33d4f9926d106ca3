#pragma once
// `amlrun doctor` for the model registry: index rows against model folders.
#include "lib/registry/model_registry.hpp"
#include "lib/store/doctor.hpp"

namespace amlrun::registry {

// Versions in the index without a folder, folders without an index row
// (re-indexed from their manifest, which a rebuilt index needs), manifests
// changed after registration, and staging folders left by interrupted
// registrations.
void check_models(ModelRegistry& registry, const store::RunStore& store, bool repair,
                  store::DoctorReport& report);

}  // namespace amlrun::registry
