"""Metrics: ingestion from the ranks' files while runs go, the metrics command
(table, JSON, CSV) and the charts it draws (terminal and SVG)."""
import json
import math
import os
import time
import xml.etree.ElementTree as ET

from amlrun_e2e import PYTHON, ProjectTest

SVG = "{http://www.w3.org/2000/svg}"

WRITE_METRICS = """
import json, os
lines = json.load(open("lines.json"))
with open(os.environ["AMLRUN_METRICS_FILE"], "a") as f:
    for line in lines:
        f.write((line if isinstance(line, str) else json.dumps(line)) + "\\n")
"""


class MetricsFixture(ProjectTest):
    def submit_lines(self, lines, experiment="m"):
        self.project.write("src/metrics.py", WRITE_METRICS)
        self.project.write("src/lines.json", json.dumps(lines))
        self.project.write("job.yml", "code: src\ncommand: %s metrics.py\nexperiment_name: %s\n"
                           % (PYTHON, experiment))
        result = self.project.amlrun("submit", "job.yml")
        self.assertEqual(result.returncode, 0, result.stderr)
        return self.last_run()

    def metrics(self, *args, **kwargs):
        return self.project.amlrun("metrics", *args, **kwargs)


class MetricsTest(MetricsFixture):
    def test_table_json_and_csv(self):
        run_id = self.submit_lines([{"name": "loss", "value": 0.5, "step": 0},
                                    {"name": "loss", "value": 0.25, "step": 1},
                                    {"name": "acc", "value": "NaN", "step": 0},
                                    {"name": "acc", "value": 0.75}])
        table = self.metrics(run_id)
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertEqual(table.stdout, "NAME  STEP  VALUE\n"
                                       "acc      0    NaN\n"
                                       "acc      1   0.75\n"
                                       "loss     0    0.5\n"
                                       "loss     1   0.25\n")
        csv = self.metrics(run_id, "--output", "csv", "--name", "acc")
        self.assertEqual(csv.stdout, "run,name,rank,step,value\n%s,acc,0,0,NaN\n%s,acc,0,1,0.75\n"
                         % (run_id, run_id))
        out = json.loads(self.metrics(run_id, "--output", "json").stdout)
        self.assertEqual(out["runs"][0]["id"], run_id)
        self.assertEqual(out["runs"][0]["metrics"]["acc"], [{"step": 0, "value": "NaN", "rank": 0},
                                                          {"step": 1, "value": 0.75, "rank": 0}])
        self.assertEqual(out["runs"][0]["skipped"]["non_finite"], 1)

    def test_several_runs_in_one_table(self):
        first = self.submit_lines([{"name": "loss", "value": 1, "step": 0}], experiment="a")
        second = self.submit_lines([{"name": "loss", "value": 2, "step": 0}], experiment="b")
        table = self.metrics(first, second, first)  # a repeated id counts once
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertEqual(table.stdout.splitlines(), [
            "RUN%s  NAME  STEP  VALUE" % (" " * (len(first) - 3)),
            "%s  loss     0      1" % first,
            "%s  loss     0      2" % second])

    def test_bad_lines_are_counted_never_fatal(self):
        run_id = self.submit_lines([{"name": "loss", "value": 1, "step": 5},
                                    "this is not json",
                                    {"name": "bad name", "value": 1},
                                    {"name": "loss", "value": 2, "step": 4},
                                    {"name": "loss", "value": True},
                                    {"name": "loss", "value": "Infinity", "step": 6},
                                    {"name": "loss", "value": 0.5, "step": 7}])
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["metrics_skipped"],
                         {"malformed": 2, "bad_name": 1, "backwards": 1, "non_finite": 1,
                          "first_problem": "rank_0.jsonl:2: not a JSON object"})
        self.assertEqual(record["metrics"]["loss"], {"last": 0.5, "last_step": 7, "min": 0.5, "max": 1,
                                                     "count": 3, "non_finite": 1})
        text = self.project.amlrun("show", run_id).stdout
        self.assertIn("\nmetrics skipped  4 lines (2 malformed, 1 bad name, 1 step going backwards); "
                      "first: rank_0.jsonl:2: not a JSON object\n", text)
        self.assertIn("\n  loss     0.5     7  0.5    1  3 (1 NaN/Inf)\n", text)
        table = self.metrics(run_id)
        self.assertEqual(table.stderr, "amlrun: warning: run %s: metrics skipped: 4 lines (2 malformed, "
                                       "1 bad name, 1 step going backwards); first: rank_0.jsonl:2: "
                                       "not a JSON object\n" % run_id)
        self.assertEqual(table.stdout, "NAME  STEP     VALUE\nloss     5         1\n"
                                       "loss     6  Infinity\nloss     7       0.5\n")

    def test_metrics_show_up_while_the_run_goes(self):
        self.project.write("src/live.py", """
            import json, os, time
            with open(os.environ["AMLRUN_METRICS_FILE"], "a") as f:
                f.write(json.dumps({"name": "loss", "value": 0.9, "step": 0}) + "\\n")
                f.flush()
                f.write('{"name": "loss", "val')  # half a line: not yet
                f.flush()
                while not os.path.exists(os.path.join(os.environ["AMLRUN_WORKSPACE"], "..", "go")):
                    time.sleep(0.02)
                f.write('ue": 0.4, "step": 1}\\n')
        """)
        self.project.write("job.yml", "code: src\ncommand: %s live.py\n" % PYTHON)
        run_id = self.project.amlrun("submit", "job.yml", "--no-wait").stdout.strip()
        deadline = time.time() + 10
        points = []
        while time.time() < deadline and not points:
            out = json.loads(self.metrics(run_id, "--output", "json").stdout)
            points = out["runs"][0]["metrics"].get("loss", [])
            time.sleep(0.1)
        self.assertEqual(points, [{"step": 0, "value": 0.9, "rank": 0}])
        self.assertEqual(self.project.show(run_id)["state"], "Running")
        open(os.path.join(self.project.root, "go"), "w").close()
        self.project.wait_for_state(run_id, ["Completed"])
        out = json.loads(self.metrics(run_id, "--output", "json").stdout)
        self.assertEqual([p["value"] for p in out["runs"][0]["metrics"]["loss"]], [0.9, 0.4])

    def test_every_rank_is_ingested(self):
        self.project.write("src/ranks.py", """
            import json, os
            rank = int(os.environ["RANK"])
            with open(os.environ["AMLRUN_METRICS_FILE"], "a") as f:
                for step in range(3):
                    f.write(json.dumps({"name": "loss", "value": rank + step, "step": step}) + "\\n")
        """)
        result = self.submit("code: src\ncommand: %s ranks.py\n"
                             "distribution: {type: pytorch, process_count_per_instance: 2}\n" % PYTHON)
        self.assertEqual(result.returncode, 0, result.stderr)
        table = self.metrics(self.last_run()).stdout.splitlines()
        self.assertEqual(table[0].split(), ["NAME", "STEP", "VALUE", "RANK"])
        self.assertEqual(sorted(tuple(line.split()[1:]) for line in table[1:]),
                         sorted((str(s), str(r + s), str(r)) for r in range(2) for s in range(3)))

    def test_unknown_names_and_empty_runs(self):
        run_id = self.submit_lines([{"name": "val_acc", "value": 0.5}])
        for args in [("--name", "val_ac"), ("--plot", "val_ac")]:
            result = self.metrics(run_id, *args)
            self.assertEqual(result.returncode, 2)
            self.assertEqual(result.stderr, "amlrun: error: no metric 'val_ac' in run %s (did you mean "
                                            "'val_acc'?); the metrics are val_acc\n" % run_id)
        self.submit("command: 'true'\n")
        empty = self.last_run()
        result = self.metrics(empty)
        self.assertEqual((result.returncode, result.stdout, result.stderr),
                         (0, "", "amlrun: no metrics recorded\n"))
        plot = self.metrics(empty, "--plot-file", "x.svg")
        self.assertEqual(plot.returncode, 2)
        self.assertEqual(plot.stderr, "amlrun: error: nothing to plot: run %s recorded no metrics\n" % empty)

    def test_terminal_chart_fits_the_width(self):
        run_id = self.submit_lines([{"name": "loss", "value": 1.0 / (s + 1), "step": s} for s in range(100)]
                                   + [{"name": "acc", "value": s / 100.0, "step": s} for s in range(100)])
        for columns in ["60", "100"]:
            result = self.metrics(run_id, "--plot", "loss,acc", env={"COLUMNS": columns})
            self.assertEqual(result.returncode, 0, result.stderr)
            lines = result.stdout.splitlines()
            self.assertEqual(lines[0], "loss")
            self.assertIn("acc", lines)
            for line in lines:
                self.assertLessEqual(len(line), int(columns), line)
            self.assertTrue(any(0x2800 < ord(c) <= 0x28FF for c in result.stdout))  # braille dots
            self.assertIn("━━ " + run_id, result.stdout)
            self.assertNotIn("\033[", result.stdout)  # no colour off a terminal

    def test_svg_chart_compares_runs_side_by_side(self):
        first = self.submit_lines([{"name": "val_acc", "value": 0.5 + s / 40.0, "step": s} for s in range(20)]
                                  + [{"name": "loss", "value": 1.0 / (s + 1), "step": s} for s in range(20)],
                                  experiment="a")
        second = self.submit_lines([{"name": "val_acc", "value": 0.4 + s / 50.0, "step": s} for s in range(30)]
                                   + [{"name": "val_acc", "value": "NaN", "step": 30}], experiment="b")
        result = self.metrics(first, second, "--plot", "val_acc", "--plot-file", "chart.svg")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertEqual(result.stderr, "amlrun: wrote chart.svg (1 chart, 2 lines)\n")
        root = ET.parse(os.path.join(self.project.root, "chart.svg")).getroot()
        self.assertEqual(root.tag, SVG + "svg")
        panels = root.findall(SVG + "g[@class='panel']")
        self.assertEqual([p.get("data-metric") for p in panels], ["val_acc"])
        panel = panels[0]
        self.assertEqual(panel.find(SVG + "text[@class='title']").text, "val_acc")
        series = panel.findall(SVG + "g[@class='series']")
        self.assertEqual([s.get("data-series") for s in series], [first, second])
        self.assertNotEqual(series[0].get("stroke"), series[1].get("stroke"))
        points = [s.find(SVG + "polyline").get("points").split() for s in series]
        self.assertEqual([len(p) for p in points], [20, 30])
        labels = [t.text for t in panel.iter(SVG + "text")]
        self.assertIn("step", labels)  # x axis label
        self.assertIn("val_acc", labels)  # y axis label
        self.assertEqual([t.text for t in panel.findall(SVG + "g[@class='legend']/" + SVG + "text")],
                         [first, second])
        self.assertGreaterEqual(len(panel.findall(SVG + "text[@class='tick x-tick']")), 3)
        self.assertGreaterEqual(len(panel.findall(SVG + "text[@class='tick y-tick']")), 3)
        # Without --plot every metric gets a panel; a run lacking one has no line there.
        everything = self.metrics(first, second, "--plot-file", "all.svg")
        self.assertEqual(everything.stderr, "amlrun: wrote all.svg (2 charts, 3 lines)\n")
        root = ET.parse(os.path.join(self.project.root, "all.svg")).getroot()
        self.assertEqual([p.get("data-metric") for p in root.findall(SVG + "g[@class='panel']")],
                         ["loss", "val_acc"])

    def test_plot_file_errors(self):
        run_id = self.submit_lines([{"name": "loss", "value": 1}])
        missing = self.metrics(run_id, "--plot-file", "nodir/chart.svg")
        self.assertEqual(missing.returncode, 2)
        self.assertEqual(missing.stderr, "amlrun: error: --plot-file nodir/chart.svg: the directory "
                                         "nodir does not exist\n")
        os.mkdir(os.path.join(self.project.root, "adir"))
        directory = self.metrics(run_id, "--plot-file", "adir")
        self.assertEqual(directory.stderr, "amlrun: error: --plot-file adir is a directory; give a file "
                                           "name\n")


