#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <functional>

#include "lib/train/dataset.hpp"
#include "lib/train/loader.hpp"
#include "lib/util/error.hpp"
#include "tests/unit/train/helpers.hpp"

using namespace amlrun;
using namespace amlrun::train;
using namespace train_test;

TEST_CASE("a labelled image folder lists classes and images in sorted order", "[dataset]") {
  TempDir dir;
  write_image_folder(dir.path, {"dog", "cat"}, 2);
  write_bytes(dir.path / "cat" / "nested" / "deep.PNG", encode_png(pattern_image(4, 4, 1)));
  write_bytes(dir.path / "cat" / "notes.txt", "not an image");
  write_bytes(dir.path / "cat" / ".hidden.png", "skipped");
  write_bytes(dir.path / ".ipynb_checkpoints" / "x.png", "skipped");
  write_bytes(dir.path / "README", "a file at the top is no class");
  ImageFolder folder = scan_image_folder(dir.path, "--train-data");
  CHECK(folder.classes == std::vector<std::string>{"cat", "dog"});
  REQUIRE(folder.samples.size() == 5);
  CHECK(folder.samples[0].path == dir.path / "cat" / "0.png");
  CHECK(folder.samples[1].path == dir.path / "cat" / "1.png");
  CHECK(folder.samples[2].path == dir.path / "cat" / "nested" / "deep.PNG");
  CHECK(folder.samples[2].label == 0);
  CHECK(folder.samples[3].label == 1);
  CHECK(folder.ignored_files == 1);
}

TEST_CASE("folders that are not labelled image folders get errors that say why", "[dataset]") {
  TempDir dir;
  const std::string root = dir.path.string();
  CHECK(message_of([&] { scan_image_folder(dir.path / "missing", "--train-data"); }) ==
        "--train-data " + root + "/missing: no such folder");
  write_bytes(dir.path / "file", "x");
  CHECK(message_of([&] { scan_image_folder(dir.path / "file", "--train-data"); }) ==
        "--train-data " + root + "/file: not a folder");
  std::filesystem::create_directories(dir.path / "flat");
  write_bytes(dir.path / "flat" / "a.png", encode_png(pattern_image(2, 2, 1)));
  CHECK(message_of([&] { scan_image_folder(dir.path / "flat", "--validation-data"); }) ==
        "--validation-data " + root + "/flat: not a labelled image folder (no class sub-folders)");
  write_image_folder(dir.path / "partly", {"a"}, 1);
  std::filesystem::create_directories(dir.path / "partly" / "b");
  CHECK(message_of([&] { scan_image_folder(dir.path / "partly", "--train-data"); }) ==
        "--train-data " + root + "/partly: class folder 'b' has no JPEG or PNG images");
  CHECK_THROWS_AS(scan_image_folder(dir.path / "missing", "--train-data"), util::InputError);
}

namespace {

// The message `action` throws, run as the unprivileged user nobody when the
// test runs as root (as in CI and containers): root reads every folder, so a
// permission check can only be provoked without it. The action runs in a
// forked child that drops its groups, gid and uid for good; the message comes
// back through a pipe.
std::string message_as_unprivileged(const std::function<void()>& action) {
  if (::geteuid() != 0) {
    return message_of(action);
  }
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    constexpr uid_t k_nobody = 65534;
    constexpr gid_t k_nogroup = 65534;
    std::string message;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(k_nogroup, k_nogroup, k_nogroup) != 0 ||
        ::setresuid(k_nobody, k_nobody, k_nobody) != 0 || ::geteuid() == 0) {
      message = std::string("could not drop privileges: ") + std::strerror(errno);
    } else {
      message = message_of(action);
    }
    ssize_t written = ::write(fds[1], message.data(), message.size());
    ::_exit(written == static_cast<ssize_t>(message.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string message;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof(buffer))) != 0;) {
    if (n < 0 && errno == EINTR) {
      continue;
    }
    REQUIRE(n > 0);
    message.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  return message;
}

}  // namespace

TEST_CASE("an unreadable folder is reported, not skipped", "[dataset]") {
  TempDir dir;
  write_image_folder(dir.path / "data", {"a"}, 1);
  // mkdtemp makes the folder 0700; nobody must get as far as data/.
  ::chmod(dir.path.c_str(), 0755);
  ::chmod((dir.path / "data").c_str(), 0);
  CHECK(message_as_unprivileged([&] { scan_image_folder(dir.path / "data", "--train-data"); }) ==
        "--train-data " + (dir.path / "data").string() + ": cannot read: Permission denied");
  ::chmod((dir.path / "data").c_str(), 0755);
}

