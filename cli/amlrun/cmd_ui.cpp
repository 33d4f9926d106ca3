// ui: serve the workspace as a web view until interrupted.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>
#include <unistd.h>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "lib/ui/web_app.hpp"

namespace amlrun::cli {

void add_ui(CLI::App& app, GlobalOptions& global, Handler& handler) {
  auto options = std::make_shared<ui::UiOptions>();
  options->port = 8765;
  app.add_option("--host", options->host,
                 "Address to listen on (default 127.0.0.1; any other needs the token)")
      ->check(not_blank());
  app.add_option("--port", options->port, "Port (default 8765; 0: any free port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--token", options->token,
                 "The token to require (default: AMLRUN_UI_TOKEN, else a random one)");
  handler = [options, &global]() {
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    if (options->token.empty()) {
      if (const char* from_env = std::getenv("AMLRUN_UI_TOKEN")) options->token = from_env;
    }
    if (!options->token.empty() && options->token.size() < 16) {
      throw util::InputError(
          "--token: use at least 16 characters (a guessable token opens the view)");
    }
    // Signals are taken by sigwait below, not by a handler, so the server's
    // threads (which inherit this mask) never see them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ui::WebApp app(workspace, *options);
    try {
      app.start();
    } catch (const util::InfraError& failure) {
      throw util::InfraError(
          fmt::format("{} (--port picks another port; 0: any free one)", failure.what()));
    }
    bool open_to_all = !ui::is_loopback(options->host);
    std::printf("amlrun ui: %s\n", app.url().c_str());
    // 0.0.0.0 and :: are every address: the machine's name is the one to give out.
    if (options->host == "0.0.0.0" || options->host == "::") {
      char name[256] = {};
      if (::gethostname(name, sizeof name - 1) == 0) {
        std::string url = app.url();
        auto after_host = url.find(':', url.find("//") + 2);
        if (options->host == "::") after_host = url.find("]:") + 1;
        std::printf("amlrun ui: http://%s%s\n", name, url.substr(after_host).c_str());
      }
    }
    std::fprintf(stderr,
                 open_to_all
                     ? "amlrun: listening on %s: every request needs the token in the address "
                       "above; Ctrl-C stops\n"
                     : "amlrun: listening on %s (this machine only); Ctrl-C stops\n",
                 options->host.c_str());
    std::fflush(stdout);
    int received = 0;
    sigwait(&signals, &received);
    std::fprintf(stderr, "amlrun: stopping the web view\n");
    app.stop();
    return ExitCode::ok;
  };
}

}  // namespace amlrun::cli
