"""Helpers for the web view's tests: `amlrun ui` as a real process, HTTP
calls to it (stdlib), and a real headless Chromium driven over the DevTools
protocol through a pipe (--remote-debugging-pipe: JSON messages ending in a
NUL byte on fds 3 and 4, so no websocket library is needed)."""
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

from amlrun_e2e import AMLRUN, BIN, PYTHON, clean_environment

SCREENSHOTS = os.path.join(BIN, "..", "ui-screenshots")


class UiServer:
    """`amlrun ui` in a project, on a free port; `url` carries the token."""

    def __init__(self, project, *args):
        self.process = subprocess.Popen(
            [AMLRUN, "ui", "--port", "0", *args], cwd=project.root, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=clean_environment())
        line = self.process.stdout.readline()
        if not line.startswith("amlrun ui: "):
            self.process.kill()
            raise AssertionError("amlrun ui printed %r; stderr: %s" % (line, self.process.stderr.read()))
        self.url = line.split(": ", 1)[1].strip()
        parsed = urllib.parse.urlsplit(self.url)
        self.port = parsed.port
        self.token = urllib.parse.parse_qs(parsed.query)["token"][0]
        self.base = "http://127.0.0.1:%d" % self.port

    def request(self, method, path, body=None, headers=None, timeout=10):
        """(status, headers dict, body text) of one request."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode("utf-8", "replace")
        finally:
            connection.close()

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def cookie(self):
        return {"Cookie": "amlrun_ui_token=" + self.token}

    def stop(self):
        """SIGTERM; returns (exit code, stderr)."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("amlrun ui did not stop within 15 s of SIGTERM")
        return self.process.returncode, err


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """Headless Chromium and one page, over the DevTools protocol."""

    def __init__(self, width=1280, height=900):
        binary = chromium_path()
        if binary is None:
            raise AssertionError("chromium is not installed (scripts/common.sh installs it)")
        self.profile = tempfile.mkdtemp(prefix="amlrun-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The browser reads commands on fd 3 and writes answers on fd 4.
        # (Moved out of the way first: the pipes' own numbers may be 3 or 4.)
        def arrange():
            reading = os.dup(to_browser_read) if to_browser_read < 5 else to_browser_read
            writing = os.dup(from_browser_write) if from_browser_write < 5 else from_browser_write
            while reading < 5:
                reading = os.dup(reading)
            while writing < 5:
                writing = os.dup(writing)
            os.dup2(reading, 3)
            os.dup2(writing, 4)
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--user-data-dir=" + self.profile, "--window-size=%d,%d" % (width, height),
             "about:blank"],
            # close_fds would close 3 and 4 after arrange(); Python's own
            # descriptors are not inheritable, so nothing else leaks.
            close_fds=False, preexec_fn=arrange,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events = []
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.command("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page.enable", "Runtime.enable"):
            self.command(domain, session=True)
        self.command("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                     deviceScaleFactor=1, mobile=False)

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            if time.time() > deadline:
                raise AssertionError("no answer from chromium in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise AssertionError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def command(self, method, session=False, timeout=30, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise AssertionError("%s failed: %s" % (method, answer["error"]))
                return answer.get("result", {})
            self.events.append(answer)

    def navigate(self, url, timeout=30):
        self.events = []
        self.command("Page.navigate", session=True, url=url)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.evaluate("document.readyState") == "complete":
                return
            time.sleep(0.05)
        raise AssertionError("%s did not load in %ss" % (url, timeout))

    def evaluate(self, expression):
        result = self.command("Runtime.evaluate", session=True, expression=expression,
                              returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError("%s threw: %s" % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_for(self, expression, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError("%s stayed false for %ss" % (expression, timeout))

    def dialogs(self):
        """JavaScript dialogs (alert, confirm) that opened: none may, ever."""
        self.evaluate("1")  # collects events that arrived meanwhile
        return [e for e in self.events if e.get("method") == "Page.javascriptDialogOpening"]

    def screenshot(self, name):
        import base64
        os.makedirs(SCREENSHOTS, exist_ok=True)
        data = self.command("Page.captureScreenshot", session=True, format="png",
                            captureBeyondViewport=True)["data"]
        path = os.path.join(SCREENSHOTS, name + ".png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.command("Browser.close", timeout=5)
        except AssertionError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)


def run_grid_sweep(test, values, steps):
    """A finished grid sweep over x in `values` whose trials log "loss"
    (lowest for x = 0.3) for `steps` steps; returns the sweep's id."""
    test.project.write("src/trial.py", """
        import json, os, sys
        x = float(sys.argv[1])
        with open(os.environ["AMLRUN_METRICS_FILE"], "a") as sink:
            for step in range(%d):
                sink.write(json.dumps({"name": "loss", "value": (x - 0.3) ** 2 + 1.0 / (step + 1), "step": step}) + "\\n")
    """ % steps)
    result = test.submit("""
        type: sweep
        experiment_name: tune
        trial:
          code: src
          command: %s trial.py ${{search_space.x}}
        sampling_algorithm: grid
        search_space:
          x: {type: choice, values: %s}
        objective: {goal: minimize, primary_metric: loss}
        limits: {max_total_trials: %d, max_concurrent_trials: 2}
    """ % (PYTHON, json.dumps(values), len(values)), "--stream", timeout=300)
    test.assertEqual(result.returncode, 0, result.stderr)
    return [r for r in test.project.run_ids() if test.project.show(r).get("kind") == "sweep"][0]
