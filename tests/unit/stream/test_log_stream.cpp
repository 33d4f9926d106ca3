// The streamer against real files and a writer thread standing in for a
// supervisor (which only ever writes files: the streamer reads nothing else).
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "lib/store/run_layout.hpp"
#include "lib/stream/log_stream.hpp"
#include "lib/util/fs.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
namespace fs = std::filesystem;
using store::RunState;
using unit_test::TempDir;

namespace {

struct Capture {
  int fds[2];
  Capture() { REQUIRE(::pipe2(fds, O_CLOEXEC) == 0); }
  ~Capture() { ::close(fds[0]); }
  std::string finish() {
    ::close(fds[1]);
    std::string out;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0)
      out.append(buffer, static_cast<size_t>(n));
    return out;
  }
};

void append(const fs::path& file, const std::string& text) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  REQUIRE(fd >= 0);
  util::write_all(fd, text, "append");
  ::close(fd);
}

}  // namespace

TEST_CASE("a live run's log is streamed, partial lines joined, until the run ends") {
  TempDir dir;
  workspace::Workspace ws(workspace::create_workspace(dir.path / ".amlrun"), {});
  store::RunStore runs(ws);
  store::RunRecord record;
  record.id = store::RunStore::new_run_id("exp");
  record.process_count = 2;
  runs.create(record);
  fs::path run_dir = runs.run_dir(record.id);
  fs::path live = store::RunTree(run_dir).user_logs();
  fs::create_directories(live);
  fs::path state_dir = dir.path / "state";
  fs::create_directories(state_dir);
  append(live / "std_log_rank_0.txt", "zero one\n");
  append(live / "std_log_rank_1.txt", "one ");  // a line written in two pieces

  std::vector<std::string> states;
  Capture capture;
  stream::StreamOptions options;
  options.all_ranks = true;
  options.output_fd = capture.fds[1];
  options.on_state = [&](const store::RunRecord& r) {
    states.push_back(store::to_string(r.state));
  };
  // The refresh callback is the streamer's own clock: the first comes before
  // it has read anything, the second after it has read the first piece (a
  // file appearing in a state directory asks for it at once), which is when
  // the rest of the line is written and the run ends.
  options.state_dirs = {state_dir};
  int refreshes = 0;
  options.refresh = [&](store::RunRecord r) {
    ++refreshes;
    if (refreshes == 1) {
      runs.transition(r, RunState::running);
      std::ofstream(state_dir / "tick");
    } else if (refreshes == 2) {
      append(live / "std_log_rank_1.txt", "done\nno newline at the end");
      runs.transition(r, RunState::finalizing);
      runs.transition(r, RunState::completed);
    }
    return r;
  };
  auto result = stream::stream_run(runs, record.id, options);
  std::string out = capture.finish();
  CHECK_FALSE(result.interrupted);
  CHECK(result.record.state == RunState::completed);
  CHECK(out.find("[rank 0] zero one\n") != std::string::npos);
  CHECK(out.find("[rank 1] one done\n") != std::string::npos);
  CHECK(out.find("[rank 1] no newline at the end\n") != std::string::npos);
  CHECK(states.front() == "Running");
  CHECK(states.back() == "Completed");
}

TEST_CASE("a rank log the job replaced by a link is not followed, and says so") {
  TempDir dir;
  workspace::Workspace ws(workspace::create_workspace(dir.path / ".amlrun"), {});
  store::RunStore runs(ws);
  store::RunRecord record;
  record.id = store::RunStore::new_run_id("exp");
  runs.create(record);
  fs::path logs = store::RunTree(runs.run_dir(record.id)).user_logs();
  fs::create_directories(logs);
  fs::path secret = dir.write("secret.txt", "a file of the user's\n");
  fs::create_symlink(secret, logs / "std_log_rank_0.txt");
  runs.transition(record, RunState::failed);
  Capture capture;
  std::vector<std::string> warnings;
  stream::StreamOptions options;
  options.output_fd = capture.fds[1];
  options.on_warning = [&](const std::string& warning) { warnings.push_back(warning); };
  stream::stream_run(runs, record.id, options);
  CHECK(capture.finish().empty());
  CHECK(warnings == std::vector<std::string>{(logs / "std_log_rank_0.txt").string() +
                                             " is a symbolic link, not the log amlrun captured; "
                                             "it is not followed"});
}

