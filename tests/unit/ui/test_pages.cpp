#include <catch2/catch.hpp>

#include "lib/ui/pages.hpp"

using namespace amlrun;

namespace {

const std::string k_hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>&amp;";
const std::string k_escaped =
    "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;&amp;amp;";

// The page's text with every place a hostile value may be shown checked:
// the raw value never appears, the escaped one does.
void check_only_escaped(const std::string& page) {
  CHECK(page.find("<script>alert") == std::string::npos);
  CHECK(page.find("<img src=x") == std::string::npos);
  CHECK(page.find(k_escaped) != std::string::npos);
}

}  // namespace

TEST_CASE("the runs page shows hostile names, experiments and tags as text") {
  ui::RunsView view;
  view.now = "2026-12-04T10:00:00Z";
  store::IndexRow row;
  row.id = "exp_20261204T090000_0000abcd";
  row.experiment = k_hostile;
  row.display_name = k_hostile;
  row.state = "Running";
  row.created_at = "2026-12-04T09:00:00Z";
  row.compute = "local";
  row.tags = {{"k", k_hostile}};
  view.rows = {row};
  view.total = 1;
  view.tag = k_hostile;
  std::string page = ui::runs_page(view);
  check_only_escaped(page);
  CHECK(page.find("<a href=\"/runs/exp_20261204T090000_0000abcd\">") != std::string::npos);
  CHECK(page.find("<td class=\"num\">1h 00m 00s</td>") != std::string::npos);
  // The running row is polled by the script; its id is in the JSON block.
  CHECK(page.find(R"({"live":["exp_20261204T090000_0000abcd"],"page":"runs"})") !=
        std::string::npos);
  CHECK(page.find("1–1 of 1") != std::string::npos);
  CHECK(page.find("rel=\"next\"") == std::string::npos);
}

TEST_CASE("the runs page pages through a large workspace") {
  ui::RunsView view;
  view.total = 10000;
  view.offset = 50;
  view.limit = 50;
  view.status = "Completed";
  for (int i = 0; i < 50; ++i) {
    store::IndexRow row;
    row.id = "r" + std::to_string(i);
    row.state = "Completed";
    view.rows.push_back(row);
  }
  std::string page = ui::runs_page(view);
  CHECK(page.find("51–100 of 10000") != std::string::npos);
  CHECK(page.find("<a rel=\"prev\" href=\"/?status=Completed&amp;offset=0\">newer</a>") !=
        std::string::npos);
  CHECK(page.find("<a rel=\"next\" href=\"/?status=Completed&amp;offset=100\">older</a>") !=
        std::string::npos);
}

TEST_CASE("a run page escapes params, tags, metric names, log lines and file names") {
  ui::RunView view;
  view.now = "2026-12-04T10:00:00Z";
  auto& r = view.record;
  r.id = "exp_20261204T090000_0000abcd";
  r.display_name = k_hostile;
  r.experiment = k_hostile;
  r.state = store::RunState::failed;
  r.failure_reason = k_hostile;
  r.exit_code = 3;
  r.params = {{k_hostile, k_hostile}};
  r.tags = {{"note", k_hostile}};
  r.history = {{store::RunState::queued, "2026-12-04T09:00:00Z"},
               {store::RunState::running, "2026-12-04T09:00:02Z"},
               {store::RunState::failed, "2026-12-04T09:01:02Z"}};
  view.log_found = true;
  view.log_text = k_hostile + "\n";
  store::MetricSummary metric;
  metric.name = "loss";
  metric.count = 3;
  metric.last_value = 0.5;
  view.metrics = {metric};
  view.chosen = {"loss"};
  // A file name has no '/': the hostile part that fits in one.
  view.files = {
      {"outputs", {{"\"><img src=x onerror=alert(3)>&amp;", false, 12}, {"model", true, 0}}}};
  view.csrf = "c0ffee";
  std::string page = ui::run_page(view);
  check_only_escaped(page);
  CHECK(page.find("<span class=\"state state-Failed\" id=\"run-state\">Failed</span>") !=
        std::string::npos);
  // The timeline says how long each state lasted and why the run ended.
  CHECK(page.find("<li><span class=\"state state-Running\">Running</span> <span "
                  "class=\"muted\">2026-12-04T09:00:02Z (1m 00s)</span></li>") !=
        std::string::npos);
  // A file name goes into a link percent-encoded and into the text escaped.
  CHECK(page.find("href=\"/runs/exp_20261204T090000_0000abcd/files/outputs/"
                  "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%283%29%3E%26amp%3B\">&quot;&gt;"
                  "&lt;img src=x onerror=alert(3)&gt;&amp;amp;</a>") != std::string::npos);
  CHECK(page.find("href=\"/runs/exp_20261204T090000_0000abcd/files/outputs/model/\"") !=
        std::string::npos);
  // An ended run has no Cancel button.
  CHECK(page.find("cancel-form") == std::string::npos);
}

