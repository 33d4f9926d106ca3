"""`amlrun ui` in a real browser: Debian's Chromium, headless, driven over
the DevTools protocol (ui_support.Browser). Every page is kept as a
screenshot under build/ui-screenshots/ for a reviewer to look at."""
import json
import os
import time
import unittest

from amlrun_e2e import PYTHON, ProjectTest
from ui_support import Browser, UiServer, run_grid_sweep

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>&amp;'

JOB = """
import json, os, sys, time, urllib.request
count, pause = int(sys.argv[1]), float(sys.argv[2])
# A param through the run's own MLflow endpoint (REST, as the client sends it).
request = urllib.request.Request(
    os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-parameter",
    data=json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "key": "note",
                     "value": '<script>alert(6)</script>"><img src=x onerror=alert(7)>'}).encode(),
    headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"],
             "Content-Type": "application/json"})
urllib.request.urlopen(request).read()
os.makedirs("outputs", exist_ok=True)
open("outputs/\\"><img src=x onerror=alert(3)>.txt", "w").write("x\\n")
with open(os.environ["AMLRUN_METRICS_FILE"], "a") as sink:
    for i in range(count):
        print("line %d <script>alert(4)</script><img src=x onerror=alert(5)>" % i, flush=True)
        sink.write(json.dumps({"name": "loss", "value": 1.0 / (i + 1), "step": i}) + "\\n")
        sink.flush()
        time.sleep(pause)
"""


