#include <catch2/catch.hpp>
#include <fstream>

#include "../test_support.hpp"
#include "lib/registry/model_ref.hpp"
#include "lib/registry/model_registry.hpp"
#include "lib/registry/registry_doctor.hpp"
#include "lib/util/hash.hpp"

using namespace amlrun;
using unit_test::message_of;
using unit_test::read;
using unit_test::TempDir;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  TempDir dir;
  workspace::Workspace ws{workspace::create_workspace(dir.path / ".amlrun"), {}};
  store::RunStore runs{ws};
  registry::ModelRegistry models{runs};

  registry::ModelVersion add(const std::string& name, std::optional<std::string> version = {}) {
    dir.write("model/weights.bin", "w1");
    dir.write("model/config/c.json", "{}");
    registry::RegisterRequest request;
    request.name = name;
    request.version = version;
    request.from = dir.path / "model";
    request.tags = {{"stage", "test"}};
    return models.register_model(request, [](const artifacts::Skipped&) {});
  }
};

}  // namespace

TEST_CASE("model references") {
  CHECK(registry::parse_model_ref("resnet").latest());
  CHECK(registry::parse_model_ref("resnet@latest").text() == "resnet@latest");
  auto ref = registry::parse_model_ref("resnet:12");
  CHECK(ref.name == "resnet");
  CHECK(ref.version == "12");
  CHECK(message_of([] { registry::parse_model_ref("resnet@3"); }) ==
        "invalid model reference 'resnet@3': '@' can only be followed by 'latest' (NAME:VERSION "
        "picks a version)");
  CHECK(message_of([] { registry::parse_model_ref("a:1@latest"); }) ==
        "invalid model reference 'a:1@latest': write NAME, NAME:VERSION or NAME@latest");
  CHECK(message_of([] { registry::parse_model_ref("../x"); }) ==
        "invalid model name '../x': use 1-128 characters from [A-Za-z0-9._-], starting with a "
        "letter or digit");
  CHECK(message_of([] { registry::parse_model_ref("x:"); }) ==
        "invalid model version '': use 1-128 characters from [A-Za-z0-9._-], starting with a "
        "letter or digit");
}

TEST_CASE("versions count up from the highest number") {
  CHECK(registry::next_version({}) == "1");
  CHECK(registry::next_version({"1", "2", "7"}) == "8");
  CHECK(registry::next_version({"v2", "007", "3"}) == "4");
}

TEST_CASE("register, find, download and delete") {
  Fixture f;
  auto first = f.add("mlp");
  CHECK(first.version == "1");
  CHECK(first.files == 2);
  CHECK(first.bytes == 4);
  CHECK(f.add("mlp").version == "2");
  CHECK(f.add("mlp", "release-a").version == "release-a");
  CHECK(f.add("mlp").version == "3");
  CHECK(message_of([&] { f.add("mlp", "2"); }) ==
        "model mlp already has a version 2; give another --version, or leave it out for the next "
        "number");
  CHECK(f.models.find(registry::parse_model_ref("mlp")).version == "3");
  CHECK(f.models.find(registry::parse_model_ref("mlp:release-a")).tags ==
        std::vector<util::Tag>{{"stage", "test"}});
  CHECK(message_of([&] { f.models.find(registry::parse_model_ref("mpl")); }) ==
        "no model 'mpl' in the registry (did you mean 'mlp'?); amlrun model list shows them");
  CHECK(message_of([&] { f.models.find(registry::parse_model_ref("mlp:9")); }) ==
        "model mlp has no version 9; its versions are 1, 2, release-a, 3");
  auto files = f.models.manifest(first);
  REQUIRE(files.size() == 2);
  CHECK(files[0].path == "config/c.json");
  CHECK(files[1].path == "weights.bin");
  f.models.download(first, f.dir.path / "out", nullptr);
  CHECK(read(f.dir.path / "out" / "weights.bin") == "w1");
  f.models.remove("mlp", "2");
  CHECK(f.models.versions("mlp").size() == 3);
  CHECK_FALSE(fs::exists(f.models.version_dir("mlp", "2")));
  CHECK(f.add("mlp").version == "4");
}

