#pragma once
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lib/spec/loader.hpp"

namespace spec_test {

namespace fs = std::filesystem;

// A job directory with the usual neighbours: src/train.py, data/, conda.yml.
struct JobDir {
  fs::path path;
  JobDir() {
    char pattern[] = "/tmp/amlrun-spec-XXXXXX";
    path = ::mkdtemp(pattern);
    fs::create_directories(path / "src");
    fs::create_directories(path / "data");
    std::ofstream(path / "src" / "train.py") << "print('hi')\n";
    std::ofstream(path / "conda.yml") << "dependencies: [python=3.11]\n";
    std::ofstream(path / "data" / "iris.csv") << "a,b\n";
  }
  ~JobDir() { fs::remove_all(path); }
};

// Loads text as "job.yml" in dir; returns the error text, or "" on success.
inline std::string errors_of(const JobDir& dir, const std::string& text,
                             const std::vector<std::string>& overrides = {}) {
  try {
    amlrun::spec::LoadOptions options;
    options.overrides = overrides;
    amlrun::spec::load_job_spec_text("job.yml", text, dir.path, options);
  } catch (const std::exception& error) {
    return error.what();
  }
  return "";
}

inline amlrun::spec::LoadedSpec load(const JobDir& dir, const std::string& text,
                                     const std::vector<std::string>& overrides = {}) {
  amlrun::spec::LoadOptions options;
  options.overrides = overrides;
  return amlrun::spec::load_job_spec_text("job.yml", text, dir.path, options);
}

}  // namespace spec_test
