#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "lib/server/http_server.hpp"

using namespace amlrun;

namespace {

void add_echo(server::HttpServer& server, std::size_t limit) {
  server.route(
      "POST", "/echo/([a-z]+)",
      [](server::Request& request, server::Response& response) {
        response.body = request.captures.at(0) + ":" + request.body;
        response.content_type = "text/plain";
      },
      server::BodyMode::buffered, limit);
}

httplib::Headers bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

}  // namespace

TEST_CASE("the server answers a route on a port of its own, with its captures and body") {
  server::ServerOptions options;
  options.threads = 2;
  server::HttpServer server(options);
  add_echo(server, 64);
  int port = server.start();
  REQUIRE(port > 0);
  httplib::Client client("127.0.0.1", port);
  auto result = client.Post("/echo/abc", "hello", "text/plain");
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(result->body == "abc:hello");
  server.stop();
}

TEST_CASE("requests without the bearer token, or with another, get 401 and reach no handler") {
  server::ServerOptions options;
  options.bearer_token = "s3cret";
  options.threads = 2;
  server::HttpServer server(options);
  int calls = 0;
  server.route("GET", "/x", [&](server::Request&, server::Response& response) {
    ++calls;
    response.body = "ok";
  });
  int port = server.start();
  httplib::Client client("127.0.0.1", port);
  auto none = client.Get("/x");
  REQUIRE(none);
  CHECK(none->status == 401);
  auto body = nlohmann::json::parse(none->body);
  CHECK(body["error"] == "UNAUTHENTICATED");
  auto wrong = client.Get("/x", bearer("s3cre"));
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto right = client.Get("/x", bearer("s3cret"));
  REQUIRE(right);
  CHECK(right->status == 200);
  CHECK(calls == 1);
}

TEST_CASE("a body over the route's limit is refused with 413 before the handler runs") {
  server::ServerOptions options;
  options.threads = 2;
  server::HttpServer server(options);
  add_echo(server, 8);
  int port = server.start();
  httplib::Client client("127.0.0.1", port);
  auto result = client.Post("/echo/abc", std::string(9, 'x'), "text/plain");
  REQUIRE(result);
  CHECK(result->status == 413);
  CHECK(nlohmann::json::parse(result->body)["error"] == "REQUEST_TOO_LARGE");
  auto fits = client.Post("/echo/abc", std::string(8, 'x'), "text/plain");
  REQUIRE(fits);
  CHECK(fits->status == 200);
}

TEST_CASE("an unknown path gets 404 in the error shape the user of the server chose") {
  server::ServerOptions options;
  options.threads = 1;
  options.error_body = [](server::Response& response, int status, const std::string& code,
                          const std::string& message) {
    response.status = status;
    response.body = nlohmann::json{{"error_code", code}, {"message", message}}.dump();
  };
  server::HttpServer server(options);
  add_echo(server, 8);
  int port = server.start();
  httplib::Client client("127.0.0.1", port);
  auto result = client.Get("/nothing/here");
  REQUIRE(result);
  CHECK(result->status == 404);
  auto body = nlohmann::json::parse(result->body);
  CHECK(body["error_code"] == "ENDPOINT_NOT_FOUND");
  CHECK(body["message"] == "no endpoint GET /nothing/here");
}

TEST_CASE("a handler that throws answers 500 and the server goes on") {
  server::ServerOptions options;
  options.threads = 1;
  server::HttpServer server(options);
  server.route("GET", "/boom",
               [](server::Request&, server::Response&) { throw std::runtime_error("it broke"); });
  server.route("GET", "/fine",
               [](server::Request&, server::Response& response) { response.body = "fine"; });
  int port = server.start();
  httplib::Client client("127.0.0.1", port);
  auto boom = client.Get("/boom");
  REQUIRE(boom);
  CHECK(boom->status == 500);
  CHECK(nlohmann::json::parse(boom->body)["message"] == "it broke");
  auto fine = client.Get("/fine");
  REQUIRE(fine);
  CHECK(fine->body == "fine");
}

TEST_CASE("stop ends serving: a later request cannot connect") {
  server::ServerOptions options;
  options.threads = 1;
  server::HttpServer server(options);
  server.route("GET", "/x",
               [](server::Request&, server::Response& response) { response.body = "x"; });
  int port = server.start();
  server.stop();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1, 0);
  CHECK_FALSE(client.Get("/x"));
}

TEST_CASE("constant_time_equal compares whole strings") {
  CHECK(server::constant_time_equal("abc", "abc"));
  CHECK_FALSE(server::constant_time_equal("abc", "abd"));
  CHECK_FALSE(server::constant_time_equal("abc", "ab"));
  CHECK_FALSE(server::constant_time_equal("", "a"));
  CHECK(server::constant_time_equal("", ""));
}

TEST_CASE("a streamed response arrives in pieces with the handler's headers") {
  server::ServerOptions options;
  options.threads = 2;
  server::HttpServer server(options);
  server.route("GET", "/stream", [](server::Request&, server::Response& response) {
    response.content_type = "text/event-stream";
    response.headers.emplace_back("Cache-Control", "no-store");
    response.stream = [](const std::function<bool(std::string_view)>& write) {
      for (int i = 0; i < 3; ++i) {
        if (!write("data: " + std::to_string(i) + "\n\n")) return;
      }
    };
  });
  int port = server.start();
  httplib::Client client("127.0.0.1", port);
  std::vector<std::string> pieces;
  auto result = client.Get("/stream", [&](const char* data, std::size_t size) {
    pieces.emplace_back(data, size);
    return true;
  });
  REQUIRE(result);
  CHECK(result->status == 200);
  CHECK(result->get_header_value("Cache-Control") == "no-store");
  CHECK(result->get_header_value("Transfer-Encoding") == "chunked");
  std::string whole;
  for (const auto& piece : pieces) whole += piece;
  CHECK(whole == "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

TEST_CASE("the admit hook turns requests away before any handler, with its status") {
  server::ServerOptions options;
  options.threads = 2;
  options.admit = [](const server::Request& request) -> std::optional<server::Refusal> {
    if (request.query_value("key") == "open" || request.header("X-Key") == "open") {
      return std::nullopt;
    }
    return server::Refusal{403, "FORBIDDEN", "no key for " + request.path};
  };
  server::HttpServer server(options);
  int calls = 0;
  server.route("GET", "/x", [&](server::Request&, server::Response& response) {
    ++calls;
    response.body = "ok";
  });
  int port = server.start();
  httplib::Client client("127.0.0.1", port);
  auto refused = client.Get("/x");
  REQUIRE(refused);
  CHECK(refused->status == 403);
  CHECK(nlohmann::json::parse(refused->body)["message"] == "no key for /x");
  CHECK(calls == 0);
  auto by_query = client.Get("/x?key=open");
  REQUIRE(by_query);
  CHECK(by_query->body == "ok");
  auto by_header = client.Get("/x", {{"X-Key", "open"}});
  REQUIRE(by_header);
  CHECK(by_header->body == "ok");
  CHECK(calls == 2);
}
