// The sweep journal: what a resumed controller reads back of its decisions.
#include <catch2/catch.hpp>

#include "lib/compute/sweep/sweep_journal.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
using unit_test::message_of;
using unit_test::TempDir;

TEST_CASE("the journal reads back every decision, in order", "[sweep]") {
  TempDir dir;
  auto file = dir.path / "sweep_journal.jsonl";
  CHECK(compute::read_sweep_journal(file).trials.empty());  // none yet
  {
    compute::SweepJournal journal(file);
    journal.seed(42);
    journal.trial({0,
                   "s_0",
                   {{"lr", sweep::Value::of_real(0.01)},
                    {"batch", sweep::Value::of_integer(64)},
                    {"opt", sweep::Value::of_text("adam")}},
                   {}});
    journal.trial({1, "s_1", {{"lr", sweep::Value::of_real(1e-05)}}, {0.25, 0.75}});
    journal.stop({"s_0", "bandit: ..."});
    journal.end("timeout: the sweep's limit of 60 s was reached");
  }
  auto read = compute::read_sweep_journal(file);
  CHECK(read.seed == 42U);
  REQUIRE(read.trials.size() == 2);
  // Parameters keep their order and their kind.
  CHECK(read.trials[0].params[0].first == "lr");
  CHECK(read.trials[0].params[1].second == sweep::Value::of_integer(64));
  CHECK(read.trials[0].params[2].second == sweep::Value::of_text("adam"));
  CHECK(read.trials[1].params[0].second.str() == "1e-05");
  CHECK(read.trials[1].point == std::vector<double>{0.25, 0.75});
  REQUIRE(read.stops.size() == 1);
  CHECK(read.stops[0].reason == "bandit: ...");
  CHECK(read.end_reason == "timeout: the sweep's limit of 60 s was reached");
}

TEST_CASE("a line cut short by a crash was never acted on and is dropped", "[sweep]") {
  TempDir dir;
  auto file = dir.write("j.jsonl",
                        "{\"op\":\"seed\",\"seed\":7}\n"
                        "{\"op\":\"trial\",\"k\":0,\"id\":\"s_0\",\"params\":{}}\n"
                        "{\"op\":\"trial\",\"k\":1,\"id\":\"s_");
  CHECK(compute::read_sweep_journal(file).trials.size() == 1);
  {
    // Reopening cuts it, so the next entry starts on its own line.
    compute::SweepJournal journal(file);
    journal.trial({1, "s_1", {}, {}});
  }
  auto read = compute::read_sweep_journal(file);
  REQUIRE(read.trials.size() == 2);
  CHECK(read.trials[1].id == "s_1");
}

TEST_CASE("a damaged entry stops the sweep, naming the line", "[sweep]") {
  TempDir dir;
  auto file = dir.write("j.jsonl",
                        "{\"op\":\"seed\",\"seed\":7}\n"
                        "{\"op\":\"trial\",\"k\":1,\"id\":\"s_1\",\"params\":{}}\n");
  CHECK(message_of([&] { compute::read_sweep_journal(file); }) ==
        file.string() +
            ":2: damaged sweep journal entry (trial 1 follows trial 0); the sweep cannot tell "
            "what it decided there");
  auto other = dir.write("k.jsonl", "{\"op\":\"launch\"}\n");
  CHECK(message_of([&] { compute::read_sweep_journal(other); }) ==
        other.string() +
            ":1: damaged sweep journal entry (unknown op 'launch'); the sweep cannot tell what "
            "it decided there");
}
