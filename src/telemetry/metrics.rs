//! The counters and histograms one server keeps about its own work, recorded on the hot paths
//! with relaxed atomics: HTTP requests, publish latency, deliveries and their latency by
//! destination type, alerts fired and destinations disabled automatically. One [`Metrics`] per
//! server (tests run several servers in one process), shared as an `Arc`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::histogram::Histogram;
use super::http::{HttpRequests, RouteLabel, RouteSlot};
use super::text::{Exposition, Kind};
use crate::model::destination_type::DestinationKind;

const KINDS: usize = DestinationKind::ALL.len();

/// Alert types exposed (at zero) before the first of them fires.
pub const ALERT_TYPES: [&str; 2] = ["consecutive_failure", "exhausted_retries"];

pub struct Metrics {
    http: HttpRequests,
    publish_seconds: Histogram,
    /// Per destination type (in `DestinationKind::ALL` order): successes, failures.
    deliveries: [[AtomicU64; 2]; KINDS],
    delivery_seconds: [Histogram; KINDS],
    alerts: Mutex<BTreeMap<String, u64>>,
    auto_disabled: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new(Vec::new())
    }
}

impl Metrics {
    /// A registry whose HTTP counters know the rows of this route table.
    pub fn new(routes: Vec<RouteLabel>) -> Metrics {
        Metrics {
            http: HttpRequests::new(routes),
            publish_seconds: Histogram::latency(),
            deliveries: std::array::from_fn(|_| [AtomicU64::new(0), AtomicU64::new(0)]),
            delivery_seconds: std::array::from_fn(|_| Histogram::latency()),
            alerts: Mutex::new(
                ALERT_TYPES
                    .iter()
                    .map(|kind| ((*kind).to_string(), 0))
                    .collect(),
            ),
            auto_disabled: AtomicU64::new(0),
        }
    }

    /// One answered HTTP request.
    pub fn http_request(&self, route: RouteSlot, status: u16) {
        self.http.record(route, status);
    }

    /// How long one `POST /publish` took to answer.
    pub fn publish_took(&self, elapsed: Duration) {
        self.publish_seconds.observe_duration(elapsed);
    }

    /// One delivery attempt to a destination of `destination_type` (upstream's name, such as
    /// `webhook`) and how long it took; an unknown type is not counted.
    pub fn delivery(&self, destination_type: &str, success: bool, elapsed: Duration) {
        let Some(index) = DestinationKind::ALL
            .iter()
            .position(|kind| kind.as_str() == destination_type)
        else {
            return;
        };
        self.deliveries[index][usize::from(!success)].fetch_add(1, Ordering::Relaxed);
        self.delivery_seconds[index].observe_duration(elapsed);
    }

    /// An alert of type `kind` (such as `consecutive_failure`) was fired.
    pub fn alert_fired(&self, kind: &str) {
        let mut alerts = self
            .alerts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match alerts.get_mut(kind) {
            Some(count) => *count += 1,
            None => {
                alerts.insert(kind.to_string(), 1);
            }
        }
    }

    /// A destination was disabled automatically after consecutive failures.
    pub fn destination_auto_disabled(&self) {
        self.auto_disabled.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes every family this registry holds.
    pub fn expose(&self, out: &mut Exposition) {
        const HTTP: &str = "outpost_http_requests_total";
        out.family(
            HTTP,
            Kind::Counter,
            "HTTP requests answered, by method, route pattern and status.",
        );
        self.http.expose(out, HTTP);

        const PUBLISH: &str = "outpost_publish_duration_seconds";
        out.family(
            PUBLISH,
            Kind::Histogram,
            "Time to answer POST /api/v1/publish, from routing to the response, in seconds.",
        );
        out.histogram(PUBLISH, &[], &self.publish_seconds.snapshot());

        const DELIVERIES: &str = "outpost_deliveries_total";
        out.family(
            DELIVERIES,
            Kind::Counter,
            "Delivery attempts made, by destination type and outcome (success or failed).",
        );
        for (kind, counts) in DestinationKind::ALL.iter().zip(&self.deliveries) {
            for (outcome, count) in ["success", "failed"].iter().zip(counts) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    out.sample(
                        DELIVERIES,
                        &[("destination_type", kind.as_str()), ("outcome", outcome)],
                        count as f64,
                    );
                }
            }
        }

        const DELIVERY_SECONDS: &str = "outpost_delivery_duration_seconds";
        out.family(
            DELIVERY_SECONDS,
            Kind::Histogram,
            "Time one delivery attempt took (the exchange with the destination), in seconds.",
        );
        for (kind, histogram) in DestinationKind::ALL.iter().zip(&self.delivery_seconds) {
            let snapshot = histogram.snapshot();
            if snapshot.count > 0 {
                out.histogram(
                    DELIVERY_SECONDS,
                    &[("destination_type", kind.as_str())],
                    &snapshot,
                );
            }
        }

        const ALERTS: &str = "outpost_alerts_total";
        out.family(ALERTS, Kind::Counter, "Alerts fired, by alert type.");
        let alerts = self
            .alerts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        for (kind, count) in &alerts {
            out.sample(ALERTS, &[("type", kind)], *count as f64);
        }

        out.single(
            "outpost_destinations_auto_disabled_total",
            Kind::Counter,
            "Destinations disabled automatically after consecutive delivery failures.",
            self.auto_disabled.load(Ordering::Relaxed) as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposed(metrics: &Metrics) -> String {
        let mut out = Exposition::new();
        metrics.expose(&mut out);
        out.finish()
    }

    #[test]
    fn deliveries_are_counted_by_type_and_outcome() {
        let metrics = Metrics::default();
        metrics.delivery("webhook", true, Duration::from_millis(2));
        metrics.delivery("webhook", false, Duration::from_millis(2));
        metrics.delivery("webhook", false, Duration::from_millis(2));
        metrics.delivery("no_such_type", true, Duration::from_millis(2));
        let text = exposed(&metrics);
        assert!(text.contains(
            "outpost_deliveries_total{destination_type=\"webhook\",outcome=\"success\"} 1\n"
        ));
        assert!(text.contains(
            "outpost_deliveries_total{destination_type=\"webhook\",outcome=\"failed\"} 2\n"
        ));
        assert!(text
            .contains("outpost_delivery_duration_seconds_count{destination_type=\"webhook\"} 3\n"));
        assert!(!text.contains("no_such_type"));
    }

    #[test]
    fn alerts_and_auto_disable_start_at_zero_and_count() {
        let metrics = Metrics::default();
        let text = exposed(&metrics);
        assert!(text.contains("outpost_alerts_total{type=\"consecutive_failure\"} 0\n"));
        assert!(text.contains("outpost_alerts_total{type=\"exhausted_retries\"} 0\n"));
        assert!(text.contains("outpost_destinations_auto_disabled_total 0\n"));
        metrics.alert_fired("consecutive_failure");
        metrics.alert_fired("something_new");
        metrics.destination_auto_disabled();
        let text = exposed(&metrics);
        assert!(text.contains("outpost_alerts_total{type=\"consecutive_failure\"} 1\n"));
        assert!(text.contains("outpost_alerts_total{type=\"something_new\"} 1\n"));
        assert!(text.contains("outpost_destinations_auto_disabled_total 1\n"));
    }
}