TEST_CASE("a file changed in the registry fails the download, naming it") {
  Fixture f;
  auto model = f.add("mlp");
  fs::path stored = f.models.version_dir("mlp", "1") / "files" / "weights.bin";
  std::ofstream(stored, std::ios::trunc) << "w2";  // same size, other bytes
  CHECK(message_of([&] { f.models.download(model, f.dir.path / "out", nullptr); }) ==
        "model mlp:1: weights.bin is damaged: its sha256 is " + util::sha256_hex("w2") +
            ", the manifest says " + util::sha256_hex("w1") +
            "; the registry copy was changed after registration: register the model again");
  CHECK_FALSE(fs::exists(f.dir.path / "out" / "weights.bin"));
  std::ofstream(f.models.version_dir("mlp", "1") / "manifest.json", std::ios::app) << " ";
  CHECK(message_of([&] { f.models.manifest(model); }) ==
        "model mlp:1: " + (f.models.version_dir("mlp", "1") / "manifest.json").string() +
            " was changed after registration (its sha256 does not match the index); the registry "
            "copy cannot be trusted: register the model again");
}

TEST_CASE("a lost index is rebuilt from the manifests, latest still the latest") {
  Fixture f;
  f.add("mlp");
  f.add("mlp");
  f.add("mlp", "best");
  f.add("cnn");
  fs::remove(f.ws.index_path());
  store::RunStore fresh(f.ws);
  registry::ModelRegistry models(fresh);
  store::DoctorReport report;
  registry::check_models(models, fresh, /*repair=*/true, report);
  CHECK(report.findings.size() == 4);
  CHECK(report.unresolved() == 0);
  CHECK(models.find(registry::parse_model_ref("mlp")).version == "best");
  CHECK(models.versions("mlp").size() == 3);
  store::DoctorReport again;
  registry::check_models(models, fresh, /*repair=*/false, again);
  CHECK(again.findings.empty());
  CHECK(again.models_checked == 4);
}

TEST_CASE("text that cannot be stored as UTF-8 is refused before anything is written") {
  Fixture f;
  f.dir.write("model/weights.bin", "w1");
  auto request = [&] {
    registry::RegisterRequest r;
    r.name = "mlp";
    r.from = f.dir.path / "model";
    return r;
  };
  auto nothing_left = [&] {
    CHECK_FALSE(fs::exists(f.models.models_dir() / "mlp"));
    std::size_t staged = 0;
    std::error_code error;
    for (fs::directory_iterator it(f.models.models_dir() / ".staging", error), end;
         !error && it != end; it.increment(error)) {
      ++staged;
    }
    CHECK(staged == 0);
    CHECK(f.models.versions("mlp").empty());
  };
  auto skip = [](const artifacts::Skipped&) {};
  auto bad_description = request();
  bad_description.description = "\xff";
  CHECK(message_of([&] { f.models.register_model(bad_description, skip); }) ==
        "--description: '\\xff' is not valid UTF-8 (byte 1 is 0xff); amlrun stores text as UTF-8");
  nothing_left();
  auto bad_tag = request();
  bad_tag.tags = {{"a", "\xff"}};
  CHECK(message_of([&] { f.models.register_model(bad_tag, skip); }) ==
        "invalid value for tag 'a': use at most 1024 characters of UTF-8 text, without control "
        "characters (the value is '\\xff')");
  nothing_left();
  f.dir.write("model/sub\xff/w.bin", "w");
  CHECK(message_of([&] { f.models.register_model(request(), skip); }) ==
        "cannot register " + (f.dir.path / "model").string() +
            ": the name 'sub\\xff/w.bin' is not valid UTF-8; rename it (a model's manifest lists "
            "its files as UTF-8 text)");
  nothing_left();
  fs::remove_all(f.dir.path / "model" / "sub\xff");
  auto fine = request();
  fine.description = "line one\nline two\x1b[2J";  // stored as given; terminals get it escaped
  CHECK(f.models.register_model(fine, skip).version == "1");
  CHECK(f.models.find(registry::parse_model_ref("mlp")).description == fine.description);
}

