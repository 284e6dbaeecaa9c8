//! `GET /metrics`: known traffic against a real server (publishes, one succeeding and one
//! failing webhook destination, client errors), the exposition parsed by the Prometheus Python
//! client's parser (`tests/sdk/parse_metrics.py` in `.venv-sdk`), and every counter checked to
//! have moved by exactly what was sent; and who may scrape.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::sdk::sdk_python;
use crate::support::client::{Auth, Reply};
use crate::support::{Api, Behaviour, Receiver, ServerOptions, TestServer};

/// One sample: metric name and its labels.
type Key = (String, BTreeMap<String, String>);

/// A parsed exposition.
struct Scrape {
    /// Family name (as the parser reports it) to its type and help.
    families: BTreeMap<String, (String, String)>,
    samples: BTreeMap<Key, f64>,
}

impl Scrape {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.get(&(name.to_string(), labels)).copied()
    }

    /// A sample's value, zero when absent (a labelled counter appears once it has counted).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Every sample of `name`, by labels.
    fn all(&self, name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), value)| (labels.clone(), *value))
            .collect()
    }
}

/// Parses `text` with `prometheus_client.parser.text_string_to_metric_families`.
fn parse(text: &str) -> Scrape {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/parse_metrics.py");
    let mut child = Command::new(sdk_python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run parse_metrics.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the exposition");
    let output = child.wait_with_output().expect("parse_metrics.py");
    assert!(
        output.status.success(),
        "the Prometheus parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let families: Vec<Value> = serde_json::from_slice(&output.stdout).expect("parser output");
    let mut scrape = Scrape {
        families: BTreeMap::new(),
        samples: BTreeMap::new(),
    };
    for family in families {
        let name = family["name"].as_str().expect("name").to_string();
        let kind = family["type"].as_str().expect("type").to_string();
        let help = family["help"].as_str().expect("help").to_string();
        for sample in family["samples"].as_array().expect("samples") {
            let labels = sample["labels"]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_string()))
                .collect();
            let key = (sample["name"].as_str().expect("name").to_string(), labels);
            let value = sample["value"].as_f64().expect("value");
            assert!(
                scrape.samples.insert(key.clone(), value).is_none(),
                "duplicate sample {key:?}"
            );
        }
        scrape.families.insert(name, (kind, help));
    }
    scrape
}

async fn scrape(api: &Api) -> Scrape {
    let reply = api.raw(Method::GET, "/metrics", None, Auth::Admin).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&reply.text())
}

/// The requests a test sent, by the labels they must be counted under.
#[derive(Default)]
struct Sent(BTreeMap<(String, String, String), f64>);

impl Sent {
    /// Sends a request and notes it under `pattern` (the route table's pattern, or
    /// `(unmatched)`) and the status it got.
    async fn send(
        &mut self,
        api: &Api,
        method: Method,
        path: &str,
        pattern: &str,
        body: Option<Vec<u8>>,
        auth: Auth<'_>,
    ) -> Reply {
        let reply = api.raw(method.clone(), path, body, auth).await;
        *self
            .0
            .entry((
                method.to_string(),
                pattern.to_string(),
                reply.status.as_u16().to_string(),
            ))
            .or_default() += 1.0;
        reply
    }
}

fn json_body(value: Value) -> Option<Vec<u8>> {
    Some(value.to_string().into_bytes())
}

