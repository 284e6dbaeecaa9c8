#!/usr/bin/env python3.11
"""Compatibility test: drive an outpost server through the official Python SDK.

Uses PyPI `outpost-sdk` (Speakeasy-generated). Every 2xx response is parsed by the SDK's
pydantic models (`unmarshal_json_response`), which raise `errors.ResponseValidationError`
on a schema mismatch; step 0 proves that this validation is active and that no SDK hooks
are registered that could rewrite responses. A few raw-JSON checks (via an httpx response
hook that only records, never modifies) cover fields the SDK models drop (e.g. tenant_id).

Env: OUTPOST_URL (e.g. http://127.0.0.1:3333; /api/v1 is appended unless present),
     OUTPOST_API_KEY (the server's API_KEY).
Output: one line per step, then `N passed, 0 failed` (exit 0) or, at the first failure,
the step, the exception and `N passed, 1 failed` (exit 1).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import traceback
import uuid
from datetime import datetime
from importlib import metadata as importlib_metadata

import httpx

from outpost_sdk import Outpost, errors, models
from outpost_sdk.utils.unmarshal_json_response import unmarshal_json_response

EXPECTED_SDK_VERSION = "1.7.0"
TIMEOUT_MS = 15_000
HOOK_URL = "http://127.0.0.1:9/hook"
HOOK_URL2 = "http://127.0.0.1:9/hook2"


class CheckFailed(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


# --------------------------------------------------------------------------- setup


def server_url_from_env() -> str:
    base = os.environ.get("OUTPOST_URL", "").strip()
    if not base:
        raise SystemExit("OUTPOST_URL is not set (e.g. http://127.0.0.1:3333)")
    base = base.rstrip("/")
    if not base.endswith("/api/v1"):
        base += "/api/v1"
    return base


class Recorder:
    """Remembers the last HTTP response (read-only; never changes what the SDK sees)."""

    def __init__(self):
        self.last: httpx.Response | None = None

    def hook(self, response: httpx.Response):
        self.last = response

    def json(self):
        check(self.last is not None, "no HTTP response recorded")
        self.last.read()
        return json.loads(self.last.text)

    def status(self):
        return self.last.status_code if self.last is not None else None

    def describe(self):
        r = self.last
        if r is None:
            return "no response recorded"
        try:
            body = r.text
        except Exception:  # stream not read
            body = "<unread>"
        return f"last response: {r.request.method} {r.request.url} -> {r.status_code} {r.headers.get('content-type', '-')!s} body={body[:500]!r}"


def make_client(server_url: str, token: str, rec: Recorder) -> Outpost:
    http = httpx.Client(follow_redirects=True, event_hooks={"response": [rec.hook]})
    return Outpost(api_key=token, server_url=server_url, client=http, timeout_ms=TIMEOUT_MS)


def expect_error(fn, classes, status, what):
    """Call fn, require an OutpostError of one of `classes` with `status`. Returns the error."""
    try:
        res = fn()
    except errors.ResponseValidationError as e:  # never acceptable: the body broke the SDK's model
        raise CheckFailed(f"{what}: SDK could not parse the error response: {e}") from e
    except errors.OutpostError as e:
        if not isinstance(e, classes):
            raise CheckFailed(
                f"{what}: expected {[c.__name__ for c in classes]}, got {type(e).__name__} "
                f"(HTTP {e.status_code}, body {e.body[:300]!r})"
            ) from e
        eq(e.status_code, status, f"{what}: HTTP status")
        return e
    raise CheckFailed(f"{what}: expected HTTP {status} error, call succeeded with {res!r}")


def as_topic_list(topics):
    """SDK TopicsUnion is `TopicsEnum.WILDCARD_` or List[str]; normalise to a list of str."""
    if isinstance(topics, models.TopicsEnum):
        return [topics.value]
    return list(topics)


def jwt_claims(token: str) -> dict:
    parts = token.split(".")
    check(len(parts) == 3, f"token is not a JWT: {token!r}")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def filter_matches(dest_topics, filt):
    """Upstream list filter: every filter topic must be matched; `*` only matches `*` destinations."""
    wildcard = dest_topics == ["*"]
    return all(wildcard or (f != "*" and f in dest_topics) for f in filt)


# --------------------------------------------------------------------------- the steps


class Compat:
    def __init__(self, server_url, api_key):
        self.server_url = server_url
        self.api_key = api_key
        self.rec = Recorder()
        self.sdk = make_client(server_url, api_key, self.rec)
        run = uuid.uuid4().hex[:8]
        self.t1, self.t2, self.t3 = (f"sdkcompat-{run}-{i}" for i in (1, 2, 3))
        self.dest_b_id = f"sdkcompat-{run}-dest-b"
        self.tenants = {}
        self.dest_a = None
        self.dest_b = None
        self.topics = []
        self.token = None
        self.jrec = Recorder()
        self.jwt_sdk = None

    # ---- helpers
    def check_tenant(self, t, tid, what, raw=None):
        check(isinstance(t, models.Tenant), f"{what}: not a models.Tenant: {type(t).__name__}")
        if raw is not None:  # pydantic is lax ("2" would pass as int): check JSON types directly
            check(type(raw.get("destinations_count")) is int, f"{what}: raw destinations_count must be a JSON integer")
            check(isinstance(raw.get("topics"), list), f"{what}: raw topics must be a JSON array")
            for k in ("id", "created_at", "updated_at"):
                check(isinstance(raw.get(k), str), f"{what}: raw {k} must be a JSON string")
        eq(t.id, tid, f"{what}: id")
        check(isinstance(t.created_at, datetime), f"{what}: created_at missing ({t.created_at!r})")
        check(isinstance(t.updated_at, datetime), f"{what}: updated_at missing ({t.updated_at!r})")
        check(isinstance(t.destinations_count, int), f"{what}: destinations_count missing")
        check(isinstance(t.topics, list), f"{what}: topics missing or not a list ({t.topics!r})")

    def check_webhook(self, d, what, raw=None):
        check(
            isinstance(d, models.DestinationWebhook),
            f"{what}: not a models.DestinationWebhook: {type(d).__name__}",
        )
        eq(d.type, models.DestinationWebhookType.WEBHOOK, f"{what}: type")
        check(isinstance(d.created_at, datetime), f"{what}: created_at")
        check(isinstance(d.updated_at, datetime), f"{what}: updated_at")
        check(d.credentials is not None, f"{what}: credentials")
        if raw is not None:
            # fields the SDK model does not declare (and so silently drops) or may default
            eq(raw.get("tenant_id"), self.t1, f"{what}: raw tenant_id")
            check("disabled_at" in raw, f"{what}: raw disabled_at key must be present (null when enabled)")
            check(isinstance(raw.get("topics"), list), f"{what}: raw topics must be a JSON array")
            eq(raw.get("target"), d.config.url, f"{what}: raw target (= webhook url)")
            check(isinstance(raw.get("config"), dict), f"{what}: raw config object")
            check(isinstance(raw.get("credentials"), dict), f"{what}: raw credentials object")

    def dest_topic_pair(self):
        names = [t for t in self.topics if "*" not in t]
        if len(names) >= 2:
            return names[:2]
        if len(names) == 1:
            return names[:1]
        return ["sdk.compat.created", "sdk.compat.updated"]

    # ---- step 0
    def s00_sdk_self_check(self):
        ver = importlib_metadata.version("outpost-sdk")
        eq(ver, EXPECTED_SDK_VERSION, "installed outpost-sdk version")
        hooks = self.sdk.sdk_configuration.__dict__["_hooks"]
        for name in ("sdk_init_hooks", "before_request_hooks", "after_success_hooks", "after_error_hooks"):
            eq(len(getattr(hooks, name)), 0, f"registered SDK {name}")
        # prove that the SDK's response validation is live: a malformed Destination must be rejected
        bad = httpx.Response(
            200,
            headers={"content-type": "application/json"},
            text='{"id":"x","type":"webhook","topics":["*"],"config":{},"credentials":{}}',
            request=httpx.Request("GET", "http://selfcheck/"),
        )
        try:
            unmarshal_json_response(models.Destination, bad)
        except errors.ResponseValidationError:
            pass
        else:
            raise CheckFailed("SDK accepted a destination without created_at/updated_at/disabled_at/config.url")
        return f"outpost-sdk {ver}, response validation active, no hooks"

    # ---- tenants
    def s01_upsert_create_tenants(self):
        t = self.sdk.tenants.upsert(tenant_id=self.t1, body={"metadata": {"env": "test", "team": "a"}})
        eq(self.rec.status(), 201, "create t1 HTTP status")
        self.check_tenant(t, self.t1, "t1", raw=self.rec.json())
        eq(t.metadata, {"env": "test", "team": "a"}, "t1 metadata")
        eq(t.destinations_count, 0, "t1 destinations_count")
        eq(t.topics, [], "t1 topics")
        eq(t.created_at, t.updated_at, "t1 created_at == updated_at on create")
        self.tenants[self.t1] = t
        for tid in (self.t2, self.t3):
            time.sleep(0.01)  # distinct created_at (tenant cursors are created_at ms)
            t = self.sdk.tenants.upsert(tenant_id=tid)
            eq(self.rec.status(), 201, f"create {tid} HTTP status")
            self.check_tenant(t, tid, tid)
            check(not t.metadata, f"{tid}: metadata should be empty/omitted, got {t.metadata!r}")
            self.tenants[tid] = t
        return f"created {self.t1}, {self.t2}, {self.t3}"

    def s02_get_tenant(self):
        t = self.sdk.tenants.get(tenant_id=self.t1)
        self.check_tenant(t, self.t1, "get t1", raw=self.rec.json())
        eq(t.metadata, {"env": "test", "team": "a"}, "metadata")
        eq(t.created_at, self.tenants[self.t1].created_at, "created_at")
        eq(t.destinations_count, 0, "destinations_count")
        return f"{t.id} metadata={t.metadata}"

    def s03_list_tenants_paginated(self):
        ids = [self.t1, self.t2, self.t3]
        page1 = self.sdk.tenants.list(request={"id": ids, "limit": 2})
        check(isinstance(page1, models.TenantPaginatedResult), "page1 type")
        eq(page1.count, 3, "page1 count (total matching)")
        check(page1.models is not None, "page1 models missing")
        eq(len(page1.models), 2, "page1 size")
        p = page1.pagination
        check(p is not None, "page1 pagination missing")
        eq(p.limit, 2, "pagination.limit")
        eq(p.dir, models.Dir.DESC, "pagination.dir (default desc)")
        eq(p.order_by, "created_at", "pagination.order_by")
        check(isinstance(p.next_cursor, str) and p.next_cursor, f"page1 next cursor missing: {p.next_cursor!r}")
        check(p.prev_cursor is None, f"page1 prev must be null: {p.prev_cursor!r}")
        eq([m.id for m in page1.models], [self.t3, self.t2], "page1 ids (newest first)")

        page2 = self.sdk.tenants.list(request={"id": ids, "limit": 2, "next_cursor": p.next_cursor})
        eq(page2.count, 3, "page2 count")
        eq([m.id for m in page2.models], [self.t1], "page2 ids")
        check(page2.pagination.next_cursor is None, f"page2 next must be null: {page2.pagination.next_cursor!r}")
        check(isinstance(page2.pagination.prev_cursor, str), "page2 prev cursor missing")

        back = self.sdk.tenants.list(request={"id": ids, "limit": 2, "prev_cursor": page2.pagination.prev_cursor})
        eq([m.id for m in back.models], [self.t3, self.t2], "prev page ids")

        unfiltered = self.sdk.tenants.list(request={"limit": 2})
        check(len(unfiltered.models) <= 2, "unfiltered page size <= limit")
        check(unfiltered.count >= 3, f"unfiltered count >= 3, got {unfiltered.count}")
        check(unfiltered.pagination.next_cursor, "unfiltered next cursor (>= 3 tenants exist)")
        return f"count=3, pages [t3,t2] -> [t1], prev -> [t3,t2]; unfiltered count={unfiltered.count}"

    def s04_update_tenant_metadata(self):
        before = self.tenants[self.t1]
        time.sleep(0.01)
        t = self.sdk.tenants.upsert(tenant_id=self.t1, body={"metadata": {"env": "prod"}})
        eq(self.rec.status(), 200, "update HTTP status")
        self.check_tenant(t, self.t1, "updated t1")
        eq(t.metadata, {"env": "prod"}, "metadata replaced (not merged)")
        eq(t.created_at, before.created_at, "created_at unchanged")
        check(t.updated_at > before.updated_at, f"updated_at must advance: {before.updated_at} -> {t.updated_at}")
        again = self.sdk.tenants.get(tenant_id=self.t1)
        eq(again.metadata, {"env": "prod"}, "metadata after re-read")
        self.tenants[self.t1] = t
        return f"metadata={t.metadata}"

    def s05_tenant_token(self):
        tok = self.sdk.tenants.get_token(tenant_id=self.t1)
        check(isinstance(tok, models.TenantToken), "TenantToken type")
        eq(tok.tenant_id, self.t1, "tenant_id")
        claims = jwt_claims(tok.token)
        eq(claims.get("sub"), self.t1, "JWT sub")
        eq(claims.get("iss"), "outpost", "JWT iss")
        check(isinstance(claims.get("exp"), int) and isinstance(claims.get("iat"), int), "JWT iat/exp ints")
        eq(claims["exp"] - claims["iat"], 86400, "JWT lifetime")
        self.token = tok.token
        return f"JWT sub={claims['sub']}"

    def s06_portal_url(self):
        p = self.sdk.tenants.get_portal_url(tenant_id=self.t1, theme=models.Theme.DARK)
        check(isinstance(p, models.PortalRedirect), "PortalRedirect type")
        eq(p.tenant_id, self.t1, "tenant_id")
        u = httpx.URL(p.redirect_url)
        check(u.scheme in ("http", "https"), f"redirect_url scheme: {p.redirect_url}")
        token = u.params.get("token")
        check(token, f"redirect_url has no token: {p.redirect_url}")
        eq(jwt_claims(token).get("sub"), self.t1, "portal token sub")
        eq(u.params.get("theme"), "dark", "theme param")
        return p.redirect_url.split("?")[0] + "?token=…&theme=dark"

    # ---- topics & destination types
    def s07_list_topics(self):
        topics = self.sdk.topics.list()
        check(isinstance(topics, list) and all(isinstance(t, str) for t in topics), f"topics: {topics!r}")
        self.topics = topics
        return f"{len(topics)} topics {topics[:5]}"

    def s08_destination_types(self):
        types = self.sdk.schemas.list_destination_types()
        check(isinstance(types, list) and types, "non-empty list of destination types")
        for s in types:
            check(isinstance(s, models.DestinationTypeSchema), "DestinationTypeSchema type")
            check(s.type and s.label, f"type/label present: {s.type!r}")
        names = [s.type for s in types]
        eq(names[0], "webhook", "first registered type")
        eq(len(set(names)), len(names), "unique types")
        wh = self.sdk.schemas.get_destination_type(type_=models.GetDestinationTypeSchemaType.WEBHOOK)
        eq(wh.type, "webhook", "get webhook type")
        check(wh.label and wh.description and wh.icon, "webhook label/description/icon")
        cfg = {f.key: f for f in (wh.config_fields or [])}
        check("url" in cfg, f"webhook config_fields has url: {list(cfg)}")
        eq(cfg["url"].required, True, "config url required")
        eq(cfg["url"].type, models.DestinationSchemaFieldType.TEXT, "config url field type")
        creds = {f.key for f in (wh.credential_fields or [])}
        check("secret" in creds, f"webhook credential_fields has secret: {sorted(creds)}")
        listed = next(s for s in types if s.type == "webhook")
        eq([f.key for f in listed.config_fields], [f.key for f in wh.config_fields], "list vs get config_fields")
        return f"{names}"

    # ---- destinations
    def s09_create_destinations(self):
        a = self.sdk.destinations.create(
            tenant_id=self.t1,
            body={"type": "webhook", "topics": ["*"], "config": {"url": HOOK_URL}},
        )
        eq(self.rec.status(), 201, "create A HTTP status")
        self.check_webhook(a, "dest A", raw=self.rec.json())
        check(a.id, "generated id")
        eq(as_topic_list(a.topics), ["*"], "A topics")
        eq(a.config.url, HOOK_URL, "A config.url")
        check(a.disabled_at is None, "A enabled")
        check(a.credentials.secret and a.credentials.secret.startswith("whsec_"), f"A generated secret: {a.credentials.secret!r}")
        eq(a.target, HOOK_URL, "A target")
        self.dest_a = a

        pair = self.dest_topic_pair()
        b = self.sdk.destinations.create(
            tenant_id=self.t1,
            body={
                "id": self.dest_b_id,
                "type": "webhook",
                "topics": pair,
                "config": {"url": HOOK_URL},
                "metadata": {"owner": "sdk"},
            },
        )
        eq(self.rec.status(), 201, "create B HTTP status")
        self.check_webhook(b, "dest B", raw=self.rec.json())
        eq(b.id, self.dest_b_id, "B caller-supplied id")
        eq(as_topic_list(b.topics), pair, "B topics")
        eq(b.metadata, {"owner": "sdk"}, "B metadata")
        self.dest_b = b

        t = self.sdk.tenants.get(tenant_id=self.t1)
        eq(t.destinations_count, 2, "tenant destinations_count")
        eq(t.topics, ["*"], "tenant topics with a * destination")
        return f"A={a.id} topics=* ; B={b.id} topics={pair}"

    def s10_get_destination(self):
        a = self.sdk.destinations.get(tenant_id=self.t1, destination_id=self.dest_a.id)
        self.check_webhook(a, "get A", raw=self.rec.json())
        eq(a.id, self.dest_a.id, "id")
        eq(a.config.url, HOOK_URL, "config.url")
        eq(a.credentials.secret, self.dest_a.credentials.secret, "secret (webhook secrets returned in clear)")
        eq(a.created_at, self.dest_a.created_at, "created_at")
        check(a.disabled_at is None, "enabled")
        return a.id

    def s11_list_destinations_filters(self):
        a_id, b_id = self.dest_a.id, self.dest_b.id
        pair = as_topic_list(self.dest_b.topics)
        all_ = self.sdk.destinations.list(tenant_id=self.t1)
        raw = self.rec.json()
        check(isinstance(raw, list), "list destinations returns a JSON array")
        eq([d.id for d in all_], [a_id, b_id], "all destinations (created_at asc)")
        for d in all_:
            self.check_webhook(d, f"listed {d.id}")
        by_type = self.sdk.destinations.list(tenant_id=self.t1, type_=models.DestinationType.WEBHOOK)
        eq([d.id for d in by_type], [a_id, b_id], "type=webhook")
        by_type2 = self.sdk.destinations.list(tenant_id=self.t1, type_=[models.DestinationType.AWS_SQS])
        eq(by_type2, [], "type=aws_sqs")
        topics = {"*": ["*"], "B": pair}
        cases = [[pair[0]], pair, ["*"]]
        for filt in cases:
            got = self.sdk.destinations.list(tenant_id=self.t1, topics=filt)
            want = [i for i, ts in ((a_id, topics["*"]), (b_id, topics["B"])) if filter_matches(ts, filt)]
            eq([d.id for d in got], want, f"topics={filt}")
        return f"all=2, type filter ok, topic filters {cases} ok"

    def s12_update_destination(self):
        a = self.dest_a
        new_topics = [self.dest_topic_pair()[0]]
        time.sleep(0.01)
        u = self.sdk.destinations.update(
            tenant_id=self.t1,
            destination_id=a.id,
            body={"type": "webhook", "topics": new_topics, "config": {"url": HOOK_URL2}},
        )
        self.check_webhook(u, "updated A", raw=self.rec.json())
        eq(u.id, a.id, "id")
        eq(as_topic_list(u.topics), new_topics, "topics replaced")
        eq(u.config.url, HOOK_URL2, "config.url merged")
        eq(u.target, HOOK_URL2, "target follows url")
        eq(u.credentials.secret, a.credentials.secret, "secret kept")
        eq(u.created_at, a.created_at, "created_at unchanged")
        check(u.updated_at > a.updated_at, f"updated_at advances: {a.updated_at} -> {u.updated_at}")
        g = self.sdk.destinations.get(tenant_id=self.t1, destination_id=a.id)
        eq(as_topic_list(g.topics), new_topics, "re-read topics")
        eq(g.config.url, HOOK_URL2, "re-read url")
        t = self.sdk.tenants.get(tenant_id=self.t1)
        eq(t.topics, sorted(set(new_topics) | set(as_topic_list(self.dest_b.topics))), "tenant topics union")
        self.dest_a = u
        if len(as_topic_list(self.dest_b.topics)) == 2:
            other = as_topic_list(self.dest_b.topics)[1]
            got = self.sdk.destinations.list(tenant_id=self.t1, topics=[other])
            eq([d.id for d in got], [self.dest_b.id], f"topics=[{other}] after patch")
        return f"topics={new_topics} url={HOOK_URL2}"

    def s13_disable_enable(self):
        a_id = self.dest_a.id
        d = self.sdk.destinations.disable(tenant_id=self.t1, destination_id=a_id)
        self.check_webhook(d, "disabled A", raw=self.rec.json())
        check(isinstance(d.disabled_at, datetime), f"disabled_at set: {d.disabled_at!r}")
        d2 = self.sdk.destinations.disable(tenant_id=self.t1, destination_id=a_id)
        eq(d2.disabled_at, d.disabled_at, "disable is idempotent")
        g = self.sdk.destinations.get(tenant_id=self.t1, destination_id=a_id)
        eq(g.disabled_at, d.disabled_at, "disabled_at persisted")
        t = self.sdk.tenants.get(tenant_id=self.t1)
        eq(t.destinations_count, 2, "disabled destinations still counted")
        e = self.sdk.destinations.enable(tenant_id=self.t1, destination_id=a_id)
        self.check_webhook(e, "enabled A", raw=self.rec.json())
        check(e.disabled_at is None, f"disabled_at cleared: {e.disabled_at!r}")
        check(self.rec.json().get("disabled_at", "missing") is None, "raw disabled_at is JSON null")
        return f"disabled_at={d.disabled_at.isoformat()} -> null"

    # ---- error paths
    def s14_error_unknown_destination(self):
        # upstream answers 404 with an EMPTY body (no JSON) -> SDK's fallback APIError(404);
        # a JSON error body would give NotFoundError. Both are the SDK's 404 outcome.
        e = expect_error(
            lambda: self.sdk.destinations.get(tenant_id=self.t1, destination_id="sdkcompat-does-not-exist"),
            (errors.NotFoundError, errors.APIError),
            404,
            "get unknown destination",
        )
        return f"{type(e).__name__} 404"

    def s15_error_unknown_tenant(self):
        e = expect_error(
            lambda: self.sdk.tenants.get(tenant_id=f"{self.t1}-missing"),
            (errors.NotFoundError,),
            404,
            "get unknown tenant",
        )
        eq(e.data.message, "tenant not found", "error message")
        e2 = expect_error(
            lambda: self.sdk.destinations.list(tenant_id=f"{self.t1}-missing"),
            (errors.NotFoundError,),
            404,
            "list destinations of unknown tenant",
        )
        return f"NotFoundError 404 '{e.data.message}' (get, list destinations)"

    def s16_error_validation(self):
        e = expect_error(
            lambda: self.sdk.destinations.create(
                tenant_id=self.t1,
                body={"type": "webhook", "topics": ["*"], "config": {"url": "not a url"}},
            ),
            (errors.APIErrorResponse,),
            422,
            "create with invalid url",
        )
        eq(e.data.status, 422, "error body status")
        eq(e.data.message, "validation error", "error body message")
        check(
            isinstance(e.data.data, list) and "config.url failed pattern validation" in e.data.data,
            f"error body data: {e.data.data!r}",
        )
        e2 = expect_error(
            lambda: self.sdk.destinations.create(
                tenant_id=self.t1, body={"type": "webhook", "topics": [], "config": {"url": HOOK_URL}}
            ),
            (errors.APIErrorResponse,),
            422,
            "create with empty topics",
        )
        eq(e2.data.message, "validation failed: invalid topics", "empty topics message")
        e3 = expect_error(
            lambda: self.sdk.destinations.create(
                tenant_id=self.t1,
                body={"id": self.dest_b_id, "type": "webhook", "topics": ["*"], "config": {"url": HOOK_URL}},
            ),
            (errors.BadRequestError,),
            400,
            "create duplicate id",
        )
        eq(e3.data.message, "destination already exists", "duplicate message")
        e4 = expect_error(
            lambda: self.sdk.tenants.list(request={"limit": 1000}),
            (errors.BadRequestError,),
            400,
            "list tenants limit=1000",
        )
        eq(e4.data.message, "invalid limit: must be between 1 and 100", "limit message")
        return "422 url pattern, 422 empty topics, 400 duplicate id, 400 bad limit"

    def s17_error_bad_api_key(self):
        rec = Recorder()
        bad = make_client(self.server_url, "sdkcompat-wrong-key", rec)
        # upstream: 401 with an empty body -> APIError(401); JSON body -> UnauthorizedError
        e = expect_error(
            lambda: bad.tenants.get(tenant_id=self.t1),
            (errors.UnauthorizedError, errors.APIError),
            401,
            "wrong API key",
        )
        return f"{type(e).__name__} 401"

    # ---- deletes
    def s18_delete_destination(self):
        r = self.sdk.destinations.delete(tenant_id=self.t1, destination_id=self.dest_b.id)
        check(isinstance(r, models.SuccessResponse), "SuccessResponse type")
        eq(r.success, True, "success")
        expect_error(
            lambda: self.sdk.destinations.get(tenant_id=self.t1, destination_id=self.dest_b.id),
            (errors.NotFoundError, errors.APIError),
            404,
            "get deleted destination",
        )
        left = self.sdk.destinations.list(tenant_id=self.t1)
        eq([d.id for d in left], [self.dest_a.id], "remaining destinations")
        t = self.sdk.tenants.get(tenant_id=self.t1)
        eq(t.destinations_count, 1, "destinations_count after delete")
        eq(t.topics, as_topic_list(self.dest_a.topics), "tenant topics after delete")
        return f"deleted {self.dest_b.id}"

    def s19_delete_tenant(self):
        r = self.sdk.tenants.delete(tenant_id=self.t3)
        eq(r.success, True, "success")
        expect_error(
            lambda: self.sdk.tenants.get(tenant_id=self.t3),
            (errors.NotFoundError,),
            404,
            "get deleted tenant",
        )
        page = self.sdk.tenants.list(request={"id": [self.t1, self.t2, self.t3], "limit": 10})
        eq(page.count, 2, "count after delete")
        eq(sorted(m.id for m in page.models), sorted([self.t1, self.t2]), "ids after delete")
        return f"deleted {self.t3}"

    # ---- tenant JWT as bearer
    def s20_jwt_reads_own_tenant(self):
        self.jwt_sdk = make_client(self.server_url, self.token, self.jrec)
        t = self.jwt_sdk.tenants.get(tenant_id=self.t1)
        self.check_tenant(t, self.t1, "JWT get own tenant")
        eq(t.metadata, {"env": "prod"}, "metadata")
        eq(t.destinations_count, 1, "destinations_count")
        return f"{t.id} via JWT"

    def s21_jwt_reads_own_destinations(self):
        ds = self.jwt_sdk.destinations.list(tenant_id=self.t1)
        eq([d.id for d in ds], [self.dest_a.id], "JWT list destinations")
        d = self.jwt_sdk.destinations.get(tenant_id=self.t1, destination_id=self.dest_a.id)
        self.check_webhook(d, "JWT get destination")
        eq(d.config.url, HOOK_URL2, "config.url")
        types = self.jwt_sdk.schemas.list_destination_types()
        check(any(s.type == "webhook" for s in types), "JWT can list destination types")
        return f"{len(ds)} destination(s) via JWT"

    def s22_jwt_forbidden(self):
        e1 = expect_error(
            lambda: self.jwt_sdk.tenants.get(tenant_id=self.t2),
            (errors.APIErrorResponse, errors.APIError),
            403,
            "JWT reading another tenant",
        )
        e2 = expect_error(
            lambda: self.jwt_sdk.tenants.get_token(tenant_id=self.t1),
            (errors.APIErrorResponse, errors.APIError),
            403,
            "JWT on admin-only token endpoint",
        )
        return f"{type(e1).__name__} 403, {type(e2).__name__} 403"

    # ---- metrics (nothing published: zero-filled and empty answers)
    def s22_metrics_through_the_sdk(self):
        start = datetime.fromisoformat("2024-01-01T00:00:00+00:00")
        end = datetime.fromisoformat("2024-01-01T03:00:00+00:00")
        r = self.sdk.metrics.get_event_metrics(
            request={"time": {"start": start, "end": end}, "granularity": "1h",
                     "measures": ["count", "rate"]}
        )
        eq(len(r.data), 3, "hourly event rows, zero-filled")
        eq(r.data[0].time_bucket, start, "first bucket")
        eq(r.data[0].metrics, {"count": 0, "rate": 0}, "zero row")
        eq(r.metadata.granularity, "1h", "granularity echoed")
        eq((r.metadata.row_count, r.metadata.row_limit, r.metadata.truncated), (3, 100000, False),
           "metadata")
        r = self.sdk.metrics.get_attempt_metrics(
            request={"time": {"start": start, "end": end}, "granularity": "1h",
                     "measures": ["count", "error_rate", "successful_rate"],
                     "dimensions": ["destination_id", "status"],
                     "filters": {"topic": ["user.created"]}}
        )
        eq(r.data, [], "grouped attempts with nothing in range")
        r = self.jwt_sdk.metrics.get_attempt_metrics(
            request={"time": {"start": start, "end": end}, "measures": ["count", "avg_latency"]}
        )
        eq(r.data, [], "tenant JWT, no granularity, nothing in range")
        e1 = expect_error(
            lambda: self.jwt_sdk.metrics.get_event_metrics(
                request={"time": {"start": start, "end": end}, "measures": ["count"],
                         "dimensions": ["tenant_id"]}
            ),
            (errors.APIErrorResponse, errors.APIError),
            403,
            "JWT grouping by tenant",
        )
        e2 = expect_error(
            lambda: self.sdk.metrics.get_attempt_metrics(
                request={"time": {"start": end, "end": start}, "measures": ["count"]}
            ),
            (errors.BadRequestError, errors.APIErrorResponse, errors.APIError),
            400,
            "start after end",
        )
        return f"3 zero rows, [] grouped; {type(e1).__name__} 403, {type(e2).__name__} 400"

    # ---- cleanup
    def s23_delete_remaining(self):
        d = self.sdk.destinations.delete(tenant_id=self.t1, destination_id=self.dest_a.id)
        eq(d.success, True, "delete A")
        for tid in (self.t1, self.t2):
            r = self.sdk.tenants.delete(tenant_id=tid)
            eq(r.success, True, f"delete {tid}")
        expect_error(
            lambda: self.jwt_sdk.tenants.get(tenant_id=self.t1),
            (errors.UnauthorizedError, errors.APIError),
            401,
            "JWT of deleted tenant",
        )
        return f"deleted {self.t1}, {self.t2}; stale JWT -> 401"

    def cleanup(self):
        for tid in (self.t1, self.t2, self.t3):
            try:
                self.sdk.tenants.delete(tenant_id=tid)
            except Exception:
                pass


def main() -> int:
    server_url = server_url_from_env()
    api_key = os.environ.get("OUTPOST_API_KEY")
    if not api_key:
        print("OUTPOST_API_KEY is not set", file=sys.stderr)
        return 2
    c = Compat(server_url, api_key)
    steps = sorted(n for n in dir(c) if n[:1] == "s" and n[1:3].isdigit())
    passed = 0
    print(f"outpost SDK compat against {server_url}")
    for name in steps:
        try:
            detail = getattr(c, name)()
        except Exception as e:  # noqa: BLE001 - report any failure, then stop
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            print(f"     {c.jrec.describe() if name.startswith(('s20', 's21', 's22')) else c.rec.describe()}")
            traceback.print_exc(limit=3, file=sys.stdout)
            c.cleanup()
            print(f"{passed} passed, 1 failed")
            return 1
        passed += 1
        print(f"ok   {name}: {detail}")
    print(f"{passed} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
