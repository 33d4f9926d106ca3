"""A real HTTP server on loopback for download tests (stdlib only).

Paths:
  /files/NAME           serves the bytes registered for NAME, honouring Range
  /flaky/N/NAME         answers 503 to the first N requests for NAME, then serves it
  /truncate/NAME        first request: sends half the body and drops the
                        connection; later requests (with Range) complete it
  /status/CODE          answers CODE with an empty body

Run as a program it serves files under a folder and prints "PORT <n>" on
stdout, so tests in other languages can use it:
  /usr/bin/python3 http_test_server.py DIR
"""
import http.server
import os
import re
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        server = self.server
        with server.lock:
            server.requests.append((self.path, self.headers.get("Range")))
            count = server.counts.get(self.path, 0) + 1
            server.counts[self.path] = count
        m = re.match(r"^/status/(\d+)$", self.path)
        if m:
            self.send_response(int(m.group(1)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        m = re.match(r"^/flaky/(\d+)/(.+)$", self.path)
        if m and count <= int(m.group(1)):
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        name = self.path.rsplit("/", 1)[-1]
        body = server.files.get(name)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header:
            rm = re.match(r"bytes=(\d+)-$", range_header)
            start = int(rm.group(1)) if rm else 0
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(body) - 1, len(body)))
        else:
            self.send_response(200)
        part = body[start:]
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if self.path.startswith("/truncate/") and count == 1:
            self.wfile.write(part[: len(part) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(part)


class TestServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files = {}
        self.counts = {}
        self.requests = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


if __name__ == "__main__":
    server = TestServer()
    folder = sys.argv[1]
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            server.files[name] = f.read()
    print("PORT %d" % server.server_address[1], flush=True)
    server.thread.join()
