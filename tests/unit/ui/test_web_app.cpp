// The web view served for real on loopback (and on a non-loopback address
// of this machine where the token rules differ), asked with httplib's
// client: status codes, headers, token and CSRF rules, traversal.
#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "../test_support.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/ui/web_app.hpp"

using namespace amlrun;
using unit_test::TempDir;

namespace {

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

struct Fixture {
  TempDir dir;
  TempDir outside;
  workspace::Workspace workspace{workspace::create_workspace(dir.path / ".amlrun"), {}};
  std::string run_id;

  Fixture() {
    store::RunStore store(workspace);
    store::RunRecord record;
    record.id = store::RunStore::new_run_id("exp");
    record.experiment = "exp";
    auto lock = store.create(record);
    store.transition(record, store::RunState::failed);
    run_id = record.id;
    store::RunLayout layout(store.run_dir(run_id));
    std::filesystem::create_directories(layout.outputs() / "model");
    std::filesystem::create_directories(layout.user_logs());
    write_file(layout.outputs() / "model" / "weights.bin", "WEIGHTS");
    write_file(layout.outputs() / "page.html", "<script>alert(1)</script>");
    write_file(layout.rank_log(0), "hello from rank 0\n");
    outside.write("secret.txt", "SECRET");
    std::filesystem::create_symlink(outside.path / "secret.txt", layout.outputs() / "leak.txt");
    std::filesystem::create_symlink(outside.path, layout.outputs() / "leakdir");
  }
};

std::string header(const httplib::Result& result, const std::string& name) {
  return result->get_header_value(name);
}

}  // namespace

TEST_CASE("on loopback the pages are open, files are served as data, traversal is 404") {
  Fixture fixture;
  ui::WebApp app(fixture.workspace, {"127.0.0.1", 0, "", 4});
  int port = app.start();
  httplib::Client client("127.0.0.1", port);

  auto runs = client.Get("/");
  REQUIRE(runs);
  CHECK(runs->status == 200);
  CHECK(runs->body.find(fixture.run_id) != std::string::npos);
  CHECK(header(runs, "Content-Security-Policy").find("script-src 'self'") != std::string::npos);

  auto run = client.Get("/runs/" + fixture.run_id);
  REQUIRE(run);
  CHECK(run->status == 200);
  CHECK(run->body.find("hello from rank 0") != std::string::npos);

  auto file = client.Get("/runs/" + fixture.run_id + "/files/outputs/model/weights.bin");
  REQUIRE(file);
  CHECK(file->status == 200);
  CHECK(file->body == "WEIGHTS");
  CHECK(header(file, "Content-Type") == "application/octet-stream");
  CHECK(header(file, "Content-Disposition") == "attachment; filename*=UTF-8''weights.bin");
  // A page a job wrote is never a page of this site.
  auto html = client.Get("/runs/" + fixture.run_id + "/files/outputs/page.html");
  REQUIRE(html);
  CHECK(header(html, "Content-Type") == "application/octet-stream");
  CHECK(header(html, "Content-Security-Policy") == "default-src 'none'; sandbox");

  auto listing = client.Get("/runs/" + fixture.run_id + "/files/outputs/");
  REQUIRE(listing);
  CHECK(listing->status == 200);
  CHECK(listing->body.find(">model/</a>") != std::string::npos);
  CHECK(listing->body.find("leak") == std::string::npos);

  for (const std::string& path :
       {"/files/../run.json", "/files/outputs/%2e%2e/%2e%2e/run.json", "/files/outputs/leak.txt",
        "/files/outputs/leakdir/secret.txt", "/files//etc/passwd", "/files/outputs/missing.txt",
        "/files/outputs/model/weights.bin/"}) {
    auto answer = client.Get("/runs/" + fixture.run_id + path);
    REQUIRE(answer);
    INFO(path);
    CHECK(answer->status == 404);
    CHECK(answer->body.find("SECRET") == std::string::npos);
  }
  auto no_run = client.Get("/runs/nope_1");
  REQUIRE(no_run);
  CHECK(no_run->status == 404);
  CHECK(no_run->body.find("no run nope_1") != std::string::npos);
  auto bad_filter = client.Get("/?status=Sleeping");
  REQUIRE(bad_filter);
  CHECK(bad_filter->status == 400);
  CHECK(bad_filter->body.find("status &#39;Sleeping&#39; is not a run state") != std::string::npos);
}

TEST_CASE("a Host header that is not loopback is refused (DNS rebinding)") {
  Fixture fixture;
  ui::WebApp app(fixture.workspace, {"127.0.0.1", 0, "", 4});
  int port = app.start();
  httplib::Client client("127.0.0.1", port);
  auto answer = client.Get("/", {{"Host", "evil.example:" + std::to_string(port)}});
  REQUIRE(answer);
  CHECK(answer->status == 403);
  auto fine = client.Get("/", {{"Host", "localhost:" + std::to_string(port)}});
  REQUIRE(fine);
  CHECK(fine->status == 200);
}

