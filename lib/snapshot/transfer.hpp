#pragma once
// Moving a snapshot from one store to another by content (the SSH transport
// of a Slurm target, compute/slurm/ssh): the receiving store says which of a
// manifest's objects it lacks, only those travel, and each is checked
// against its name (size and sha256) before it is stored under it.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/snapshot/manifest.hpp"

namespace amlrun::snapshot {

// One stored object: objects/<name>, name = "ab/<sha256>[.x][.p]".
struct ObjectRef {
  std::string name;
  std::uint64_t size = 0;
  bool operator==(const ObjectRef&) const = default;
};

// The objects a manifest's files need, each once.
std::vector<ObjectRef> objects_of(const Manifest& manifest);

// The stored manifest's text, verified against its id (SnapshotError else).
std::string manifest_text(const std::filesystem::path& store_dir, const std::string& snapshot_id);
// Stores a manifest received from elsewhere; SnapshotError when `text` is
// not the manifest `snapshot_id` names, or not a manifest.
Manifest receive_manifest(const std::filesystem::path& store_dir, const std::string& snapshot_id,
                          std::string_view text);

// An edit script that turns the text of manifest `base` into that of
// `target` (lines kept, dropped and added, in order): a re-submit with one
// changed file sends a line or two instead of the whole manifest. Both must
// be valid manifests (SnapshotError else).
std::string manifest_delta(std::string_view base, std::string_view target);
// The text the script makes of `base`; SnapshotError when the script does
// not fit it. receive_manifest then checks the result against its id.
std::string apply_manifest_delta(std::string_view base, std::string_view delta);

// Those of `wanted` the store does not hold intact.
std::vector<ObjectRef> missing_objects(const std::filesystem::path& store_dir,
                                       const std::vector<ObjectRef>& wanted);

// Where an object of this store is (for sending it); InputError for a name
// that is not an object's.
std::filesystem::path object_path(const std::filesystem::path& store_dir, const std::string& name);

// Stores objects received from elsewhere into one store.
class ObjectReceiver {
 public:
  explicit ObjectReceiver(const std::filesystem::path& store_dir);
  ~ObjectReceiver();
  // Stores `data` as object `ref` after checking it is what the name
  // promises; util::InfraError naming the object when it is not.
  void receive(const ObjectRef& ref, std::string_view data);

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace amlrun::snapshot