TEST_CASE("a registered file replaced by a link is reported as such and never followed") {
  Fixture f;
  auto model = f.add("mlp");
  fs::path files = f.models.version_dir("mlp", "1") / "files";
  fs::path secret = f.dir.write("secret.txt", "w1");  // same bytes: only the link gives it away
  fs::remove(files / "weights.bin");
  fs::create_symlink(secret, files / "weights.bin");
  CHECK(message_of([&] { f.models.download(model, f.dir.path / "out", nullptr); }) ==
        "model mlp:1: weights.bin was replaced by a symbolic link to " + secret.string() + " (" +
            (files / "weights.bin").string() +
            "), which is never followed; the registry copy is damaged: register the model again");
  fs::remove(files / "weights.bin");
  CHECK(message_of([&] { f.models.download(model, f.dir.path / "out", nullptr); }) ==
        "model mlp:1: weights.bin is missing from the registry (" +
            (files / "weights.bin").string() +
            "); the registry copy is damaged: register the model again");
  std::ofstream(files / "weights.bin") << "w1";
  fs::rename(files / "config", f.dir.path / "config");
  fs::create_symlink(f.dir.path / "config", files / "config");
  CHECK(message_of([&] { f.models.download(model, f.dir.path / "out", nullptr); }) ==
        "model mlp:1: config/c.json lies in " + (files / "config").string() +
            ", which was replaced by a symbolic link to " + (f.dir.path / "config").string() +
            " (never followed); the registry copy is damaged: register the model again");
  CHECK_FALSE(fs::exists(f.dir.path / "out" / "config"));

  // doctor looks at every registered file, not only the manifest.
  store::DoctorReport report;
  registry::check_models(f.models, f.runs, /*repair=*/false, report);
  REQUIRE(report.findings.size() == 1);
  CHECK(report.findings[0].problem ==
        "model mlp:1: config/c.json lies in " + (files / "config").string() +
            ", which was replaced by a symbolic link to " + (f.dir.path / "config").string() +
            " (never followed); the registry copy is damaged: register the model again");
  CHECK(report.findings[0].action == "delete it (amlrun model delete mlp:1) and register it again");
}

TEST_CASE("the registry owns its table: an index from before keeps its versions") {
  TempDir dir;
  workspace::Workspace ws{workspace::create_workspace(dir.path / ".amlrun"), {}};
  {
    store::RunStore runs(ws);
    // As the store's own migration used to create it, with a version in it.
    runs.database().execute(
        "CREATE TABLE models (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, version "
        "TEXT NOT NULL, version_number INTEGER, created_at TEXT NOT NULL, description TEXT NOT "
        "NULL, tags TEXT NOT NULL, source_run TEXT NOT NULL, source_path TEXT NOT NULL, files "
        "INTEGER NOT NULL, bytes INTEGER NOT NULL, manifest_sha256 TEXT NOT NULL, UNIQUE (name, "
        "version));"
        "INSERT INTO models (name, version, version_number, created_at, description, tags, "
        "source_run, source_path, files, bytes, manifest_sha256) VALUES ('old', '1', 1, "
        "'2026-01-01T00:00:00.000Z', '', '{\"k\":\"v\"}', '', '/x', 1, 1, 'abc');");
  }
  store::RunStore runs(ws);
  registry::ModelRegistry models(runs);
  auto versions = models.versions("old");
  REQUIRE(versions.size() == 1);
  CHECK(versions[0].tags == std::vector<util::Tag>{{"k", "v"}});
  store::Statement owner(runs.database(),
                         "SELECT version FROM schema_versions WHERE owner = 'models'");
  REQUIRE(owner.step());
  CHECK(owner.integer(0) == 1);
}