#[tokio::test]
async fn prometheus_counters_move_by_exactly_the_traffic_sent() {
    let ok = Receiver::start(Behaviour::Status(200)).await;
    let failing = Receiver::start(Behaviour::Status(500)).await;
    // A manual clock: the failed delivery's retry is never due, so each publish makes exactly
    // one success and one failure.
    let server = TestServer::start(ServerOptions::default().manual_clock());
    let api = &server.api;
    let before = scrape(api).await;

    let mut sent = Sent::default();
    // The scrape above is counted too.
    sent.0
        .insert(("GET".into(), "/metrics".into(), "200".into()), 1.0);
    let tenant = "/api/v1/tenants/{tenant_id}";
    let destinations = "/api/v1/tenants/{tenant_id}/destinations";
    let r = sent
        .send(
            api,
            Method::PUT,
            "/api/v1/tenants/acme",
            tenant,
            None,
            Auth::Admin,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    for (id, receiver) in [("ok", &ok), ("failing", &failing)] {
        let body = json!({"id": id, "type": "webhook", "topics": ["*"],
                          "config": {"url": receiver.url("/hook")}});
        let r = sent
            .send(
                api,
                Method::POST,
                "/api/v1/tenants/acme/destinations",
                destinations,
                json_body(body),
                Auth::Admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    const PUBLISHES: usize = 3;
    for n in 0..PUBLISHES {
        let body = json!({"tenant_id": "acme", "topic": "user.created", "data": {"n": n}});
        let r = sent
            .send(
                api,
                Method::POST,
                "/api/v1/publish",
                "/api/v1/publish",
                json_body(body),
                Auth::Admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    }
    // Client errors: a refused publish, an unknown tenant, no credentials, an unknown path and
    // a known path with the wrong method (both before routing finds a row).
    let r = sent
        .send(
            api,
            Method::POST,
            "/api/v1/publish",
            "/api/v1/publish",
            Some(b"{not json".to_vec()),
            Auth::Admin,
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let r = sent
        .send(
            api,
            Method::GET,
            "/api/v1/tenants/nobody",
            tenant,
            None,
            Auth::Admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = sent
        .send(
            api,
            Method::GET,
            "/api/v1/tenants",
            "/api/v1/tenants",
            None,
            Auth::None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = sent
        .send(
            api,
            Method::GET,
            "/api/v1/nothing/here",
            "(unmatched)",
            None,
            Auth::Admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = sent
        .send(
            api,
            Method::DELETE,
            "/api/v1/topics",
            "(unmatched)",
            None,
            Auth::Admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    ok.wait_for(PUBLISHES, std::time::Duration::from_secs(20))
        .await;
    server.settle().await;
    // A write answered after the outcomes' commits: the writer takes batches in order and
    // counts each before answering its callers, so every earlier commit is counted by now.
    let r = sent
        .send(
            api,
            Method::PUT,
            "/api/v1/tenants/acme",
            tenant,
            None,
            Auth::Admin,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let after = scrape(api).await;

    // Every family is documented and typed, and named by the conventions.
    for (name, (kind, help)) in &after.families {
        assert!(
            name.starts_with("outpost_") || name.starts_with("process_"),
            "{name}"
        );
        assert!(!help.is_empty(), "{name} has no HELP");
        assert!(
            ["counter", "gauge", "histogram"].contains(&kind.as_str()),
            "{name}: {kind}"
        );
    }

    // HTTP requests: exactly what was sent, by route pattern and status.
    let requests = "outpost_http_requests_total";
    let moved: BTreeMap<(String, String, String), f64> = after
        .all(requests)
        .into_iter()
        .map(|(labels, value)| {
            let key = (
                labels["method"].clone(),
                labels["route"].clone(),
                labels["status"].clone(),
            );
            let was = before.value(
                requests,
                &[("method", &key.0), ("route", &key.1), ("status", &key.2)],
            );
            (key, value - was)
        })
        .filter(|(_, moved)| *moved != 0.0)
        .collect();
    assert_eq!(moved, sent.0);
    assert_eq!(after.families["outpost_http_requests"].0, "counter");

    // Publishes: every answered POST /publish, the refused one included.
    let publish_count = "outpost_publish_duration_seconds_count";
    assert_eq!(
        after.value(publish_count, &[]) - before.value(publish_count, &[]),
        (PUBLISHES + 1) as f64
    );
    assert_eq!(
        after.families["outpost_publish_duration_seconds"].0,
        "histogram"
    );

    // Deliveries: one success and one failure per publish.
    let deliveries = "outpost_deliveries_total";
    let webhook = ("destination_type", "webhook");
    for outcome in ["success", "failed"] {
        let labels = [webhook, ("outcome", outcome)];
        assert_eq!(
            after.value(deliveries, &labels) - before.value(deliveries, &labels),
            PUBLISHES as f64,
            "{outcome}"
        );
    }
    let delivery_count = "outpost_delivery_duration_seconds_count";
    assert_eq!(
        after.value(delivery_count, &[webhook]) - before.value(delivery_count, &[webhook]),
        (2 * PUBLISHES) as f64
    );
    assert_eq!(
        after.value(
            "outpost_delivery_duration_seconds_bucket",
            &[webhook, ("le", "+Inf")]
        ),
        after.value(delivery_count, &[webhook])
    );

    // The queue holds each failed delivery's retry, not yet due on the stopped clock.
    assert_eq!(
        after.get("outpost_queue_depth", &[]),
        Some(PUBLISHES as f64)
    );
    assert_eq!(after.get("outpost_queue_due", &[]), Some(0.0));

    // The writer committed at least the tenant, two destinations, the publishes and the
    // outcomes, in as many commits as its two histograms count alike.
    let batches = "outpost_writer_batch_jobs";
    let jobs =
        after.value(&format!("{batches}_sum"), &[]) - before.value(&format!("{batches}_sum"), &[]);
    assert!(jobs >= (3 + 3 * PUBLISHES) as f64, "{jobs} jobs");
    let commits = after.value(&format!("{batches}_count"), &[]);
    assert!(commits >= 1.0);
    assert_eq!(
        after.value("outpost_writer_commit_duration_seconds_count", &[]),
        commits
    );

    // The data file and its file system.
    assert!(after.value("outpost_data_file_bytes", &[]) > 0.0);
    assert!(after
        .get("outpost_data_filesystem_free_bytes", &[])
        .is_some());

    // Alerts and automatic disabling are exposed, at zero.
    for kind in ["consecutive_failure", "exhausted_retries"] {
        assert_eq!(
            after.get("outpost_alerts_total", &[("type", kind)]),
            Some(0.0),
            "{kind}"
        );
    }
    assert_eq!(
        after.get("outpost_destinations_auto_disabled_total", &[]),
        Some(0.0)
    );

    // Every worker is healthy.
    for worker in ["http-server", "store-writer", "dispatcher", "retention"] {
        assert_eq!(
            after.get("outpost_worker_healthy", &[("worker", worker)]),
            Some(1.0),
            "{worker}"
        );
    }

    // The process.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let started = after.value("process_start_time_seconds", &[]);
    assert!(
        started <= now + 1.0 && started > now - 86_400.0,
        "{started}"
    );
    assert!(after.value("process_resident_memory_bytes", &[]) > 0.0);
    assert!(after.value("process_open_fds", &[]) > 0.0);
    assert!(after.get("process_cpu_seconds_total", &[]).is_some());
}

#[tokio::test]
async fn prometheus_scrapes_need_the_admin_key_unless_opened() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    let r = api.raw(Method::GET, "/metrics", None, Auth::None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.is_empty());
    let token = api.tenant_with_token("acme").await;
    let r = api.as_tenant(&token, Method::GET, "/metrics", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.is_empty());
    let r = api.raw(Method::GET, "/metrics", None, Auth::Admin).await;
    assert_eq!(r.status, StatusCode::OK);

    let open = TestServer::start(ServerOptions::default().env("METRICS_AUTH_DISABLED", "true"));
    let r = open
        .api
        .raw(Method::GET, "/metrics", None, Auth::None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let scraped = parse(&r.text());
    assert!(scraped.families.contains_key("outpost_http_requests"));
    // Only the metrics are opened.
    let r = open
        .api
        .raw(Method::GET, "/api/v1/tenants", None, Auth::None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
