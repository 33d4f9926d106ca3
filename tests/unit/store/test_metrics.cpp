#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "../test_support.hpp"
#include "lib/store/metric_ingest.hpp"
#include "lib/store/metric_line.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_store.hpp"

using namespace amlrun;
using unit_test::TempDir;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  TempDir dir;
  workspace::Workspace ws{workspace::create_workspace(dir.path / ".amlrun"), {}};
  store::RunStore runs{ws};
  std::string id;
  fs::path metrics_dir = dir.path / "metrics";

  Fixture() {
    store::RunRecord record;
    record.experiment = "exp";
    record.id = store::RunStore::new_run_id("exp");
    runs.create(record);
    id = record.id;
    fs::create_directories(metrics_dir);
  }
  void append(int rank, const std::string& text) const {
    std::ofstream(metrics_dir / ("rank_" + std::to_string(rank) + ".jsonl"), std::ios::app) << text;
  }
  std::vector<store::MetricPoint> points(const std::string& name = "") const {
    return store::metric_points(runs, id, name);
  }
};

bool same_value(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
}

}  // namespace

TEST_CASE("the canonical-shape shortcut reads lines exactly as the full parser does") {
  static const char k_nul_line[] = "{\"name\": \"a\0b\", \"value\": 1}";
  std::vector<std::string> lines = {
      R"({"name": "loss", "value": 0.31, "step": 120})",
      R"({"step":3,"value":-2.5e-3,"name":"val/acc"})",
      "  {\t\"name\" : \"x\" , \"value\" : 1 }\r",
      R"({"name": "loss", "value": "NaN", "step": 1})",
      R"({"name": "loss", "value": "Infinity"})",
      R"({"name": "loss", "value": "-Infinity", "step": 0})",
      R"({"name": "loss", "value": "nan"})",
      R"({"name": "loss", "value": -0})",
      R"({"name": "loss", "value": -0.0})",
      R"({"name": "loss", "value": 123456789012345678901234567890})",
      R"({"name": "loss", "value": 18446744073709551615})",
      R"({"name": "loss", "value": -9223372036854775808})",
      R"({"name": "loss", "value": 1e400})",
      R"({"name": "loss", "value": 1.5, "step": 1.0})",
      R"({"name": "loss", "value": 1.5, "step": 1.5})",
      R"({"name": "loss", "value": 1.5, "step": -1})",
      R"({"name": "loss", "value": 1.5, "step": -0})",
      R"({"name": "loss", "value": 1.5, "step": "3"})",
      R"({"name": "loss", "value": 1.5, "step": 9223372036854775808})",
      R"({"name": "loss", "value": 1.5, "step": 1e2})",
      R"({"name": "lo\"ss", "value": 1})",
      R"({"name": "lo\u0073s", "value": 1})",
      R"({"name": "lößs", "value": 1})",
      R"({"name": "loss", "value": 1, "extra": {"a": [1, 2]}})",
      R"({"name": "loss", "value": 1, "name": "other"})",
      R"({"name": "loss", "value": true})",
      R"({"name": "loss", "value": null})",
      R"({"name": "loss", "value": [1]})",
      R"({"name": 5, "value": 1})",
      R"({"value": 1})",
      R"({"name": "loss"})",
      R"({"name": "loss", "value": 01})",
      R"({"name": "loss", "value": .5})",
      R"({"name": "loss", "value": 1.})",
      R"({"name": "loss", "value": +1})",
      R"({"name": "loss", "value": 1} trailing)",
      R"({"name": "loss", "value": 1},)",
      R"({"name": "loss", "value": 1)",
      R"([{"name": "loss", "value": 1}])",
      R"("just a string")",
      "",
      "{}",
      "{\"name\": \"a\x01b\", \"value\": 1}",
      std::string(k_nul_line, sizeof k_nul_line - 1),
  };
  // Mutations of a canonical line: every byte replaced, removed or doubled.
  std::string base = R"({"name": "loss", "value": -12.5e-1, "step": 42})";
  const char alphabet[] = "{}[]\":,.-+eE0123456789 \\aNI";
  std::mt19937 random(7);
  for (std::size_t i = 0; i < base.size(); ++i) {
    lines.push_back(base.substr(0, i) + base.substr(i + 1));
    lines.push_back(base.substr(0, i) + base[i] + base.substr(i));
    for (int k = 0; k < 6; ++k) {
      std::string mutated = base;
      mutated[i] = alphabet[random() % (sizeof alphabet - 1)];
      lines.push_back(mutated);
    }
  }
  int shortcut_taken = 0;
  for (const auto& line : lines) {
    INFO(line);
    store::MetricLine fast, full;
    store::LineVerdict verdict = store::read_metric_line_slowly(line, full);
    if (store::read_canonical_metric_line(line, fast)) {
      ++shortcut_taken;
      REQUIRE(verdict == store::LineVerdict::ok);
      CHECK(fast.name == full.name);
      CHECK(same_value(fast.value, full.value));
      CHECK(fast.has_step == full.has_step);
      CHECK(fast.step == full.step);
    }
    store::MetricLine combined;
    CHECK(store::read_metric_line(line, combined) == verdict);
  }
  CHECK(shortcut_taken > 10);
}

