#pragma once
// What `amlrun-worker predict` reads and writes, free of LibTorch so unit
// tests and the job dialect's checks can use it: the images named by --data,
// softmax and top-k over a row of logits, and the two output formats.
#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace amlrun::train {

struct PredictInput {
  std::filesystem::path path;  // what is read
  std::string shown;           // what the output row says
};

// The images of --data, in order: each argument is a file (taken as is,
// whatever its name: the format is sniffed) or a folder, walked recursively
// for .jpg, .jpeg and .png files (any case), entries starting with '.'
// skipped, sorted by path. A row names an image by its path relative to the
// folder when --data is one folder, else by the argument joined with that
// relative path. Throws util::InputError for an argument that does not
// exist or a folder without an image.
std::vector<PredictInput> list_predict_inputs(const std::vector<std::filesystem::path>& data);

enum class PredictFormat { csv, jsonl };

// By the output's extension (.csv, .jsonl); InputError otherwise.
PredictFormat predict_format(const std::filesystem::path& output);

struct Prediction {
  std::string path;
  std::vector<std::pair<std::string, double>> top;  // label, probability; best first
  std::string error;                                // an unreadable image: why
};

// Softmax of `logits` (numerically stable), then the `k` most probable
// classes, best first; ties keep the lower class index first, as torch.topk.
std::vector<std::pair<std::size_t, double>> top_k_probabilities(const float* logits,
                                                                std::size_t classes, std::size_t k);

// CSV (RFC 4180): "path,label_1,probability_1,...,label_K,probability_K,error".
// Probabilities have six decimals; a field with a comma, quote, CR, LF or
// leading/trailing space is quoted, quotes doubled. An unreadable image has
// empty label and probability fields and its reason under error.
std::string csv_header(std::size_t k);
std::string csv_row(const Prediction& prediction, std::size_t k);
// JSON Lines: {"path":...,"predictions":[{"label":...,"probability":0.981234},...]}
// or {"path":...,"error":...}. Invalid UTF-8 in a path becomes U+FFFD.
std::string jsonl_row(const Prediction& prediction);

}  // namespace amlrun::train
