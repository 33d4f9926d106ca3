#include "lib/server/http_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "lib/util/error.hpp"

namespace amlrun::server {

std::string Request::query_value(const std::string& name, const std::string& fallback) const {
  auto found = query.find(name);
  return found == query.end() ? fallback : found->second;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return difference == 0;
}

namespace {

// httplib's own pool queues without bound; this one makes the accepting
// thread wait once `max_queued` connections are waiting for a thread.
class BoundedThreadPool : public httplib::TaskQueue {
 public:
  BoundedThreadPool(std::size_t threads, std::size_t max_queued) : m_max_queued(max_queued) {
    for (std::size_t i = 0; i < threads; ++i) {
      m_threads.emplace_back([this] { work(); });
    }
  }

  void enqueue(std::function<void()> task) override {
    std::unique_lock lock(m_mutex);
    m_room.wait(lock, [this] { return m_tasks.size() < m_max_queued || m_shutdown; });
    m_tasks.push_back(std::move(task));
    m_ready.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(m_mutex);
      m_shutdown = true;
    }
    m_ready.notify_all();
    m_room.notify_all();
    for (auto& thread : m_threads) thread.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(m_mutex);
        m_ready.wait(lock, [this] { return !m_tasks.empty() || m_shutdown; });
        // Connections accepted before the stop are still served.
        if (m_tasks.empty()) return;
        task = std::move(m_tasks.front());
        m_tasks.pop_front();
      }
      m_room.notify_one();
      task();
    }
  }

  std::size_t m_max_queued;
  std::vector<std::thread> m_threads;
  std::deque<std::function<void()>> m_tasks;
  std::mutex m_mutex;
  std::condition_variable m_ready, m_room;
  bool m_shutdown = false;
};

struct Route {
  std::string method;
  std::regex pattern;
  Handler handler;
  BodyMode mode;
  std::size_t max_body_bytes;
};

void default_error_body(Response& response, int status, const std::string& code,
                        const std::string& message) {
  response.status = status;
  response.content_type = "application/json";
  response.body = nlohmann::json{{"error", code}, {"message", message}}.dump();
}

}  // namespace

struct HttpServer::State {
  ServerOptions options;
  std::vector<Route> routes;
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> loop_ended = false;
  bool started = false;

  const Route* find(const std::string& method, const std::string& path,
                    std::smatch* match = nullptr) const {
    std::smatch local;
    for (const auto& route : routes) {
      if (route.method == method && std::regex_match(path, match ? *match : local, route.pattern)) {
        return &route;
      }
    }
    return nullptr;
  }

  void error(httplib::Response& out, int status, const std::string& code,
             const std::string& message) const {
    Response response;
    options.error_body(response, status, code, message);
    out.status = response.status;
    for (const auto& [name, value] : response.headers) out.set_header(name, value);
    out.set_content(response.body, response.content_type.c_str());
  }

