// amlrun-worker: parses the command line and hands over to lib/train. The
// one catch for errors is here: "amlrun-worker: error: ..." and the exit code
// of DESIGN.md (2 for anything the user passed, 1 for a failed run).
#include <CLI/CLI.hpp>

#include <fmt/format.h>
#include <torch/version.h>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lib/train/config.hpp"
#include "lib/train/messages.hpp"
#include "lib/train/onnx_export.hpp"
#include "lib/train/trainer.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace {

using amlrun::ExitCode;
using amlrun::util::InputError;
namespace train = amlrun::train;

constexpr const char* k_usage =
    "usage:\n"
    "  amlrun-worker train --train-data DIR --validation-data DIR [options]\n"
    "  amlrun-worker continue DIR [--epochs N]\n"
    "  amlrun-worker evaluate --model-dir DIR --data DIR [options]\n"
    "  amlrun-worker export --model-dir DIR --format onnx [--opset N] [--output FILE]\n"
    "  amlrun-worker predict --model-dir DIR --data DIR|FILE... --output FILE.csv|FILE.jsonl\n"
    "  amlrun-worker loader-benchmark --data DIR [options]\n"
    "  amlrun-worker --help | --version\n"
    "Run 'amlrun-worker COMMAND --help' for a command's options.";

// A usage problem: shown with the command's usage line, exit 2.
class UsageError : public InputError {
 public:
  UsageError(const std::string& message, std::string command)
      : InputError(message), m_command(std::move(command)) {}
  const std::string& command() const { return m_command; }

 private:
  std::string m_command;
};

// Runs CLI11 on the arguments of one command and turns its exceptions into
// our messages. Returns false when help was printed.
bool parse_command(CLI::App& app, std::vector<std::string> args, const std::string& command) {
  app.allow_extras(true);
  // A repeated option takes its last value, as in most tools (a job's
  // arguments can then be overridden by appending).
  for (CLI::Option* option : app.get_options()) {
    if (option->get_items_expected_max() <= 1) {  // not a list such as predict's --data
      option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
  }
  std::reverse(args.begin(), args.end());  // CLI11 consumes the vector from its back
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return false;
  } catch (const CLI::ArgumentMismatch& error) {
    throw UsageError(error.what(), command);
  } catch (const CLI::ParseError& error) {
    throw UsageError(error.what(), command);
  }
  std::vector<std::string> extras = app.remaining();
  if (!extras.empty()) {
    const std::string& first = extras.front();
    if (first.rfind("-", 0) == 0) {
      std::vector<std::string> names;
      for (const CLI::Option* option : app.get_options()) {
        for (const std::string& name : option->get_lnames()) {
          names.push_back("--" + name);
        }
      }
      std::string name = first.substr(0, first.find('='));
      throw UsageError(fmt::format("unknown option '{}'{}", name,
                                   amlrun::util::did_you_mean_suffix(name, names)),
                       command);
    }
    throw UsageError(fmt::format("unexpected argument '{}'", first), command);
  }
  return true;
}

int command_train(const std::vector<std::string>& args) {
  CLI::App app("Train an image classifier on labelled image folders.", "amlrun-worker train");
  const auto& options = train::train_options();
  train::TrainConfig defaults;
  std::map<std::string, std::string> values;
  std::map<std::string, bool> flags;
  for (const train::TrainOption& option : options) {
    if (option.value_name.empty()) {
      flags[option.name] = false;
      app.add_flag(option.name, flags[option.name], option.help);
    } else {
      std::string help = option.help;
      std::string current = option.current(defaults);
      if (!current.empty()) {
        help += " [" + current + "]";
      }
      app.add_option(option.name, values[option.name], help)->type_name(option.value_name);
    }
  }
  if (!parse_command(app, args, "train")) {
    return 0;
  }
  train::TrainConfig config;
  for (const train::TrainOption& option : options) {
    if (option.value_name.empty()) {
      if (flags[option.name]) {
        option.set(config, "");
      }
    } else if (app.count(option.name) > 0) {
      option.set(config, values[option.name]);
    }
  }
  train::check_required(config);
  return train::run_training(config);
}