TEST_CASE("validation classes that differ are named, both sets", "[dataset]") {
  TempDir dir;
  write_image_folder(dir.path / "train", {"cat", "dog"}, 1);
  write_image_folder(dir.path / "val", {"bird", "cat"}, 1);
  ImageFolder train = scan_image_folder(dir.path / "train", "--train-data");
  ImageFolder val = scan_image_folder(dir.path / "val", "--validation-data");
  CHECK(message_of([&] { check_same_classes(train, "--train-data", val, "--validation-data"); }) ==
        "--train-data " + (dir.path / "train").string() + " and --validation-data " +
            (dir.path / "val").string() +
            " have different classes: --train-data has 2 (cat, dog), --validation-data has 2 "
            "(bird, cat)");
  CHECK_NOTHROW(check_same_classes(train, "--train-data", train, "--validation-data"));
}

TEST_CASE("corrupt images are dropped from a cached dataset and counted", "[dataset]") {
  TempDir dir;
  write_image_folder(dir.path, {"a", "b"}, 3);
  std::string jpeg = encode_jpeg(pattern_image(16, 16, 3), 90);
  write_bytes(dir.path / "a" / "truncated.jpg", jpeg.substr(0, jpeg.size() / 2));
  write_bytes(dir.path / "b" / "garbage.png", "definitely not a png");
  ImageDataset dataset(scan_image_folder(dir.path, "--train-data"), /*strict=*/false);
  REQUIRE(dataset.size() == 8);
  CHECK(dataset.cache_if_small(/*cache_bytes=*/1 << 20, /*threads=*/2));
  CHECK(dataset.cached());
  CHECK(dataset.size() == 6);
  CHECK(dataset.corrupt_count() == 2);
  for (std::size_t i = 0; i < dataset.size(); ++i) {
    Image scratch;
    REQUIRE(dataset.image(i, scratch) != nullptr);
    CHECK(dataset.image(i, scratch)->width == 12);
  }
  CHECK(dataset.label(2) == 0);
  CHECK(dataset.label(3) == 1);
}

TEST_CASE("--strict makes the first corrupt image fatal", "[dataset]") {
  TempDir dir;
  write_image_folder(dir.path, {"a"}, 1);
  write_bytes(dir.path / "a" / "bad.png", "");
  ImageDataset dataset(scan_image_folder(dir.path, "--train-data"), /*strict=*/true);
  CHECK(message_of([&] { dataset.cache_if_small(1 << 20, 1); }) ==
        "corrupt image (--strict): " + (dir.path / "a" / "bad.png").string() + ": empty file");
}

TEST_CASE("a dataset without one readable image is refused with its first reason", "[dataset]") {
  TempDir dir;
  for (const char* name : {"a/0.png", "a/1.png", "b/0.jpg"}) {
    write_bytes(dir.path / name, "");
  }
  const std::string root = dir.path.string();
  const std::string expected = "no readable training images in " + root + " (3 skipped: " + root +
                               "/a/0.png: empty file, and 2 more)";
  // With a cache: the sample decoded to size the cache has no readable image.
  ImageDataset cached(scan_image_folder(dir.path, "--train-data"), /*strict=*/false);
  CHECK_FALSE(cached.cache_if_small(/*cache_bytes=*/1 << 20, /*threads=*/2));
  CHECK(message_of([&] { cached.require_readable_image("training"); }) == expected);
  // Without a cache: the images are probed in order.
  ImageDataset uncached(scan_image_folder(dir.path, "--train-data"), /*strict=*/false);
  CHECK_FALSE(uncached.cache_if_small(/*cache_bytes=*/0, /*threads=*/1));
  CHECK(message_of([&] { uncached.require_readable_image("training"); }) == expected);
  CHECK(uncached.corrupt_count() == 3);
  // One image, and no set named.
  TempDir single;
  write_bytes(single.path / "c" / "x.png", "GIF89a");
  ImageDataset one(scan_image_folder(single.path, "--data"), /*strict=*/false);
  CHECK(message_of([&] { one.require_readable_image(""); }) ==
        "no readable images in " + single.path.string() + " (1 skipped: " + single.path.string() +
            "/c/x.png: not a JPEG or PNG image)");
  CHECK_THROWS_AS(one.require_readable_image(""), util::InputError);
}

