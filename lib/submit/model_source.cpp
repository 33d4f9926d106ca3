#include "lib/submit/model_source.hpp"

#include <fmt/format.h>
#include <memory>
#include <optional>

#include "lib/artifacts/artifact_path.hpp"
#include "lib/registry/model_ref.hpp"
#include "lib/registry/model_registry.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/error.hpp"

namespace amlrun::submit {

namespace {

spec::ResolvedModel resolve(const workspace::Workspace& workspace,
                            const spec::ModelReference& reference) {
  store::RunStore store(workspace);
  if (reference.kind == spec::ModelReference::Kind::registered) {
    registry::ModelRegistry registry(store);
    registry::ModelVersion version = registry.find(registry::parse_model_ref(reference.text));
    registry.verify_files(version);
    return {registry.files_dir(version.name, version.version),
            fmt::format("{}:{}", version.name, version.version)};
  }
  store::RunRecord record = store.load(reference.run_id);
  if (!store::is_terminal(record.state)) {
    throw util::InputError(fmt::format(
        "run {} is {}; its outputs are sealed when it ends: submit this job after it ('amlrun "
        "stream {}' waits for it)",
        record.id, store::to_string(record.state), record.id));
  }
  store::RunLayout layout(store.run_dir(record.id));
  artifacts::ArtifactPath path = artifacts::resolve_artifact_path(
      layout.artifacts(), reference.path, "runs:/" + record.id, record.id);
  return {path.source, fmt::format("run {}'s {}", record.id, path.relative)};
}

}  // namespace

spec::ModelResolver workspace_model_resolver(workspace::OpenOptions options) {
  auto opened = std::make_shared<std::optional<workspace::Workspace>>();
  return [options = std::move(options), opened](const spec::ModelReference& reference) {
    if (!*opened) *opened = workspace::open_workspace(options);
    return resolve(**opened, reference);
  };
}

}  // namespace amlrun::submit
