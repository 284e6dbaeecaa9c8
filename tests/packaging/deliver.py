#!/usr/bin/env python3
"""deliver.py BASE_URL API_KEY: through a running outpost, creates a tenant and a webhook
destination at http://localhost:<port>/hook (a receiver of ours), publishes, and waits for the
delivery. Exits 0 when it arrives with the published body, 1 otherwise."""
import http.server
import json
import queue
import sys
import threading
import urllib.request

base, key = sys.argv[1:3]
received = queue.Queue()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        received.put(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


assert call("GET", "/healthz") == 200
call("PUT", "/api/v1/tenants/acme")
call("POST", "/api/v1/tenants/acme/destinations", {
    "type": "webhook",
    "topics": ["smoke.test"],
    "config": {"url": f"http://localhost:{server.server_address[1]}/hook"},
})
assert call("POST", "/api/v1/publish", {"tenant_id": "acme", "topic": "smoke.test", "data": {"n": 1}}) == 202
try:
    body = received.get(timeout=20)
except queue.Empty:
    sys.exit("no delivery within 20 s")
if json.loads(body) != {"n": 1}:
    sys.exit(f"unexpected body {body!r}")
