//! `GET /metrics/events` and `GET /metrics/attempts`, black-box: a known mix of events to two
//! tenants, three destinations and two topics — first attempts that succeed and fail, automatic
//! retries, a manual retry, an event whose `time` lies a day back — on a manual clock, then
//! metrics answers compared with counts the test makes itself from `GET /events` and
//! `GET /attempts`, for measures × dimensions × filters × granularities, zero-filled buckets
//! included; the tenant JWT's confinement; and every error upstream answers.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use outpost::time::{parse_rfc3339, Timestamp};

use crate::support::client::Auth;
use crate::support::{Api, Behaviour, Receiver, ServerOptions, TestServer};

/// The manual clock starts here (a Monday).
const START: &str = "2026-03-02T10:00:30Z";
/// The `time` one event is published with: the day before.
const PAST_EVENT_TIME: &str = "2026-03-01T08:15:00Z";

fn nanos(text: &str) -> i128 {
    parse_rfc3339(text).expect("test time").unix_nanos
}

fn format(nanos: i128) -> String {
    Timestamp { unix_nanos: nanos }.format_rfc3339_nano()
}

/// A server with a known history, and the tenant JWT of `t1`.
struct World {
    server: TestServer,
    _ok: Receiver,
    _fail: Receiver,
    t1_token: String,
}