int command_continue(const std::vector<std::string>& args) {
  CLI::App app("Resume a run from its last checkpoint, with its saved configuration.",
               "amlrun-worker continue");
  std::string dir;
  std::string epochs;
  app.add_option("DIR", dir, "the --output-dir of the run");
  app.add_option("--epochs", epochs, "train up to this many epochs in all")->type_name("N");
  if (!parse_command(app, args, "continue")) {
    return 0;
  }
  if (dir.empty()) {
    throw UsageError("continue needs the output folder of the run to continue", "continue");
  }
  std::optional<int> epoch_count;
  if (app.count("--epochs") > 0) {
    epoch_count = static_cast<int>(train::parse_integer("--epochs", epochs, 0, 1 << 30));
  }
  return train::continue_training(dir, epoch_count);
}

int command_evaluate(const std::vector<std::string>& args) {
  CLI::App app("Accuracy and confusion matrix of a trained model on a labelled image folder.",
               "amlrun-worker evaluate");
  std::string model_dir, data, batch_size, threads, loader_threads, device;
  app.add_option("--model-dir", model_dir, "the model/ folder a training run wrote")
      ->type_name("DIR");
  app.add_option("--data", data, "labelled image folder with the model's classes")
      ->type_name("DIR");
  app.add_option("--batch-size", batch_size, "images per forward pass [64]")->type_name("N");
  app.add_option("--threads", threads, "compute threads (0: all cores) [0]")->type_name("N");
  app.add_option("--loader-threads", loader_threads, "image loading threads [auto]")
      ->type_name("N");
  app.add_option("--device", device, "auto, cpu or cuda [auto]")->type_name("DEVICE");
  if (!parse_command(app, args, "evaluate")) {
    return 0;
  }
  if (model_dir.empty()) {
    throw UsageError("--model-dir is required (the model/ folder of a training run)", "evaluate");
  }
  if (data.empty()) {
    throw UsageError("--data is required (a labelled image folder)", "evaluate");
  }
  train::EvaluateOptions options;
  options.model_dir = model_dir;
  options.data = data;
  if (!batch_size.empty()) {
    options.batch_size =
        static_cast<int>(train::parse_integer("--batch-size", batch_size, 1, 1 << 20));
  }
  if (!threads.empty()) {
    options.threads = static_cast<int>(train::parse_integer("--threads", threads, 0, 1024));
  }
  if (!loader_threads.empty()) {
    options.loader_threads =
        static_cast<int>(train::parse_integer("--loader-threads", loader_threads, 0, 256));
  }
  if (!device.empty()) {
    options.device = train::parse_choice("--device", device, {"auto", "cpu", "cuda"}, "device");
  }
  return train::run_evaluation(options);
}

int command_export(const std::vector<std::string>& args) {
  CLI::App app("Export a trained model folder for inference elsewhere (ONNX).",
               "amlrun-worker export");
  std::string model_dir, format, opset, output;
  app.add_option("--model-dir", model_dir, "the model/ folder a training run wrote")
      ->type_name("DIR");
  app.add_option("--format", format, "onnx (the only format) [onnx]")->type_name("FORMAT");
  app.add_option("--opset", opset,
                 fmt::format("ONNX operator set, {} to {} [{}]", train::k_onnx_min_opset,
                             train::k_onnx_max_opset, train::k_onnx_default_opset))
      ->type_name("N");
  app.add_option("--output", output, "where to write the file [DIR/model.onnx]")->type_name("FILE");
  if (!parse_command(app, args, "export")) {
    return 0;
  }
  if (model_dir.empty()) {
    throw UsageError("--model-dir is required (the model/ folder of a training run)", "export");
  }
  train::ExportOptions options;
  options.model_dir = model_dir;
  if (app.count("--format") > 0) {
    options.format = train::parse_choice("--format", format, {"onnx"}, "format");
  }
  options.opset = train::k_onnx_default_opset;
  if (app.count("--opset") > 0) {
    options.opset = static_cast<int>(
        train::parse_integer("--opset", opset, train::k_onnx_min_opset, train::k_onnx_max_opset));
  }
  if (app.count("--output") > 0) {
    if (output.empty()) {
      throw UsageError("--output: must not be empty", "export");
    }
    options.output = output;
  }
  return train::run_export(options);
}