TEST_CASE("one readable image is enough, found by caching or by probing", "[dataset]") {
  TempDir dir;
  write_bytes(dir.path / "a" / "0.png", "");
  write_bytes(dir.path / "a" / "1.png", "");
  write_bytes(dir.path / "b" / "2.png", encode_png(pattern_image(4, 4, 3)));
  ImageDataset cached(scan_image_folder(dir.path, "--train-data"), false);
  CHECK(cached.cache_if_small(1 << 20, 1));
  CHECK_NOTHROW(cached.require_readable_image("training"));
  CHECK(cached.size() == 1);
  ImageDataset uncached(scan_image_folder(dir.path, "--train-data"), false);
  CHECK_FALSE(uncached.cache_if_small(0, 1));
  CHECK_NOTHROW(uncached.require_readable_image("training"));
  CHECK(uncached.corrupt_count() == 2);  // probed before the readable one
  ImageDataset strict(scan_image_folder(dir.path, "--train-data"), /*strict=*/true);
  CHECK(message_of([&] { strict.require_readable_image("training"); }) ==
        "corrupt image (--strict): " + (dir.path / "a" / "0.png").string() + ": empty file");
}

TEST_CASE("a dataset larger than the cache is decoded on demand", "[dataset]") {
  TempDir dir;
  write_image_folder(dir.path, {"a"}, 4, /*size=*/12);
  write_bytes(dir.path / "a" / "zbad.png", "nope");
  ImageDataset dataset(scan_image_folder(dir.path, "--train-data"), false);
  CHECK_FALSE(dataset.cache_if_small(/*cache_bytes=*/100, 1));
  CHECK(dataset.size() == 5);
  Image scratch;
  CHECK(dataset.image(0, scratch) == &scratch);
  CHECK(dataset.image(4, scratch) == nullptr);
  CHECK(dataset.image(4, scratch) == nullptr);
  CHECK(dataset.corrupt_count() == 1);  // counted once per file
}

namespace {
std::vector<std::vector<float>> load_all(const ImageDataset& dataset,
                                         std::vector<std::vector<std::size_t>> batches, int threads,
                                         std::vector<std::vector<std::int64_t>>* labels) {
  LoaderOptions options;
  options.image_size = 8;
  options.threads = threads;
  options.prefetch_batches = 2;
  options.epoch = 3;
  BatchLoader loader(dataset, std::move(batches), options);
  std::vector<std::vector<float>> out;
  std::size_t expected_index = 0;
  while (auto batch = loader.next()) {
    CHECK(batch->index == expected_index++);
    out.emplace_back(batch->pixels.get(), batch->pixels.get() + batch->count * 3 * 64);
    if (labels != nullptr) {
      labels->push_back(batch->labels);
    }
  }
  return out;
}
}  // namespace

TEST_CASE("the loader yields batches in order, the same with any thread count", "[loader]") {
  TempDir dir;
  write_image_folder(dir.path, {"a", "b", "c"}, 5);
  ImageDataset dataset(scan_image_folder(dir.path, "--train-data"), false);
  std::vector<std::vector<std::size_t>> batches = {
      {14, 0, 7}, {3, 9, 11}, {1, 2}, {13}, {5, 6, 8, 10}};
  std::vector<std::vector<std::int64_t>> labels;
  auto inline_result = load_all(dataset, batches, 0, &labels);
  CHECK(labels[0] == std::vector<std::int64_t>{2, 0, 1});
  CHECK(labels[3] == std::vector<std::int64_t>{2});
  CHECK(load_all(dataset, batches, 1, nullptr) == inline_result);
  CHECK(load_all(dataset, batches, 4, nullptr) == inline_result);
  dataset.cache_if_small(1 << 20, 2);
  CHECK(load_all(dataset, batches, 3, nullptr) == inline_result);
}

TEST_CASE("a corrupt image leaves its batch one sample shorter", "[loader]") {
  TempDir dir;
  write_image_folder(dir.path, {"a"}, 3);
  write_bytes(dir.path / "a" / "9.png", "garbage");
  ImageDataset dataset(scan_image_folder(dir.path, "--train-data"), false);
  LoaderOptions options;
  options.image_size = 8;
  options.threads = 2;
  BatchLoader loader(dataset, {{0, 3, 1}, {2}}, options);
  auto first = loader.next();
  CHECK(first->count == 2);
  CHECK(first->labels.size() == 2);
  CHECK(loader.next()->count == 1);
  CHECK(loader.next() == nullptr);
}

TEST_CASE("a --strict failure in a loader thread reaches the training loop", "[loader]") {
  TempDir dir;
  write_image_folder(dir.path, {"a"}, 2);
  write_bytes(dir.path / "a" / "9.png", "garbage");
  ImageDataset dataset(scan_image_folder(dir.path, "--train-data"), /*strict=*/true);
  LoaderOptions options;
  options.image_size = 8;
  options.threads = 2;
  BatchLoader loader(dataset, {{0}, {2}, {1}}, options);
  CHECK_THROWS_AS(
      [&] {
        while (loader.next()) {
        }
      }(),
      util::InputError);
}