TEST_CASE("a finished run streams its whole sealed log; interrupt returns at once") {
  TempDir dir;
  workspace::Workspace ws(workspace::create_workspace(dir.path / ".amlrun"), {});
  store::RunStore runs(ws);
  store::RunRecord record;
  record.id = store::RunStore::new_run_id("exp");
  runs.create(record);
  fs::path sealed = runs.run_dir(record.id) / "artifacts" / "logs" / "user_logs";
  fs::create_directories(sealed);
  append(sealed / "std_log_rank_0.txt", "all\nof it\n");
  runs.transition(record, RunState::failed);
  {
    Capture capture;
    stream::StreamOptions options;
    options.output_fd = capture.fds[1];
    auto result = stream::stream_run(runs, record.id, options);
    CHECK(capture.finish() == "all\nof it\n");
    CHECK(result.record.state == RunState::failed);
  }
  // A run that never ends: the interrupt descriptor stops the stream.
  store::RunRecord running;
  running.id = store::RunStore::new_run_id("exp");
  runs.create(running);
  int interrupt[2];
  REQUIRE(::pipe2(interrupt, O_CLOEXEC) == 0);
  REQUIRE(::write(interrupt[1], "x", 1) == 1);
  Capture capture;
  stream::StreamOptions options;
  options.output_fd = capture.fds[1];
  options.interrupt_fd = interrupt[0];
  auto result = stream::stream_run(runs, running.id, options);
  CHECK(result.interrupted);
  CHECK(result.record.state == RunState::queued);
  ::close(interrupt[0]);
  ::close(interrupt[1]);
}

TEST_CASE("a target's log roots are followed: a shared directory, then the workspace") {
  // As for Slurm runs: written under shared_dir, sealed there, then moved into
  // the workspace; the refresh callback stands in for SlurmTarget::refresh.
  TempDir dir;
  workspace::Workspace ws(workspace::create_workspace(dir.path / ".amlrun"), {});
  store::RunStore runs(ws);
  store::RunRecord record;
  record.id = store::RunStore::new_run_id("exp");
  runs.create(record);
  fs::path shared = dir.path / "shared" / "runs" / record.id;
  fs::path live = store::RunTree(shared).user_logs();
  fs::path collected = store::RunTree(runs.run_dir(record.id)).user_logs();

  Capture capture;
  stream::StreamOptions options;
  options.output_fd = capture.fds[1];
  options.log_roots = {shared, runs.run_dir(record.id)};
  int refreshes = 0;
  options.refresh = [&](store::RunRecord r) {
    ++refreshes;
    return r;
  };
  std::thread node([&] {
    store::RunStore own(ws);
    auto r = own.load(record.id);
    own.transition(r, RunState::starting);
    fs::create_directories(live);
    own.transition(r, RunState::running);
    append(live / "std_log_rank_0.txt", "first\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    append(live / "std_log_rank_0.txt", "second\n");
    append(live / "std_log_rank_0.txt", "third\n");
    own.transition(r, RunState::finalizing);
    fs::create_directories(collected.parent_path().parent_path());
    fs::rename(live.parent_path(), collected.parent_path());
    own.transition(r, RunState::completed);
  });
  auto result = stream::stream_run(runs, record.id, options);
  node.join();
  CHECK(capture.finish() == "first\nsecond\nthird\n");
  CHECK(result.record.state == RunState::completed);
  CHECK(refreshes >= 1);  // the first one comes at once

  // Reattaching after the end reads the collected copy.
  Capture again;
  options.output_fd = again.fds[1];
  stream::stream_run(runs, record.id, options);
  CHECK(again.finish() == "first\nsecond\nthird\n");
}
