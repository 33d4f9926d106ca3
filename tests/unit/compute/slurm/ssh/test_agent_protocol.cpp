// Frames between amlrun and its agent: a JSON header line and a raw
// payload, read back exactly; what a login shell prints before the agent's
// greeting is skipped; cut and oversized frames are errors, not hangs.
#include <catch2/catch.hpp>

#include <unistd.h>

#include "lib/compute/slurm/ssh/agent_protocol.hpp"
#include "lib/util/fs.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
using unit_test::message_of;

namespace {

struct Pipe {
  Pipe() { REQUIRE(::pipe(fds) == 0); }
  ~Pipe() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void close_write() {
    ::close(fds[1]);
    fds[1] = -1;
  }
  int fds[2] = {-1, -1};
};

}  // namespace

TEST_CASE("frames carry a header and any bytes") {
  Pipe pipe;
  std::string binary("a\0b\nc\xff", 6);
  compute::write_frame(pipe.fds[1], {{"op", "sync"}, {"n", 1}}, binary);
  compute::write_frame(pipe.fds[1], {{"op", "done"}});
  pipe.close_write();
  compute::FrameReader reader(pipe.fds[0]);
  auto first = reader.read(1000);
  REQUIRE(first);
  CHECK(first->header["op"] == "sync");
  CHECK(first->header["bytes"] == 6);
  CHECK(first->payload == binary);
  auto second = reader.read(1000);
  REQUIRE(second);
  CHECK(second->header["op"] == "done");
  CHECK(second->payload.empty());
  CHECK_FALSE(reader.read(1000));  // end of input between frames
}

TEST_CASE("a login shell's banner before the greeting is skipped") {
  Pipe pipe;
  util::write_all(pipe.fds[1],
                  "Welcome to the cluster!\nquota: 80%\n" + std::string(compute::k_agent_greeting) +
                      "\n{\"ok\":true}\n",
                  "pipe");
  pipe.close_write();
  compute::FrameReader reader(pipe.fds[0]);
  CHECK(reader.skip_to_line(compute::k_agent_greeting, 1 << 16, 1000));
  auto frame = reader.read(1000);
  REQUIRE(frame);
  CHECK(frame->header["ok"] == true);
}

TEST_CASE("cut, malformed and late frames are errors") {
  {
    Pipe pipe;
    util::write_all(pipe.fds[1], "{\"bytes\":10}\nabc", "pipe");
    pipe.close_write();
    compute::FrameReader reader(pipe.fds[0]);
    CHECK(message_of([&] { reader.read(1000); }) ==
          "the ssh session ended in the middle of a frame");
  }
  {
    Pipe pipe;
    util::write_all(pipe.fds[1], "not json\n", "pipe");
    compute::FrameReader reader(pipe.fds[0]);
    CHECK(message_of([&] { reader.read(1000); }) ==
          "the other side sent something that is not a frame header: not json");
  }
  {
    Pipe pipe;  // nothing written, the writer still open: a deadline, not a hang
    compute::FrameReader reader(pipe.fds[0]);
    CHECK(message_of([&] { reader.read(200); }) == "no answer in time");
  }
}

TEST_CASE("replies carry errors with their exit code") {
  CHECK(message_of([] {
          compute::check_reply({{"ok", false}, {"error", "bad"}, {"exit", 2}});
        }) == "bad");
  try {
    compute::check_reply({{"ok", false}, {"error", "bad"}, {"exit", 2}});
    FAIL("no error");
  } catch (const util::Error& error) {
    CHECK(error.code() == ExitCode::invalid_input);
  }
  auto reply = compute::error_reply(util::InfraError("down"));
  CHECK(reply == nlohmann::json{{"ok", false}, {"error", "down"}, {"exit", 3}});
}