TEST_CASE("metric names") {
  for (const char* good : {"loss", "val/acc", "train.loss_0", "_x", "a:b-c", "0"}) {
    CHECK(store::is_valid_metric_name(good));
  }
  for (const char* bad : {"", "bad name", "/x", ".x", "-x", "a,b", "ü"}) {
    CHECK_FALSE(store::is_valid_metric_name(bad));
  }
  CHECK(store::is_valid_metric_name(std::string(128, 'a')));
  CHECK_FALSE(store::is_valid_metric_name(std::string(129, 'a')));
}

TEST_CASE("ingestion keeps good points, counts what it skips, and summarises") {
  Fixture f;
  f.append(0,
           "{\"name\": \"loss\", \"value\": 0.5, \"step\": 0}\n"
           "{\"name\": \"loss\", \"value\": 0.25, \"step\": 1}\n"
           "not json\n"
           "{\"name\": \"bad name\", \"value\": 1}\n"
           "{\"name\": \"loss\", \"value\": \"NaN\", \"step\": 2}\n"
           "{\"name\": \"loss\", \"value\": 0.75, \"step\": 1}\n"
           "\n"
           "{\"name\": \"acc\", \"value\": \"Infinity\"}\n"
           "{\"name\": \"acc\", \"value\": 0.9}\n"
           "{\"name\": \"loss\", \"value\": 0.1, \"step\": 2}\n");
  store::MetricIngestor ingestor(f.runs, f.id, f.metrics_dir);
  auto pass = ingestor.ingest(false);
  CHECK(pass.points == 6);
  CHECK(pass.skipped == 3);
  auto report = store::ingest_report(f.runs, f.id);
  CHECK(report.malformed == 1);
  CHECK(report.bad_name == 1);
  CHECK(report.backwards == 1);
  CHECK(report.non_finite == 2);
  CHECK(report.first_problem == "rank_0.jsonl:3: not a JSON object");

  auto summaries = store::metric_summaries(f.runs, f.id);
  REQUIRE(summaries.size() == 2);
  CHECK(summaries[0].name == "acc");
  CHECK(summaries[0].count == 2);
  CHECK(summaries[0].last_step == 1);  // no step given: counts on from the last
  CHECK(summaries[0].last_value == 0.9);
  CHECK(summaries[0].min == 0.9);
  CHECK(summaries[1].name == "loss");
  CHECK(summaries[1].count == 4);
  CHECK(summaries[1].non_finite == 1);
  CHECK(summaries[1].last_value == 0.1);
  CHECK(summaries[1].last_step == 2);
  CHECK(summaries[1].min == 0.1);
  CHECK(summaries[1].max == 0.5);

  auto loss = f.points("loss");
  REQUIRE(loss.size() == 4);
  CHECK(std::isnan(loss[2].value));
  CHECK(loss[2].step == 2);
  CHECK(std::isinf(f.points("acc")[0].value));
}

TEST_CASE("an unfinished line waits for its newline, or for the final pass") {
  Fixture f;
  store::MetricIngestor ingestor(f.runs, f.id, f.metrics_dir);
  f.append(0, "{\"name\": \"loss\", \"value\": 1, \"step\": 0}\n{\"name\": \"loss\", \"val");
  CHECK(ingestor.ingest(false).points == 1);
  CHECK(ingestor.ingest(false).points == 0);
  f.append(0, "ue\": 2, \"step\": 1}\n{\"name\": \"loss\", \"value\": 3, \"step\": 2}");
  CHECK(ingestor.ingest(false).points == 1);
  CHECK(ingestor.ingest(true).points == 1);
  CHECK(ingestor.ingest(true).points == 0);
  CHECK(f.points().size() == 3);
  CHECK(store::ingest_report(f.runs, f.id).skipped() == 0);
}

