#include "lib/train/predictions.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "lib/util/error.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

namespace {

bool is_image_name(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".jpg" || extension == ".jpeg" || extension == ".png";
}

// Regular files (links followed) below `root`, not descending into links to
// folders (a link loop would never end) or hidden entries.
std::vector<fs::path> images_below(const fs::path& root) {
  std::vector<fs::path> found;
  std::error_code error;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, error);
  if (error) {
    throw util::InputError(
        fmt::format("--data {}: cannot read the folder: {}", root.string(), error.message()));
  }
  for (fs::recursive_directory_iterator end; it != end; it.increment(error)) {
    if (error) {
      throw util::InputError(fmt::format("--data {}: cannot read {}: {}", root.string(),
                                         it->path().string(), error.message()));
    }
    const fs::path& path = it->path();
    if (path.filename().string().starts_with(".")) {
      if (it->is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(error) && is_image_name(path)) found.push_back(path);
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::string csv_field(const std::string& text) {
  bool quote = !text.empty() && (text.front() == ' ' || text.back() == ' ');
  quote = quote || text.find_first_of(",\"\r\n") != std::string::npos;
  if (!quote) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string json_string(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::vector<PredictInput> list_predict_inputs(const std::vector<fs::path>& data) {
  if (data.empty()) {
    throw util::InputError("--data is required (image files or folders of images)");
  }
  const bool one_folder = data.size() == 1 && fs::is_directory(data.front());
  std::vector<PredictInput> inputs;
  for (const fs::path& argument : data) {
    std::error_code error;
    fs::file_status status = fs::status(argument, error);
    if (error || !fs::exists(status)) {
      throw util::InputError(fmt::format("--data {}: no such file or folder", argument.string()));
    }
    if (fs::is_directory(status)) {
      std::vector<fs::path> images = images_below(argument);
      if (images.empty()) {
        throw util::InputError(fmt::format(
            "--data {}: no .jpg, .jpeg or .png file in the folder or below it", argument.string()));
      }
      for (const fs::path& image : images) {
        fs::path relative = image.lexically_relative(argument);
        inputs.push_back({image, one_folder ? relative.string() : (argument / relative).string()});
      }
    } else {
      inputs.push_back({argument, argument.string()});
    }
  }
  return inputs;
}

PredictFormat predict_format(const fs::path& output) {
  const std::string extension = output.extension().string();
  if (extension == ".csv") return PredictFormat::csv;
  if (extension == ".jsonl") return PredictFormat::jsonl;
  throw util::InputError(
      fmt::format("--output {}: the name must end in .csv or .jsonl (the format is chosen by it)",
                  output.string()));
}

std::vector<std::pair<std::size_t, double>> top_k_probabilities(const float* logits,
                                                                std::size_t classes,
                                                                std::size_t k) {
  const float largest = *std::max_element(logits, logits + classes);
  std::vector<double> probabilities(classes);
  double sum = 0;
  for (std::size_t c = 0; c < classes; ++c) {
    probabilities[c] = std::exp(static_cast<double>(logits[c]) - largest);
    sum += probabilities[c];
  }
  std::vector<std::size_t> order(classes);
  std::iota(order.begin(), order.end(), 0);
  k = std::min(k, classes);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](std::size_t a, std::size_t b) {
                      return probabilities[a] > probabilities[b] ||
                             (probabilities[a] == probabilities[b] && a < b);
                    });
  std::vector<std::pair<std::size_t, double>> top;
  for (std::size_t i = 0; i < k; ++i) top.emplace_back(order[i], probabilities[order[i]] / sum);
  return top;
}

std::string csv_header(std::size_t k) {
  std::string line = "path";
  for (std::size_t i = 1; i <= k; ++i) line += fmt::format(",label_{0},probability_{0}", i);
  return line + ",error\n";
}

std::string csv_row(const Prediction& prediction, std::size_t k) {
  std::string line = csv_field(prediction.path);
  for (std::size_t i = 0; i < k; ++i) {
    if (i < prediction.top.size()) {
      line += "," + csv_field(prediction.top[i].first) +
              fmt::format(",{:.6f}", prediction.top[i].second);
    } else {
      line += ",,";
    }
  }
  return line + "," + csv_field(prediction.error) + "\n";
}

std::string jsonl_row(const Prediction& prediction) {
  std::string line = "{\"path\":" + json_string(prediction.path);
  if (!prediction.error.empty())
    return line + ",\"error\":" + json_string(prediction.error) + "}\n";
  line += ",\"predictions\":[";
  for (std::size_t i = 0; i < prediction.top.size(); ++i) {
    if (i > 0) line += ",";
    line += fmt::format("{{\"label\":{},\"probability\":{:.6f}}}",
                        json_string(prediction.top[i].first), prediction.top[i].second);
  }
  return line + "]}\n";
}

}  // namespace amlrun::train
