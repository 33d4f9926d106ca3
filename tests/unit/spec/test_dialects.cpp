#include <catch2/catch.hpp>

#include "spec_test_support.hpp"

using namespace spec_test;
using amlrun::spec::DistributionType;
using amlrun::spec::InputSpec;
using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("a command job is normalised with paths resolved against the job file") {
  JobDir dir;
  auto loaded = load(dir, R"(
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
code: src
command: >-
  python train.py --data ${{inputs.data}} --lr ${{inputs.lr}}
  --csv ${{inputs.csv}} --remote ${{inputs.remote}} --out ${{outputs.model}}
inputs:
  data:
    type: uri_folder
    path: data
  csv:
    type: uri_file
    path: file://)" + (dir.path / "data" / "iris.csv").string() +
                              R"(
  remote:
    type: uri_file
    path: https://example.com/data/iris.csv
  lr: 0.1
outputs:
  model:
    type: uri_folder
environment:
  image: python:3.11
  conda_file: conda.yml
environment_variables:
  OMP_NUM_THREADS: 2
compute: local
resources:
  instance_count: 2
  shm_size: 2g
distribution:
  type: pytorch
  process_count_per_instance: 3
limits:
  timeout: 900
experiment_name: exp1
display_name: first try
tags: {team: vision}
)");
  const auto& spec = loaded.spec;
  CHECK(loaded.warnings.empty());
  CHECK(spec.dialect == amlrun::spec::Dialect::command);
  CHECK(spec.code_dir == dir.path / "src");
  CHECK(spec.command ==
        "python train.py --data ${{inputs.data}} --lr ${{inputs.lr}} --csv ${{inputs.csv}} "
        "--remote ${{inputs.remote}} --out ${{outputs.model}}");
  REQUIRE(spec.inputs.size() == 4);
  CHECK(spec.inputs[0].name == "data");
  CHECK(spec.inputs[0].kind == InputSpec::Kind::folder);
  CHECK(spec.inputs[0].path == (dir.path / "data").string());
  CHECK(spec.inputs[0].mode == "ro_mount");
  CHECK(spec.inputs[1].kind == InputSpec::Kind::file);
  CHECK(spec.inputs[1].path == (dir.path / "data" / "iris.csv").string());
  CHECK(spec.inputs[2].url == "https://example.com/data/iris.csv");
  CHECK(spec.inputs[3].kind == InputSpec::Kind::literal);
  CHECK(spec.inputs[3].value == "0.1");
  REQUIRE(spec.outputs.size() == 1);
  CHECK(spec.outputs[0].name == "model");
  CHECK(spec.environment.image == "python:3.11");
  CHECK(spec.environment.conda_file == (dir.path / "conda.yml").string());
  CHECK(spec.environment_variables == Pairs{{"OMP_NUM_THREADS", "2"}});
  CHECK(spec.instance_count == 2);
  CHECK(spec.shm_size == "2g");
  CHECK(spec.distribution.type == DistributionType::pytorch);
  CHECK(spec.distribution.process_count_per_instance == 3);
  CHECK(spec.total_processes() == 6);
  CHECK(spec.timeout_seconds == 900);
  CHECK(spec.experiment_name == "exp1");
  CHECK(spec.display_name == "first try");
  CHECK(spec.tags == Pairs{{"team", "vision"}});

  // The normalised form survives the round trip through run directories.
  auto again =
      amlrun::spec::job_spec_from_json(nlohmann::ordered_json::parse(to_json(spec).dump()));
  CHECK(to_json(again) == to_json(spec));
}

TEST_CASE("all errors of a file are reported at once, in file order") {
  JobDir dir;
  CHECK(
      errors_of(dir, R"(command: python train.py --x ${{inputs.epoch}}
code: srcc
inputs:
  epochs: 10
resources:
  instance_count: 0
distribution:
  type: pytorch
  proces_count: 2
)") ==
      R"(job.yml:1:30: command: ${{inputs.epoch}} refers to an input that is not declared under inputs (did you mean 'epochs'?)
    1 | command: python train.py --x ${{inputs.epoch}}
      |                              ^
job.yml:2:7: code: the source directory 'srcc' does not exist (looked for )" +
          (dir.path / "srcc").string() + R"()
    2 | code: srcc
      |       ^
job.yml:6:19: resources.instance_count: must be between 1 and 1000, got 0
    6 |   instance_count: 0
      |                   ^
job.yml:9:3: distribution.proces_count: unknown key 'proces_count' (did you mean 'process_count_per_instance'?)
    9 |   proces_count: 2
      |   ^
4 errors in job.yml)");
}

