#include "lib/ui/pages.hpp"

#include <fmt/format.h>

#include <cmath>

#include "lib/ui/html.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::ui {

namespace {

std::string run_link(const std::string& id, const std::string& text = "") {
  return fmt::format("<a href=\"/runs/{}\">{}</a>", url_segment(id),
                     html(text.empty() ? id : text));
}

std::string state_badge(const std::string& state, const std::string& id = "") {
  return fmt::format("<span class=\"state state-{}\"{}>{}</span>", html(state),
                     id.empty() ? "" : fmt::format(" id=\"{}\"", id), html(state));
}

std::string tags_cell(const std::vector<std::pair<std::string, std::string>>& tags) {
  std::string out;
  for (const auto& [key, value] : tags) {
    out += fmt::format("<span class=\"tag\">{}={}</span>", html(key), html(value));
  }
  return out;
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (value.empty()) continue;
    out += (out.empty() ? "?" : "&") + name + "=" + url_segment(value);
  }
  return out;
}

std::string files_table(const std::string& run_id, const std::string& base,
                        const std::vector<FileEntry>& entries) {
  if (entries.empty()) return "<p class=\"muted\">empty</p>";
  std::string out = "<table class=\"files\"><tr><th>name</th><th>size</th></tr>";
  for (const auto& entry : entries) {
    std::string href = fmt::format("/runs/{}/files/", url_segment(run_id));
    std::string path = base.empty() ? entry.name : base + "/" + entry.name;
    bool first = true;
    for (std::size_t start = 0; start <= path.size();) {
      auto slash = path.find('/', start);
      if (slash == std::string::npos) slash = path.size();
      href += (first ? "" : "/") + url_segment(path.substr(start, slash - start));
      first = false;
      start = slash + 1;
    }
    if (entry.directory) href += "/";
    out += fmt::format("<tr><td><a href=\"{}\">{}{}</a></td><td class=\"num\">{}</td></tr>",
                       html(href), html(entry.name), entry.directory ? "/" : "",
                       entry.directory ? "" : util::format_bytes(entry.size));
  }
  return out + "</table>";
}

std::string key_value_table(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::string out = "<table class=\"kv\">";
  for (const auto& [key, value] : rows) {
    out += fmt::format("<tr><th>{}</th><td>{}</td></tr>", html(key), html(value));
  }
  return out + "</table>";
}

// Six significant digits for people ("0.29", not "0.29000000000000004");
// the exact value is in the title (and in `amlrun metrics`).
std::string metric_number(double value) {
  if (!std::isfinite(value)) return store::format_metric_value(value);
  return fmt::format("<span title=\"{}\">{:.6g}</span>", store::format_metric_value(value), value);
}

}  // namespace

std::string duration_between(const std::string& start, const std::string& end,
                             const std::string& now) {
  if (start.empty()) return "";
  try {
    auto from = util::parse_utc_iso8601(start);
    auto to = util::parse_utc_iso8601(end.empty() ? now : end);
    double seconds = std::chrono::duration<double>(to - from).count();
    return util::format_duration(std::max(seconds, 0.0));
  } catch (const std::exception&) {
    return "";
  }
}

std::string page_shell(const std::string& title, const std::string& body,
                       const nlohmann::json& data) {
  std::string out = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{} · amlrun</title><link rel=\"stylesheet\" href=\"/static/ui.css\">"
      "<script src=\"/static/ui.js\" defer></script></head><body>"
      "<header class=\"top\"><span class=\"brand\">amlrun</span><a href=\"/\">Runs</a>"
      "<a href=\"/models\">Models</a></header><main>\n",
      html(title));
  out += body;
  if (!data.is_null()) {
    out +=
        "\n<script type=\"application/json\" id=\"page-data\">" + script_json(data) + "</script>";
  }
  return out + "\n</main></body></html>\n";
}

