// type: score_image_model: the job file read into an amlrun-worker predict
// run, its model reference handed to the workspace's resolver, and every
// mistake at its line and column.
#include <catch2/catch.hpp>

#include "lib/util/error.hpp"
#include "spec_test_support.hpp"

using namespace spec_test;
using amlrun::spec::LoadOptions;
using amlrun::spec::ModelReference;
using amlrun::spec::ResolvedModel;

namespace {

// A model folder as training writes it (contents do not matter here).
fs::path model_folder(const JobDir& dir, const std::string& name, bool onnx = true) {
  fs::path folder = dir.path / name;
  fs::create_directories(folder);
  for (const char* file : {"model.pt", "config.json", "labels.json"})
    std::ofstream(folder / file) << "x";
  if (onnx) std::ofstream(folder / "model.onnx") << "x";
  return folder;
}

// The first error's line (the file's excerpt under it is not repeated here).
std::string headline(const std::string& errors) {
  return errors.substr(0, errors.find('\n'));
}

std::string load_errors(const JobDir& dir, const std::string& text, const LoadOptions& options) {
  try {
    amlrun::spec::load_job_spec_text("job.yml", text, dir.path, options);
  } catch (const std::exception& error) {
    return error.what();
  }
  return "";
}

std::string errors_in(const JobDir& dir, const std::string& text) {
  return headline(errors_of(dir, text));
}

std::string load_error(const JobDir& dir, const std::string& text, const LoadOptions& options) {
  return headline(load_errors(dir, text, options));
}

}  // namespace

TEST_CASE("a scoring job becomes an amlrun-worker predict run") {
  JobDir dir;
  fs::path model = model_folder(dir, "model");
  auto loaded = load(dir, R"(type: score_image_model
model: model
data: data
output: scores/out.jsonl
top_k: 3
batch_size: 16
engine: onnx
strict: true
threads: 2
)");
  const auto& spec = loaded.spec;
  CHECK(spec.dialect == amlrun::spec::Dialect::score);
  CHECK(spec.argv == std::vector<std::string>{
                         "amlrun-worker", "predict", "--model-dir", "${{inputs.model}}", "--data",
                         "${{inputs.data}}", "--output", "outputs/scores/out.jsonl", "--top-k", "3",
                         "--batch-size", "16", "--engine", "onnx", "--strict", "--threads", "2"});
  REQUIRE(spec.find_input("model"));
  CHECK(spec.find_input("model")->path == model.string());
  CHECK(spec.find_input("data")->path == (dir.path / "data").string());
  REQUIRE(spec.score);
  CHECK(spec.score->model == "model");
  CHECK(spec.score->model_resolved == model.string());
  // job.json keeps it, so the run's record says what was scored with what.
  auto back = amlrun::spec::job_spec_from_json(amlrun::spec::to_json(spec));
  REQUIRE(back.score);
  CHECK(back.score->output == "scores/out.jsonl");
  CHECK(back.score->engine == "onnx");
  CHECK(back.dialect == amlrun::spec::Dialect::score);
}

TEST_CASE("a scoring job's defaults: top 5, batch 64, torch, predictions.csv") {
  JobDir dir;
  model_folder(dir, "model", /*onnx=*/false);
  auto loaded = load(dir, "type: score_image_model\nmodel: {path: model}\ndata: {path: data}\n");
  CHECK(loaded.spec.argv == std::vector<std::string>{
                                "amlrun-worker", "predict", "--model-dir", "${{inputs.model}}",
                                "--data", "${{inputs.data}}", "--output", "outputs/predictions.csv",
                                "--top-k", "5", "--batch-size", "64", "--engine", "torch"});
}