TEST_CASE("appending a byte at a time gives the same points as one pass") {
  std::string text =
      "{\"name\": \"loss\", \"value\": 0.5, \"step\": 0}\n"
      "{\"name\": \"loss\", \"value\": 0.25, \"step\": 1}\n"
      "garbage {\n"
      "{\"name\": \"acc\", \"value\": \"NaN\"}\n"
      "{\"name\": \"loss\", \"value\": 0.75, \"step\": 0}\n"
      "{\"step\": 7, \"name\": \"acc\", \"value\": 1e-3}";
  Fixture whole;
  whole.append(0, text);
  store::MetricIngestor(whole.runs, whole.id, whole.metrics_dir).ingest(true);

  Fixture bytes;
  store::MetricIngestor ingestor(bytes.runs, bytes.id, bytes.metrics_dir);
  for (char c : text) {
    bytes.append(0, std::string(1, c));
    ingestor.ingest(false);
  }
  ingestor.ingest(true);
  auto expected = whole.points();
  auto got = bytes.points();
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].name == expected[i].name);
    CHECK(got[i].step == expected[i].step);
    CHECK(same_value(got[i].value, expected[i].value));
  }
  auto a = store::ingest_report(whole.runs, whole.id);
  auto b = store::ingest_report(bytes.runs, bytes.id);
  CHECK(a.malformed == b.malformed);
  CHECK(a.backwards == b.backwards);
  CHECK(a.first_problem == b.first_problem);
}

TEST_CASE("a file cut at every byte ingests without error") {
  std::string text =
      "{\"name\": \"loss\", \"value\": 0.5, \"step\": 0}\n"
      "{\"name\": \"acc\", \"value\": \"Infinity\", \"step\": 3}\n"
      "{\"name\": \"loss\", \"value\": 1e5}\n";
  Fixture f;
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    std::string run_id = store::RunStore::new_run_id("cut");
    store::RunRecord record;
    record.id = run_id;
    record.experiment = "cut";
    f.runs.create(record);
    fs::path dir = f.dir.path / ("cut" + std::to_string(cut));
    fs::create_directories(dir);
    std::ofstream(dir / "rank_0.jsonl") << text.substr(0, cut);
    store::MetricIngestor ingestor(f.runs, run_id, dir);
    auto pass = ingestor.ingest(true);
    auto report = store::ingest_report(f.runs, run_id);
    std::size_t lines =
        static_cast<std::size_t>(std::count(text.begin(), text.begin() + cut, '\n'));
    CHECK(static_cast<std::size_t>(pass.points) >= lines);  // every complete line is good
    CHECK(pass.points + report.skipped() <= static_cast<std::int64_t>(lines) + 1);
  }
}

TEST_CASE("a new ingestor resumes without repeating points or forgetting steps") {
  Fixture f;
  f.append(0, "{\"name\": \"loss\", \"value\": 1, \"step\": 5}\n");
  store::MetricIngestor(f.runs, f.id, f.metrics_dir).ingest(false);
  f.append(0,
           "{\"name\": \"loss\", \"value\": 2, \"step\": 4}\n{\"name\": \"loss\", \"value\": 3}\n");
  store::MetricIngestor second(f.runs, f.id, f.metrics_dir);
  auto pass = second.ingest(true);
  CHECK(pass.points == 1);
  CHECK(pass.skipped == 1);
  auto points = f.points();
  REQUIRE(points.size() == 2);
  CHECK(points[1].step == 6);
  CHECK(store::metric_summaries(f.runs, f.id)[0].count == 2);
}

TEST_CASE("steps go backwards per rank, not across ranks") {
  Fixture f;
  f.append(0, "{\"name\": \"loss\", \"value\": 1, \"step\": 10}\n");
  f.append(1,
           "{\"name\": \"loss\", \"value\": 1, \"step\": 0}\n{\"name\": \"loss\", \"value\": 1, "
           "\"step\": 1}\n");
  f.append(12, "not json\n");
  store::MetricIngestor ingestor(f.runs, f.id, f.metrics_dir);
  auto pass = ingestor.ingest(true);
  CHECK(pass.points == 3);
  CHECK(pass.skipped == 1);
  auto points = f.points();
  CHECK(points[1].rank == 1);
  CHECK(store::ingest_report(f.runs, f.id).first_problem == "rank_12.jsonl:1: not a JSON object");
  std::ofstream(f.metrics_dir / "rank_x.jsonl") << "ignored\n";
  std::ofstream(f.metrics_dir / "rank_01.jsonl") << "ignored\n";
  CHECK(ingestor.ingest(true).skipped == 0);
}

