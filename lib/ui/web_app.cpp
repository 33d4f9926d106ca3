#include "lib/ui/web_app.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <chrono>
#include <set>
#include <thread>

#include "lib/compute/compute_target.hpp"
#include "lib/compute/sweep/sweep_state.hpp"
#include "lib/compute/sweep/sweep_summary.hpp"
#include "lib/plot/parallel_chart.hpp"
#include "lib/plot/svg_chart.hpp"
#include "lib/registry/model_registry.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_listing.hpp"
#include "lib/ui/assets.hpp"
#include "lib/ui/html.hpp"
#include "lib/ui/pages.hpp"
#include "lib/ui/run_charts.hpp"
#include "lib/ui/run_log.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/random.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/tags.hpp"
#include "lib/util/time.hpp"

namespace amlrun::ui {

namespace {

constexpr const char* k_cookie = "amlrun_ui_token";
// The part of a log the run page shows at first; the rest is a download.
constexpr std::size_t k_log_window = std::size_t{256} * 1024;
constexpr std::size_t k_event_bytes = std::size_t{64} * 1024;
// A live log ends after this; the browser reconnects from where it was.
constexpr auto k_event_stream_limit = std::chrono::minutes(10);
constexpr auto k_log_poll = std::chrono::milliseconds(50);
constexpr auto k_keepalive = std::chrono::seconds(15);
constexpr int k_runs_per_page = 50;
constexpr int k_metrics_drawn_by_default = 4;

const char* const k_page_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
// Files from a run are data, never a page of this site: no script runs,
// whatever they contain.
const char* const k_file_policy = "default-src 'none'; sandbox";

// Thrown by a handler for an answer other than 200 (404 for what is not
// there or not allowed to be reached; 400 for a bad filter).
struct HttpFailure {
  int status;
  std::string message;
};

void common_headers(server::Response& response, const char* policy = k_page_policy) {
  response.headers.emplace_back("Content-Security-Policy", policy);
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  response.headers.emplace_back("Cache-Control", "no-store");
}

void html_response(server::Response& response, std::string body, int status = 200) {
  response.status = status;
  response.content_type = "text/html; charset=utf-8";
  response.body = std::move(body);
  common_headers(response);
}

void json_response(server::Response& response, const nlohmann::json& body) {
  response.content_type = "application/json";
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  common_headers(response);
}

std::string cookie_value(const std::string& header, const std::string& name) {
  for (const auto& part : util::split(header, ';')) {
    std::string item(util::trim(part));
    if (item.rfind(name + "=", 0) == 0) return item.substr(name.size() + 1);
  }
  return "";
}

// application/x-www-form-urlencoded: "a=1&b=x%20y".
std::string form_value(const std::string& body, const std::string& name) {
  auto decode = [](std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '+') {
        out += ' ';
      } else if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(text[i + 1]) &&
                 std::isxdigit(text[i + 2])) {
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  };
  for (const auto& part : util::split(body, '&')) {
    auto equals = part.find('=');
    if (equals == std::string::npos) continue;
    if (decode(part.substr(0, equals)) == name) return decode(part.substr(equals + 1));
  }
  return "";
}

int int_query(const server::Request& request, const std::string& name, int fallback, int low,
              int high) {
  std::string text = request.query_value(name);
  if (text.empty()) return fallback;
  try {
    std::size_t used = 0;
    int value = std::stoi(text, &used);
    if (used == text.size() && value >= low && value <= high) return value;
  } catch (const std::exception&) {
  }
  throw HttpFailure{
      400, fmt::format("{}={} is not a whole number from {} to {}", name, text, low, high)};
}

std::vector<std::string> query_values(const server::Request& request, const std::string& name) {
  std::vector<std::string> values;
  auto [first, last] = request.query.equal_range(name);
  for (auto it = first; it != last; ++it) values.push_back(it->second);
  return values;
}

std::vector<FileEntry> list_entries(const util::SafeDir& dir) {
  std::vector<FileEntry> entries;
  for (const auto& entry : dir.list()) {
    if (entry.type == S_IFDIR) {
      entries.push_back({entry.name, true, 0});
    } else if (entry.type == S_IFREG) {
      auto fd = dir.try_open_file(entry.name, O_RDONLY);
      struct stat info {};
      if (static_cast<bool>(fd) && ::fstat(fd.get(), &info) == 0) {
        entries.push_back({entry.name, false, static_cast<std::uint64_t>(info.st_size)});
      }
    }
    // Links and other kinds are not shown: nothing behind them is served.
  }
  std::sort(entries.begin(), entries.end(), [](const FileEntry& a, const FileEntry& b) {
    return a.directory != b.directory ? a.directory : a.name < b.name;
  });
  return entries;
}

bool looks_like_text(const std::string& name) {
  static const std::set<std::string> extensions = {".txt", ".log",  ".json", ".jsonl", ".csv",
                                                   ".tsv", ".yaml", ".yml",  ".md",    ".py",
                                                   ".out", ".err",  ".cfg",  ".ini",   ".toml"};
  auto dot = name.rfind('.');
  return dot != std::string::npos && extensions.count(name.substr(dot)) > 0;
}

}  // namespace