TEST_CASE("registered models and run outputs go to the workspace's resolver") {
  JobDir dir;
  fs::path registered = model_folder(dir, "registry-copy");
  std::vector<std::string> asked;
  LoadOptions options;
  options.resolve_model = [&](const ModelReference& reference) {
    asked.push_back(reference.kind == ModelReference::Kind::registered
                        ? "registered " + reference.text
                        : "run " + reference.run_id + " " + reference.path);
    if (reference.text == "gone:2") throw amlrun::util::InputError("model gone has no version 2");
    return ResolvedModel{registered, "resnet:3"};
  };
  auto loaded = amlrun::spec::load_job_spec_text(
      "job.yml", "type: score_image_model\nmodel: azureml:resnet:3\ndata: data\n", dir.path,
      options);
  CHECK(loaded.spec.find_input("model")->path == registered.string());
  CHECK(loaded.spec.score->model_resolved == "resnet:3");
  amlrun::spec::load_job_spec_text(
      "job.yml", "type: score_image_model\nmodel: resnet@latest\ndata: data\n", dir.path, options);
  amlrun::spec::load_job_spec_text(
      "job.yml", "type: score_image_model\nmodel: runs:/R1\ndata: data\n", dir.path, options);
  amlrun::spec::load_job_spec_text(
      "job.yml", "type: score_image_model\nmodel: runs:/R1/outputs/best\ndata: data\n", dir.path,
      options);
  CHECK(asked == std::vector<std::string>{"registered resnet:3", "registered resnet@latest",
                                          "run R1 outputs/model", "run R1 outputs/best"});
  CHECK(load_error(dir, "type: score_image_model\nmodel: gone:2\ndata: data\n", options) ==
        "job.yml:2:8: model: model gone has no version 2");
  // Without a workspace there is nothing to look a name up in.
  CHECK(errors_in(dir, "type: score_image_model\nmodel: resnet:3\ndata: data\n") ==
        "job.yml:2:8: model: 'resnet:3' is looked up in a workspace, and there is none here; run "
        "inside a workspace (amlrun init), or give the model's folder");
}

TEST_CASE("scoring job mistakes are reported at their line and column") {
  JobDir dir;
  model_folder(dir, "model", /*onnx=*/false);
  CHECK(errors_in(dir, "type: score_image_model\ndata: data\n") ==
        "job.yml:1:1: missing 'model' (give the model/ folder of a training run (e.g. "
        "outputs/model after amlrun download), a registered model NAME:VERSION or NAME@latest, "
        "or runs:/RUN_ID/outputs/model)");
  CHECK(errors_in(dir, "type: score_image_model\nmodel: model\n") ==
        "job.yml:1:1: missing 'data' (a folder of images, searched recursively, or an image "
        "file)");
  CHECK(errors_in(dir, "type: score_image_model\nmodel: model\ndata: data\nengine: onnx\n") ==
        "job.yml:2:8: model: 'model' is not a model folder (model.onnx is missing); "
        "'amlrun-worker export --model-dir " +
            (dir.path / "model").string() + "' writes it, or use engine: torch");
  CHECK(errors_in(dir, "type: score_image_model\nmodel: data\ndata: data\n") ==
        "job.yml:2:8: model: 'data' is not a model folder (model.pt is missing); give the "
        "model/ folder of a training run (e.g. outputs/model after amlrun download), a "
        "registered model NAME:VERSION or NAME@latest, or runs:/RUN_ID/outputs/model");
  for (const char* output : {"/etc/x.csv", "../x.csv", "a/../../x.csv", "scores/", "./x.csv"}) {
    CHECK(errors_in(dir, std::string("type: score_image_model\nmodel: model\ndata: data\n"
                                     "output: ") +
                             output + "\n") ==
          "job.yml:4:9: output: '" + std::string(output) +
              "' must be a file name below outputs/, such as predictions.csv or "
              "scores/run.jsonl");
  }
  CHECK(errors_in(dir, "type: score_image_model\nmodel: model\ndata: data\noutput: x.txt\n") ==
        "job.yml:4:9: output: 'x.txt' must end in .csv or .jsonl (the format follows the "
        "name)");
  CHECK(errors_of(dir,
                  "type: score_image_model\nmodel: model\ndata: data\nengine: onnx\n"
                  "device: cuda\n")
            .find("job.yml:5:9: device: engine: onnx runs on the CPU (OpenCV's DNN module); use "
                  "engine: torch for device: cuda") != std::string::npos);
  CHECK(errors_in(dir,
                  "type: score_image_model\nmodel: model\ndata: data\nresources: "
                  "{instance_count: 2}\n")
            .find("job.yml:4:1: resources: a score_image_model job runs one process") !=
        std::string::npos);
  CHECK(errors_in(dir, "type: score_image_model\nmodel: model\ndata: data\ncommand: echo\n") ==
        "job.yml:4:1: command: a score_image_model job does not take command; it runs "
        "amlrun-worker (remove it, or write a command job)");
  CHECK(errors_in(dir, "type: score_image_modle\n")
            .starts_with("job.yml:1:7: type: 'score_image_modle' is not a job type amlrun knows "
                         "(command, train_pytorch_model, score_image_model or sweep) (did you "
                         "mean 'score_image_model'?)"));
}