TEST_CASE("off loopback every request needs the token; ?token= sets a cookie") {
  Fixture fixture;
  // 0.0.0.0 listens on every address, loopback included: the rules are the
  // ones for an address other machines reach.
  ui::WebApp app(fixture.workspace, {"0.0.0.0", 0, "0123456789abcdef0123", 4});
  int port = app.start();
  httplib::Client client("127.0.0.1", port);
  for (const std::string& path :
       std::vector<std::string>{"/", "/runs/" + fixture.run_id, "/static/ui.js", "/models",
                                "/runs/" + fixture.run_id + "/files/outputs/model/weights.bin"}) {
    auto answer = client.Get(path);
    REQUIRE(answer);
    INFO(path);
    CHECK(answer->status == 401);
    CHECK(answer->body.find("WEIGHTS") == std::string::npos);
  }
  auto wrong = client.Get("/?token=0123456789abcdef0124");
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto entered = client.Get("/?token=0123456789abcdef0123&status=Failed");
  REQUIRE(entered);
  CHECK(entered->status == 303);
  CHECK(header(entered, "Location") == "/?status=Failed");
  CHECK(header(entered, "Set-Cookie") ==
        "amlrun_ui_token=0123456789abcdef0123; Path=/; HttpOnly; SameSite=Strict");
  auto with_cookie = client.Get("/", {{"Cookie", "amlrun_ui_token=0123456789abcdef0123"}});
  REQUIRE(with_cookie);
  CHECK(with_cookie->status == 200);
  auto with_bearer = client.Get("/", {{"Authorization", "Bearer 0123456789abcdef0123"}});
  REQUIRE(with_bearer);
  CHECK(with_bearer->status == 200);
}

TEST_CASE("Cancel needs the token and the page's CSRF token") {
  Fixture fixture;
  ui::WebApp app(fixture.workspace, {"127.0.0.1", 0, "0123456789abcdef0123", 4});
  int port = app.start();
  httplib::Client client("127.0.0.1", port);
  std::string path = "/runs/" + fixture.run_id + "/cancel";
  std::string csrf = "csrf=" + app.csrf_token(fixture.run_id);
  auto no_token = client.Post(path, csrf, "application/x-www-form-urlencoded");
  REQUIRE(no_token);
  CHECK(no_token->status == 401);
  httplib::Headers cookie = {{"Cookie", "amlrun_ui_token=0123456789abcdef0123"}};
  auto no_csrf = client.Post(path, cookie, "", "application/x-www-form-urlencoded");
  REQUIRE(no_csrf);
  CHECK(no_csrf->status == 403);
  auto other_run = client.Post(path, cookie, "csrf=" + app.csrf_token("exp_other"),
                               "application/x-www-form-urlencoded");
  REQUIRE(other_run);
  CHECK(other_run->status == 403);
  // Both tokens right: the run already failed, so there is nothing to cancel.
  auto ended = client.Post(path, cookie, csrf, "application/x-www-form-urlencoded");
  REQUIRE(ended);
  CHECK(ended->status == 409);
  CHECK(ended->body.find("already ended (Failed); there is nothing to cancel") !=
        std::string::npos);
}

TEST_CASE("the live log sends what is there, then ends for an ended run") {
  Fixture fixture;
  ui::WebApp app(fixture.workspace, {"127.0.0.1", 0, "", 4});
  int port = app.start();
  httplib::Client client("127.0.0.1", port);
  auto events = client.Get("/runs/" + fixture.run_id + "/log/events?rank=0&offset=6");
  REQUIRE(events);
  CHECK(events->status == 200);
  CHECK(header(events, "Content-Type") == "text/event-stream");
  CHECK(events->body ==
        "retry: 1000\n\nid: 18\ndata: {\"t\":\"from rank 0\\n\"}\n\nevent: end\ndata: {}\n\n");
  auto resumed =
      client.Get("/runs/" + fixture.run_id + "/log/events?rank=0", {{"Last-Event-ID", "18"}});
  REQUIRE(resumed);
  CHECK(resumed->body == "retry: 1000\n\nevent: end\ndata: {}\n\n");
}

TEST_CASE("past half of the threads a live log sends what there is and ends, never blocking") {
  Fixture fixture;
  store::RunStore store(fixture.workspace);
  store::RunRecord record;
  record.id = store::RunStore::new_run_id("live");
  record.experiment = "live";
  auto lock = store.create(record);
  for (auto state :
       {store::RunState::preparing, store::RunState::starting, store::RunState::running}) {
    store.transition(record, state);
  }
  std::filesystem::create_directories(store::RunLayout(store.run_dir(record.id)).user_logs());
  write_file(store::RunLayout(store.run_dir(record.id)).rank_log(0), "so far\n");
  // 4 threads: 2 may wait.
  ui::WebApp app(fixture.workspace, {"127.0.0.1", 0, "", 4});
  int port = app.start();
  std::string path = "/runs/" + record.id + "/log/events?rank=0&offset=0";
  std::atomic<int> first_chunks = 0;
  std::vector<std::thread> waiting;
  for (int i = 0; i < 2; ++i) {
    waiting.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(30, 0);
      client.Get(path, [&](const char*, std::size_t) {
        ++first_chunks;
        return true;
      });
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (first_chunks < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (first_chunks < 2) {
    app.stop();
    for (auto& thread : waiting) thread.join();
    FAIL("the two waiting streams sent nothing in 10 s");
  }
  httplib::Client client("127.0.0.1", port);
  auto started = std::chrono::steady_clock::now();
  auto third = client.Get(path);
  auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(third);
  CHECK(third->body == "retry: 3000\n\nid: 7\ndata: {\"t\":\"so far\\n\"}\n\n");
  CHECK(took < std::chrono::seconds(5));
  app.stop();  // ends the two waiting streams
  for (auto& thread : waiting) thread.join();
}