TEST_CASE("wrong types and out-of-range numbers say what was expected") {
  JobDir dir;
  auto first_line = [&](const std::string& text) {
    std::string all = errors_of(dir, text);
    return all.substr(0, all.find('\n'));
  };
  CHECK(first_line("command: x\nresources: {instance_count: two}\n") ==
        "job.yml:2:29: resources.instance_count: expected an integer, got 'two'");
  CHECK(first_line("command: x\nresources: {instance_count: \"2\"}\n") ==
        "job.yml:2:29: resources.instance_count: expected an integer, got the string \"2\" "
        "(remove the quotes)");
  CHECK(first_line("command: x\nresources: {instance_count: 99999999999999999999999}\n") ==
        "job.yml:2:29: resources.instance_count: must be between 1 and 1000, got "
        "99999999999999999999999");
  CHECK(first_line("command: x\nlimits: {timeout: -5}\n") ==
        "job.yml:2:19: limits.timeout: must be between 1 and 31622400, got -5");
  CHECK(first_line("command: x\nlimits: {timeout: 1.5}\n") ==
        "job.yml:2:19: limits.timeout: expected an integer, got '1.5'");
  CHECK(first_line("command: [a, b]\n") == "job.yml:1:10: command: expected a string, got a list");
  CHECK(first_line("command: x\ntags: {a: 1, b: [1]}\n") ==
        "job.yml:2:17: tags.b: expected a string, got a list");
  CHECK(first_line("command: x\ndistribution: {type: horovod}\n") ==
        "job.yml:2:22: distribution.type: 'horovod' is not one of mpi, pytorch, tensorflow");
  CHECK(first_line("command: x\ndistribution: {type: pytorh}\n") ==
        "job.yml:2:22: distribution.type: 'pytorh' is not one of mpi, pytorch, tensorflow (did you "
        "mean "
        "'pytorch'?)");
  CHECK(first_line("command: x\nresources: {shm_size: lots}\n") ==
        "job.yml:2:23: resources.shm_size: 'lots' is not a size such as 2g, 512m or 1073741824");
  CHECK(first_line("command: x\nexperiment_name: ../escape\n") ==
        "job.yml:2:18: experiment_name: invalid experiment name '../escape': use 1-128 characters "
        "from [A-Za-z0-9._-], starting with a letter or digit");
  CHECK(first_line("command: x\nenvironment_variables: {AMLRUN_RUN_ID: x}\n") ==
        "job.yml:2:25: environment_variables.AMLRUN_RUN_ID: variables starting with AMLRUN_ are "
        "set by amlrun for every run; choose another name");
  CHECK(first_line("command: x\nenvironment_variables: {\"A-B\": x}\n") ==
        "job.yml:2:25: environment_variables.A-B: 'A-B' is not a valid variable name (letters, "
        "digits and '_', not starting with a digit)");
}

TEST_CASE("a path that is a symbolic link loop is named as such, not as missing") {
  JobDir dir;
  fs::create_symlink("loop", dir.path / "loop");
  CHECK(errors_of(dir, "command: x\ncode: loop\n") ==
        "job.yml:2:7: code: the source directory 'loop' is a symbolic link loop (" +
            (dir.path / "loop").string() +
            "): following its links never reaches a file or directory; point the link at the real "
            "directory\n"
            "    2 | code: loop\n"
            "      |       ^\n"
            "1 error in job.yml");
  fs::create_symlink("b", dir.path / "a");
  fs::create_symlink("a", dir.path / "b");
  CHECK(
      errors_of(dir, "command: x\ninputs:\n  d: {type: uri_file, path: a}\n")
          .starts_with("job.yml:3:29: inputs.d.path: the input 'd' 'a' is a symbolic link loop (" +
                       (dir.path / "a").string() +
                       "): following its links never reaches a file or directory; point the "
                       "link at the real file\n"));
}

TEST_CASE("more than one process needs a distribution") {
  JobDir dir;
  CHECK(errors_of(dir, "command: x\nresources:\n  instance_count: 2\n") ==
        "job.yml:3:3: resources.instance_count: 2 processes would run but no distribution is "
        "given; add distribution: {type: pytorch} (torch.distributed) or {type: mpi} (mpirun)\n"
        "    3 |   instance_count: 2\n"
        "      |   ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: x\ndistribution: {process_count_per_instance: 2}\n")
            .starts_with(
                "job.yml:2:15: distribution: missing 'type' (mpi, pytorch or tensorflow)\n"));
}