class BrowserTest(ProjectTest):
    @classmethod
    def setUpClass(cls):
        cls.browser = Browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()

    def setUp(self):
        super().setUp()
        self.project.write("src/job.py", JOB)
        self.ui = None

    def tearDown(self):
        if self.ui:
            self.ui.stop()
        super().tearDown()

    def job(self, count, pause, wait=True):
        path = self.project.write("job.yml", """
            command: %s job.py %d %s
            code: src
            experiment_name: browser
            display_name: %s
            tags: {note: %s}
        """ % (PYTHON, count, pause, json.dumps(HOSTILE), json.dumps(HOSTILE)))
        result = self.project.amlrun("submit", path, *(() if wait else ("--no-wait",)))
        self.assertEqual(result.returncode, 0, result.stderr)
        return self.last_run()

    def open(self, path):
        if self.ui is None:
            self.ui = UiServer(self.project)
        self.browser.navigate(self.ui.base + path)

    def assert_nothing_injected(self):
        b = self.browser
        self.assertEqual(b.dialogs(), [])
        self.assertEqual(b.evaluate("document.querySelectorAll('img').length"), 0)
        # The only script is the page's own (and its data block, never run).
        scripts = b.evaluate("Array.from(document.scripts).map(s => s.getAttribute('src') || s.type)")
        self.assertEqual(scripts[0], "/static/ui.js")
        self.assertLessEqual(set(scripts[1:]), {"application/json"})
        self.assertLessEqual(len(scripts), 2)

    def test_runs_page_lists_runs_and_shows_hostile_names_as_text(self):
        run_id = self.job(2, 0)
        self.open("/")
        b = self.browser
        self.assertEqual(b.evaluate("Array.from(document.querySelectorAll('tr[data-run]')).map(r => r.dataset.run)"),
                         [run_id])
        self.assertIn(HOSTILE, b.evaluate("document.querySelector('tr[data-run] td').textContent"))
        self.assertIn("note=" + HOSTILE, b.evaluate("document.querySelector('.tag').textContent"))
        self.assertEqual(b.evaluate("document.querySelector('tr[data-run] .state').textContent"), "Completed")
        self.assert_nothing_injected()
        b.screenshot("runs")

    def test_live_log_lines_appear_in_the_page_while_the_run_goes(self):
        run_id = self.job(80, 0.1, wait=False)
        self.project.wait_for_state(run_id, ["Running"])
        self.open("/runs/" + run_id)
        b = self.browser
        # Lines written after the page loaded arrive while it is still Running.
        first = b.evaluate("document.getElementById('log').textContent.split('\\n').length")
        b.wait_for("document.getElementById('log').textContent.split('\\n').length > %d + 5" % first)
        self.assertEqual(self.project.show(run_id)["state"], "Running")
        self.assertEqual(b.evaluate("document.getElementById('run-state').textContent"), "Running")
        b.screenshot("run-live")
        self.project.wait_for_state(run_id, ["Completed"], timeout=60)
        # The state updates in place, and the log ends whole.
        b.wait_for("document.getElementById('run-state').textContent === 'Completed'")
        with open(os.path.join(self.project.logs(run_id), "user_logs", "std_log_rank_0.txt")) as f:
            whole = f.read()
        b.wait_for("document.getElementById('log').textContent.length === %d" % len(whole))
        self.assertEqual(b.evaluate("document.getElementById('log').textContent"), whole)
        self.assertEqual(b.evaluate("document.getElementById('cancel-form')"), None)
        self.assert_nothing_injected()
        b.screenshot("run-completed")

    def test_run_page_has_a_chart_and_files_shown_as_text(self):
        run_id = self.job(6, 0)
        self.open("/runs/" + run_id)
        b = self.browser
        self.assertEqual(b.evaluate("document.querySelectorAll('.charts svg g.panel[data-metric=\"loss\"]').length"), 1)
        self.assertEqual(b.evaluate("document.querySelectorAll('.charts svg g.series polyline, .charts svg g.series path').length >= 1"), True)
        names = b.evaluate("Array.from(document.querySelectorAll('table.files a')).map(a => a.textContent)")
        self.assertIn('"><img src=x onerror=alert(3)>.txt', names)
        self.assertIn(HOSTILE, b.evaluate("document.querySelector('h1').textContent"))
        params = b.evaluate("Array.from(document.querySelectorAll('h2')).find(h => h.textContent === 'Parameters').nextElementSibling.textContent")
        self.assertEqual(params, 'note<script>alert(6)</script>"><img src=x onerror=alert(7)>')
        self.assert_nothing_injected()
        b.screenshot("run-chart")
        # Following the hostile file's link gives the file, not a page.
        href = b.evaluate("Array.from(document.querySelectorAll('table.files a')).find(a => a.textContent.includes('img')).href")
        self.browser.navigate(href)
        self.assertEqual(b.evaluate("document.body.textContent"), "x\n")
        self.assertEqual(b.dialogs(), [])

    def test_cancel_from_the_page_with_the_token_and_not_without(self):
        run_id = self.job(600, 0.1, wait=False)
        self.project.wait_for_state(run_id, ["Running"])
        b = self.browser
        # Without the token's cookie, the button's form is refused.
        self.open("/runs/" + run_id)
        b.evaluate("document.cookie = ''")
        status = b.evaluate("""fetch(document.getElementById('cancel-form').action, {method: 'POST',
            headers: {'Content-Type': 'application/x-www-form-urlencoded'},
            body: 'csrf=' + document.querySelector('input[name=csrf]').value}).then(r => r.status)""")
        self.assertEqual(status, 401)
        # With the token (the address amlrun ui printed) and the form's CSRF token.
        b.navigate(self.ui.base + "/runs/%s?token=%s" % (run_id, self.ui.token))
        self.assertEqual(b.evaluate("location.pathname + location.search"), "/runs/" + run_id)
        bad = b.evaluate("""fetch(document.getElementById('cancel-form').action, {method: 'POST',
            headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'csrf=00'}).then(r => r.status)""")
        self.assertEqual(bad, 403)
        self.assertEqual(self.project.show(run_id)["state"], "Running")
        b.screenshot("run-cancel-button")
        b.evaluate("document.querySelector('#cancel-form button').click()")
        b.wait_for("location.search === '?canceled=1'")
        self.project.wait_for_state(run_id, ["Canceled"], timeout=30)
        b.wait_for("document.getElementById('run-state').textContent === 'Canceled'")
        b.screenshot("run-canceled")

    def test_sweep_page_orders_trials_by_objective(self):
        sweep = run_grid_sweep(self, [0.9, 0.5, 0.1, 0.3], steps=4)
        self.open("/runs/" + sweep)
        b = self.browser
        objectives = b.evaluate("Array.from(document.querySelectorAll('tr.trial .objective')).map(c => Number(c.textContent))")
        self.assertEqual(len(objectives), 4)
        self.assertEqual(objectives, sorted(objectives))
        self.assertEqual(b.evaluate("document.querySelectorAll('tr.trial.best').length"), 1)
        self.assertEqual(b.evaluate("document.querySelector('tr.trial.best').textContent.includes('x=0.3')"), True)
        self.assertEqual(b.evaluate("document.querySelectorAll('polyline.trial').length"), 4)
        b.screenshot("sweep")

    def test_models_page(self):
        run_id = self.job(1, 0)
        result = self.project.amlrun("model", "register", "--name", "browser-model", "--run", run_id,
                                     "--path", "outputs")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.open("/models")
        b = self.browser
        files = b.evaluate("Array.from(document.querySelectorAll('table.model-files td:first-child')).map(c => c.textContent)")
        self.assertEqual(files, ['"><img src=x onerror=alert(3)>.txt'])
        self.assert_nothing_injected()
        b.screenshot("models")


if __name__ == "__main__":
    unittest.main()