class ExtremeMetricsTest(MetricsFixture):
    def test_a_line_without_a_step_after_the_largest_step_is_skipped(self):
        largest = 2 ** 63 - 1
        run_id = self.submit_lines([{"name": "loss", "value": 1, "step": largest},
                                    {"name": "loss", "value": 2},
                                    {"name": "loss", "value": 3, "step": 5}])
        record = self.project.show(run_id)
        self.assertEqual(record["metrics"]["loss"]["last_step"], largest)
        self.assertEqual(record["metrics"]["loss"]["last"], 1)
        self.assertEqual(record["metrics"]["loss"]["count"], 1)
        self.assertEqual(record["metrics_skipped"],
                         {"malformed": 1, "bad_name": 0, "backwards": 1, "non_finite": 0,
                          "first_problem": "rank_0.jsonl:2: no \"step\" after step %d of 'loss', the "
                                           "largest there is; give the step explicitly" % largest})
        out = json.loads(self.metrics(run_id, "--output", "json").stdout)
        self.assertEqual(out["runs"][0]["metrics"]["loss"], [{"step": largest, "value": 1, "rank": 0}])

    def test_numbers_out_of_range_say_so(self):
        run_id = self.submit_lines(['{"name": "loss", "value": %s}' % ("9" * 400),
                                    '{"name": "loss", "value": 1, "step": %s}' % ("9" * 30),
                                    {"name": "loss", "value": 0.5, "step": 1}])
        record = self.project.show(run_id)
        self.assertEqual(record["metrics_skipped"]["malformed"], 2)
        self.assertEqual(record["metrics_skipped"]["first_problem"],
                         "rank_0.jsonl:1: \"value\" is a number out of range (beyond ±1.8e308; write "
                         "\"Infinity\" or \"-Infinity\" for an infinite value)")
        self.assertEqual(record["metrics"]["loss"]["count"], 1)

    def test_charts_of_extreme_values_stay_finite_and_say_they_were_clipped(self):
        run_id = self.submit_lines([{"name": "loss", "value": 1e308, "step": 0},
                                    {"name": "loss", "value": -1e308, "step": 1},
                                    {"name": "loss", "value": 0.5, "step": 2}])
        text = self.metrics(run_id, "--plot", "loss")
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertNotIn("inf", text.stdout)
        self.assertNotIn("nan", text.stdout)
        self.assertIn(" 1e+300 ┤", text.stdout)
        self.assertIn("-1e+300 ┤", text.stdout)
        self.assertTrue(text.stdout.endswith("(values beyond ±1e+300 are drawn at the edge)\n"),
                        text.stdout)
        svg = self.metrics(run_id, "--plot", "loss", "--plot-file", "chart.svg")
        self.assertEqual(svg.returncode, 0, svg.stderr)
        root = ET.parse(os.path.join(self.project.root, "chart.svg")).getroot()
        numbers = []
        for element in root.iter():
            for attribute in ("x", "y", "x1", "y1", "x2", "y2", "cx", "cy"):
                if element.get(attribute) is not None:
                    numbers.append(float(element.get(attribute)))
            if element.get("points"):
                numbers += [float(n) for pair in element.get("points").split() for n in pair.split(",")]
        self.assertTrue(numbers)
        for number in numbers:
            self.assertTrue(math.isfinite(number), number)
        panel = root.find(SVG + "g[@class='panel']")
        self.assertEqual(panel.find(SVG + "text[@class='clipped']").text,
                         "values beyond ±1e+300 are drawn at the edge")
        # Data within range is drawn as it is, without the note.
        plain = self.submit_lines([{"name": "loss", "value": 1e300, "step": 0},
                                   {"name": "loss", "value": -1e300, "step": 1}], experiment="p")
        self.assertNotIn("drawn at the edge", self.metrics(plain, "--plot", "loss").stdout)