TEST_CASE("an overlong line is skipped once, even across passes") {
  Fixture f;
  store::MetricIngestor ingestor(f.runs, f.id, f.metrics_dir);
  f.append(0, "{\"name\": \"loss\", \"value\": \"" + std::string(70000, 'x'));
  CHECK(ingestor.ingest(false).skipped == 1);
  f.append(0, std::string(70000, 'y') + "\"}\n{\"name\": \"loss\", \"value\": 1}\n");
  auto pass = ingestor.ingest(false);
  CHECK(pass.skipped == 0);
  CHECK(pass.points == 1);
  CHECK(store::ingest_report(f.runs, f.id).first_problem ==
        "rank_0.jsonl:1: a line longer than 65536 bytes");
}

TEST_CASE("a FIFO or a link as metrics file is not read and does not hang") {
  Fixture f;
  REQUIRE(::mkfifo((f.metrics_dir / "rank_0.jsonl").c_str(), 0644) == 0);
  fs::create_symlink("/etc/passwd", f.metrics_dir / "rank_1.jsonl");
  store::MetricIngestor ingestor(f.runs, f.id, f.metrics_dir);
  auto pass = ingestor.ingest(true);
  CHECK(pass.points == 0);
  CHECK(pass.skipped == 2);
  CHECK(ingestor.ingest(true).skipped == 0);  // counted once
  CHECK(store::ingest_report(f.runs, f.id).first_problem ==
        "rank_0.jsonl: not a regular file; not read");
}

TEST_CASE("a pass reads at most its byte budget; the rest waits") {
  Fixture f;
  std::string line = "{\"name\": \"loss\", \"value\": 1}\n";
  for (int i = 0; i < 5000; ++i) f.append(0, line);  // 155 KB
  store::MetricIngestor ingestor(f.runs, f.id, f.metrics_dir);
  auto first = ingestor.ingest(false, 1000);
  CHECK(first.points >= 1000 / static_cast<std::int64_t>(line.size()));
  CHECK(first.points < 5000);
  CHECK(first.points + ingestor.ingest(false).points == 5000);
}

TEST_CASE("metric values print as the protocol writes them") {
  CHECK(store::format_metric_value(0.31) == "0.31");
  CHECK(store::format_metric_value(std::nan("")) == "NaN");
  CHECK(store::format_metric_value(INFINITY) == "Infinity");
  CHECK(store::format_metric_value(-INFINITY) == "-Infinity");
  CHECK(store::format_metric_value(3) == "3");
}

TEST_CASE("metrics of a run can be dropped (doctor)") {
  Fixture f;
  f.append(0, "{\"name\": \"loss\", \"value\": 1}\n");
  store::MetricIngestor(f.runs, f.id, f.metrics_dir).ingest(true);
  CHECK(store::has_ingested_metrics(f.runs, f.id));
  CHECK(store::runs_with_metrics(f.runs) == std::vector<std::string>{f.id});
  store::delete_run_metrics(f.runs, f.id);
  CHECK_FALSE(store::has_ingested_metrics(f.runs, f.id));
  CHECK(f.points().empty());
}

TEST_CASE("a line with no step after the largest step is skipped, not stored at a negative step") {
  Fixture f;
  f.append(0,
           "{\"name\": \"loss\", \"value\": 1, \"step\": 9223372036854775806}\n"
           "{\"name\": \"loss\", \"value\": 2}\n"
           "{\"name\": \"loss\", \"value\": 3}\n"
           "{\"name\": \"loss\", \"value\": 4, \"step\": 5}\n"
           "{\"name\": \"loss\", \"value\": 5, \"step\": 9223372036854775807}\n");
  store::MetricIngestor ingestor(f.runs, f.id, f.metrics_dir);
  auto pass = ingestor.ingest(true);
  CHECK(pass.points == 3);
  CHECK(pass.skipped == 2);
  auto points = f.points("loss");
  REQUIRE(points.size() == 3);
  CHECK(points[1].step == 9223372036854775807);  // counted on once, to the largest step
  CHECK(points[2].step == 9223372036854775807);
  for (const auto& point : points) CHECK(point.step >= 0);
  auto report = store::ingest_report(f.runs, f.id);
  CHECK(report.malformed == 1);
  CHECK(report.backwards == 1);  // step 5 after the largest: still going backwards
  CHECK(report.first_problem ==
        "rank_0.jsonl:3: no \"step\" after step 9223372036854775807 of 'loss', the largest there "
        "is; give the step explicitly");
  auto summaries = store::metric_summaries(f.runs, f.id);
  REQUIRE(summaries.size() == 1);
  CHECK(summaries[0].last_step == 9223372036854775807);
  CHECK(summaries[0].last_value == 5);
  // A later ingestor resumes from the largest step and still refuses to count on.
  f.append(0, "{\"name\": \"loss\", \"value\": 6}\n");
  store::MetricIngestor resumed(f.runs, f.id, f.metrics_dir);
  CHECK(resumed.ingest(true).skipped == 1);
  CHECK(f.points("loss").size() == 3);
}