TEST_CASE("a running run's page has Cancel with its CSRF token and a live log from its end") {
  ui::RunView view;
  view.record.id = "exp_1";
  view.record.state = store::RunState::running;
  view.record.instance_count = 1;
  view.record.process_count = 2;
  view.ranks = 2;
  view.rank = 1;
  view.log_found = true;
  view.log_text = "hello\n";
  view.log_start = 100;
  view.log_end = 106;
  view.log_size = 106;
  view.csrf = "c0ffee";
  std::string page = ui::run_page(view);
  CHECK(page.find("<input type=\"hidden\" name=\"csrf\" value=\"c0ffee\">") != std::string::npos);
  CHECK(page.find("\"events\":\"/runs/exp_1/log/events?rank=1\\u0026offset=106\"") !=
        std::string::npos);
  CHECK(page.find("<a href=\"/runs/exp_1?rank=0\">0</a> <strong>1</strong>") != std::string::npos);
  CHECK(page.find("The first 100 B of 106 B are not shown here") != std::string::npos);
}

TEST_CASE("a sweep page lists trials in the order given with the best one marked") {
  ui::RunView view;
  view.record.id = "sweep_1";
  view.record.kind = store::RunKind::sweep;
  view.record.state = store::RunState::completed;
  ui::SweepView sweep;
  sweep.primary_metric = "val_loss";
  compute::TrialSummary best, worse;
  best.k = 2;
  best.id = "sweep_1_2";
  best.state = "Completed";
  best.objective = 0.25;
  best.params = {{"lr", sweep::Value::of_real(0.01)}};
  worse.k = 1;
  worse.id = "sweep_1_1";
  worse.state = "Canceled";
  worse.objective = 0.75;
  worse.reason = "bandit: 0.75 is outside the slack";
  sweep.summary.trials = {best, worse};
  sweep.summary.best = 0;
  view.sweep = sweep;
  std::string page = ui::run_page(view);
  auto first = page.find("data-trial=\"sweep_1_2\"");
  auto second = page.find("data-trial=\"sweep_1_1\"");
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  CHECK(first < second);
  CHECK(page.find("<tr class=\"trial best\" data-trial=\"sweep_1_2\"><td>★ best</td>") !=
        std::string::npos);
  CHECK(page.find("<td class=\"num objective\"><span title=\"0.25\">0.25</span></td><td><span "
                  "class=\"tag\">lr=0.01</span>") != std::string::npos);
  CHECK(page.find("bandit: 0.75 is outside the slack") != std::string::npos);
  // A sweep runs no process of its own: no log.
  CHECK(page.find("id=\"log\"") == std::string::npos);
}

TEST_CASE("the models page lists files with sizes and checksums and links the run") {
  ui::ModelView model;
  model.version.name = "fashion";
  model.version.version = "2";
  model.version.source_run = "exp_1";
  model.version.files = 1;
  model.version.bytes = 2048;
  model.files = {{"model.pt", 2048, std::string(64, 'a')}};
  std::string page = ui::models_page({model});
  CHECK(page.find("<tr><td>model.pt</td><td class=\"num\">2.0 KiB</td><td><code>" +
                  std::string(64, 'a') + "</code></td></tr>") != std::string::npos);
  CHECK(page.find("<a href=\"/runs/exp_1\">exp_1</a>") != std::string::npos);
}