int command_predict(const std::vector<std::string>& args) {
  CLI::App app("Label images with a trained model: one row per image, its top-k classes.",
               "amlrun-worker predict");
  std::string model_dir, output, top_k, batch_size, engine, threads, loader_threads, device;
  std::vector<std::string> data;
  bool strict = false;
  app.add_option("--model-dir", model_dir, "the model/ folder a training run wrote")
      ->type_name("DIR");
  app.add_option("--data", data, "image files and folders of images (searched recursively)")
      ->type_name("DIR|FILE...");
  app.add_option("--output", output, "FILE.csv or FILE.jsonl (the format follows the name)")
      ->type_name("FILE");
  app.add_option("--top-k", top_k, "classes per image, best first [5, at most the classes]")
      ->type_name("K");
  app.add_option("--batch-size", batch_size, "images per forward pass [64]")->type_name("N");
  app.add_option("--engine", engine,
                 "torch (model.pt, LibTorch) or onnx (model.onnx, OpenCV's DNN) [torch]")
      ->type_name("ENGINE");
  app.add_option("--threads", threads, "compute threads (0: all cores) [0]")->type_name("N");
  app.add_option("--loader-threads", loader_threads, "image decoding threads [auto]")
      ->type_name("N");
  app.add_option("--device", device, "auto, cpu or cuda (torch engine) [auto]")
      ->type_name("DEVICE");
  app.add_flag("--strict", strict, "an unreadable image is an error (exit 2), not a row");
  if (!parse_command(app, args, "predict")) {
    return 0;
  }
  if (model_dir.empty()) {
    throw UsageError("--model-dir is required (the model/ folder of a training run)", "predict");
  }
  if (data.empty()) {
    throw UsageError("--data is required (image files or folders of images)", "predict");
  }
  if (output.empty()) {
    throw UsageError("--output is required (FILE.csv or FILE.jsonl)", "predict");
  }
  train::PredictOptions options;
  options.model_dir = model_dir;
  options.data.assign(data.begin(), data.end());
  options.output = output;
  options.strict = strict;
  if (!top_k.empty()) {
    options.top_k = static_cast<int>(train::parse_integer("--top-k", top_k, 1, 1 << 20));
  }
  if (!batch_size.empty()) {
    options.batch_size =
        static_cast<int>(train::parse_integer("--batch-size", batch_size, 1, 1 << 20));
  }
  if (!engine.empty()) {
    options.engine = train::parse_choice("--engine", engine, {"torch", "onnx"}, "engine");
  }
  if (!threads.empty()) {
    options.threads = static_cast<int>(train::parse_integer("--threads", threads, 0, 1024));
  }
  if (!loader_threads.empty()) {
    options.loader_threads =
        static_cast<int>(train::parse_integer("--loader-threads", loader_threads, 0, 256));
  }
  if (!device.empty()) {
    options.device = train::parse_choice("--device", device, {"auto", "cpu", "cuda"}, "device");
  }
  return train::run_prediction(options);
}

