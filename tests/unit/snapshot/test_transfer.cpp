// Snapshots moved between stores by content: only the missing objects
// travel, and each is checked against its name before it is stored.
#include <catch2/catch.hpp>

#include "lib/snapshot/snapshot.hpp"
#include "lib/snapshot/transfer.hpp"
#include "lib/util/fs.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
using unit_test::message_of;
using unit_test::TempDir;
namespace fs = std::filesystem;

namespace {

snapshot::Snapshot take(const TempDir& dir, const std::string& source, const std::string& store) {
  snapshot::Options options;
  options.store_dir = dir.path / store;
  return snapshot::take(dir.path / source, options);
}

}  // namespace

TEST_CASE("a snapshot moves to another store with only what it lacks") {
  TempDir dir;
  dir.write("src/a.txt", "alpha\n");
  dir.write("src/b/c.txt", "gamma\n");
  dir.write("src/same.txt", "alpha\n");  // the same content: one object
  auto first = take(dir, "src", "here");
  fs::path there = dir.path / "there";
  auto text = snapshot::manifest_text(dir.path / "here", first.id);
  auto manifest = snapshot::receive_manifest(there, first.id, text);
  auto wanted = snapshot::objects_of(manifest);
  CHECK(wanted.size() == 2);
  auto missing = snapshot::missing_objects(there, wanted);
  CHECK(missing == wanted);
  snapshot::ObjectReceiver receiver(there);
  for (const auto& ref : missing) {
    receiver.receive(ref, util::read_file(snapshot::object_path(dir.path / "here", ref.name)));
  }
  CHECK(snapshot::missing_objects(there, wanted).empty());
  snapshot::materialize(there, first.id, dir.path / "copy");
  CHECK(util::read_file(dir.path / "copy/b/c.txt") == "gamma\n");

  // One file changed: one object travels.
  dir.write("src/b/c.txt", "delta\n");
  auto second = take(dir, "src", "here");
  auto next = snapshot::receive_manifest(there, second.id,
                                         snapshot::manifest_text(dir.path / "here", second.id));
  auto lacking = snapshot::missing_objects(there, snapshot::objects_of(next));
  REQUIRE(lacking.size() == 1);
  CHECK(lacking[0].size == 6);
}

TEST_CASE("damaged objects, manifests and names are refused") {
  TempDir dir;
  dir.write("src/a.txt", "alpha\n");
  auto taken = take(dir, "src", "here");
  fs::path there = dir.path / "there";
  auto text = snapshot::manifest_text(dir.path / "here", taken.id);
  CHECK(message_of([&] { snapshot::receive_manifest(there, taken.id, text + " "); }) ==
        "the manifest received for snapshot '" + taken.id + "' does not match its id");
  auto refs = snapshot::objects_of(snapshot::receive_manifest(there, taken.id, text));
  REQUIRE(refs.size() == 1);
  snapshot::ObjectReceiver receiver(there);
  CHECK(message_of([&] { receiver.receive(refs[0], "alpha?"); }) ==
        "object " + refs[0].name +
            " arrived damaged (6 bytes, expected 6; its sha256 does not match): submit again");
  CHECK(snapshot::missing_objects(there, refs) == refs);  // nothing stored
  CHECK(message_of([&] { snapshot::object_path(there, "../../etc/passwd"); }) ==
        "'../../etc/passwd' is not an object name");
}

TEST_CASE("a manifest travels as an edit of one sent before") {
  TempDir dir;
  for (int i = 0; i < 50; ++i) dir.write("src/f" + std::to_string(i) + ".txt", std::to_string(i));
  dir.write("src/sub/x.txt", "x");
  auto base = take(dir, "src", "here");
  dir.write("src/f7.txt", "changed");
  fs::remove(dir.path / "src/f30.txt");
  dir.write("src/new/y.txt", "y");
  auto next = take(dir, "src", "here");
  auto base_text = snapshot::manifest_text(dir.path / "here", base.id);
  auto next_text = snapshot::manifest_text(dir.path / "here", next.id);
  auto delta = snapshot::manifest_delta(base_text, next_text);
  CHECK(delta.size() < 600);  // a few lines, not the 52 entries
  CHECK(snapshot::apply_manifest_delta(base_text, delta) == next_text);
  CHECK(snapshot::apply_manifest_delta(base_text, snapshot::manifest_delta(base_text, base_text)) ==
        base_text);
  CHECK(message_of([&] { snapshot::apply_manifest_delta(next_text + "f\textra\n", delta); }) ==
        "a manifest edit script does not fit its base");
}