TEST_CASE("numbers beyond what a double or a step holds are named as such") {
  std::string digits(400, '9');
  struct Case {
    std::string line;
    store::LineVerdict verdict;
  };
  std::vector<Case> cases = {
      {R"({"name": "loss", "value": )" + digits + "}", store::LineVerdict::value_out_of_range},
      {R"({"name": "loss", "value": 1e400})", store::LineVerdict::value_out_of_range},
      {R"({"name": "loss", "value": -1e400, "step": 1})", store::LineVerdict::value_out_of_range},
      {R"({"name": "loss", "value": 1, "step": )" + digits + "}",
       store::LineVerdict::step_out_of_range},
      {R"({"name": "loss", "value": 1, "step": 9223372036854775808})",
       store::LineVerdict::step_out_of_range},
      {R"({"name": "loss", "value": 1, "step": 99999999999999999999})",
       store::LineVerdict::step_out_of_range},
      {R"({"name": "loss", "value": 1, "other": 1e999})", store::LineVerdict::number_out_of_range},
      {R"({"name": "loss", "value": 1, "x": [1e999]})", store::LineVerdict::number_out_of_range},
      {"1e999", store::LineVerdict::not_an_object},
      {R"({"name": "loss", "value": 1, "step": 9223372036854775807})", store::LineVerdict::ok},
      {R"({"name": "loss", "value": 1.7976931348623157e308})", store::LineVerdict::ok},
  };
  for (const auto& c : cases) {
    INFO(c.line.substr(0, 80));
    store::MetricLine out;
    CHECK(store::read_metric_line(c.line, out) == c.verdict);
  }
  CHECK(std::string(store::describe(store::LineVerdict::value_out_of_range)) ==
        "\"value\" is a number out of range (beyond ±1.8e308; write \"Infinity\" or \"-Infinity\" "
        "for an infinite value)");
  CHECK(std::string(store::describe(store::LineVerdict::step_out_of_range)) ==
        "\"step\" is out of range (at most 9223372036854775807)");
  Fixture f;
  f.append(0, R"({"name": "loss", "value": )" + digits + "}\n");
  store::MetricIngestor ingestor(f.runs, f.id, f.metrics_dir);
  ingestor.ingest(true);
  CHECK(store::ingest_report(f.runs, f.id).first_problem ==
        "rank_0.jsonl:1: \"value\" is a number out of range (beyond ±1.8e308; write \"Infinity\" "
        "or \"-Infinity\" for an infinite value)");
}

TEST_CASE("the tracking endpoint's files are sources of their own, counted as their rank") {
  CHECK(store::metric_source_of_file("rank_3.jsonl") == 3);
  CHECK(store::metric_source_of_file("mlflow_rank_3.jsonl") == store::k_tracking_source_base + 3);
  CHECK(store::metric_source_of_file("mlflow_rank_03.jsonl") == -1);
  CHECK(store::metric_source_of_file("other.jsonl") == -1);
  Fixture f;
  f.append(1, "{\"name\": \"loss\", \"value\": 1, \"step\": 5}\n");
  std::ofstream(f.metrics_dir / "mlflow_rank_1.jsonl")
      << "{\"name\":\"loss\",\"value\":2,\"step\":0}\nnot json\n";
  {
    store::MetricIngestor ingestor(f.runs, f.id, f.metrics_dir);
    // Each file keeps its own steps: the endpoint's step 0 is not "backwards"
    // from the rank file's step 5.
    CHECK(ingestor.ingest(false).points == 2);
  }
  auto points = f.points("loss");
  REQUIRE(points.size() == 2);
  CHECK(points[0].rank == 1);
  CHECK(points[1].rank == 1);
  CHECK(store::ingest_report(f.runs, f.id).first_problem ==
        "mlflow_rank_1.jsonl:2: not a JSON object");
  // Offsets are kept per source: a second ingestor reads nothing again.
  std::ofstream(f.metrics_dir / "mlflow_rank_1.jsonl", std::ios::app)
      << "{\"name\":\"loss\",\"value\":3,\"step\":1}\n";
  store::MetricIngestor again(f.runs, f.id, f.metrics_dir);
  CHECK(again.ingest(true).points == 1);
  CHECK(store::ingested_offsets(f.runs, f.id).count(store::k_tracking_source_base + 1) == 1);
}
