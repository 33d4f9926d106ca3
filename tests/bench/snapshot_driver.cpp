// Calls lib/snapshot from the command line for tests/bench/bench_snapshot.sh:
//   snapshot_driver take SOURCE STORE [THREADS]
//   snapshot_driver materialize STORE ID TARGET
// `take` prints "id files bytes hashed_files hashed_bytes seconds".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "lib/snapshot/snapshot.hpp"

using namespace amlrun;

int main(int argc, char** argv) {
  try {
    std::string command = argc > 1 ? argv[1] : "";
    if (command == "take" && (argc == 4 || argc == 5)) {
      snapshot::Options options;
      options.store_dir = argv[3];
      if (argc == 5) options.threads = static_cast<unsigned>(std::atoi(argv[4]));
      auto start = std::chrono::steady_clock::now();
      auto result = snapshot::take(argv[2], options);
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%s %llu %llu %llu %llu %.6f\n", result.id.c_str(),
                  static_cast<unsigned long long>(result.files),
                  static_cast<unsigned long long>(result.bytes),
                  static_cast<unsigned long long>(result.hashed_files),
                  static_cast<unsigned long long>(result.hashed_bytes), seconds);
      return 0;
    }
    if (command == "materialize" && argc == 5) {
      snapshot::materialize(argv[2], argv[3], argv[4]);
      return 0;
    }
    std::fprintf(stderr,
                 "usage: snapshot_driver take SOURCE STORE [THREADS]\n"
                 "       snapshot_driver materialize STORE ID TARGET\n");
    return 2;
  } catch (const util::Error& error) {
    std::fprintf(stderr, "snapshot_driver: error: %s\n", error.what());
    return static_cast<int>(error.code());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "snapshot_driver: error: %s\n", error.what());
    return 1;
  }
}
