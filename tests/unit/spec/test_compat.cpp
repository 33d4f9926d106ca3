// The command-job files users already have (../shared/compat): every key is
// recognised; what cannot work outside Azure gets a specific message. The
// expected messages are kept in compat_expected.txt (reviewed by a person;
// AMLRUN_UPDATE_GOLDEN=1 rewrites it after a deliberate change).
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "lib/spec/loader.hpp"
#include "spec_test_support.hpp"

namespace fs = std::filesystem;

namespace {

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

// Every diagnostic's first line, or "ok", for each file in turn.
void report_file(std::ostringstream& report, const std::string& display, const std::string& text,
                 const fs::path& job_dir) {
  report << "== " << display << "\n";
  try {
    auto loaded = amlrun::spec::load_job_spec_text(display, text, job_dir);
    for (const auto& warning : loaded.warnings) {
      report << first_line(amlrun::spec::format_diagnostic(warning)) << "\n";
    }
    report << "ok\n";
  } catch (const amlrun::spec::SpecError& error) {
    for (const auto& d : error.errors()) {
      std::string line = first_line(amlrun::spec::format_diagnostic(d));
      CHECK(line.find("unknown key") == std::string::npos);
      report << line << "\n";
    }
    for (const auto& warning : error.warnings()) {
      report << first_line(amlrun::spec::format_diagnostic(warning)) << "\n";
    }
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Compares with the golden file (reviewed by a person); AMLRUN_UPDATE_GOLDEN=1
// rewrites it after a deliberate change.
void check_golden(const std::string& actual, const std::string& golden_name) {
  fs::path golden = fs::path(AMLRUN_SOURCE_DIR) / "tests" / "unit" / "spec" / golden_name;
  if (std::getenv("AMLRUN_UPDATE_GOLDEN")) {
    std::ofstream(golden) << actual;
  }
  CHECK(actual == read_text(golden));
}

}  // namespace

TEST_CASE("the Azure ML command-job files in ../shared/compat load with specific messages") {
  fs::path compat =
      fs::path(AMLRUN_SOURCE_DIR) / ".." / "shared" / "compat" / "azureml-command-jobs";
  REQUIRE(fs::is_directory(compat));
  spec_test::JobDir sandbox;
  // The files' code folders are not in the compat set; make the ones they name.
  fs::path job_dir = sandbox.path / "a" / "b";
  for (const char* dir : {"src", "data", "docker-context", "src/main/resources/Docker"}) {
    fs::create_directories(job_dir / dir);
  }
  fs::create_directories(sandbox.path / "a" / "aml-mlfow-java-example");
  fs::create_directories(sandbox.path / "assets" / "model" / "mlflow-model");
  std::ofstream(job_dir / "conda.yaml") << "dependencies: []\n";

  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(compat)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 20);

  std::ostringstream report;
  for (const auto& file : files) {
    fs::copy_file(file, job_dir / file.filename(), fs::copy_options::overwrite_existing);
    report_file(report, file.filename().string(), read_text(job_dir / file.filename()), job_dir);
  }
  check_golden(replace_all(report.str(), sandbox.path.string(), "<dir>"), "compat_expected.txt");
}

// Files in the same schema using the tensorflow distribution, environment
// files, datastore output paths and data access modes, loaded in place (their
// environment files and folders are beside them).
TEST_CASE("Azure ML job files with tensorflow, environment files, output paths and modes") {
  fs::path folder = fs::path(AMLRUN_SOURCE_DIR) / "tests" / "unit" / "spec" / "compat_azure";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().extension() == ".yml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 9);
  std::ostringstream report;
  for (const auto& file : files) {
    report_file(report, file.filename().string(), read_text(file), folder);
  }
  check_golden(replace_all(report.str(), folder.string(), "<dir>"), "compat_azure_expected.txt");
}
