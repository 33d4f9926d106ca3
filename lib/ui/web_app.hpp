#pragma once
// `amlrun ui`: the workspace as a small web application on lib/server —
// runs, a run's timeline, live log (Server-Sent Events), metric charts,
// files, sweeps and models. Read-only but for Cancel.
//
// Safety: on a loopback address the pages are open to this machine, and the
// Host header must name the loopback address (a page elsewhere cannot reach
// the view through a DNS name rebound to 127.0.0.1). Anywhere else every
// request needs the token (?token= once, then an HttpOnly SameSite=Strict
// cookie, or "Authorization: Bearer"). Cancel always needs the token and the
// page's CSRF token. A file path in a URL is resolved below the run's
// artifacts/ only, one component at a time, never following a link.
#include <atomic>
#include <memory>
#include <string>

#include "lib/server/http_server.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::ui {

struct UiOptions {
  std::string host = "127.0.0.1";
  int port = 0;              // 0: any free port
  std::string token;         // empty: a random one is made
  std::size_t threads = 32;  // a live log holds a thread while it is open
};

// Whether `host` is a loopback address or name (127.0.0.0/8, ::1, localhost).
bool is_loopback(const std::string& host);

class WebApp {
 public:
  WebApp(workspace::Workspace workspace, UiOptions options);
  ~WebApp();
  WebApp(const WebApp&) = delete;
  WebApp& operator=(const WebApp&) = delete;

  // Binds and serves; returns the port. util::InfraError when it cannot bind.
  int start();
  // The address to open, with the token: http://HOST:PORT/?token=...
  std::string url() const;
  // Ends the live logs, lets requests in flight end, closes.
  void stop();

  const std::string& token() const { return m_options.token; }
  // The Cancel form's token for a run's page.
  std::string csrf_token(const std::string& run_id) const;

 private:
  struct Routes;
  workspace::Workspace m_workspace;
  UiOptions m_options;
  std::string m_csrf_secret;
  std::atomic<bool> m_stopping = false;
  std::atomic<int> m_waiting_streams = 0;
  int max_waiting_streams() const { return static_cast<int>(m_options.threads / 2); }
  std::shared_ptr<Routes> m_routes;
  std::unique_ptr<server::HttpServer> m_server;
};

}  // namespace amlrun::ui