TEST_CASE("placeholders must name declared inputs and outputs") {
  JobDir dir;
  CHECK(errors_of(dir, "command: echo ${{outputs.x}} ${{search_space.lr}} ${{foo}} ${{inputs.a\n")
            .starts_with(
                "job.yml:1:15: command: ${{outputs.x}} refers to an output that is not declared "
                "under outputs\n"));
  std::string all = errors_of(dir, "command: echo ${{search_space.lr}} ${{foo}} ${{inputs.a\n");
  CHECK(all.find("command: ${{search_space.lr}} names a sweep parameter, and this is not a "
                 "sweep's trial; write a sweep job (type: sweep, with search_space and trial) or "
                 "give the value as an input") != std::string::npos);
  CHECK(all.find("command: ${{foo}} is not a placeholder amlrun knows; use ${{inputs.NAME}}, "
                 "${{outputs.NAME}} or (in a sweep's trial) ${{search_space.NAME}}") !=
        std::string::npos);
  CHECK(all.find("command: '${{' is not closed with '}}'") != std::string::npos);
}

TEST_CASE("inputs: literal forms, modes and http(s) rules") {
  JobDir dir;
  auto first_line = [&](const std::string& text) {
    std::string all = errors_of(dir, text);
    return all.substr(0, all.find('\n'));
  };
  CHECK(first_line("command: x\ninputs:\n  d: {type: uri_folder, path: https://x/y}\n") ==
        "job.yml:3:31: inputs.d.path: an http(s) input is downloaded as one file: declare it with "
        "type: uri_file");
  CHECK(first_line("command: x\ninputs:\n  d: {type: uri_folder, path: data, mode: rw_mount}\n") ==
        "job.yml:3:43: inputs.d.mode: rw_mount is a mode for outputs, not inputs; an input takes "
        "one of ro_mount, download, direct, eval_mount, eval_download");
  CHECK(first_line("command: x\ninputs:\n  d: {type: uri_fil, path: data}\n") ==
        "job.yml:3:13: inputs.d.type: 'uri_fil' is not one of uri_file, uri_folder, "
        "mlflow_model, custom_model, triton_model, mltable, string, integer, number, boolean "
        "(did you mean 'uri_file'?)");
  CHECK(first_line("command: x\ninputs:\n  d: {type: uri_file, path: data}\n") ==
        "job.yml:3:29: inputs.d.path: the input 'd' 'data' is not a regular file (" +
            (dir.path / "data").string() + ")");
  CHECK(first_line("command: x\ninputs:\n  d:\n") ==
        "job.yml:3:3: inputs.d: the input has no value; give a literal (epochs: 10) or a map "
        "with type and path");
  CHECK(first_line("command: x\ninputs:\n  d: {type: integer, default: 3}\n") ==
        "job.yml:3:13: inputs.d.type: a literal input is written as d: <value> (for example d: "
        "10), not as a map");
  CHECK(first_line("command: x\ninputs:\n  d: {type: uri_file, path: \"ftp://h/x\"}\n") ==
        "job.yml:3:29: inputs.d.path: unsupported URI scheme 'ftp' in 'ftp://h/x'; give a local "
        "path, a file:// URI or an http(s) URL");
  CHECK(first_line("command: x\ninputs:\n  \"1x\": 3\n") ==
        "job.yml:3:3: inputs.1x: '1x' is not a valid input name (letters, digits and '_', not "
        "starting with a digit)");
  auto loaded = load(dir, "command: x\ninputs:\n  s: 'hello world'\n  n: 42\n  b: true\n");
  CHECK(loaded.spec.inputs[0].value == "hello world");
  CHECK(loaded.spec.inputs[1].value == "42");
  CHECK(loaded.spec.inputs[2].value == "true");
}