async fn publish(api: &Api, body: Value) {
    let r = api.post("/api/v1/publish", body.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{body}: {}", r.text());
}

async fn destination(api: &Api, tenant: &str, id: &str, url: &str, topics: Value) {
    let r = api
        .post(
            &format!("/api/v1/tenants/{tenant}/destinations"),
            json!({"id": id, "type": "webhook", "topics": topics, "config": {"url": url}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

/// Builds the history:
///
/// - 10:00:30 — `e1` (t1, user.created) and `e2` (t1, order.created) go to `ok` (200) and
///   `bad` (500); `e3` (t2, order.created) to `t2ok` (200). The failures are retried after 1 h.
/// - 11:00:30 — the two retries fail again (the schedule has one retry: exhausted).
/// - 11:01:30 — a manual retry of `e1` to `bad` fails; `e4` (t1, user.created, `time` the
///   previous day) goes to `ok` and `bad`.
async fn world() -> World {
    let ok = Receiver::start(Behaviour::Status(200)).await;
    let fail = Receiver::start(Behaviour::Status(500)).await;
    let start = i64::try_from(nanos(START)).expect("fits");
    let server = TestServer::start(
        ServerOptions::default()
            .env("RETRY_SCHEDULE", "3600")
            .manual_clock_at(start),
    );
    let api = &server.api;
    let t1_token = api.tenant_with_token("t1").await;
    api.tenant_with_token("t2").await;
    destination(api, "t1", "ok", &ok.url("/ok"), json!("*")).await;
    destination(api, "t1", "bad", &fail.url("/bad"), json!("*")).await;
    destination(api, "t2", "t2ok", &ok.url("/t2"), json!(["order.created"])).await;

    for (id, tenant, topic) in [
        ("e1", "t1", "user.created"),
        ("e2", "t1", "order.created"),
        ("e3", "t2", "order.created"),
    ] {
        publish(
            api,
            json!({"id": id, "tenant_id": tenant, "topic": topic, "data": {"n": 1}}),
        )
        .await;
    }
    server.settle().await;
    server.advance_and_settle(Duration::from_secs(3600)).await;
    server.advance(Duration::from_secs(60));
    let r = api
        .post(
            "/api/v1/retry",
            json!({"event_id": "e1", "destination_id": "bad"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    publish(
        api,
        json!({"id": "e4", "tenant_id": "t1", "topic": "user.created",
               "time": PAST_EVENT_TIME, "data": {"n": 4}}),
    )
    .await;
    server.settle().await;
    World {
        server,
        _ok: ok,
        _fail: fail,
        t1_token,
    }
}

async fn get(api: &Api, path: &str) -> Value {
    let r = api.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()
}

/// Every attempt (with its event's topic) and every event, from the log listings.
async fn logs(api: &Api) -> (Vec<Value>, Vec<Value>) {
    let attempts = get(api, "/api/v1/attempts?limit=1000&include=event").await["models"]
        .as_array()
        .expect("models")
        .clone();
    let events = get(api, "/api/v1/events?limit=1000").await["models"]
        .as_array()
        .expect("models")
        .clone();
    (attempts, events)
}

/// A row of a metrics answer reduced to `(time_bucket, dimensions)` → metrics.
type Rows = BTreeMap<(String, String), Value>;

fn rows(answer: &Value) -> Vec<(String, String, Value)> {
    answer["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|row| {
            (
                row["time_bucket"].as_str().unwrap_or("").to_string(),
                row["dimensions"].to_string(),
                row["metrics"].clone(),
            )
        })
        .collect()
}

/// Counts attempts in `[start, end)` the way the metrics answer should, from the listing.
fn expected_attempts(
    attempts: &[Value],
    start: &str,
    end: &str,
    hours: Option<i128>,
    dims: &[&str],
    keep: impl Fn(&Value) -> bool,
) -> Rows {
    let (lo, hi) = (nanos(start), nanos(end));
    let bucket_len = hours.map(|h| h * 3_600_000_000_000);
    let label = |t: i128| match bucket_len {
        Some(len) => format(t.div_euclid(len) * len),
        None => String::new(),
    };
    let mut totals: BTreeMap<(String, String), [u64; 7]> = BTreeMap::new();
    let mut combos = Vec::new();
    for attempt in attempts {
        let t = nanos(attempt["time"].as_str().expect("time"));
        if t < lo || t >= hi || !keep(attempt) {
            continue;
        }
        let dimensions: serde_json::Map<String, Value> = dims
            .iter()
            .map(|d| {
                let value = match *d {
                    "topic" => attempt["event"]["topic"].clone(),
                    "code" => attempt.get("code").cloned().unwrap_or(json!("")),
                    other => attempt[other].clone(),
                };
                (d.to_string(), value)
            })
            .collect();
        let key = Value::Object(dimensions).to_string();
        if !combos.contains(&key) {
            combos.push(key.clone());
        }
        let n = attempt["attempt_number"].as_u64().expect("number");
        let manual = attempt["manual"].as_bool().expect("manual");
        let success = attempt["status"] == "success";
        let entry = totals.entry((label(t), key)).or_default();
        entry[0] += 1;
        entry[1] += u64::from(success);
        entry[2] += u64::from(!success);
        entry[3] += u64::from(n == 1 && !manual);
        entry[4] += u64::from(n > 1);
        entry[5] += u64::from(manual);
        entry[6] += n;
    }
    // Zero-fill: every bucket of the range for every combination seen (for the empty one when
    // no dimension is asked for).
    if let Some(len) = bucket_len {
        if dims.is_empty() && combos.is_empty() {
            combos.push("{}".to_string());
        }
        let mut b = lo.div_euclid(len) * len;
        while b < hi {
            for combo in &combos {
                totals.entry((format(b), combo.clone())).or_default();
            }
            b += len;
        }
    }
    let seconds = || match bucket_len {
        Some(len) => (len / 1_000_000_000) as f64,
        None => ((hi - lo) as f64) / 1e9,
    };
    totals
        .into_iter()
        .map(
            |((label, dims), [count, ok, failed, first, retries, manual, sum])| {
                let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
                let s = seconds();
                let metrics = json!({
                    "count": count, "successful_count": ok, "failed_count": failed,
                    "error_rate": ratio(failed, count), "first_attempt_count": first,
                    "retry_count": retries, "manual_retry_count": manual,
                    "avg_attempt_number": ratio(sum, count), "rate": count as f64 / s,
                    "successful_rate": ok as f64 / s, "failed_rate": failed as f64 / s,
                });
                ((label, dims), metrics)
            },
        )
        .collect()
}

const ALL_ATTEMPT_MEASURES: &str = "measures[]=count&measures[]=successful_count\
    &measures[]=failed_count&measures[]=error_rate&measures[]=first_attempt_count\
    &measures[]=retry_count&measures[]=manual_retry_count&measures[]=avg_attempt_number\
    &measures[]=rate&measures[]=successful_rate&measures[]=failed_rate";

/// Floats are compared with a relative tolerance: the JSON reader of the test rounds the last
/// digit of some decimals differently.
fn assert_close(value: &Value, expected: f64) {
    let got = value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"));
    assert!(
        (got - expected).abs() <= 1e-12 * expected.abs().max(1e-300),
        "{got} is not {expected}"
    );
}

/// Compares an answer with the expected rows, numbers compared as f64.
fn assert_rows(answer: &Value, expected: &Rows, context: &str) {
    let got = rows(answer);
    let want: Vec<(String, String)> = expected.keys().cloned().collect();
    let got_keys: Vec<(String, String)> =
        got.iter().map(|(t, d, _)| (t.clone(), d.clone())).collect();
    let mut sorted = got_keys.clone();
    sorted.sort_by_key(|a| (a.1.clone(), a.0.clone()));
    assert_eq!(
        got_keys, sorted,
        "{context}: rows ordered by dimensions, then time"
    );
    let mut got_set = got_keys.clone();
    got_set.sort();
    assert_eq!(got_set, want, "{context}: the rows");
    for (time, dims, metrics) in &got {
        let expected = &expected[&(time.clone(), dims.clone())];
        for (name, value) in metrics.as_object().expect("metrics") {
            let (a, b) = (
                value.as_f64().expect("number"),
                expected[name].as_f64().expect("n"),
            );
            assert!(
                (a - b).abs() <= 1e-12 * b.abs(),
                "{context}: {time} {dims} {name} = {a}, expected {b}"
            );
        }
    }
    assert_eq!(
        answer["metadata"]["row_count"].as_u64(),
        Some(got.len() as u64),
        "{context}"
    );
}

#[tokio::test]
async fn metrics_agree_with_the_logs() {
    let w = world().await;
    let api = &w.server.api;
    let (attempts, events) = logs(api).await;
    assert_eq!(attempts.len(), 10, "the history: {attempts:#?}");
    assert_eq!(events.len(), 4);

    // Totals over the whole history, no granularity: one row.
    let (start, end) = ("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z");
    let answer = get(
        api,
        &format!(
            "/api/v1/metrics/attempts?time[start]={start}&time[end]={end}&{ALL_ATTEMPT_MEASURES}"
        ),
    )
    .await;
    assert_rows(
        &answer,
        &expected_attempts(&attempts, start, end, None, &[], |_| true),
        "totals",
    );
    assert_eq!(answer["data"][0]["metrics"]["count"], 10);
    assert_eq!(answer["data"][0]["metrics"]["failed_count"], 6);
    assert_eq!(answer["data"][0]["metrics"]["manual_retry_count"], 1);
    assert_eq!(answer["data"][0]["metrics"]["retry_count"], 3);
    assert!(answer["data"][0].get("time_bucket").is_none());
    assert_eq!(answer["data"][0]["dimensions"], json!({}));
    assert!(answer["metadata"].get("granularity").is_none());
    assert_eq!(answer["metadata"]["row_limit"], 100_000);
    assert_eq!(answer["metadata"]["truncated"], false);
    assert!(answer["metadata"]["query_time_ms"].is_u64());
    // Latency measures are accepted and null: attempts carry no latency.
    let answer = get(
        api,
        &format!("/api/v1/metrics/attempts?time[start]={start}&time[end]={end}&measures[]=avg_latency&measures[]=p99_latency&measures[]=count"),
    )
    .await;
    assert_eq!(
        answer["data"][0]["metrics"],
        json!({"avg_latency": null, "count": 10, "p99_latency": null})
    );

    // Hourly by destination and status, over a range with empty hours on both sides.
    let (start, end) = ("2026-03-02T08:00:00Z", "2026-03-02T14:00:00Z");
    let answer = get(
        api,
        &format!(
            "/api/v1/metrics/attempts?time[start]={start}&time[end]={end}&granularity=1h\
             &{ALL_ATTEMPT_MEASURES}&dimensions[]=destination_id&dimensions[]=status"
        ),
    )
    .await;
    assert_eq!(answer["metadata"]["granularity"], "1h");
    let expected = expected_attempts(
        &attempts,
        start,
        end,
        Some(1),
        &["destination_id", "status"],
        |_| true,
    );
    assert_eq!(expected.len(), 3 * 6, "three combinations, six hours");
    assert_rows(&answer, &expected, "hourly by destination and status");

    // Filters: one tenant's failures, by attempt number and manual flag (typed values).
    let answer = get(
        api,
        &format!(
            "/api/v1/metrics/attempts?time[start]={start}&time[end]={end}&granularity=2h\
             &{ALL_ATTEMPT_MEASURES}&dimensions[0]=attempt_number&dimensions[1]=manual\
             &filters[tenant_id]=t1&filters[status]=failed&filters[code][]=500"
        ),
    )
    .await;
    assert_rows(
        &answer,
        &expected_attempts(
            &attempts,
            start,
            end,
            Some(2),
            &["attempt_number", "manual"],
            |a| a["tenant_id"] == "t1" && a["status"] == "failed" && a["code"] == "500",
        ),
        "failures by number",
    );
    let typed = answer["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|row| row["dimensions"]["manual"] == true)
        .expect("a manual row");
    assert_eq!(typed["dimensions"]["attempt_number"], 3);

    // Topic, destination type and manual filters; an edge exactly at an attempt's time.
    let edge = "2026-03-02T11:00:30Z";
    let answer = get(
        api,
        &format!(
            "/api/v1/metrics/attempts?time[start]={edge}&time[end]=2026-03-02T11:01:30.000000001Z\
             &{ALL_ATTEMPT_MEASURES}&dimensions[]=topic&filters[destination_type]=webhook\
             &filters[topic][]=user.created&filters[topic][]=order.created&filters[manual]=false"
        ),
    )
    .await;
    assert_rows(
        &answer,
        &expected_attempts(
            &attempts,
            edge,
            "2026-03-02T11:01:30.000000001Z",
            None,
            &["topic"],
            |a| a["manual"] == false,
        ),
        "automatic attempts from an attempt's own time",
    );
    let just_after = "2026-03-02T11:00:30.000000001Z";
    let answer = get(
        api,
        &format!(
            "/api/v1/metrics/attempts?time[start]={just_after}&time[end]=2026-03-02T11:01:30Z&measures[]=count"
        ),
    )
    .await;
    assert_eq!(
        answer["data"],
        json!([]),
        "nothing after 11:00:30 and before 11:01:30"
    );

    // Events by matched destination, daily: e4 lies a day back; every event counted once per
    // matched destination.
    let answer = get(
        api,
        "/api/v1/metrics/events?time[start]=2026-02-28T00:00:00Z&time[end]=2026-03-03T00:00:00Z\
         &granularity=1d&measures[]=count&measures[]=rate&dimensions[]=destination_id",
    )
    .await;
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for day in ["2026-02-28", "2026-03-01", "2026-03-02"] {
        for d in ["bad", "ok", "t2ok"] {
            expected.insert((format!("{day}T00:00:00Z"), d.to_string()), 0);
        }
    }
    for event in &events {
        let day = &event["time"].as_str().expect("time")[..10];
        for d in event["matched_destination_ids"].as_array().expect("ids") {
            *expected
                .entry((
                    format!("{day}T00:00:00Z"),
                    d.as_str().expect("id").to_string(),
                ))
                .or_default() += 1;
        }
    }
    let got: BTreeMap<(String, String), u64> = answer["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|row| {
            assert_close(
                &row["metrics"]["rate"],
                row["metrics"]["count"].as_f64().expect("count") / 86_400.0,
            );
            (
                (
                    row["time_bucket"].as_str().expect("bucket").to_string(),
                    row["dimensions"]["destination_id"]
                        .as_str()
                        .expect("id")
                        .to_string(),
                ),
                row["metrics"]["count"].as_u64().expect("count"),
            )
        })
        .collect();
    assert_eq!(got, expected, "events by destination and day");
    assert_eq!(
        expected[&("2026-03-01T00:00:00Z".to_string(), "ok".to_string())],
        1,
        "e4 counted on its own day"
    );

    // The destination filter selects events by overlap, then the dimension splits them.
    let answer = get(
        api,
        "/api/v1/metrics/events?time[start]=2026-03-02T00:00:00Z&time[end]=2026-03-03T00:00:00Z\
         &measures[]=count&dimensions[]=destination_id&dimensions[]=topic&filters[destination_id]=bad",
    )
    .await;
    assert_eq!(
        answer["data"],
        json!([
            {"dimensions": {"destination_id": "bad", "topic": "order.created"}, "metrics": {"count": 1}},
            {"dimensions": {"destination_id": "bad", "topic": "user.created"}, "metrics": {"count": 1}},
            {"dimensions": {"destination_id": "ok", "topic": "order.created"}, "metrics": {"count": 1}},
            {"dimensions": {"destination_id": "ok", "topic": "user.created"}, "metrics": {"count": 1}},
        ])
    );
    let answer = get(
        api,
        "/api/v1/metrics/events?time[start]=2026-03-02T00:00:00Z&time[end]=2026-03-03T00:00:00Z\
         &measures[]=count&dimensions[]=tenant_id&filters[topic]=order.created",
    )
    .await;
    assert_eq!(
        answer["data"],
        json!([
            {"dimensions": {"tenant_id": "t1"}, "metrics": {"count": 1}},
            {"dimensions": {"tenant_id": "t2"}, "metrics": {"count": 1}},
        ])
    );

    // Rate without granularity divides by the whole range.
    let answer = get(
        api,
        "/api/v1/metrics/events?time[start]=2026-03-02T10:00:00Z&time[end]=2026-03-02T12:00:00Z\
         &measures[]=rate&measures[]=count",
    )
    .await;
    assert_eq!(answer["data"][0]["metrics"]["count"], 3);
    assert_close(&answer["data"][0]["metrics"]["rate"], 3.0 / 7_200.0);

    // Monthly buckets: labelled by the month, rates over the calendar month's length.
    let answer = get(
        api,
        "/api/v1/metrics/events?time[start]=2026-02-15T00:00:00Z&time[end]=2026-03-15T00:00:00Z\
         &granularity=1M&measures[]=count&measures[]=rate",
    )
    .await;
    assert_eq!(
        answer["data"][0],
        json!({"time_bucket": "2026-02-01T00:00:00Z", "dimensions": {},
               "metrics": {"count": 0, "rate": 0}})
    );
    assert_eq!(answer["data"][1]["time_bucket"], "2026-03-01T00:00:00Z");
    assert_eq!(answer["data"][1]["metrics"]["count"], 4);
    assert_close(
        &answer["data"][1]["metrics"]["rate"],
        4.0 / (31.0 * 86_400.0),
    );
    assert_eq!(answer["data"].as_array().map(Vec::len), Some(2));
    // Weeks start on Sunday: 2026-03-01 is one, so e4 and the rest share a week.
    let answer = get(
        api,
        "/api/v1/metrics/events?time[start]=2026-02-20T00:00:00Z&time[end]=2026-03-08T00:00:00Z\
         &granularity=1w&measures[]=count",
    )
    .await;
    assert_eq!(
        answer["data"],
        json!([
            {"time_bucket": "2026-02-15T00:00:00Z", "dimensions": {}, "metrics": {"count": 0}},
            {"time_bucket": "2026-02-22T00:00:00Z", "dimensions": {}, "metrics": {"count": 0}},
            {"time_bucket": "2026-03-01T00:00:00Z", "dimensions": {}, "metrics": {"count": 4}},
        ])
    );

    // Seconds read from the log: the first attempts all at 10:00:30.
    let answer = get(
        api,
        "/api/v1/metrics/attempts?time[start]=2026-03-02T10:00:29Z&time[end]=2026-03-02T10:00:32Z\
         &granularity=1s&measures[]=count&measures[]=successful_count",
    )
    .await;
    assert_eq!(
        answer["data"],
        json!([
            {"time_bucket": "2026-03-02T10:00:29Z", "dimensions": {}, "metrics": {"count": 0, "successful_count": 0}},
            {"time_bucket": "2026-03-02T10:00:30Z", "dimensions": {}, "metrics": {"count": 5, "successful_count": 3}},
            {"time_bucket": "2026-03-02T10:00:31Z", "dimensions": {}, "metrics": {"count": 0, "successful_count": 0}},
        ])
    );

    // No data in range: [] without granularity or with dimensions, zero rows without.
    let empty = "time[start]=2020-01-01T00:00:00Z&time[end]=2020-01-01T03:00:00Z&measures[]=count";
    let answer = get(api, &format!("/api/v1/metrics/attempts?{empty}")).await;
    assert_eq!(answer["data"], json!([]));
    let answer = get(
        api,
        &format!("/api/v1/metrics/attempts?{empty}&granularity=1h&dimensions[]=code"),
    )
    .await;
    assert_eq!(answer["data"], json!([]));
    let answer = get(
        api,
        &format!("/api/v1/metrics/events?{empty}&granularity=30m"),
    )
    .await;
    let zeros = answer["data"].as_array().expect("data");
    assert_eq!(zeros.len(), 6, "{answer}");
    assert!(
        zeros.iter().all(|row| row["metrics"]["count"] == 0),
        "{answer}"
    );
}

#[tokio::test]
async fn a_tenant_jwt_sees_only_its_own_tenant() {
    let w = world().await;
    let api = &w.server.api;
    let token = &w.t1_token;
    let as_t1 = |path: String| async move { api.as_tenant(token, Method::GET, &path, None).await };
    let range = "time[start]=2026-03-02T00:00:00Z&time[end]=2026-03-03T00:00:00Z";
    for endpoint in ["events", "attempts"] {
        let own = as_t1(format!(
            "/api/v1/metrics/{endpoint}?{range}&measures[]=count&dimensions[]=topic"
        ))
        .await;
        assert_eq!(own.status, StatusCode::OK, "{}", own.text());
        let admin = get(
            api,
            &format!("/api/v1/metrics/{endpoint}?{range}&measures[]=count&dimensions[]=topic&filters[tenant_id]=t1"),
        )
        .await;
        assert_eq!(own.json()["data"], admin["data"], "{endpoint}");
        let explicit = as_t1(format!(
            "/api/v1/metrics/{endpoint}?{range}&measures[]=count&dimensions[]=topic&filters[tenant_id]=t1"
        ))
        .await;
        assert_eq!(explicit.status, StatusCode::OK);
        assert_eq!(explicit.json()["data"], admin["data"], "{endpoint}");

        for (query, message) in [
            (
                format!("{range}&measures[]=count&dimensions[]=tenant_id"),
                "tenant_id dimension is not allowed for tenant-scoped requests",
            ),
            // Checked before anything else.
            (
                "measures[]=nope&dimensions[0]=topic&dimensions[1]=tenant_id".to_string(),
                "tenant_id dimension is not allowed for tenant-scoped requests",
            ),
            (
                format!("{range}&measures[]=count&filters[tenant_id]=t2"),
                "filters[tenant_id] does not match authenticated tenant",
            ),
            (
                format!("{range}&measures[]=count&filters[tenant_id][]=t1&filters[tenant_id][]=t2"),
                "filters[tenant_id] does not match authenticated tenant",
            ),
        ] {
            let r = as_t1(format!("/api/v1/metrics/{endpoint}?{query}")).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{endpoint} {query}");
            assert_eq!(
                r.json(),
                json!({"status": 403, "message": message}),
                "{endpoint} {query}"
            );
        }
    }
    // The admin may group by tenant.
    let all = get(
        api,
        &format!("/api/v1/metrics/attempts?{range}&measures[]=count&dimensions[]=tenant_id"),
    )
    .await;
    assert_eq!(
        all["data"],
        json!([
            {"dimensions": {"tenant_id": "t1"}, "metrics": {"count": 9}},
            {"dimensions": {"tenant_id": "t2"}, "metrics": {"count": 1}},
        ])
    );
    // No credentials: 401 with an empty body.
    let r = api
        .raw(
            Method::GET,
            &format!("/api/v1/metrics/events?{range}&measures[]=count"),
            None,
            Auth::None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn every_bad_query_gets_upstreams_400() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    let range = "time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-02T00:00:00Z";
    let rfc = "expected RFC3339 (e.g. 2024-01-15T09:30:00Z or 2024-01-15T09:30:00.123Z)";
    let cases: Vec<(&str, String, String)> = vec![
        ("both", "measures[]=count".into(), "time[start] and time[end] are required".into()),
        (
            "both",
            "time[start]=2024-01-01T00:00:00Z&measures[]=count".into(),
            "time[start] and time[end] are required".into(),
        ),
        (
            "both",
            "time[start]=2024-01-01&time[end]=2024-01-02T00:00:00Z&measures[]=count".into(),
            format!("invalid time[start]: {rfc}"),
        ),
        (
            "both",
            "time[start]=2024-01-01T00:00:00Z&time[end]=tomorrow&measures[]=count".into(),
            format!("invalid time[end]: {rfc}"),
        ),
        (
            "both",
            "time[start]=2024-01-02T00:00:00Z&time[end]=2024-01-01T00:00:00Z&measures[]=count".into(),
            "invalid time range: start must be before end".into(),
        ),
        (
            "both",
            "time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-01T00:00:00Z&measures[]=count".into(),
            "invalid time range: start must be before end".into(),
        ),
        (
            "both",
            format!("{range}&measures[]=count&granularity=hourly"),
            r#"invalid granularity "hourly": must match <number><unit> where unit is one of s,m,h,d,w,M"#.into(),
        ),
        (
            "both",
            format!("{range}&measures[]=count&granularity=5x"),
            r#"invalid granularity "5x": must match <number><unit> where unit is one of s,m,h,d,w,M"#.into(),
        ),
        (
            "both",
            format!("{range}&measures[]=count&granularity=0m"),
            r#"invalid granularity "0m": value must be > 0"#.into(),
        ),
        ("both", range.to_string(), "at least one measures[] is required".into()),
        (
            "both",
            format!("{range}&measures[]=count&measures[]=nope"),
            r#"unknown measure "nope""#.into(),
        ),
        (
            "events",
            format!("{range}&measures[]=failed_count"),
            r#"unknown measure "failed_count""#.into(),
        ),
        (
            "both",
            format!("{range}&measures[]=count&dimensions[]=nope"),
            r#"unknown dimension "nope""#.into(),
        ),
        (
            "events",
            format!("{range}&measures[]=count&dimensions[]=status"),
            r#"unknown dimension "status""#.into(),
        ),
        (
            "both",
            "time[start]=2024-01-01T00:00:00Z&time[end]=2024-01-03T00:00:00Z&measures[]=count&granularity=1s".into(),
            "query too broad: try fewer dimensions, more filters, or a shorter time range".into(),
        ),
    ];
    let mut cases = cases;
    for (unit, max) in [
        ("s", 60),
        ("m", 60),
        ("h", 24),
        ("d", 31),
        ("w", 4),
        ("M", 12),
    ] {
        cases.push((
            "both",
            format!("{range}&measures[]=count&granularity={}{unit}", max + 1),
            format!(
                r#"invalid granularity "{}{unit}": {unit} value must be between 1 and {max}"#,
                max + 1
            ),
        ));
    }
    for (endpoints, query, message) in &cases {
        let targets: &[&str] = match *endpoints {
            "both" => &["events", "attempts"],
            one => &[if one == "events" {
                "events"
            } else {
                "attempts"
            }],
        };
        for endpoint in targets {
            let path = format!("/api/v1/metrics/{endpoint}?{query}");
            let r = api.get(&path).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text());
            assert_eq!(
                r.json(),
                json!({"status": 400, "message": message}),
                "{path}"
            );
        }
    }
    // The widest ranges RFC 3339 can write, with and without buckets, answer (nothing stored).
    for query in [
        "time[start]=0000-01-01T00:00:00Z&time[end]=9999-12-31T23:59:59.999999999Z&measures[]=count",
        "time[start]=0000-01-01T00:00:00Z&time[end]=9999-12-31T23:59:59Z&measures[]=rate&granularity=12M",
        "time[start]=1969-12-31T23:59:59Z&time[end]=1970-01-01T01:00:01%2B01:00&measures[]=rate&granularity=1s",
    ] {
        for endpoint in ["events", "attempts"] {
            let r = api.get(&format!("/api/v1/metrics/{endpoint}?{query}")).await;
            assert_eq!(r.status, StatusCode::OK, "{endpoint} {query}: {}", r.text());
        }
    }
    // The largest granularity of each unit is accepted.
    for g in ["60s", "60m", "24h", "31d", "4w", "12M"] {
        let r = api
            .get(&format!(
                "/api/v1/metrics/attempts?{range}&measures[]=count&granularity={g}"
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{g}: {}", r.text());
        assert_eq!(r.json()["metadata"]["granularity"], g);
    }
}
