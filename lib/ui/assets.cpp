#include "lib/ui/assets.hpp"

namespace amlrun::ui {

std::string_view stylesheet() {
  return R"CSS(
:root { --fg: #1d2330; --muted: #5b6475; --line: #d8dde6; --bg: #f6f7f9; --accent: #2457c5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header.top { background: #1d2330; color: #fff; padding: 8px 20px; display: flex; gap: 20px; align-items: baseline; }
header.top a { color: #fff; text-decoration: none; }
header.top .brand { font-weight: 700; }
main { padding: 16px 20px; max-width: 1400px; }
h1 { font-size: 20px; margin: 4px 0 12px; word-break: break-all; }
h2 { font-size: 16px; margin: 22px 0 8px; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.state { font-weight: 600; padding: 1px 6px; border-radius: 3px; background: #e4e7ec; }
.state-Completed { background: #d7f0dc; color: #17632a; }
.state-Failed { background: #f8d9d9; color: #8a1c1c; }
.state-Canceled { background: #eee; color: #555; }
.state-Running, .state-Starting, .state-Preparing, .state-Finalizing { background: #dbe7fb; color: #1b4aa3; }
.state-Queued { background: #f3ecd2; color: #6d5a12; }
tr.best td { background: #fff6d6; }
.kv th { width: 200px; }
pre.log { background: #11151c; color: #d7dde8; padding: 10px; max-height: 520px; overflow: auto; white-space: pre-wrap; word-break: break-all; font: 12px/1.4 "DejaVu Sans Mono", monospace; }
form.filters { display: flex; gap: 10px; margin-bottom: 12px; align-items: end; flex-wrap: wrap; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
.charts svg { max-width: 100%; height: auto; background: #fff; border: 1px solid var(--line); }
.pager { margin: 10px 0; display: flex; gap: 14px; }
.tag { display: inline-block; background: #eef1f5; border-radius: 3px; padding: 0 5px; margin: 1px 2px; font-size: 12px; }
.timeline li { margin: 2px 0; }
.notice { background: #fff6d6; border: 1px solid #ecd98a; padding: 6px 10px; margin: 8px 0; }
button.danger { background: #b3261e; color: #fff; border: 0; padding: 5px 12px; border-radius: 3px; cursor: pointer; }
)CSS";
}

// Plain JavaScript: the live log (Server-Sent Events from the offset the
// page ends at; the browser reconnects with Last-Event-ID on its own) and
// the live states. Everything from a run is put in the page with
// textContent, never as markup.
std::string_view script() {
  return R"JS(
"use strict";
(function () {
  var dataNode = document.getElementById("page-data");
  if (!dataNode) return;
  var data = JSON.parse(dataNode.textContent);
  var terminal = { Completed: 1, Failed: 1, Canceled: 1 };

  function setState(node, state) {
    node.textContent = state;
    node.className = "state state-" + state;
  }

  if (data.page === "run") {
    var log = document.getElementById("log");
    if (log && data.events) {
      var source = new EventSource(data.events);
      source.onmessage = function (event) {
        var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.appendChild(document.createTextNode(JSON.parse(event.data).t));
        if (atBottom) log.scrollTop = log.scrollHeight;
      };
      source.addEventListener("end", function () { source.close(); });
    }
    var stateNode = document.getElementById("run-state");
    if (stateNode && data.state_url && !terminal[data.state]) {
      var timer = setInterval(function () {
        fetch(data.state_url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
          setState(stateNode, s.state);
          var ended = document.getElementById("run-ended");
          if (ended) ended.textContent = s.ended_at || "";
          var exit = document.getElementById("run-exit");
          if (exit) exit.textContent = s.exit_code === null ? "" : String(s.exit_code);
          var reason = document.getElementById("run-reason");
          if (reason) reason.textContent = s.failure_reason || "";
          if (terminal[s.state]) {
            clearInterval(timer);
            var cancel = document.getElementById("cancel-form");
            if (cancel) cancel.remove();
          }
        }).catch(function () {});
      }, 1000);
    }
  }

  if (data.page === "runs" && data.live && data.live.length) {
    var pending = data.live.slice();
    var poll = setInterval(function () {
      if (!pending.length) { clearInterval(poll); return; }
      var query = pending.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
      fetch("/api/states?" + query, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (states) {
        states.forEach(function (s) {
          var row = document.querySelector('tr[data-run="' + CSS.escape(s.id) + '"]');
          if (!row) return;
          setState(row.querySelector(".state"), s.state);
          var exit = row.querySelector(".exit");
          if (exit) exit.textContent = s.exit_code === null ? "" : String(s.exit_code);
          if (terminal[s.state]) pending = pending.filter(function (id) { return id !== s.id; });
        });
      }).catch(function () {});
    }, 2000);
  }
})();
)JS";
}

}  // namespace amlrun::ui
