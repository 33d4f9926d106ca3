#pragma once
// An HTTP server for the run side (the MLflow tracking endpoint now, a web
// UI later), over cpp-httplib: routes by method and path pattern, a bounded
// thread pool, body size limits, read and write timeouts, a bearer token,
// and a stop that waits for requests in flight. It knows nothing of what it
// serves: handlers and the shape of error bodies come from its user.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/util/fs.hpp"

namespace amlrun::server {

struct Request {
  std::string method;
  std::string path;  // percent-decoded (so "%2e%2e" arrives as "..")
  std::multimap<std::string, std::string> query;
  std::vector<std::string> captures;  // the route pattern's groups
  std::string body;                   // buffered routes
  // Streaming routes: calls `sink` with each chunk of the body; false from
  // `sink` stops reading. Returns false when the body did not arrive whole.
  std::function<bool(const std::function<bool(const char*, std::size_t)>& sink)> read_body;
  std::function<std::string(const std::string&)> header;  // "" when absent

  // The first value of a query parameter, or `fallback`.
  std::string query_value(const std::string& name, const std::string& fallback = "") const;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  // When set, the body is this open file's content, streamed (large
  // artifacts never sit in memory whole). A descriptor, not a path: the
  // handler opened it without following links.
  std::shared_ptr<util::UniqueFd> file;
  // When set, the body is what this writes, sent in chunks as it goes (a
  // live log as Server-Sent Events): it calls `write` until it is done or
  // `write` returns false (the client went away). A handler's stream must
  // end by itself in bounded time; the server's stop waits for it.
  std::function<void(const std::function<bool(std::string_view)>& write)> stream;
  // Further headers (Cache-Control, Content-Security-Policy, Set-Cookie, ...).
  std::vector<std::pair<std::string, std::string>> headers;
};

// Why the server turns a request away before routing it (admit()).
struct Refusal {
  int status = 401;
  std::string code;
  std::string message;
};

using Handler = std::function<void(Request&, Response&)>;
// Makes an error body from a status, a short code and a message; the server
// uses it for what it answers itself (401, 404, 413, 500).
using ErrorBody =
    std::function<void(Response&, int status, const std::string& code, const std::string& message)>;

enum class BodyMode {
  buffered,  // read whole into Request::body, up to the route's limit
  streaming  // the handler reads it (Request::read_body), up to the route's limit
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 0;  // 0: any free port
  std::size_t threads = 8;
  // Connections accepted but not yet served; past this the accepting
  // thread waits (the kernel's backlog holds the rest) instead of queueing
  // without end.
  std::size_t max_queued_connections = 256;
  int read_timeout_seconds = 10;
  int write_timeout_seconds = 10;
  int keep_alive_seconds = 2;
  std::size_t keep_alive_max_requests = 1000;
  // Requests must carry "Authorization: Bearer <token>"; empty: no check.
  std::string bearer_token;
  ErrorBody error_body;  // default: {"error": code, "message": message}
  // Asked before routing, with the path, query and headers (no body yet):
  // a Refusal turns the request away (a web page's own token rules; after
  // the bearer token's check when both are set). Empty: every request is admitted.
  std::function<std::optional<Refusal>(const Request&)> admit;
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // `pattern` is an ECMAScript regex matched against the whole path.
  // Add routes before start().
  void route(const std::string& method, const std::string& pattern, Handler handler,
             BodyMode mode = BodyMode::buffered, std::size_t max_body_bytes = 1 << 20);

  // Binds (throws util::InfraError naming the address when it cannot) and
  // serves on a thread of its own; returns the port.
  int start();
  int port() const { return m_port; }
  // Stops accepting, lets requests in flight end and joins the threads.
  void stop();

 private:
  struct State;
  std::unique_ptr<State> m_state;
  int m_port = 0;
};

// Compares in time independent of where the strings differ (tokens).
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace amlrun::server