bool is_loopback(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  in_addr address{};
  return ::inet_pton(AF_INET, host.c_str(), &address) == 1 && (ntohl(address.s_addr) >> 24) == 127;
}

struct WebApp::Routes {
  WebApp& app;

  store::RunStore open_store() const { return store::RunStore(app.m_workspace); }

  // The run named in a URL: an exact id (no prefixes: a link names one run).
  store::RunRecord load_run(const store::RunStore& store, const std::string& id) const {
    if (!std::filesystem::is_regular_file(store.record_path(id))) {
      throw HttpFailure{404, fmt::format("no run {}", id)};
    }
    try {
      return store.load(id);
    } catch (const util::Error& failure) {
      throw HttpFailure{500, failure.what()};
    }
  }

  // The record brought up to date by its target while it is not over (a
  // supervisor that died, a Slurm job that moved on); the stored one when
  // the target cannot say.
  store::RunRecord refreshed(store::RunStore& store, store::RunRecord record) const {
    if (store::is_terminal(record.state)) return record;
    try {
      return compute::target_of(app.m_workspace, record)->refresh(store, record);
    } catch (const std::exception&) {
      return record;
    }
  }

  std::vector<std::filesystem::path> log_roots(const store::RunStore& store,
                                               const store::RunRecord& record) const {
    try {
      return compute::target_of(app.m_workspace, record)->log_roots(store, record);
    } catch (const std::exception&) {
      return {store.run_dir(record.id)};
    }
  }

  bool has_token(const server::Request& request) const {
    const std::string& token = app.m_options.token;
    std::string given = request.query_value("token");
    if (given.empty()) given = cookie_value(request.header("Cookie"), k_cookie);
    std::string bearer = request.header("Authorization");
    if (given.empty() && bearer.rfind("Bearer ", 0) == 0) given = bearer.substr(7);
    return !given.empty() && server::constant_time_equal(given, token);
  }

  std::optional<server::Refusal> admit(const server::Request& request) const {
    if (is_loopback(app.m_options.host)) {
      // A DNS name rebound to 127.0.0.1 brings another site's page here
      // with its own name in Host: refused.
      std::string host = request.header("Host");
      auto colon = host.rfind(':');
      std::string name =
          colon == std::string::npos || host.back() == ']' ? host : host.substr(0, colon);
      if (!is_loopback(name)) {
        return server::Refusal{403, "FORBIDDEN",
                               fmt::format("Host '{}' is not this server's loopback address; open "
                                           "the address amlrun ui printed",
                                           host)};
      }
      return std::nullopt;
    }
    if (has_token(request)) return std::nullopt;
    return server::Refusal{401, "UNAUTHENTICATED",
                           "this view needs its token: open the address amlrun ui printed (it "
                           "ends in ?token=...)"};
  }