int command_loader_benchmark(const std::vector<std::string>& args) {
  CLI::App app("Measure the input pipeline alone (decode, augment, batch): images/s.",
               "amlrun-worker loader-benchmark");
  std::string data, image_size, batch_size, loader_threads, epochs;
  bool no_cache = false;
  bool eval = false;
  app.add_option("--data", data, "labelled image folder")->type_name("DIR");
  app.add_option("--image-size", image_size, "output image side [224]")->type_name("N");
  app.add_option("--batch-size", batch_size, "images per batch [16]")->type_name("N");
  app.add_option("--loader-threads", loader_threads, "loading threads [2]")->type_name("N");
  app.add_option("--epochs", epochs, "passes over the data [3]")->type_name("N");
  app.add_flag("--no-cache", no_cache, "decode every image in every epoch");
  app.add_flag("--eval-transform", eval, "resize + centre crop instead of the training transform");
  if (!parse_command(app, args, "loader-benchmark")) {
    return 0;
  }
  if (data.empty()) {
    throw UsageError("--data is required (a labelled image folder)", "loader-benchmark");
  }
  train::LoaderBenchmarkOptions options;
  options.data = data;
  if (!image_size.empty()) {
    options.image_size =
        static_cast<int>(train::parse_integer("--image-size", image_size, 8, 4096));
  }
  if (!batch_size.empty()) {
    options.batch_size =
        static_cast<int>(train::parse_integer("--batch-size", batch_size, 1, 1 << 20));
  }
  if (!loader_threads.empty()) {
    options.loader_threads =
        static_cast<int>(train::parse_integer("--loader-threads", loader_threads, 0, 256));
  }
  if (!epochs.empty()) {
    options.epochs = static_cast<int>(train::parse_integer("--epochs", epochs, 1, 1 << 20));
  }
  options.cache = !no_cache;
  options.eval_transform = eval;
  return train::run_loader_benchmark(options);
}

struct Command {
  std::string name;
  std::string summary;
  std::function<int(const std::vector<std::string>&)> run;
};

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"train", "train a model on labelled image folders", command_train},
      {"continue", "resume a run from its last checkpoint", command_continue},
      {"evaluate", "accuracy and confusion matrix of a trained model", command_evaluate},
      {"export", "export a trained model folder to ONNX", command_export},
      {"predict", "label images with a trained model (CSV or JSON Lines)", command_predict},
      {"loader-benchmark", "measure the image loading pipeline alone", command_loader_benchmark},
  };
  return table;
}

void print_help() {
  std::string text = "amlrun-worker: the LibTorch image-classification trainer of amlrun\n\n";
  text += k_usage;
  text += "\n\ncommands:\n";
  for (const Command& command : commands()) {
    text += fmt::format("  {:<18} {}\n", command.name, command.summary);
  }
  std::fputs(text.c_str(), stdout);
}

int run(const std::vector<std::string>& args) {
  if (args.empty()) {
    throw UsageError("no command given", "");
  }
  const std::string& name = args.front();
  if (name == "--help" || name == "-h" || name == "help") {
    print_help();
    return 0;
  }
  if (name == "--version") {
    // Which LibTorch it was built with: Debian's 1.13 or a pip wheel's.
    std::printf("amlrun-worker %s (LibTorch %s)\n", AMLRUN_VERSION, TORCH_VERSION);
    return 0;
  }
  std::vector<std::string> names;
  for (const Command& command : commands()) {
    if (command.name == name) {
      return command.run(std::vector<std::string>(args.begin() + 1, args.end()));
    }
    names.push_back(command.name);
  }
  throw UsageError(
      fmt::format("unknown command '{}'{}", name, amlrun::util::did_you_mean_suffix(name, names)),
      "");
}

}  // namespace

int main(int argc, char** argv) {
  // argc can be 0 (execve with an empty argv): argv[1] is only read below it.
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    args.emplace_back(argv[i]);
  }
  try {
    return run(args);
  } catch (const UsageError& error) {
    train::worker_error(error.what());
    std::string hint =
        error.command().empty()
            ? std::string(k_usage)
            : fmt::format("Run 'amlrun-worker {} --help' for its options.", error.command());
    std::fprintf(stderr, "%s\n", hint.c_str());
    return static_cast<int>(ExitCode::invalid_input);
  } catch (const amlrun::util::Error& error) {
    train::worker_error(error.what());
    return static_cast<int>(error.code());
  } catch (const std::exception& error) {
    // LibTorch's c10::Error appends a C++ backtrace; the first line is the message.
    std::string message = error.what();
    train::worker_error(message.substr(0, message.find('\n')));
    return static_cast<int>(ExitCode::run_failed);
  }
}