TEST_CASE("an estimator job flattens script_params into argv in order") {
  JobDir dir;
  auto loaded = load(dir, R"(
source_directory: src
entry_script: train.py
script_params:
  --epochs: 5
  --name: "a b"
  --verbose:
  --lr: 1e-3
compute_target: local
node_count: 1
process_count_per_node: 2
distributed_backend: nccl
pip_packages: [torchvision==0.14.1]
conda_packages: [numpy]
use_gpu: false
max_run_duration_seconds: 60
environment_variables: {A: b}
)");
  const auto& spec = loaded.spec;
  CHECK(spec.dialect == amlrun::spec::Dialect::estimator);
  CHECK(spec.code_dir == dir.path / "src");
  CHECK(spec.argv == std::vector<std::string>{"python", "train.py", "--epochs", "5", "--name",
                                              "a b", "--verbose", "--lr", "1e-3"});
  CHECK(spec.distribution.type == DistributionType::pytorch);
  CHECK(spec.distribution.backend == "nccl");
  CHECK(spec.distribution.process_count_per_instance == 2);
  CHECK(spec.environment.pip_packages == std::vector<std::string>{"torchvision==0.14.1"});
  CHECK(spec.environment.conda_packages == std::vector<std::string>{"numpy"});
  CHECK(spec.environment.use_gpu == false);
  CHECK(spec.timeout_seconds == 60);

  auto mpi = load(dir,
                  "source_directory: src\nentry_script: train.py\ndistributed_backend: mpi\n"
                  "node_count: 2\n");
  CHECK(mpi.spec.distribution.type == DistributionType::mpi);
  CHECK(mpi.spec.instance_count == 2);
  CHECK(load(dir, "source_directory: src\nentry_script: train.py\nscript_params: [--a, '1']\n")
            .spec.argv == std::vector<std::string>{"python", "train.py", "--a", "1"});
}

TEST_CASE("estimator errors") {
  JobDir dir;
  auto first_line = [&](const std::string& text) {
    std::string all = errors_of(dir, text);
    return all.substr(0, all.find('\n'));
  };
  CHECK(first_line("source_directory: src\nentry_script: ../../etc/passwd\n") ==
        "job.yml:2:15: entry_script: '../../etc/passwd' is outside source_directory; give a path "
        "relative to " +
            (dir.path / "src").string());
  CHECK(first_line("source_directory: src\nentry_script: nope.py\n") ==
        "job.yml:2:15: entry_script: 'nope.py' does not exist in source_directory " +
            (dir.path / "src").string());
  CHECK(first_line("source_directory: src\nentry_script: train.py\nprocess_count_per_node: 4\n") ==
        "job.yml:3:1: process_count_per_node: 4 processes would run but distributed_backend is "
        "not set; add distributed_backend: mpi, nccl or gloo");
  CHECK(
      first_line("source_directory: src\nentry_script: train.py\nscript_params: {--a: [1, 2]}\n") ==
      "job.yml:3:22: script_params.--a: expected a single value, got a list (write the "
      "arguments as a list to repeat a flag)");
  CHECK(first_line("source_directory: src\nentry_script: train.py\nuse_gpu: yes\n") ==
        "job.yml:3:10: use_gpu: expected true or false, got 'yes'");
  CHECK(first_line("source_directory: src\nentry_script: train.py\nentry_scrpt: x\n") ==
        "job.yml:3:1: entry_scrpt: unknown key 'entry_scrpt' (did you mean 'entry_script'?)");
}

TEST_CASE("mixing dialects is an error naming the keys of each") {
  JobDir dir;
  CHECK(errors_of(dir, "command: x\ncode: src\nentry_script: train.py\n") ==
        "job.yml:3:1: entry_script: this file mixes the command-job dialect (command, code) and "
        "the estimator dialect (entry_script); use one of them\n"
        "    3 | entry_script: train.py\n"
        "      | ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "type: train_pytorch_model\ncommand: x\n")
            .starts_with(
                "job.yml:2:1: command: a train_pytorch_model job does not take command; it runs "
                "amlrun-worker (remove it, or write a command job)\n"));
  CHECK(errors_of(dir, "type: pipeline\n")
            .starts_with("job.yml:1:7: type: 'pipeline' jobs are not supported; amlrun runs "
                         "command jobs, estimator jobs, type: train_pytorch_model, type: "
                         "score_image_model and type: sweep\n"));
  CHECK(errors_of(dir, "display_name: x\n")
            .starts_with("job.yml:1:1: cannot tell what to run: give 'command' (a command job), "
                         "'entry_script' (an "
                         "estimator job) or 'type: train_pytorch_model'\n"));
}