  // A handler's frame: HttpFailure becomes its page; a right ?token= sets
  // the cookie and comes back without it (the token stays out of history).
  server::Handler page(
      const std::function<void(server::Request&, server::Response&)>& handler) const {
    return [this, handler](server::Request& request, server::Response& response) {
      std::string given = request.query_value("token");
      if (request.method == "GET" && !given.empty() &&
          server::constant_time_equal(given, app.m_options.token)) {
        std::string rest;
        for (const auto& [name, value] : request.query) {
          if (name == "token") continue;
          rest += (rest.empty() ? "?" : "&") + url_segment(name) + "=" + url_segment(value);
        }
        std::string location;
        for (const auto& part : util::split(request.path, '/')) {
          if (!part.empty()) location += "/" + url_segment(part);
        }
        if (location.empty() || request.path.back() == '/') location += "/";
        response.status = 303;
        response.headers.emplace_back("Location", location + rest);
        response.headers.emplace_back(
            "Set-Cookie",
            fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict", k_cookie, app.m_options.token));
        common_headers(response);
        response.content_type = "text/plain";
        response.body = "see " + location + rest;
        return;
      }
      try {
        handler(request, response);
      } catch (const HttpFailure& failure) {
        response.headers.clear();
        html_response(response, error_page(failure.status, failure.message), failure.status);
      } catch (const util::Error& failure) {
        response.headers.clear();
        html_response(response, error_page(500, failure.what()), 500);
      }
    };
  }

  void runs(server::Request& request, server::Response& response) const {
    auto store = open_store();
    RunsView view;
    view.experiment = request.query_value("experiment");
    view.status = request.query_value("status");
    view.tag = request.query_value("tag");
    view.offset = int_query(request, "offset", 0, 0, 1 << 30);
    view.limit = k_runs_per_page;
    view.now = util::utc_iso8601(util::Clock::now());
    store::RunFilter filter;
    filter.experiment = view.experiment;
    if (!view.status.empty()) {
      filter.state = store::run_state_from_string(view.status);
      if (!filter.state) {
        throw HttpFailure{400, fmt::format("status '{}' is not a run state (Queued, Preparing, "
                                           "Starting, Running, Finalizing, Completed, Failed, "
                                           "Canceled)",
                                           view.status)};
      }
    }
    if (!view.tag.empty()) {
      try {
        filter.tags.push_back(util::parse_tag(view.tag));
      } catch (const util::Error& failure) {
        throw HttpFailure{400, fmt::format("tag filter: {}", failure.what())};
      }
    }
    filter.limit = view.limit;
    filter.offset = view.offset;
    view.rows = store.list(filter);
    store::check_listed_runs(store, view.rows);
    view.total = store.count(filter);
    html_response(response, runs_page(view));
  }

  void run(server::Request& request, server::Response& response) const {
    auto store = open_store();
    RunView view;
    view.record = refreshed(store, load_run(store, request.captures[0]));
    const auto& record = view.record;
    view.now = util::utc_iso8601(util::Clock::now());
    view.csrf = app.csrf_token(record.id);
    view.ranks = std::max(1, record.instance_count * record.process_count);
    view.rank = int_query(request, "rank", 0, 0, view.ranks - 1);
    if (request.query_value("canceled") == "1") view.notice = "Cancel requested.";

    if (record.kind != store::RunKind::sweep) {
      auto roots = log_roots(store, record);
      auto head = read_rank_log(roots, view.rank, 0, 0);
      view.log_found = head.found;
      view.log_size = head.size;
      view.log_start = tail_offset(roots, view.rank, head.size, k_log_window);
      auto piece = read_rank_log(roots, view.rank, view.log_start,
                                 static_cast<std::size_t>(head.size - view.log_start));
      view.log_text = valid_utf8(piece.bytes);
      // The live log goes on from the last byte shown.
      view.log_end = piece.offset + piece.bytes.size();
    }

    view.metrics = store::metric_summaries(store, record.id);
    std::vector<std::string> known;
    for (const auto& metric : view.metrics) known.push_back(metric.name);
    for (const auto& name : query_values(request, "metric")) {
      if (std::find(known.begin(), known.end(), name) != known.end() &&
          std::find(view.chosen.begin(), view.chosen.end(), name) == view.chosen.end()) {
        view.chosen.push_back(name);
      }
    }
    if (view.chosen.empty()) {
      for (std::size_t i = 0; i < known.size() && i < k_metrics_drawn_by_default; ++i) {
        view.chosen.push_back(known[i]);
      }
    }
    std::vector<RunPoints> drawn;
    if (!view.chosen.empty()) {
      drawn.push_back({record.id, points_of(store, record.id, view.chosen)});
      for (const auto& text : util::split(request.query_value("compare"), ' ')) {
        std::string other(util::trim(text));
        if (other.empty() || other == record.id) continue;
        std::string id;
        try {
          id = store.resolve(other);
        } catch (const util::Error& failure) {
          view.notice = failure.what();
          continue;
        }
        view.compare.push_back(id);
        drawn.push_back({id, points_of(store, id, view.chosen)});
      }
      view.charts_svg = plot::render_svg(metric_panels(view.chosen, drawn));
    }

    store::RunFilter children;
    children.parent = record.id;
    children.limit = 200;
    view.children = store.list(children);
    view.children_total = store.count(children);

    if (auto artifacts = artifacts_dir(store, record.id)) {
      for (const char* folder : {store::k_job_outputs_dir, store::k_job_logs_dir}) {
        try {
          if (auto dir = artifacts->find_dir(folder))
            view.files.emplace_back(folder, list_entries(*dir));
        } catch (const util::Error&) {
          // A link in place of the folder: nothing to show.
        }
      }
    }

    if (record.kind == store::RunKind::sweep) view.sweep = sweep_view(store, record);
    html_response(response, run_page(view));
  }

  std::vector<store::MetricPoint> points_of(const store::RunStore& store, const std::string& id,
                                            const std::vector<std::string>& names) const {
    std::vector<store::MetricPoint> points;
    for (const auto& name : names) {
      auto some = store::metric_points(store, id, name);
      points.insert(points.end(), some.begin(), some.end());
    }
    return points;
  }

  SweepView sweep_view(const store::RunStore& store, const store::RunRecord& record) const {
    SweepView view;
    auto settings = compute::sweep_settings_of(store, record);
    view.primary_metric = settings.primary_metric;
    view.summary = compute::summarize_sweep(store, record);
    view.settings =
        compute::describe_settings(settings, compute::sweep_state_from_json(record.target).seed);
    view.parallel_svg = plot::render_parallel_svg(sweep_parallel_chart(store, record));
    std::vector<RunPoints> curves;
    for (const auto& trial : view.summary.trials) {
      if (trial.id.empty()) continue;
      curves.push_back({trial.id, points_of(store, trial.id, {settings.primary_metric})});
    }
    view.curves_svg = plot::render_svg(metric_panels({settings.primary_metric}, curves),
                                       plot::SvgStyle{900, 420, 1});
    return view;
  }

  std::optional<util::SafeDir> artifacts_dir(const store::RunStore& store,
                                             const std::string& id) const {
    try {
      return util::SafeDir::open(store.run_dir(id)).find_dir(store::k_artifacts_dir);
    } catch (const util::Error&) {
      return std::nullopt;
    }
  }

  void state(server::Request& request, server::Response& response) const {
    auto store = open_store();
    auto record = refreshed(store, load_run(store, request.captures[0]));
    json_response(response, state_json(record));
  }

  static nlohmann::json state_json(const store::RunRecord& record) {
    return {{"id", record.id},
            {"state", store::to_string(record.state)},
            {"ended_at", record.ended_at},
            {"exit_code", record.exit_code ? nlohmann::json(*record.exit_code) : nlohmann::json()},
            {"failure_reason", record.failure_reason}};
  }

  void states(server::Request& request, server::Response& response) const {
    auto store = open_store();
    nlohmann::json out = nlohmann::json::array();
    auto ids = query_values(request, "id");
    if (ids.size() > 200) throw HttpFailure{400, "at most 200 ids at once"};
    for (const auto& id : ids) {
      if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..") continue;
      if (!std::filesystem::is_regular_file(store.record_path(id))) continue;
      try {
        out.push_back(state_json(refreshed(store, store.load(id))));
      } catch (const util::Error&) {
      }
    }
    json_response(response, out);
  }

  // ?rank= of a log request: one of the run's ranks, 0 by default.
  static int rank_of(const server::Request& request, const store::RunRecord& record) {
    return int_query(request, "rank", 0, 0,
                     std::max(1, record.instance_count * record.process_count) - 1);
  }

  void log_download(server::Request& request, server::Response& response) const {
    auto store = open_store();
    auto record = load_run(store, request.captures[0]);
    int rank = rank_of(request, record);
    auto fd = open_rank_log(log_roots(store, record), rank);
    if (!static_cast<bool>(fd))
      throw HttpFailure{404, fmt::format("{} has no log of rank {} yet", record.id, rank)};
    response.file = std::make_shared<util::UniqueFd>(std::move(fd));
    response.content_type = "text/plain; charset=utf-8";
    common_headers(response, k_file_policy);
  }

  void log_events(server::Request& request, server::Response& response) const {
    auto store = open_store();
    auto record = load_run(store, request.captures[0]);
    int rank = rank_of(request, record);
    std::uint64_t offset =
        static_cast<std::uint64_t>(int_query(request, "offset", 0, 0, INT32_MAX));
    // A reconnecting browser says where it was.
    std::string last = request.header("Last-Event-ID");
    if (!last.empty()) {
      try {
        offset = std::stoull(last);
      } catch (const std::exception&) {
      }
    }
    auto roots = log_roots(store, record);
    std::string id = record.id;
    WebApp& owner = app;
    response.content_type = "text/event-stream";
    common_headers(response);
    response.stream = [&owner, roots, rank, offset,
                       id](const std::function<bool(std::string_view)>& write) mutable {
      store::RunStore store(owner.m_workspace);
      // A waiting stream holds one of the server's threads. Past half of
      // them a stream sends what there is and ends, and the browser asks
      // again in 3 s from where it was: polling, never a server that
      // stops answering because many pages are open.
      bool may_wait = ++owner.m_waiting_streams <= owner.max_waiting_streams();
      struct Release {
        std::atomic<int>& count;
        ~Release() { --count; }
      } release{owner.m_waiting_streams};
      auto started = std::chrono::steady_clock::now();
      auto last_write = started;
      auto last_state_check = started - std::chrono::seconds(1);
      bool over = false;
      if (!write(may_wait ? "retry: 1000\n\n" : "retry: 3000\n\n")) return;
      while (!owner.m_stopping) {
        auto now = std::chrono::steady_clock::now();
        if (now - started > k_event_stream_limit) return;
        auto piece = read_rank_log(roots, rank, offset, k_event_bytes);
        if (!piece.bytes.empty()) {
          offset += piece.bytes.size();
          nlohmann::json data = {{"t", valid_utf8(piece.bytes)}};
          if (!write(fmt::format("id: {}\ndata: {}\n\n", offset, data.dump()))) return;
          last_write = now;
          continue;
        }
        // Ended, and everything written before the end has been sent.
        if (over && offset >= piece.size) {
          write("event: end\ndata: {}\n\n");
          return;
        }
        if (now - last_state_check > std::chrono::milliseconds(500)) {
          last_state_check = now;
          try {
            over = store::is_terminal(store.load(id).state);
          } catch (const util::Error&) {
            over = true;
          }
          // One more pass reads what was written just before the end.
          if (over) continue;
        }
        if (!may_wait) return;
        if (now - last_write > k_keepalive) {
          if (!write(": keepalive\n\n")) return;
          last_write = now;
        }
        std::this_thread::sleep_for(k_log_poll);
      }
    };
  }

  void files(server::Request& request, server::Response& response) const {
    auto store = open_store();
    auto record = load_run(store, request.captures[0]);
    std::string path = request.captures.size() > 1 ? request.captures[1] : "";
    bool wants_dir = path.empty() || path.back() == '/';
    std::vector<std::string> parts;
    for (const auto& part : util::split(path, '/')) {
      if (part.empty()) continue;
      // Decoded already: "%2e%2e" is "..". Nothing leaves artifacts/.
      if (part == "." || part == ".." || part.find('\0') != std::string::npos) {
        throw HttpFailure{404, "no such file in the run's artifacts"};
      }
      parts.push_back(part);
    }
    auto root = artifacts_dir(store, record.id);
    if (!root) throw HttpFailure{404, fmt::format("{} has no artifacts yet", record.id)};
    try {
      util::SafeDir dir = std::move(*root);
      std::string shown;
      for (std::size_t i = 0; i < parts.size(); ++i) {
        mode_t type = dir.type_of(parts[i]);
        bool last = i + 1 == parts.size();
        if (type == S_IFDIR) {
          dir = dir.dir(parts[i]);
          shown += (shown.empty() ? "" : "/") + parts[i];
          continue;
        }
        if (type == S_IFREG && last && !wants_dir) {
          auto fd = dir.open_file(parts[i], O_RDONLY);
          response.file = std::make_shared<util::UniqueFd>(std::move(fd));
          if (looks_like_text(parts[i])) {
            response.content_type = "text/plain; charset=utf-8";
          } else {
            response.content_type = "application/octet-stream";
            response.headers.emplace_back(
                "Content-Disposition",
                fmt::format("attachment; filename*=UTF-8''{}", url_segment(parts[i])));
          }
          common_headers(response, k_file_policy);
          return;
        }
        // A link (never followed), a FIFO, a device or nothing at all.
        throw HttpFailure{404, "no such file in the run's artifacts"};
      }
      html_response(response, files_page({record.id, shown, list_entries(dir)}));
    } catch (const util::Error&) {
      throw HttpFailure{404, "no such file in the run's artifacts"};
    }
  }

  void cancel(server::Request& request, server::Response& response) const {
    if (!has_token(request)) {
      throw HttpFailure{401, "cancel needs the view's token: open the address amlrun ui printed"};
    }
    auto store = open_store();
    auto record = refreshed(store, load_run(store, request.captures[0]));
    if (!server::constant_time_equal(form_value(request.body, "csrf"), app.csrf_token(record.id))) {
      throw HttpFailure{403, "the form's CSRF token is missing or wrong: reload the run's page"};
    }
    if (store::is_terminal(record.state)) {
      throw HttpFailure{409, fmt::format("{} already ended ({}); there is nothing to cancel",
                                         record.id, store::to_string(record.state))};
    }
    try {
      compute::target_of(app.m_workspace, record)->request_cancel(store, record);
    } catch (const util::Error& failure) {
      throw HttpFailure{502, fmt::format("cancel failed: {}", failure.what())};
    }
    response.status = 303;
    response.headers.emplace_back("Location",
                                  fmt::format("/runs/{}?canceled=1", url_segment(record.id)));
    common_headers(response);
    response.content_type = "text/plain";
    response.body = "cancel requested";
  }

  void models(server::Request&, server::Response& response) const {
    auto store = open_store();
    registry::ModelRegistry registry(store);
    std::vector<ModelView> views;
    for (const auto& name : registry.names()) {
      for (const auto& version : registry.versions(name.name)) {
        ModelView view{version, {}, ""};
        try {
          view.files = registry.manifest(version);
        } catch (const util::Error& failure) {
          view.problem = failure.what();
        }
        views.push_back(std::move(view));
      }
    }
    html_response(response, models_page(views));
  }

  void install(server::HttpServer& server) {
    // Run ids: the store's own alphabet; anything else is no run.
    const std::string id = "/runs/([A-Za-z0-9][A-Za-z0-9_.-]*)";
    server.route("GET", "/", page([this](auto& q, auto& r) { runs(q, r); }));
    server.route("GET", id + "/?", page([this](auto& q, auto& r) { run(q, r); }));
    server.route("GET", id + "/state\\.json", page([this](auto& q, auto& r) { state(q, r); }));
    server.route("GET", "/api/states", page([this](auto& q, auto& r) { states(q, r); }));
    server.route("GET", id + "/log", page([this](auto& q, auto& r) { log_download(q, r); }));
    server.route("GET", id + "/log/events", page([this](auto& q, auto& r) { log_events(q, r); }));
    server.route("GET", id + "/files(?:/(.*))?", page([this](auto& q, auto& r) { files(q, r); }));
    server.route("POST", id + "/cancel", page([this](auto& q, auto& r) { cancel(q, r); }),
                 server::BodyMode::buffered, 4096);
    server.route("GET", "/models/?", page([this](auto& q, auto& r) { models(q, r); }));
    server.route("GET", "/static/ui\\.css", [](auto&, server::Response& r) {
      r.content_type = "text/css; charset=utf-8";
      r.body = std::string(stylesheet());
      common_headers(r);
    });
    server.route("GET", "/static/ui\\.js", [](auto&, server::Response& r) {
      r.content_type = "text/javascript; charset=utf-8";
      r.body = std::string(script());
      common_headers(r);
    });
  }
};

WebApp::WebApp(workspace::Workspace workspace, UiOptions options)
    : m_workspace(std::move(workspace)), m_options(std::move(options)) {
  if (m_options.token.empty()) m_options.token = util::random_hex(16);
  m_csrf_secret = util::random_hex(32);
}

WebApp::~WebApp() {
  stop();
}

std::string WebApp::csrf_token(const std::string& run_id) const {
  return util::sha256_hex(m_csrf_secret + "\n" + run_id).substr(0, 32);
}

int WebApp::start() {
  auto routes = std::make_shared<Routes>(Routes{*this});
  server::ServerOptions options;
  options.address = m_options.host;
  options.port = m_options.port;
  options.threads = m_options.threads;
  options.admit = [routes](const server::Request& request) { return routes->admit(request); };
  options.error_body = [](server::Response& response, int status, const std::string&,
                          const std::string& message) {
    html_response(response, error_page(status, message), status);
  };
  m_server = std::make_unique<server::HttpServer>(options);
  routes->install(*m_server);
  m_routes = routes;
  return m_server->start();
}

std::string WebApp::url() const {
  std::string host =
      m_options.host.find(':') != std::string::npos ? "[" + m_options.host + "]" : m_options.host;
  return fmt::format("http://{}:{}/?token={}", host, m_server ? m_server->port() : 0,
                     m_options.token);
}

void WebApp::stop() {
  m_stopping = true;
  if (m_server) m_server->stop();
}

}  // namespace amlrun::ui
