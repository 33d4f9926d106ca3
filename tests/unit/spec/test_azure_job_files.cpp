// What Azure ML command-job files carry beyond the basics (issue 18): the
// tensorflow distribution, environment files, datastore output paths and
// data access modes. Messages are asserted exactly.
#include <catch2/catch.hpp>

#include "spec_test_support.hpp"

using namespace spec_test;
using amlrun::spec::DistributionType;

namespace {

std::string first_line(const JobDir& dir, const std::string& text) {
  std::string all = errors_of(dir, text);
  return all.substr(0, all.find('\n'));
}

std::string first_warning(const amlrun::spec::LoadedSpec& loaded) {
  REQUIRE(loaded.warnings.size() == 1);
  std::string text = amlrun::spec::format_diagnostic(loaded.warnings[0]);
  return text.substr(0, text.find('\n'));
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("tensorflow: worker_count defaults to the process count, one per instance") {
  JobDir dir;
  auto spec = load(dir,
                   "command: x\nresources: {instance_count: 2}\n"
                   "distribution: {type: tensorflow}\n")
                  .spec;
  CHECK(spec.distribution.type == DistributionType::tensorflow);
  CHECK(spec.distribution.worker_count == 2);
  CHECK(spec.distribution.parameter_server_count == 0);
  CHECK(spec.distribution.process_count_per_instance == 1);
  CHECK(spec.total_processes() == 2);

  // With process_count_per_instance the process count is instances x that.
  spec = load(dir, "command: x\ndistribution: {type: tensorflow, process_count_per_instance: 3}\n")
             .spec;
  CHECK(spec.distribution.worker_count == 3);
  CHECK(spec.total_processes() == 3);
}

TEST_CASE("tensorflow: workers and parameter servers are the run's processes") {
  JobDir dir;
  auto spec = load(dir,
                   "command: x\nresources: {instance_count: 2}\n"
                   "distribution: {type: tensorflow, worker_count: 3, "
                   "parameter_server_count: 1}\n")
                  .spec;
  CHECK(spec.distribution.worker_count == 3);
  CHECK(spec.distribution.parameter_server_count == 1);
  CHECK(spec.distribution.process_count_per_instance == 2);
  CHECK(spec.total_processes() == 4);
  // Kept through the run directory's job.json.
  auto again = amlrun::spec::job_spec_from_json(amlrun::spec::to_json(spec));
  CHECK(again.distribution.type == DistributionType::tensorflow);
  CHECK(again.distribution.worker_count == 3);
  CHECK(again.distribution.parameter_server_count == 1);

  // Agreeing process_count_per_instance is fine.
  spec = load(dir,
              "command: x\ndistribution: {type: tensorflow, worker_count: 1, "
              "parameter_server_count: 1, process_count_per_instance: 2}\n")
             .spec;
  CHECK(spec.total_processes() == 2);
  // Without worker_count, process_count_per_instance decides; the rest are workers.
  spec = load(dir,
              "command: x\ndistribution: {type: tensorflow, parameter_server_count: 1, "
              "process_count_per_instance: 3}\n")
             .spec;
  CHECK(spec.distribution.worker_count == 2);
}

TEST_CASE("tensorflow: layouts that cannot run are named exactly") {
  JobDir dir;
  CHECK(first_line(dir,
                   "command: x\nresources: {instance_count: 2}\n"
                   "distribution: {type: tensorflow, worker_count: 3}\n") ==
        "job.yml:3:34: distribution.worker_count: 3 workers + 0 parameter servers make 3 "
        "processes, which cannot be spread evenly over 2 instances (resources.instance_count); "
        "make the sum a multiple of 2");
  CHECK(first_line(dir,
                   "command: x\ndistribution: {type: tensorflow, worker_count: 2, "
                   "process_count_per_instance: 3}\n") ==
        "job.yml:2:34: distribution.worker_count: 2 workers + 0 parameter servers make 2 "
        "processes, but resources.instance_count x distribution.process_count_per_instance is "
        "3; make them agree, or remove process_count_per_instance");
  CHECK(first_line(dir,
                   "command: x\ndistribution: {type: tensorflow, parameter_server_count: 2, "
                   "process_count_per_instance: 2}\n") ==
        "job.yml:2:34: distribution.parameter_server_count: 2 parameter servers leave no worker "
        "among the 2 processes (resources.instance_count x "
        "distribution.process_count_per_instance); give fewer parameter servers or more "
        "processes");
  CHECK(first_line(dir, "command: x\ndistribution: {type: tensorflow, worker_count: 0}\n") ==
        "job.yml:2:48: distribution.worker_count: must be between 1 and 4096, got 0");
  // The keys belong to tensorflow: elsewhere they are named, not "unknown".
  CHECK(first_line(dir, "command: x\ndistribution: {type: pytorch, worker_count: 2}\n") ==
        "job.yml:2:31: distribution.worker_count: worker_count belongs to distribution type "
        "tensorflow; for type 'pytorch', give process_count_per_instance");
  CHECK(first_line(dir, "command: x\ndistribution: {type: ray}\n") ==
        "job.yml:2:22: distribution.type: 'ray' distribution is not supported; use mpi, "
        "pytorch or tensorflow");
  std::string trainer = errors_of(dir,
                                  "type: train_pytorch_model\ntrain_data: data\n"
                                  "validation_data: data\ndistribution: {type: tensorflow}\n");
  CHECK(trainer.find("\njob.yml:4:1: distribution.type: train_pytorch_model jobs scale with MPI "
                     "allreduce; use distribution type mpi\n") != std::string::npos);
}

TEST_CASE("outputs: an Azure ML datastore path warns once and the job runs") {
  JobDir dir;
  auto loaded = load(dir,
                     "command: x\noutputs:\n  model:\n    type: uri_folder\n"
                     "    path: azureml://datastores/workspaceblobstore/paths/models/\n"
                     "    mode: upload\n");
  CHECK(first_warning(loaded) ==
        "job.yml:5:11: warning: outputs.model.path: "
        "'azureml://datastores/workspaceblobstore/paths/models/' is an Azure ML datastore, "
        "which amlrun does not upload to; the output stays in the run (outputs/model) and "
        "amlrun download fetches it");
  REQUIRE(loaded.spec.outputs.size() == 1);
  CHECK(loaded.spec.outputs[0].mode == "upload");
}

TEST_CASE("outputs: a local, file:// or other cloud path is refused with what to do") {
  JobDir dir;
  const std::string refusal =
      "an output path names an Azure ML datastore (azureml://datastores/...); amlrun keeps every "
      "output in the run (outputs/model) and writes nowhere else: remove path and copy the output "
      "with amlrun download RUN_ID --prefix outputs/model -o DIR";
  CHECK(first_line(dir, "command: x\noutputs:\n  model: {path: ./out}\n") ==
        "job.yml:3:17: outputs.model.path: " + refusal);
  CHECK(first_line(dir, "command: x\noutputs:\n  model: {path: 'file:///tmp/out'}\n") ==
        "job.yml:3:17: outputs.model.path: " + refusal);
  CHECK(
      first_line(
          dir, "command: x\noutputs:\n  model: {path: 'wasbs://c@a.blob.core.windows.net/x'}\n") ==
      "job.yml:3:17: outputs.model.path: 'wasbs://c@a.blob.core.windows.net/x' is Azure Blob "
      "Storage, which amlrun cannot read; remove path: amlrun keeps every output in the run "
      "(outputs/model) and amlrun download fetches it (for a public blob, its https:// "
      "address)");
}

TEST_CASE("modes: every Azure ML mode of its direction is accepted") {
  JobDir dir;
  for (const char* mode : {"ro_mount", "download", "direct", "eval_mount", "eval_download"}) {
    auto spec = load(dir, std::string("command: x\ninputs:\n  d: {type: uri_folder, path: data, "
                                      "mode: ") +
                              mode + "}\n")
                    .spec;
    CHECK(spec.inputs.at(0).mode == mode);
  }
  for (const char* mode : {"rw_mount", "upload", "direct"}) {
    auto spec = load(dir, std::string("command: x\noutputs:\n  o: {type: uri_folder, mode: ") +
                              mode + "}\n")
                    .spec;
    CHECK(spec.outputs.at(0).mode == mode);
  }
}

TEST_CASE("modes: a mode of the other direction is named as such") {
  JobDir dir;
  CHECK(
      first_line(dir, "command: x\ninputs:\n  d: {type: uri_folder, path: data, mode: upload}\n") ==
      "job.yml:3:43: inputs.d.mode: upload is a mode for outputs, not inputs; an input takes "
      "one of ro_mount, download, direct, eval_mount, eval_download");
  CHECK(first_line(dir, "command: x\noutputs:\n  o: {mode: ro_mount}\n") ==
        "job.yml:3:13: outputs.o.mode: ro_mount is a mode for inputs, not outputs; an output "
        "takes one of rw_mount, upload, direct");
  CHECK(first_line(dir, "command: x\noutputs:\n  o: {mode: eval_download}\n") ==
        "job.yml:3:13: outputs.o.mode: eval_download is a mode for inputs, not outputs; an "
        "output takes one of rw_mount, upload, direct");
  CHECK(first_line(dir, "command: x\noutputs:\n  o: {mode: rw_monut}\n") ==
        "job.yml:3:13: outputs.o.mode: 'rw_monut' is not one of rw_mount, upload, direct (did "
        "you mean 'rw_mount'?)");
}

TEST_CASE("environment: file: and a plain path load an Azure ML environment file") {
  JobDir dir;
  write(dir.path / "environments" / "env.yml",
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
        "name: train-env\nversion: 3\ndescription: the training environment\n"
        "image: python:3.11-slim\nconda_file: conda/env.yml\nos_type: linux\n"
        "tags: {team: vision}\n");
  write(dir.path / "environments" / "conda" / "env.yml", "dependencies: [python=3.11]\n");
  for (const char* reference :
       {"file:./environments/env.yml", "environments/env.yml", "./environments/env.yml"}) {
    auto loaded = load(dir, std::string("command: x\nenvironment: ") + reference + "\n");
    CHECK(loaded.warnings.empty());
    CHECK(loaded.spec.environment.image == "python:3.11-slim");
    // Relative to the environment file, not to the job file.
    CHECK(loaded.spec.environment.conda_file ==
          (dir.path / "environments" / "conda" / "env.yml").string());
    CHECK(loaded.spec.environment.name == "train-env");
    CHECK(loaded.spec.environment.version == "3");
  }
  // A build context, also relative to the environment file.
  write(dir.path / "environments" / "docker" / "Dockerfile", "FROM python:3.11\n");
  write(dir.path / "environments" / "build.yaml",
        "build:\n  path: docker\n  dockerfile_path: Dockerfile\n"
        "inference_config: {liveness_route: {port: 5001, path: /}}\n");
  auto built = load(dir, "command: x\nenvironment: file:environments/build.yaml\n");
  CHECK(built.spec.environment.build_context == (dir.path / "environments" / "docker").string());
  CHECK(first_warning(built) ==
        "environments/build.yaml:4:1: warning: inference_config: inference_config is for Azure "
        "ML online deployments; ignored for a job");
}

TEST_CASE("environment file: errors point into that file at file:line:col") {
  JobDir dir;
  write(dir.path / "env" / "env.yml",
        "name: e\nimage: python:3.11\nconda_file: missing.yml\nos_tpye: linux\n");
  std::string all = errors_of(dir, "command: x\nenvironment: file:env/env.yml\n");
  CHECK(all ==
        "env/env.yml:3:13: conda_file: the conda file 'missing.yml' does not exist "
        "(looked for " +
            (dir.path / "env" / "missing.yml").string() +
            ")\n"
            "    3 | conda_file: missing.yml\n"
            "      |             ^\n"
            "env/env.yml:4:1: os_tpye: unknown key 'os_tpye' (did you mean 'os_type'?)\n"
            "    4 | os_tpye: linux\n"
            "      | ^\n"
            "2 errors in job.yml");
  write(dir.path / "env" / "list.yml", "- image: python\n");
  CHECK(first_line(dir, "command: x\nenvironment: env/list.yml\n") ==
        "env/list.yml:1:1: an environment file is a YAML map with image, conda_file or build; "
        "got a list");
  write(dir.path / "env" / "bad.yml", "image: [python\n");
  CHECK(first_line(dir, "command: x\nenvironment: env/bad.yml\n").rfind("env/bad.yml:", 0) == 0);
  CHECK(first_line(dir, "command: x\nenvironment: file:./nowhere/env.yml\n") ==
        "job.yml:2:14: environment: the environment file './nowhere/env.yml' does not exist "
        "(looked for " +
            (dir.path / "nowhere" / "env.yml").string() + ")");
  CHECK(first_line(dir, "command: x\nenvironment: python:3.11\n") ==
        "job.yml:2:14: environment: 'python:3.11' is not an environment; write a map with image "
        "and/or conda_file (or build.path), name an environment file (file:./env.yml), or "
        "remove environment to use the host environment");
}

TEST_CASE("environment file: the job file's errors come first, then the environment file's") {
  JobDir dir;
  write(dir.path / "env.yml", "image: python:3.11\nimgae: x\n");
  std::string all = errors_of(dir, "command: x\nenvironment: env.yml\ncompute: azureml:gpu\n");
  auto job_error = all.find("job.yml:3:10: compute:");
  auto file_error = all.find("env.yml:2:1: imgae:");
  REQUIRE(job_error != std::string::npos);
  REQUIRE(file_error != std::string::npos);
  CHECK(job_error < file_error);
  CHECK(all.substr(all.rfind('\n') + 1) == "2 errors in job.yml");
}
