// What the renderer writes for a log's bytes, on a terminal and off one.
#include <catch2/catch.hpp>

#include "lib/stream/log_render.hpp"

using namespace amlrun::stream;

TEST_CASE("off a terminal one rank's bytes pass through exactly") {
  LogRenderer renderer(RenderOptions{false, false, 80});
  std::string bytes = "epoch 1\r\033[Kstep 1/3\rstep 2/3\r\nhalf a li";
  CHECK(renderer.add(0, bytes) == bytes);
  CHECK(renderer.add(0, "ne\n") == "ne\n");
  CHECK(renderer.finish().empty());
  CHECK(renderer.hide().empty());
}

TEST_CASE("off a terminal several ranks are split into prefixed lines as written") {
  LogRenderer renderer(RenderOptions{false, true, 80});
  CHECK(renderer.add(1, "a\rb\nc") == "[rank 1] a\rb\n");
  CHECK(renderer.add(0, "zero\n") == "[rank 0] zero\n");
  CHECK(renderer.finish() == "[rank 1] c\n");
}

TEST_CASE("on a terminal a line rewritten with \\r is drawn in place, its last version kept") {
  LogRenderer renderer(RenderOptions{true, false, 80});
  CHECK(renderer.add(0, "step 1/3") == "step 1/3");
  // The pending '\r' could still be "\r\n": nothing changes on screen yet.
  CHECK(renderer.add(0, "\r").empty());
  CHECK(renderer.add(0, "step 2/3") == "\r\033[Kstep 2/3");
  CHECK(renderer.add(0, "\r\033[Kstep 3/3") == "\r\033[Kstep 3/3");
  // The job erases its line itself at the end: so does the screen.
  CHECK(renderer.add(0, "\r\033[K") == "\r\033[K");
  CHECK(renderer.add(0, "done\n") == "done\n");
}

TEST_CASE("on a terminal \\r\\n ends a line as written") {
  LogRenderer renderer(RenderOptions{true, false, 80});
  CHECK(renderer.add(0, "one\r\ntwo\r") == "one\ntwo");
  CHECK(renderer.add(0, "\nthree\n") == "\r\033[Ktwo\nthree\n");
}

TEST_CASE("on a terminal a finished line goes above the live line, which is drawn again") {
  LogRenderer renderer(RenderOptions{true, true, 80});
  CHECK(renderer.add(0, "\r10%") == "[rank 0] 10%");
  CHECK(renderer.add(1, "loaded\n") == "\r\033[K[rank 1] loaded\n[rank 0] 10%");
  CHECK(renderer.add(1, "\r5%") == "\r\033[K[rank 1] 5%");
  // amlrun's own line: the live line steps aside and comes back.
  CHECK(renderer.hide() == "\r\033[K");
  CHECK(renderer.hide().empty());
  CHECK(renderer.show() == "[rank 1] 5%");
  CHECK(renderer.show().empty());
  CHECK(renderer.finish() == "\r\033[K[rank 0] 10%\n[rank 1] 5%\n");
}

TEST_CASE("on a terminal a live line is cut to the width so it cannot wrap") {
  LogRenderer renderer(RenderOptions{true, false, 8});
  CHECK(renderer.add(0, "\rétape 12345") == "étape 1");
  CHECK(renderer.add(0, "\n") == "\r\033[Kétape 12345\n");
}
