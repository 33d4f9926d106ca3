"""`amlrun ui` end to end over HTTP: a real amlrun ui process, real runs
(local supervisor, real processes), answers read with http.client."""
import hashlib
import json
import os
import re
import time
import unittest

from amlrun_e2e import PYTHON, ProjectTest
from ui_support import UiServer, run_grid_sweep

# Prints a numbered line every `pause` seconds and logs "loss"; a name from
# the test's hostile set goes into the log and an output file's name.
SLOW = """
import json, os, sys, time
count, pause = int(sys.argv[1]), float(sys.argv[2])
os.makedirs("outputs", exist_ok=True)
open("outputs/<img src=x onerror=alert(1)>.txt", "w").write("hostile name\\n")
open("outputs/result.bin", "wb").write(b"\\x00RESULT")
with open(os.environ["AMLRUN_METRICS_FILE"], "a") as sink:
    for i in range(count):
        print("line %d <script>alert(%d)</script>" % (i, i), flush=True)
        sink.write(json.dumps({"name": "loss", "value": 1.0 / (i + 1), "step": i}) + "\\n")
        sink.flush()
        time.sleep(pause)
"""


class UiTest(ProjectTest):
    def setUp(self):
        super().setUp()
        self.project.write("src/slow.py", SLOW)
        self.ui = None

    def tearDown(self):
        if self.ui:
            self.ui.stop()
        super().tearDown()

    def start_ui(self, *args):
        self.ui = UiServer(self.project, *args)
        return self.ui

    def submit_job(self, count, pause, *extra, wait=True, name="demo"):
        job = self.project.write(name + ".yml", """
            command: %s slow.py %d %s
            code: src
            experiment_name: %s
            display_name: '"><img src=x onerror=alert(1)>'
            tags: {note: "<script>alert(1)</script> & more"}
        """ % (PYTHON, count, pause, name))
        result = self.project.amlrun("submit", job, *(() if wait else ("--no-wait",)), *extra)
        self.assertIn(result.returncode, (0, 1), result.stderr)
        return self.last_run()

    def test_runs_page_lists_runs_filters_them_and_escapes_names(self):
        first = self.submit_job(2, 0, name="alpha")
        self.project.write("src/fail.py", "import sys; print('bad'); sys.exit(3)\n")
        failed_job = self.project.write("fail.yml", "command: %s fail.py\ncode: src\nexperiment_name: beta\n" % PYTHON)
        self.assertEqual(self.project.amlrun("submit", failed_job).returncode, 1)
        failed = self.last_run()
        ui = self.start_ui()
        status, headers, body = ui.get("/")
        self.assertEqual(status, 200)
        self.assertIn(first, body)
        self.assertIn(failed, body)
        self.assertLess(body.index(failed), body.index(first), "newest first")
        self.assertNotIn("<img src=x", body)
        self.assertIn("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;", body)
        self.assertIn("note=&lt;script&gt;alert(1)&lt;/script&gt; &amp; more", body)
        self.assertIn("script-src 'self'", headers["Content-Security-Policy"])
        status, _, body = ui.get("/?status=Failed")
        self.assertIn(failed, body)
        self.assertNotIn(first, body)
        status, _, body = ui.get("/?experiment=alpha")
        self.assertIn(first, body)
        self.assertNotIn(failed, body)
        status, _, body = ui.get("/?tag=note%3Dnothing")
        self.assertIn("No runs match.", body)
        status, _, body = ui.get("/?offset=-1")
        self.assertEqual(status, 400)
        self.assertIn("offset=-1 is not a whole number from 0 to", body)

    def test_run_page_shows_timeline_params_metrics_chart_and_files(self):
        run_id = self.submit_job(5, 0)
        ui = self.start_ui()
        status, _, body = ui.get("/runs/" + run_id)
        self.assertEqual(status, 200)
        for state in ("Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"):
            self.assertIn('<span class="state state-%s">%s</span>' % (state, state), body)
        # The log, escaped; the chart of "loss" drawn by lib/plot.
        self.assertIn("line 4 &lt;script&gt;alert(4)&lt;/script&gt;", body)
        self.assertNotIn("<script>alert", body)
        self.assertRegex(body, r'<svg[^>]*>')
        self.assertIn('data-metric="loss"', body)
        # The outputs, with the hostile file name as text and as a URL.
        self.assertIn("&lt;img src=x onerror=alert(1)&gt;.txt", body)
        link = "/runs/%s/files/outputs/%%3Cimg%%20src%%3Dx%%20onerror%%3Dalert%%281%%29%%3E.txt" % run_id
        self.assertIn(link, body)
        status, headers, text = ui.get(link)
        self.assertEqual((status, text), (200, "hostile name\n"))
        self.assertEqual(headers["Content-Type"], "text/plain; charset=utf-8")
        status, headers, _ = ui.get("/runs/%s/files/outputs/result.bin" % run_id)
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Disposition"], "attachment; filename*=UTF-8''result.bin")
        # The whole log as a download, byte for byte the captured file.
        status, _, text = ui.get("/runs/%s/log?rank=0" % run_id)
        with open(os.path.join(self.project.logs(run_id), "user_logs", "std_log_rank_0.txt")) as f:
            self.assertEqual(text, f.read())
        status, _, state = ui.get("/runs/%s/state.json" % run_id)
        self.assertEqual(json.loads(state)["state"], "Completed")
        self.assertEqual(json.loads(state)["exit_code"], 0)

    def test_traversal_and_links_out_of_the_run_are_404(self):
        self.project.write("src/plant.py", """
            import os
            os.makedirs("outputs", exist_ok=True)
            os.symlink("/etc/passwd", "outputs/passwd")
            os.symlink("/etc", "outputs/etc")
            open("outputs/ok.txt", "w").write("ok\\n")
        """)
        job = self.project.write("plant.yml", "command: %s plant.py\ncode: src\n" % PYTHON)
        self.project.amlrun("submit", job)
        run_id = self.last_run()
        ui = self.start_ui()
        self.assertEqual(ui.get("/runs/%s/files/outputs/ok.txt" % run_id)[0], 200)
        for path in ("outputs/passwd", "outputs/etc/passwd", "../run.json", "%2e%2e/run.json",
                     "outputs/%2e%2e/%2e%2e/run.json", "outputs/..%2f..%2frun.json",
                     "/etc/passwd", "outputs/ok.txt/"):
            status, _, body = ui.get("/runs/%s/files/%s" % (run_id, path))
            self.assertEqual(status, 404, path)
            self.assertNotIn("root:", body)
            self.assertNotIn('"state"', body)
        self.assertEqual(ui.get("/runs/..%2f..%2fetc")[0], 404)
        self.assertEqual(ui.get("/runs/nope_20260101T000000_00000000")[0], 404)

    def test_live_log_arrives_by_server_sent_events_while_the_run_goes(self):
        run_id = self.submit_job(50, 0.1, wait=False)
        ui = self.start_ui()
        self.project.wait_for_state(run_id, ["Running"])
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=30)
        connection.request("GET", "/runs/%s/log/events?rank=0&offset=0" % run_id)
        response = connection.getresponse()
        self.assertEqual(response.getheader("Content-Type"), "text/event-stream")
        text, seen_running, ended = "", False, False
        event = {}
        while True:
            line = response.readline().decode()
            if not line:
                break
            line = line.rstrip("\n")
            if line:
                key, _, value = line.partition(": ")
                event[key] = value
                continue
            if event.get("event") == "end":
                ended = True
                break
            if "data" in event:
                text += json.loads(event["data"])["t"]
                if not seen_running and "line 3 " in text:
                    with open(os.path.join(self.project.workspace, "runs", run_id, "run.json")) as f:
                        seen_running = json.load(f)["state"] == "Running"
            event = {}
        connection.close()
        self.assertTrue(seen_running, "lines arrived only after the run ended")
        self.assertTrue(ended)
        with open(os.path.join(self.project.logs(run_id), "user_logs", "std_log_rank_0.txt")) as f:
            self.assertEqual(text, f.read())

    def test_cancel_needs_the_token_and_the_csrf_token(self):
        run_id = self.submit_job(600, 0.1, wait=False)
        self.project.wait_for_state(run_id, ["Running"])
        ui = self.start_ui()
        status, _, page = ui.get("/runs/" + run_id)
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        path = "/runs/%s/cancel" % run_id
        self.assertEqual(ui.request("POST", path, "csrf=" + csrf, form)[0], 401)
        self.assertEqual(ui.request("POST", path, "csrf=0000", dict(form, **ui.cookie()))[0], 403)
        self.assertEqual(self.project.show(run_id)["state"], "Running")
        # The token as amlrun ui printed it: a redirect that sets the cookie.
        status, headers, _ = ui.get("/runs/%s?token=%s" % (run_id, ui.token))
        self.assertEqual(status, 303)
        self.assertEqual(headers["Location"], "/runs/" + run_id)
        cookie = headers["Set-Cookie"].split(";")[0]
        status, headers, _ = ui.request("POST", path, "csrf=" + csrf, dict(form, Cookie=cookie))
        self.assertEqual(status, 303)
        self.assertEqual(headers["Location"], "/runs/%s?canceled=1" % run_id)
        record = self.project.wait_for_state(run_id, ["Canceled"], timeout=30)
        self.assertEqual(record["state"], "Canceled")

    def test_off_loopback_every_request_needs_the_token(self):
        run_id = self.submit_job(1, 0)
        ui = self.start_ui("--host", "0.0.0.0")
        self.assertTrue(ui.url.startswith("http://0.0.0.0:"))
        for path in ("/", "/runs/" + run_id, "/models", "/static/ui.js",
                     "/runs/%s/log?rank=0" % run_id):
            status, _, body = ui.get(path)
            self.assertEqual(status, 401, path)
            self.assertIn("this view needs its token", body)
        status, _, body = ui.get("/", headers=ui.cookie())
        self.assertEqual(status, 200)
        self.assertIn(run_id, body)
        code, err = ui.stop()
        self.ui = None
        self.assertEqual(code, 0)
        self.assertIn("amlrun: stopping the web view", err)

    def test_short_token_is_refused(self):
        result = self.project.amlrun("ui", "--token", "short", timeout=10)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--token: use at least 16 characters", result.stderr)

    def test_models_page_lists_files_sizes_checksums_and_the_run(self):
        run_id = self.submit_job(1, 0)
        result = self.project.amlrun("model", "register", "--name", "demo-model", "--run", run_id,
                                     "--path", "outputs")
        self.assertEqual(result.returncode, 0, result.stderr)
        ui = self.start_ui()
        status, _, body = ui.get("/models")
        self.assertEqual(status, 200)
        with open(os.path.join(self.project.outputs(run_id), "result.bin"), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        self.assertIn("<tr><td>result.bin</td><td class=\"num\">7 B</td><td><code>%s</code></td></tr>"
                      % digest, body)
        self.assertIn('<a href="/runs/%s">%s</a>' % (run_id, run_id), body)
        self.assertIn("&lt;img src=x onerror=alert(1)&gt;.txt", body)


class UiSweepTest(ProjectTest):
    def test_sweep_page_orders_trials_by_objective_and_marks_the_best(self):
        sweep = run_grid_sweep(self, [0.9, 0.1, 0.3], steps=3)
        ui = UiServer(self.project)
        try:
            status, _, body = ui.get("/runs/" + sweep)
        finally:
            ui.stop()
        self.assertEqual(status, 200)
        rows = re.findall(r'<tr class="trial( best)?" data-trial="([^"]+)">.*?'
                          r'<td class="num objective"><span title="([^"]*)">[^<]*</span></td><td><span class="tag">x=([^<]*)</span>',
                          body)
        self.assertEqual([x for _, _, _, x in rows], ["0.3", "0.1", "0.9"])
        self.assertEqual([bool(best) for best, _, _, _ in rows], [True, False, False])
        objectives = [float(o) for _, _, o, _ in rows]
        self.assertEqual(objectives, sorted(objectives))
        self.assertIn('<g class="axis" data-axis="x">', body)
        self.assertEqual(len(re.findall(r'<polyline class="trial" data-trial=', body)), 3)
        # Overlaid curves: one line of "loss" per trial.
        curves = body[body.index('loss of every trial'):]
        self.assertEqual(len(re.findall(r'<g class="series" data-series=', curves)), 3)
        for _, trial, _, _ in rows:
            self.assertIn('<a href="/runs/%s">' % trial, body)


if __name__ == "__main__":
    unittest.main()
