// Downloads against a real HTTP server on loopback (tests/e2e/http_test_server.py,
// started as a separate process).
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../test_support.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/http.hpp"
#include "lib/util/process.hpp"

using namespace amlrun;
namespace fs = std::filesystem;
using unit_test::message_of;
using unit_test::TempDir;

namespace {

struct Server {
  pid_t pid = -1;
  int port = 0;
  explicit Server(const fs::path& folder) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    util::SpawnOptions options;
    options.argv = {"/usr/bin/python3",
                    std::string(AMLRUN_SOURCE_DIR) + "/tests/e2e/http_test_server.py",
                    folder.string()};
    options.stdout_fd = out[1];
    pid = util::spawn(options);
    ::close(out[1]);
    FILE* stream = ::fdopen(out[0], "r");
    REQUIRE(std::fscanf(stream, "PORT %d", &port) == 1);
    std::fclose(stream);
  }
  ~Server() {
    ::kill(pid, SIGTERM);
    util::wait_for(pid);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
};

}  // namespace

TEST_CASE("http_download: a file, a size limit, a missing file, a resumed transfer") {
  TempDir dir;
  std::string body(300000, 'x');
  dir.write("files/data.bin", body);
  Server server(dir.path / "files");

  auto result = util::http_download(server.url("/files/data.bin"), dir.path / "one.bin");
  CHECK(result.bytes == body.size());
  CHECK(result.attempts == 1);
  CHECK(unit_test::read(dir.path / "one.bin") == body);

  util::DownloadOptions small;
  small.max_bytes = 1000;
  CHECK(message_of([&] {
          util::http_download(server.url("/files/data.bin"), dir.path / "two.bin", small);
        }) ==
        "download of " + server.url("/files/data.bin") + " exceeds the size limit of 1000 bytes");
  CHECK_FALSE(fs::exists(dir.path / "two.bin.part"));

  CHECK(message_of([&] {
          util::http_download(server.url("/files/missing.bin"), dir.path / "three.bin");
        }) == "download of " + server.url("/files/missing.bin") + " failed: HTTP 404");

  util::DownloadOptions quick;
  quick.first_backoff = std::chrono::milliseconds(10);
  std::vector<std::string> retries;
  quick.on_retry = [&](const std::string& message) { retries.push_back(message); };
  auto resumed =
      util::http_download(server.url("/truncate/data.bin"), dir.path / "four.bin", quick);
  CHECK(resumed.bytes == body.size());
  CHECK(resumed.attempts == 2);
  CHECK(resumed.resumed == 1);
  CHECK(unit_test::read(dir.path / "four.bin") == body);
  REQUIRE(retries.size() == 1);
  CHECK(retries[0].starts_with("attempt 1 of 4 failed ("));

  CHECK(message_of([&] {
          util::http_download("ftp://127.0.0.1/x", dir.path / "five.bin", quick);
        }).starts_with("download of ftp://127.0.0.1/x failed: "));
  CHECK(util::file_name_from_url("https://h/a/b/iris%20data.csv?sig=1") == "iris_data.csv");
  CHECK(util::file_name_from_url("https://h/") == "download");
  // A decoded slash cannot make a path: the name stays one safe component.
  CHECK(util::file_name_from_url("https://h/..%2F..%2Fetc%2Fpasswd") == "etc_passwd");
}