TEST_CASE("a trainer job becomes an amlrun-worker run") {
  JobDir dir;
  fs::create_directories(dir.path / "images" / "cat");
  CHECK(errors_of(dir, "type: train_pytorch_model\ntrain_data: data\nvalidation_data: images\n") ==
        "job.yml:2:13: train_data: 'data' is not a labelled image folder: it has no class "
        "sub-folders (one sub-folder of images per class)\n"
        "    2 | train_data: data\n"
        "      |             ^\n"
        "1 error in job.yml");
  fs::create_directories(dir.path / "data" / "dog");
  auto loaded = load(dir, R"(
type: train_pytorch_model
model: resnet18
train_data: data
validation_data: {path: data}
epochs: 2
batch_size: 32
learning_rate: 0.01
image_size: 32
resources: {instance_count: 1}
distribution: {type: mpi, process_count_per_instance: 2}
)");
  const auto& spec = loaded.spec;
  CHECK(spec.dialect == amlrun::spec::Dialect::trainer);
  CHECK(spec.argv == std::vector<std::string>{"amlrun-worker",
                                              "train",
                                              "--model",
                                              "resnet18",
                                              "--train-data",
                                              "${{inputs.train_data}}",
                                              "--validation-data",
                                              "${{inputs.validation_data}}",
                                              "--epochs",
                                              "2",
                                              "--batch-size",
                                              "32",
                                              "--learning-rate",
                                              "0.01",
                                              "--seed",
                                              "1",
                                              "--patience",
                                              "3",
                                              "--output-dir",
                                              "outputs",
                                              "--image-size",
                                              "32"});
  CHECK(spec.inputs.size() == 2);
  CHECK(spec.inputs[0].path == (dir.path / "data").string());
  CHECK(spec.distribution.type == DistributionType::mpi);
  CHECK(spec.total_processes() == 2);
  CHECK(spec.trainer->onnx);
  // onnx: false is the worker's --no-onnx (no model/model.onnx).
  auto without_onnx = load(
      dir, "type: train_pytorch_model\ntrain_data: data\nvalidation_data: data\nonnx: false\n");
  CHECK(without_onnx.spec.argv.back() == "--no-onnx");
  CHECK(!without_onnx.spec.trainer->onnx);
  CHECK(errors_of(dir,
                  "type: train_pytorch_model\ntrain_data: data\nvalidation_data: data\n"
                  "model: resnet19\n")
            .starts_with("job.yml:4:8: model: 'resnet19' is not one of resnet18, resnet34, "
                         "resnet50, densenet121 (did you mean 'resnet18'?)\n"));
  CHECK(errors_of(dir, "type: train_pytorch_model\nvalidation_data: data\n")
            .starts_with("job.yml:1:1: missing 'train_data' (a labelled image folder: one "
                         "sub-folder per class)\n"));
}

TEST_CASE("--set overrides any field and is validated like the file") {
  JobDir dir;
  auto loaded = load(dir, "command: x\nresources: {instance_count: 1}\n",
                     {"resources.instance_count=2", "distribution.type=mpi", "command=echo 'a b'",
                      "tags.owner=me", "limits.timeout=30"});
  CHECK(loaded.spec.instance_count == 2);
  CHECK(loaded.spec.distribution.type == DistributionType::mpi);
  CHECK(loaded.spec.command == "echo 'a b'");
  CHECK(loaded.spec.tags == Pairs{{"owner", "me"}});
  CHECK(loaded.spec.timeout_seconds == 30);
  CHECK(errors_of(
            dir, "command: x\n",
            {"noeq", "resources.instance_cont=2", "limits.timeout=abc", "command.x=1", "a..b=1"}) ==
        "--set noeq: expected key.path=value (for example resources.instance_count=2)\n"
        "--set command.x=1: command.x: cannot set a key inside command: it is 'x', not a map\n"
        "--set a..b=1: the key path 'a..b' has an empty part\n"
        "--set resources.instance_cont=2: resources.instance_cont: unknown key 'instance_cont' "
        "(did you mean 'instance_count'?)\n"
        "--set limits.timeout=abc: limits.timeout: expected an integer, got 'abc'\n"
        "5 errors in job.yml");
}