std::string runs_page(const RunsView& view) {
  std::string body = "<h1>Runs</h1>";
  body += fmt::format(
      "<form class=\"filters\" method=\"get\" action=\"/\">"
      "<label>experiment<input name=\"experiment\" value=\"{}\"></label>"
      "<label>status<select name=\"status\"><option value=\"\">any</option>",
      html(view.experiment));
  for (const char* state : {"Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed",
                            "Failed", "Canceled"}) {
    body += fmt::format("<option{}>{}</option>", view.status == state ? " selected" : "", state);
  }
  body += fmt::format(
      "</select></label><label>tag (KEY=VALUE)<input name=\"tag\" value=\"{}\"></label>"
      "<button type=\"submit\">Filter</button></form>",
      html(view.tag));
  nlohmann::json live = nlohmann::json::array();
  if (view.rows.empty()) {
    body += "<p class=\"muted\">No runs match.</p>";
  } else {
    body +=
        "<table class=\"runs\"><tr><th>run</th><th>experiment</th><th>status</th>"
        "<th>created</th><th>duration</th><th>exit</th><th>compute</th><th>tags</th></tr>";
    for (const auto& row : view.rows) {
      auto state = store::run_state_from_string(row.state);
      bool going = state && !store::is_terminal(*state);
      if (going) live.push_back(row.id);
      std::string name = row.display_name.empty()
                             ? ""
                             : " <span class=\"muted\">" + html(row.display_name) + "</span>";
      body += fmt::format(
          "<tr data-run=\"{}\"><td>{}{}{}</td><td>{}</td><td>{}</td><td>{}</td>"
          "<td class=\"num\">{}</td><td class=\"num exit\">{}</td><td>{}</td><td>{}</td></tr>",
          html(row.id), run_link(row.id), name,
          row.problem.empty() ? "" : " <span class=\"notice\">" + html(row.problem) + "</span>",
          html(row.experiment), state_badge(row.state), html(row.created_at),
          html(duration_between(row.created_at, row.ended_at, view.now)),
          row.exit_code ? std::to_string(*row.exit_code) : "", html(row.compute),
          tags_cell(row.tags));
    }
    body += "</table>";
  }
  std::vector<std::pair<std::string, std::string>> filters = {
      {"experiment", view.experiment}, {"status", view.status}, {"tag", view.tag}};
  body += fmt::format("<div class=\"pager\"><span class=\"muted\">{}–{} of {}</span>",
                      view.rows.empty() ? 0 : view.offset + 1,
                      view.offset + static_cast<int>(view.rows.size()), view.total);
  if (view.offset > 0) {
    auto newer = filters;
    newer.emplace_back("offset", std::to_string(std::max(0, view.offset - view.limit)));
    body += fmt::format("<a rel=\"prev\" href=\"/{}\">newer</a>", html(query_string(newer)));
  }
  if (view.offset + static_cast<std::int64_t>(view.rows.size()) < view.total) {
    auto older = filters;
    older.emplace_back("offset", std::to_string(view.offset + view.limit));
    body += fmt::format("<a rel=\"next\" href=\"/{}\">older</a>", html(query_string(older)));
  }
  body += "</div>";
  return page_shell("Runs", body, {{"page", "runs"}, {"live", live}});
}