  // Runs before any body is read: the token, then the declared length.
  httplib::Server::HandlerResponse check(const httplib::Request& request,
                                         httplib::Response& response) const {
    if (!options.bearer_token.empty()) {
      std::string given = request.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      if (given.rfind(prefix, 0) != 0 ||
          !constant_time_equal(given.substr(prefix.size()), options.bearer_token)) {
        error(response, 401, "UNAUTHENTICATED",
              "missing or wrong token: send the run's MLFLOW_TRACKING_TOKEN as "
              "\"Authorization: Bearer <token>\"");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (options.admit) {
      Request asked;
      asked.method = request.method;
      asked.path = request.path;
      for (const auto& [name, value] : request.params) asked.query.emplace(name, value);
      asked.header = [&request](const std::string& name) { return request.get_header_value(name); };
      if (auto refusal = options.admit(asked)) {
        error(response, refusal->status, refusal->code, refusal->message);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    const Route* route = find(request.method, request.path);
    if (route && request.has_header("Content-Length")) {
      std::string length = request.get_header_value("Content-Length");
      std::size_t declared = 0;
      try {
        declared = std::stoull(length);
      } catch (const std::exception&) {
        declared = SIZE_MAX;
      }
      if (declared > route->max_body_bytes) {
        error(response, 413, "REQUEST_TOO_LARGE",
              fmt::format("the request body of {} bytes is over this endpoint's limit of {} bytes",
                          length, route->max_body_bytes));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  void dispatch(const httplib::Request& in, httplib::Response& out,
                const httplib::ContentReader* reader) const {
    std::smatch match;
    const Route* route = find(in.method, in.path, &match);
    if (!route) {
      error(out, 404, "ENDPOINT_NOT_FOUND", fmt::format("no endpoint {} {}", in.method, in.path));
      return;
    }
    Request request;
    request.method = in.method;
    request.path = in.path;
    for (const auto& [name, value] : in.params) request.query.emplace(name, value);
    for (std::size_t i = 1; i < match.size(); ++i) request.captures.push_back(match[i].str());
    request.header = [&in](const std::string& name) { return in.get_header_value(name); };
    std::size_t limit = route->max_body_bytes;
    if (reader) {
      if (route->mode == BodyMode::buffered) {
        bool too_large = false;
        bool whole = (*reader)([&](const char* data, std::size_t size) {
          if (request.body.size() + size > limit) {
            too_large = true;
            return false;
          }
          request.body.append(data, size);
          return true;
        });
        if (too_large) {
          error(out, 413, "REQUEST_TOO_LARGE",
                fmt::format("the request body is over this endpoint's limit of {} bytes", limit));
          return;
        }
        if (!whole) {
          error(out, 400, "BAD_REQUEST", "the request body ended early");
          return;
        }
      } else {
        request.read_body = [reader,
                             limit](const std::function<bool(const char*, std::size_t)>& sink) {
          std::size_t total = 0;
          return (*reader)([&](const char* data, std::size_t size) {
            total += size;
            return total <= limit && sink(data, size);
          });
        };
      }
    } else {
      request.read_body = [](const auto&) { return true; };
    }
    if (!request.read_body) request.read_body = [](const auto&) { return true; };
    Response response;
    try {
      route->handler(request, response);
    } catch (const std::exception& failure) {
      error(out, 500, "INTERNAL_ERROR", failure.what());
      return;
    }
    out.status = response.status;
    for (const auto& [name, value] : response.headers) out.set_header(name, value);
    if (response.stream) {
      auto stream = std::move(response.stream);
      out.set_chunked_content_provider(
          response.content_type, [stream](std::size_t, httplib::DataSink& sink) {
            stream([&sink](std::string_view data) {
              return sink.is_writable() && sink.write(data.data(), data.size());
            });
            sink.done();
            return true;
          });
      return;
    }
    if (response.file) {
      struct stat file {};
      if (::fstat(response.file->get(), &file) != 0) {
        error(out, 500, "INTERNAL_ERROR", "the file could not be read");
        return;
      }
      std::shared_ptr<util::UniqueFd> fd = response.file;
      out.set_content_provider(
          static_cast<std::size_t>(file.st_size), response.content_type.c_str(),
          [fd](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
            char buffer[64 * 1024];
            ssize_t got = ::pread(fd->get(), buffer, std::min(length, sizeof buffer),
                                  static_cast<off_t>(offset));
            if (got <= 0) return false;
            return sink.write(buffer, static_cast<std::size_t>(got));
          });
      return;
    }
    out.set_content(response.body, response.content_type.c_str());
  }
};

HttpServer::HttpServer(ServerOptions options) : m_state(std::make_unique<State>()) {
  if (!options.error_body) options.error_body = default_error_body;
  m_state->options = std::move(options);
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::route(const std::string& method, const std::string& pattern, Handler handler,
                       BodyMode mode, std::size_t max_body_bytes) {
  m_state->routes.push_back(
      {method, std::regex(pattern), std::move(handler), mode, max_body_bytes});
}

int HttpServer::start() {
  State& state = *m_state;
  const ServerOptions& options = state.options;
  auto& server = state.server;
  std::size_t largest_body = 0;
  for (const auto& route : state.routes)
    largest_body = std::max(largest_body, route.max_body_bytes);
  std::size_t threads = std::max<std::size_t>(options.threads, 1);
  std::size_t queued = std::max<std::size_t>(options.max_queued_connections, 1);
  server.new_task_queue = [threads, queued] { return new BoundedThreadPool(threads, queued); };
  server.set_read_timeout(options.read_timeout_seconds, 0);
  server.set_write_timeout(options.write_timeout_seconds, 0);
  server.set_keep_alive_timeout(options.keep_alive_seconds);
  server.set_keep_alive_max_count(options.keep_alive_max_requests);
  server.set_payload_max_length(largest_body);
  // httplib writes a response's headers and body separately; with Nagle's
  // algorithm the body then waits for the client's delayed ACK (40 ms per
  // request on Linux).
  server.set_tcp_nodelay(true);
  server.set_pre_routing_handler(
      [&state](const httplib::Request& request, httplib::Response& response) {
        return state.check(request, response);
      });
  // What httplib answers itself (a body over the limit, a bad request line)
  // gets the same error shape as the handlers' answers.
  server.set_error_handler([&state](const httplib::Request&, httplib::Response& response) {
    if (!response.body.empty()) return;
    const char* code = response.status == 413 ? "REQUEST_TOO_LARGE" : "BAD_REQUEST";
    int status = response.status;
    state.error(response, status, code, fmt::format("HTTP {}", status));
  });
  auto plain = [&state](const httplib::Request& request, httplib::Response& response) {
    state.dispatch(request, response, nullptr);
  };
  auto with_body = [&state](const httplib::Request& request, httplib::Response& response,
                            const httplib::ContentReader& reader) {
    state.dispatch(request, response, &reader);
  };
  server.Get(".*", plain);
  server.Delete(".*", plain);
  server.Post(".*", with_body);
  server.Put(".*", with_body);
  server.Patch(".*", with_body);
  // The library listens with a backlog of 5 (compiled in): 64 clients
  // connecting at once would see dropped connections. Its socket is
  // listened on again with a real backlog once bound.
  int listening_socket = -1;
  server.set_socket_options([&listening_socket](int socket) {
    int on = 1;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    listening_socket = socket;
  });
  int port = options.port == 0
                 ? server.bind_to_any_port(options.address)
                 : (server.bind_to_port(options.address, options.port) ? options.port : -1);
  if (port <= 0) {
    throw util::InfraError(fmt::format("cannot listen on {}:{}: {}", options.address, options.port,
                                       std::strerror(errno)));
  }
  m_port = port;
  if (listening_socket >= 0) ::listen(listening_socket, SOMAXCONN);
  state.thread = std::thread([&state] {
    state.server.listen_after_bind();
    state.loop_ended = true;
  });
  state.started = true;
  return port;
}

void HttpServer::stop() {
  if (!m_state || !m_state->started) return;
  m_state->started = false;
  // httplib's stop() does nothing before its loop runs (which would then
  // accept forever): wait for the loop, which starts within microseconds.
  while (!m_state->server.is_running() && !m_state->loop_ended) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  m_state->server.stop();
  if (m_state->thread.joinable()) m_state->thread.join();
}

}  // namespace amlrun::server
