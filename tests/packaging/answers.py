#!/usr/bin/env python3
"""answers.py BASE_URL API_KEY MANIFEST PATH [EVENT/DESTINATION...]: GETs BASE_URL/api/v1PATH
from a running outpost and compares the answer, as parsed JSON, with the body MANIFEST (a data
file fixture's manifest.json) recorded under answers[PATH].

Without EVENT/DESTINATION pairs the two must be equal. With them, PATH lists attempts (newest
first) to which deliveries still queued in the fixture may have added since: the answer must be
the recorded one with, in front of its models, attempts of those pairs only.
Exits 0 on a match; otherwise says what differs and exits 1."""
import json
import sys
import urllib.error
import urllib.request

base, key, manifest_path, path = sys.argv[1:5]
pairs = {tuple(p.split("/", 1)) for p in sys.argv[5:]}
with open(manifest_path) as f:
    recorded = json.loads(json.load(f)["answers"][path])

req = urllib.request.Request(base + "/api/v1" + path, headers={"Authorization": f"Bearer {key}"})
try:
    with urllib.request.urlopen(req, timeout=10) as resp:
        status, body = resp.status, resp.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
if status != 200:
    sys.exit(f"GET {path}: status {status}, body {body[:500]!r}")
got = json.loads(body)


def show(value):
    return json.dumps(value, sort_keys=True)


if got == recorded:
    sys.exit(0)
if pairs and isinstance(got, dict) and isinstance(recorded, dict):
    models, kept = got.get("models"), recorded.get("models")
    rest_equal = {k: v for k, v in got.items() if k != "models"} == \
        {k: v for k, v in recorded.items() if k != "models"}
    if isinstance(models, list) and isinstance(kept, list) and rest_equal and len(models) >= len(kept):
        added = models[: len(models) - len(kept)]
        if models[len(models) - len(kept):] == kept and all(
            (m.get("event_id"), m.get("destination_id")) in pairs for m in added
        ):
            print(f"GET {path}: the recorded answer plus {len(added)} attempt(s) of {sorted(pairs)}")
            sys.exit(0)
print(f"GET {path}: the answer differs from the recorded one")
print(f"recorded: {show(recorded)}")
print(f"answered: {show(got)}")
sys.exit(1)