std::string run_page(const RunView& view) {
  const auto& r = view.record;
  bool going = !store::is_terminal(r.state);
  std::string id = url_segment(r.id);
  std::string body = fmt::format(
      "<h1>{}{}</h1>", html(r.id),
      r.display_name.empty() ? "" : " <span class=\"muted\">" + html(r.display_name) + "</span>");
  if (!view.notice.empty()) body += "<p class=\"notice\">" + html(view.notice) + "</p>";
  body += "<table class=\"kv\">";
  body += fmt::format("<tr><th>status</th><td>{}</td></tr>",
                      state_badge(store::to_string(r.state), "run-state"));
  body += fmt::format("<tr><th>experiment</th><td>{}</td></tr>", html(r.experiment));
  if (!r.parent_id.empty()) {
    body += fmt::format("<tr><th>parent</th><td>{}</td></tr>", run_link(r.parent_id));
  }
  body += fmt::format("<tr><th>created</th><td>{}</td></tr>", html(r.created_at));
  body += fmt::format("<tr><th>ended</th><td id=\"run-ended\">{}</td></tr>", html(r.ended_at));
  body += fmt::format("<tr><th>duration</th><td>{}</td></tr>",
                      html(duration_between(r.created_at, r.ended_at, view.now)));
  body += fmt::format("<tr><th>exit code</th><td id=\"run-exit\">{}</td></tr>",
                      r.exit_code ? std::to_string(*r.exit_code) : "");
  body +=
      fmt::format("<tr><th>reason</th><td id=\"run-reason\">{}</td></tr>", html(r.failure_reason));
  body += fmt::format("<tr><th>compute</th><td>{} ({})</td></tr>", html(r.compute),
                      html(r.compute_type));
  if (!r.description.empty()) {
    body += fmt::format("<tr><th>description</th><td>{}</td></tr>", html(r.description));
  }
  body += "</table>";
  if (going) {
    body += fmt::format(
        "<form id=\"cancel-form\" method=\"post\" action=\"/runs/{}/cancel\">"
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">"
        "<p><button class=\"danger\" type=\"submit\">Cancel run</button></p></form>",
        id, html(view.csrf));
  }
  for (const auto& warning : r.warnings) {
    body += "<p class=\"notice\">" + html(warning) + "</p>";
  }

  body += "<h2>Timeline</h2><ol class=\"timeline\">";
  for (std::size_t i = 0; i < r.history.size(); ++i) {
    const auto& change = r.history[i];
    std::string next = i + 1 < r.history.size() ? r.history[i + 1].at : "";
    std::string lasted =
        store::is_terminal(change.state) ? "" : duration_between(change.at, next, view.now);
    std::string reason;
    if (store::is_terminal(change.state) && !r.failure_reason.empty() &&
        change.state != store::RunState::completed) {
      reason = " — " + html(r.failure_reason);
    }
    body += fmt::format("<li>{} <span class=\"muted\">{}{}</span>{}</li>",
                        state_badge(store::to_string(change.state)), html(change.at),
                        lasted.empty() ? "" : " (" + html(lasted) + ")", reason);
  }
  body += "</ol>";

  if (view.sweep) {
    const auto& sweep = *view.sweep;
    body += "<h2>Sweep</h2>" + key_value_table(sweep.settings);
    body += fmt::format(
        "<h3>Trials</h3><table class=\"trials\"><tr><th></th><th>trial</th><th>state</th>"
        "<th>{}</th><th>parameters</th><th>reason</th></tr>",
        html(sweep.primary_metric));
    for (std::size_t i = 0; i < sweep.summary.trials.size(); ++i) {
      const auto& trial = sweep.summary.trials[i];
      bool best = sweep.summary.best && *sweep.summary.best == i;
      std::string params;
      for (const auto& [name, value] : trial.params) {
        params += fmt::format("<span class=\"tag\">{}={}</span>", html(name), html(value.str()));
      }
      body += fmt::format(
          "<tr class=\"trial{}\" data-trial=\"{}\"><td>{}</td><td>{}</td><td>{}</td>"
          "<td class=\"num objective\">{}</td><td>{}</td><td>{}</td></tr>",
          best ? " best" : "", html(trial.id), best ? "★ best" : "", run_link(trial.id),
          state_badge(trial.state), trial.objective ? metric_number(*trial.objective) : "", params,
          html(trial.reason));
    }
    body += "</table>";
    body += "<div class=\"charts\"><h3>Parameters and objective</h3>" + sweep.parallel_svg +
            "<h3>" + html(sweep.primary_metric) + " of every trial</h3>" + sweep.curves_svg +
            "</div>";
  }

  if (!r.params.empty()) body += "<h2>Parameters</h2>" + key_value_table(r.params);
  if (!r.tags.empty()) body += "<h2>Tags</h2>" + key_value_table(r.tags);

  std::vector<std::pair<std::string, std::string>> environment = {
      {"environment hash", r.environment_hash},
      {"mode", r.environment_mode},
      {"snapshot", r.snapshot_id.empty()
                       ? ""
                       : fmt::format("{} ({} files, {})", r.snapshot_id, r.snapshot_files,
                                     util::format_bytes(r.snapshot_bytes))},
      {"processes", fmt::format("{} × {} ({})", r.instance_count, r.process_count, r.distribution)},
      {"job file", r.spec_file},
      {"submitted by", r.submitted_by + (r.submit_host.empty() ? "" : "@" + r.submit_host)}};
  if (r.prepared_environment) {
    environment.emplace_back(
        "prepared", fmt::format("{} ({})", r.prepared_environment->location,
                                r.prepared_environment->cache_hit
                                    ? "cache hit"
                                    : util::format_duration(r.prepared_environment->seconds)));
  }
  if (r.kind != store::RunKind::sweep) {
    body += "<h2>Environment and snapshot</h2>" + key_value_table(environment);
  }

  if (r.kind != store::RunKind::sweep) {
    body += "<h2>Log</h2><p class=\"ranks\">rank: ";
    for (int rank = 0; rank < view.ranks; ++rank) {
      body += rank == view.rank
                  ? fmt::format("<strong>{}</strong> ", rank)
                  : fmt::format("<a href=\"/runs/{}?rank={}\">{}</a> ", id, rank, rank);
    }
    body += fmt::format("· <a href=\"/runs/{}/log?rank={}\">download</a></p>", id, view.rank);
    if (view.log_start > 0) {
      body += fmt::format(
          "<p class=\"muted\">The first {} of {} are not shown here; download the whole log.</p>",
          util::format_bytes(view.log_start), util::format_bytes(view.log_size));
    }
    if (!view.log_found) {
      body +=
          fmt::format("<p class=\"muted\" id=\"log-missing\">no log of rank {} yet</p>", view.rank);
    }
    body += "<pre class=\"log\" id=\"log\">" + html(view.log_text) + "</pre>";
  }

  if (!view.metrics.empty()) {
    body += fmt::format("<h2>Metrics</h2><form method=\"get\" action=\"/runs/{}\">", id);
    if (view.rank != 0)
      body += fmt::format("<input type=\"hidden\" name=\"rank\" value=\"{}\">", view.rank);
    body +=
        "<table class=\"metrics\"><tr><th>draw</th><th>metric</th><th>last</th><th>step</th>"
        "<th>min</th><th>max</th><th>points</th></tr>";
    for (const auto& metric : view.metrics) {
      bool chosen =
          std::find(view.chosen.begin(), view.chosen.end(), metric.name) != view.chosen.end();
      body += fmt::format(
          "<tr><td><input type=\"checkbox\" name=\"metric\" value=\"{}\"{}></td><td>{}</td>"
          "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
          "<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
          html(metric.name), chosen ? " checked" : "", html(metric.name),
          metric_number(metric.last_value), metric.last_step,
          metric.min ? metric_number(*metric.min) : "",
          metric.max ? metric_number(*metric.max) : "", metric.count);
    }
    std::string compare;
    for (const auto& other : view.compare) compare += (compare.empty() ? "" : " ") + other;
    body += fmt::format(
        "</table><p><label>compare with runs (ids, space-separated) <input name=\"compare\" "
        "size=\"60\" value=\"{}\"></label> <button type=\"submit\">Draw</button></p></form>",
        html(compare));
    body += "<div class=\"charts\">" + view.charts_svg + "</div>";
  }

  if (r.kind != store::RunKind::sweep || !view.files.empty()) {
    body += fmt::format("<h2>Files</h2><p><a href=\"/runs/{}/files/\">browse</a></p>", id);
    for (const auto& [folder, entries] : view.files) {
      body += "<h3>" + html(folder) + "/</h3>" + files_table(r.id, folder, entries);
    }
  }

  if (!view.children.empty()) {
    body += fmt::format(
        "<h2>Child runs ({})</h2><table class=\"children\"><tr><th>run</th>"
        "<th>status</th><th>duration</th><th>exit</th></tr>",
        view.children_total);
    for (const auto& child : view.children) {
      body += fmt::format(
          "<tr data-run=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td "
          "class=\"num\">{}</td></tr>",
          html(child.id),
          run_link(child.id, child.display_name.empty() ? child.id : child.display_name),
          state_badge(child.state),
          html(duration_between(child.created_at, child.ended_at, view.now)),
          child.exit_code ? std::to_string(*child.exit_code) : "");
    }
    body += "</table>";
  }

  nlohmann::json data = {{"page", "run"},
                         {"run", r.id},
                         {"state", store::to_string(r.state)},
                         {"state_url", fmt::format("/runs/{}/state.json", id)}};
  if (r.kind != store::RunKind::sweep && (going || view.log_found)) {
    data["events"] =
        fmt::format("/runs/{}/log/events?rank={}&offset={}", id, view.rank, view.log_end);
  }
  return page_shell(r.id, body, data);
}