TEST_CASE("Azure-only settings are explained, not called unknown") {
  JobDir dir;
  auto loaded = load(dir,
                     "command: x\nservices: {jupyter: {type: jupyter_lab}}\nidentity: {type: "
                     "managed}\nqueue_settings: {job_tier: spot}\n");
  REQUIRE(loaded.warnings.size() == 3);
  CHECK(amlrun::spec::format_diagnostic(loaded.warnings[0]) ==
        "job.yml:2:1: warning: services: interactive services (VS Code, Jupyter, TensorBoard, "
        "SSH) run only on Azure ML; ignored\n"
        "    2 | services: {jupyter: {type: jupyter_lab}}\n"
        "      | ^");
  auto first_line = [&](const std::string& text) {
    std::string all = errors_of(dir, text);
    return all.substr(0, all.find('\n'));
  };
  CHECK(first_line("command: x\ncode: azureml:my-code:1\n") ==
        "job.yml:2:7: code: 'azureml:my-code:1' refers to an Azure ML asset, which exists only in "
        "an Azure ML workspace; give the source directory as a local path");
  CHECK(first_line("command: x\ninputs:\n  d: {type: uri_file, path: "
                   "\"azureml://datastores/blob/paths/x.csv\"}\n") ==
        "job.yml:3:29: inputs.d.path: 'azureml://datastores/blob/paths/x.csv' is an Azure ML "
        "datastore URI, which amlrun cannot read; give a local path, a file:// URI or an "
        "http(s) URL");
}

TEST_CASE("a command with no value, an empty one and a blank one are all errors") {
  JobDir dir;
  // `command:` with nothing after it once ran nothing and reported Completed.
  CHECK(errors_of(dir, "command:\n") ==
        "job.yml:1:1: command: the command is empty; give what to run, e.g. python train.py\n"
        "    1 | command:\n"
        "      | ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: ''\n")
            .starts_with("job.yml:1:10: command: the command is empty; give what to run, e.g. "
                         "python train.py\n"));
  CHECK(errors_of(dir, "command: \"  \"\n")
            .starts_with("job.yml:1:10: command: the command is empty; give what to run"));
  CHECK(errors_of(dir, "command: ~\n")
            .starts_with("job.yml:1:1: command: the command is empty; give what to run"));
  CHECK(errors_of(dir, "command: x\n", {"command="}) ==
        "--set command=: command: the command is empty; give what to run, e.g. python train.py\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: x\n", {"command= "}) ==
        "--set command= : command: the command is empty; give what to run, e.g. python train.py\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "code: src\n")
            .starts_with("job.yml:1:1: missing 'command' (what to run, e.g. python train.py)\n"));
  // The estimator's entry_script follows the same rule.
  CHECK(errors_of(dir, "source_directory: src\nentry_script:\n")
            .starts_with("job.yml:2:1: entry_script: the entry script is empty; give the script "
                         "to run, e.g. train.py\n"));
  CHECK(errors_of(dir, "source_directory: src\nentry_script: ' '\n")
            .starts_with("job.yml:2:15: entry_script: the entry script is empty"));
}

TEST_CASE("--set values are taken as written, not read as YAML") {
  JobDir dir;
  const std::string job = "command: x\ninputs:\n  x: plain\n";
  // Read as YAML, "#b" was a comment, a second line beginning with # was
  // dropped, and a newline folded into a space.
  auto loaded = load(
      dir, job,
      {"environment_variables.B=a #b", "command=python t.py\n#SBATCH --mem=1G",
       "inputs.x=line 1\nline 2", "description=  padded  ", "tags.k=null", "display_name=\"a\" b"});
  CHECK(loaded.spec.environment_variables == Pairs{{"B", "a #b"}});
  CHECK(loaded.spec.command == "python t.py\n#SBATCH --mem=1G");
  REQUIRE(loaded.spec.inputs.size() == 1);
  CHECK(loaded.spec.inputs[0].value == "line 1\nline 2");
  CHECK(loaded.spec.description == "  padded  ");
  CHECK(loaded.spec.tags == Pairs{{"k", "null"}});
  CHECK(loaded.spec.display_name == "\"a\" b");
  // One whole quoted string or flow collection is YAML; numbers and
  // booleans still fill their fields.
  auto yaml = load(dir, job,
                   {"command=\"echo \\\"hi\\\"\"", "description='it''s'", "tags={a: '1', b: x}",
                    "limits.timeout=30", "environment_variables.C=\"a #b\""});
  CHECK(yaml.spec.command == "echo \"hi\"");
  CHECK(yaml.spec.description == "it's");
  CHECK(yaml.spec.tags == Pairs{{"a", "1"}, {"b", "x"}});
  CHECK(yaml.spec.timeout_seconds == 30);
  CHECK(yaml.spec.environment_variables == Pairs{{"C", "a #b"}});
  CHECK(errors_of(dir, job, {"limits.timeout=30 #s", "description=\xff"}) ==
        "--set description=\\xff: the value is not valid UTF-8 (at byte 1); give UTF-8 text\n"
        "--set limits.timeout=30 #s: limits.timeout: expected an integer, got '30 #s'\n"
        "2 errors in job.yml");
}
