#!/usr/bin/env python3
"""Runs an installed outpost the way outpost.service does and checks what the unit relies on.

    smoke.py BINARY CONFIG WORKDIR

Starts `BINARY serve --config CONFIG` with DATA_DIR in WORKDIR and NOTIFY_SOCKET pointing at a
datagram socket of ours (as systemd's Type=notify does), then checks: READY=1 arrives, the API
answers, the generated credentials file is owner-only, a webhook to a host *name*
(localhost, resolved by the static binary's getaddrinfo) is delivered, and SIGTERM brings
STOPPING=1 and a clean exit. Prints one "ok   - ..." / "FAIL - ..." line per check.
"""
import http.server
import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request

binary, config, workdir = sys.argv[1:4]
failures = 0


def check(name, cond, detail=""):
    global failures
    if cond:
        print(f"ok   - {name}")
    else:
        failures += 1
        print(f"FAIL - {name}")
        for line in str(detail).splitlines()[-30:]:
            print(f"       {line}")
    return cond


# Webhook receiver.
received = queue.Queue()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        received.put((self.path, dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()
receiver_port = receiver.server_address[1]

# The notification socket systemd would pass.
notify_path = os.path.join(workdir, "notify.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    api_port = s.getsockname()[1]

data_dir = os.path.join(workdir, "data")
env = {
    "PATH": "/usr/bin:/bin",
    "DATA_DIR": data_dir,
    "API_HOST": "127.0.0.1",
    "API_PORT": str(api_port),
    "NOTIFY_SOCKET": notify_path,
    # The packaged outpost.toml denies deliveries to loopback, where this test's receiver is.
    "DELIVERY_ALLOW_CIDRS": "127.0.0.1/32,::1/128",
}
log_path = os.path.join(workdir, "serve.log")
log = open(log_path, "wb")
proc = subprocess.Popen([binary, "serve", "--config", config], env=env, stdout=log, stderr=subprocess.STDOUT)


def server_log():
    with open(log_path, "rb") as f:
        return f.read().decode(errors="replace")


def wait_notification(expected, timeout):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        notify.settimeout(0.2)
        try:
            message = notify.recv(4096).decode()
        except socket.timeout:
            if proc.poll() is not None and expected != "STOPPING=1":
                break
            continue
        seen.append(message)
        if expected in message.split("\n"):
            return True, seen
    return False, seen


base = f"http://127.0.0.1:{api_port}"


def call(method, path, key, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read() or b"null")


try:
    ready, seen = wait_notification("READY=1", 30)
    if not check("serve sends READY=1 to $NOTIFY_SOCKET", ready, f"got {seen}\n{server_log()}"):
        sys.exit(1)

    try:
        status, body = call("GET", "/healthz", None)
        check("GET /healthz answers 200 once ready", status == 200, body)
    except Exception as e:  # noqa: BLE001
        check("GET /healthz answers 200 once ready", False, e)

    cred = os.path.join(data_dir, "credentials.env")
    key = None
    if check("first start generates DATA_DIR/credentials.env", os.path.isfile(cred), server_log()):
        mode = stat.S_IMODE(os.stat(cred).st_mode)
        check("credentials.env is owner-only (0600)", mode == 0o600, oct(mode))
        for line in open(cred):
            if line.startswith("API_KEY="):
                key = line.strip().split("=", 1)[1]
        check("credentials.env holds API_KEY", bool(key))
    mode = stat.S_IMODE(os.stat(data_dir).st_mode)
    check("DATA_DIR is owner-only (0700)", mode == 0o700, oct(mode))

    try:
        call("PUT", "/api/v1/tenants/smoke", key)
        call("POST", "/api/v1/tenants/smoke/destinations", key, {
            "type": "webhook",
            "topics": ["smoke.test"],
            "config": {"url": f"http://localhost:{receiver_port}/hook"},
        })
        status, _ = call("POST", "/api/v1/publish", key,
                         {"tenant_id": "smoke", "topic": "smoke.test", "data": {"hello": "world"}})
        check("publish answers 202", status == 202, status)
        try:
            path, headers, body = received.get(timeout=20)
            ok = path == "/hook" and json.loads(body) == {"hello": "world"}
            check("webhook to http://localhost:PORT (getaddrinfo in the static binary) is delivered",
                  ok, f"{path} {headers} {body!r}")
        except queue.Empty:
            check("webhook to http://localhost:PORT (getaddrinfo in the static binary) is delivered",
                  False, server_log())
    except Exception as e:  # noqa: BLE001
        check("tenant, destination and publish through the API", False, f"{e}\n{server_log()}")

    proc.send_signal(signal.SIGTERM)
    stopping, seen = wait_notification("STOPPING=1", 15)
    check("SIGTERM sends STOPPING=1", stopping, f"got {seen}")
    try:
        code = proc.wait(timeout=40)
        check("SIGTERM stops serve with exit status 0", code == 0, f"status {code}\n{server_log()}")
    except subprocess.TimeoutExpired:
        check("SIGTERM stops serve within 40 s", False, server_log())
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    receiver.shutdown()

sys.exit(1 if failures else 0)