std::string files_page(const FilesView& view) {
  std::string body = fmt::format("<h1>{}: {}/</h1><p>{} · ", html(view.run_id),
                                 html(view.path.empty() ? "artifacts" : view.path),
                                 run_link(view.run_id, "back to the run"));
  if (!view.path.empty()) {
    auto slash = view.path.rfind('/');
    std::string parent = slash == std::string::npos ? "" : view.path.substr(0, slash);
    std::string href = fmt::format("/runs/{}/files/", url_segment(view.run_id));
    std::size_t start = 0;
    while (start < parent.size()) {
      auto end = parent.find('/', start);
      if (end == std::string::npos) end = parent.size();
      href += url_segment(parent.substr(start, end - start)) + "/";
      start = end + 1;
    }
    body += fmt::format("<a href=\"{}\">up</a>", html(href));
  }
  body += "</p>" + files_table(view.run_id, view.path, view.entries);
  return page_shell(view.run_id + " files", body);
}

std::string models_page(const std::vector<ModelView>& models) {
  std::string body = "<h1>Models</h1>";
  if (models.empty()) body += "<p class=\"muted\">No registered models.</p>";
  for (const auto& model : models) {
    const auto& v = model.version;
    body += fmt::format("<h2 id=\"{}\">{} <span class=\"muted\">version {}</span></h2>",
                        html(url_segment(v.name + ":" + v.version)), html(v.name), html(v.version));
    std::vector<std::pair<std::string, std::string>> rows = {
        {"registered", v.created_at},
        {"files", fmt::format("{} ({})", v.files, util::format_bytes(v.bytes))},
        {"from", v.source_path},
        {"manifest sha256", v.manifest_sha256}};
    if (!v.description.empty()) rows.emplace_back("description", v.description);
    body += "<table class=\"kv\">";
    for (const auto& [key, value] : rows) {
      body += fmt::format("<tr><th>{}</th><td>{}</td></tr>", html(key), html(value));
    }
    if (!v.source_run.empty()) {
      body += fmt::format("<tr><th>run</th><td>{}</td></tr>", run_link(v.source_run));
    }
    if (!v.tags.empty()) {
      body += "<tr><th>tags</th><td>" + tags_cell(v.tags) + "</td></tr>";
    }
    body += "</table>";
    if (!model.problem.empty()) {
      body += "<p class=\"notice\">" + html(model.problem) + "</p>";
      continue;
    }
    body += "<table class=\"model-files\"><tr><th>file</th><th>size</th><th>sha256</th></tr>";
    for (const auto& file : model.files) {
      body += fmt::format("<tr><td>{}</td><td class=\"num\">{}</td><td><code>{}</code></td></tr>",
                          html(file.path), util::format_bytes(file.size), html(file.sha256));
    }
    body += "</table>";
  }
  return page_shell("Models", body);
}

std::string error_page(int status, const std::string& message) {
  return page_shell(
      fmt::format("{}", status),
      fmt::format("<h1>{}</h1><p>{}</p><p><a href=\"/\">all runs</a></p>", status, html(message)));
}

}  // namespace amlrun::ui
