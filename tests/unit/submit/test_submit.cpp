// The submit passes that need no workspace: naming a run's experiment.
#include <catch2/catch.hpp>

#include "lib/submit/submit.hpp"

using amlrun::submit::default_experiment;

TEST_CASE("the experiment is named after the source directory, then the job file's folder") {
  CHECK(default_experiment("/repo/src", "/repo/jobs/job.yml") == "src");
  CHECK(default_experiment("", "/repo/jobs/job.yml") == "jobs");
  CHECK(default_experiment("/repo/my code/", "/repo/job.yml") == "my_code");
}

TEST_CASE("an experiment name that sanitises to nothing falls back to the next candidate") {
  CHECK(default_experiment("/repo/***", "/repo/jobs/job.yml") == "jobs");
  CHECK(default_experiment("", "job.yml") == "default");
}
